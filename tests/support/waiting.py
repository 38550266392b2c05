"""Bounded waiting helpers: tests never hang and never sleep to synchronise."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from channels.testing import WebsocketCommunicator


async def until(predicate: Callable[[], object], *, timeout: float = 5.0) -> None:
    """Yield to the loop until ``predicate()`` is true, at most ``timeout`` s.

    For conditions no event announces (a watcher was stored, a task ended).
    """
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 (no event announces these)
            await asyncio.sleep(0.005)


async def frames_after_disconnect(comm: WebsocketCommunicator) -> list[str]:
    """Disconnect, wait for the consumer to end, and return every frame it
    sent that was not received yet: proof of what it never sent."""
    await comm.disconnect(timeout=5)
    frames = []
    while not comm.output_queue.empty():
        message = comm.output_queue.get_nowait()
        if message["type"] == "websocket.send":
            frames.append(message.get("text") or message.get("bytes"))
    return frames
