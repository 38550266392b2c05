"""Event streams through Django's handler, for sites without ``CometFastPath``.

The same delivery (:meth:`Hub.deliver <selector_app.hub.Hub.deliver>`) feeds
the stream, into a slot that holds only the latest version, so the app's
memory per stream is bounded; but Django's handler costs a thread hop and two
tasks per stream, and Daphne's own buffer is not measured here
(``MAX_UNSENT_BYTES``): :mod:`selector_app.events` on the fast path is the
way to serve many streams.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from django.http import HttpRequest, StreamingHttpResponse

from . import metrics
from .conf import Config
from .events import TRANSPORT, try_open
from .limits import open_sockets
from .protocol import Refused, Snapshot
from .runtime import get_hub
from .shutdown import get_connections
from .sse import CONTENT_TYPE, KEEP_ALIVE, event_bytes, retry_field

logger = logging.getLogger(__name__)


def streaming_response(
    request: HttpRequest, name: str, cursor: int, config: Config
) -> StreamingHttpResponse:
    """The stream as a Django response (after ``check_stream``); refuses
    past ``MAX_OPEN_SOCKETS`` like the fast path."""
    try_open(config)
    slot = LatestSlot()
    response = StreamingHttpResponse(
        _stream_body(name, cursor, config, slot), content_type=CONTENT_TYPE
    )
    response._resource_closers.append(slot.release)  # never iterated (HEAD)
    response["Cache-Control"] = "no-store"
    response["X-Accel-Buffering"] = "no"
    return response


class LatestSlot:
    """Where the delivery puts each version on Django's path: one at most
    waits, the latest. Ended by the drain like a stream."""

    ends_at_once = False

    def __init__(self) -> None:
        self.latest: Snapshot | None = None
        self.ready = asyncio.Event()
        self.ended = False
        self._counted = True

    def push(self, snapshot: Snapshot) -> None:
        self.latest = snapshot
        self.ready.set()

    def end(self, error: Exception | None = None) -> None:
        """End the stream (the drain, or the delivery's ``on_error``)."""
        if error is not None and not isinstance(error, Refused):
            logger.error("Sending to an event stream failed.", exc_info=error)
        self.ended = True
        self.ready.set()

    def release(self) -> None:
        """Give its place among the open streams back (once)."""
        if self._counted:
            self._counted = False
            open_sockets.closed()


def _never_held(coro: Any, name: str) -> None:  # pragma: no cover
    coro.close()  # LatestSlot.push never holds a send back


async def _stream_body(
    name: str, cursor: int, config: Config, slot: LatestSlot
) -> AsyncIterator[bytes]:
    connections = get_connections()
    if connections.draining:  # an empty stream, as on the fast path
        yield retry_field(config.RETRY_AFTER * 1000)
        slot.release()
        return
    connections.track(TRANSPORT, slot)
    delivery = None
    try:
        yield retry_field(config.RETRY_AFTER * 1000)
        try:
            delivery = await get_hub().deliver(
                name, cursor, slot.push, start=_never_held, on_error=slot.end
            )
        except Refused:
            return
        while not slot.ended:
            try:
                async with asyncio.timeout(config.KEEP_ALIVE_INTERVAL):
                    await slot.ready.wait()
            except TimeoutError:
                yield KEEP_ALIVE
                continue
            slot.ready.clear()
            snapshot, slot.latest = slot.latest, None
            if snapshot is not None and not slot.ended:
                if config.METRICS:
                    metrics.sent[TRANSPORT] += 1
                yield event_bytes(snapshot)
    finally:
        if delivery is not None:
            delivery.close()
        connections.untrack(TRANSPORT, slot)
        slot.release()
