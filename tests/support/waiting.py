"""Bounded waiting helpers: tests never hang and never sleep to synchronise."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(predicate: Callable[[], object], *, timeout: float = 5.0) -> None:
    """Yield to the loop until ``predicate()`` is true, at most ``timeout`` s.

    For conditions no event announces (a watcher was stored, a task ended).
    """
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 (no event announces these)
            await asyncio.sleep(0.005)
