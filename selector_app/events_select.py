"""``GET /events/select?r=a:3&r=b:7``: several resources on one event stream.

The stream of :mod:`selector_app.events`, fed by one
:class:`~selector_app.selection.Selection` instead of a delivery. Each event
is ``event: <name>``, ``id:`` the whole cursor set after it (``a:4,b:7``)
and ``data:`` the JSON message, so that ``EventSource`` sends the cursor of
every resource back in ``Last-Event-ID`` when it reconnects and misses
nothing. Served at the ASGI level by the fast path; :func:`streaming_response`
is Django's path, for sites without it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import Any

from django.http import HttpRequest, StreamingHttpResponse

from . import metrics
from .access import authorize_request
from .conf import Config, get_config
from .events import TRANSPORT, EventStream, Receive, Send, serve_stream, try_open
from .events_django import LatestSlot
from .protocol import Refused, Snapshot, parse_query
from .runtime import get_hub
from .select_wire import (
    Cursors,
    check_size,
    event_id,
    last_event_cursors,
    message,
    query_cursors,
)
from .selection import Selection
from .shutdown import get_connections
from .sse import CONTENT_TYPE, KEEP_ALIVE, retry_field


def stream_cursors(request: HttpRequest, config: Config) -> Cursors:
    """The watch set: the query's ``r=`` items, with the cursors of
    ``Last-Event-ID`` (what ``EventSource`` sends when it reconnects) over
    them."""
    limit = config.MAX_SELECT_RESOURCES
    cursors = query_cursors(
        parse_query(request.META.get("QUERY_STRING", "")), limit=limit
    )
    last = request.META.get("HTTP_LAST_EVENT_ID", "").strip()
    if last:
        cursors.update(last_event_cursors(last, limit=limit))
        check_size(cursors, limit=limit, what="The query and Last-Event-ID")
    return cursors


async def check_stream(request: HttpRequest, config: Config) -> Cursors:
    """Everything that may refuse the stream before its headers go out (400,
    403, 404, 503), as :func:`selector_app.events.check_stream`."""
    cursors = stream_cursors(request, config)
    # Before the lookup: a refusal must not tell whether a name exists.
    for name in cursors:
        await authorize_request(request, name)
    await get_hub().prepare(cursors)
    return cursors


def event_bytes(snapshot: Snapshot, cursors: Cursors) -> bytes:
    """One event; ``cursors`` already holds its own sequence."""
    return (
        f"event: {snapshot.name}\nid: {event_id(cursors)}\n"
        f"data: {message(snapshot)}\n\n"
    ).encode()


class SelectStream(EventStream):
    """An event stream over a watch set: its events carry the cursor set."""

    __slots__ = ("cursors",)

    def __init__(
        self, send: Send, request: HttpRequest, config: Config, cursors: Cursors
    ) -> None:
        super().__init__(send, request, config)
        #: What the client has of each resource once it has read the stream.
        self.cursors = dict(cursors)

    def push(self, snapshot: Snapshot) -> Awaitable[None] | None:
        if self.finished:
            return None
        self.cursors[snapshot.name] = snapshot.sequence
        rest = self._write(event_bytes(snapshot, self.cursors))
        if self.metered:
            metrics.sent[TRANSPORT] += 1
            if self.timed:
                metrics.delivered(TRANSPORT, snapshot, self.opened_at)
        return rest


async def serve(
    request: HttpRequest,
    cursors: Cursors,
    receive: Receive,
    send: Send,
    headers: list[tuple[bytes, bytes]],
) -> None:
    """Stream the versions of ``cursors``' resources until the client goes
    away, the drain ends the stream, or the client stops reading; the
    caller has run :func:`check_stream` and :func:`~selector_app.events.try_open`."""
    stream = SelectStream(send, request, get_config(), cursors)

    def subscribe() -> Awaitable[Selection]:
        return get_hub().select(
            cursors, stream.push, start=stream.tasks.start, on_error=stream.failed
        )

    await serve_stream(stream, subscribe, receive, send, headers)


# Django's path ----------------------------------------------------------------


class SelectSlot(LatestSlot):
    """The latest version of each resource, waiting to be streamed."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting: dict[str, Snapshot] = {}

    def push(self, snapshot: Snapshot) -> None:
        self.waiting[snapshot.name] = snapshot
        self.ready.set()


def streaming_response(
    request: HttpRequest, cursors: Cursors, config: Config
) -> StreamingHttpResponse:
    """The stream as a Django response (after :func:`check_stream`)."""
    try_open(config)
    slot = SelectSlot()
    response = StreamingHttpResponse(
        _stream_body(cursors, config, slot), content_type=CONTENT_TYPE
    )
    response._resource_closers.append(slot.release)  # never iterated (HEAD)
    response["Cache-Control"] = "no-store"
    response["X-Accel-Buffering"] = "no"
    return response


def _never_held(coro: Any, name: str) -> None:  # pragma: no cover
    coro.close()  # SelectSlot.push never holds a send back


async def _stream_body(
    cursors: Cursors, config: Config, slot: SelectSlot
) -> AsyncIterator[bytes]:
    connections = get_connections()
    if connections.draining:  # an empty stream, as on the fast path
        yield retry_field(config.RETRY_AFTER * 1000)
        slot.release()
        return
    connections.track(TRANSPORT, slot)
    selection = None
    sent = dict(cursors)
    try:
        yield retry_field(config.RETRY_AFTER * 1000)
        try:
            selection = await get_hub().select(
                cursors, slot.push, start=_never_held, on_error=slot.end
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
            waiting, slot.waiting = slot.waiting, {}
            for snapshot in waiting.values():
                if slot.ended:
                    break
                sent[snapshot.name] = snapshot.sequence
                if config.METRICS:
                    metrics.sent[TRANSPORT] += 1
                yield event_bytes(snapshot, sent)
    finally:
        if selection is not None:
            selection.close()
        connections.untrack(TRANSPORT, slot)
        slot.release()
