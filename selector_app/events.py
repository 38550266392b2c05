"""Server-Sent Events: ``GET /events[/<name>]`` on the event loop, no task per stream.

An event stream is a push socket over plain HTTP: what ``EventSource``, curl
and proxies without WebSockets read. It is served like Comet's fast path, at
the ASGI level (:class:`~selector_app.fastpath.CometFastPath` hands it over),
and fed like a push socket: one :class:`~selector_app.fanout.Delivery` from
:meth:`Hub.deliver <selector_app.hub.Hub.deliver>`, whose fan-out pass
writes each event to the server's ``send`` at once. The request's own task
(the server's) waits for the disconnect; the keep-alive is a timer handle.
So an open stream costs no thread and no task of its own, and a client that
goes away leaves nothing behind: its delivery is closed and its timer
cancelled in the handler's ``finally``.

Latest-wins, as on a push socket: Uvicorn holds a send back while the client
does not read, and the delivery then sends only the latest version. Daphne
writes every chunk to Twisted at once, so a stream measures what its client
left unread and drops it past ``MAX_UNSENT_BYTES``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import (
    Awaitable,
    Callable,
    Generator,
    MutableMapping,
)
from typing import Any

from django.http import HttpRequest, HttpResponse

from . import metrics
from .access import authorize_request
from .conf import Config, get_config
from .fanout import Delivery
from .limits import open_sockets
from .protocol import (
    InvalidCursor,
    NotReading,
    Refused,
    Snapshot,
    TooManySockets,
    parse_cursor,
    parse_query,
)
from .runtime import get_hub
from .servers import DaphneRequest, client_gone, daphne_request
from .shutdown import get_connections
from .sse import CONTENT_TYPE, KEEP_ALIVE, event_bytes, retry_field
from .tasks import OwnedTasks, eagerly

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: The name open streams are counted under (connections, metrics).
TRANSPORT = "events"

logger = logging.getLogger(__name__)


def stream_cursor(request: HttpRequest) -> int:
    """The client's cursor: ``Last-Event-ID`` (what ``EventSource`` sends when
    it reconnects), else ``?seq=``, else 0. A malformed query or value is a
    :class:`~selector_app.protocol.Refused` (400)."""
    query = parse_query(request.META.get("QUERY_STRING", ""))
    last = request.META.get("HTTP_LAST_EVENT_ID", "").strip()
    if not last:
        return parse_cursor(query.get("seq"))
    try:
        return parse_cursor(last)
    except InvalidCursor:
        raise InvalidCursor(
            f"Last-Event-ID must be 1 to 18 decimal digits, got {last[:40]!r}."
        ) from None


def stream_headers() -> HttpResponse:
    """The stream's status and headers (a body-less response, so that the
    fast path can apply ``SecurityMiddleware``'s headers to it)."""
    response = HttpResponse(status=200, content_type=CONTENT_TYPE)
    response["Cache-Control"] = "no-store"
    response["X-Accel-Buffering"] = "no"  # nginx must pass each event on at once
    return response


async def check_stream(request: HttpRequest, name: str, config: Config) -> int:
    """Everything that may refuse a stream before its headers go out; the
    cursor. Raises :class:`~selector_app.protocol.Refused` (400, 403, 404,
    503) like Comet; the caller answers it. A stream asked for during the
    drain is not refused but ends at once (see :func:`serve`)."""
    cursor = stream_cursor(request)
    # Before the lookup: a refusal must not tell whether the name exists.
    await authorize_request(request, name)
    # The lookup (and, for a cursor ahead of this process, the database's
    # answer) that Hub.deliver repeats once the headers are out.
    await get_hub().follow(name, cursor)
    return cursor


def try_open(config: Config) -> None:
    """Count one more open stream against ``MAX_OPEN_SOCKETS`` (shared with
    the sockets); :class:`~selector_app.protocol.TooManySockets` past it."""
    limit = config.MAX_OPEN_SOCKETS
    if not open_sockets.try_open(limit):
        raise TooManySockets(
            f"This server process holds its limit of {limit} open sockets and "
            "event streams; try again later."
        )


async def serve(
    request: HttpRequest,
    name: str,
    cursor: int,
    receive: Receive,
    send: Send,
    headers: list[tuple[bytes, bytes]],
) -> None:
    """Stream ``name``'s versions after ``cursor`` until the client goes away,
    the drain ends the stream, or the client stops reading. The caller has
    run :func:`check_stream` and taken a place with :func:`try_open`, which
    this gives back; ``headers`` are the response's."""
    stream = EventStream(send, request, get_config())

    def subscribe() -> Awaitable[Delivery]:
        return get_hub().deliver(
            name, cursor, stream.push, start=stream.tasks.start, on_error=stream.failed
        )

    await serve_stream(stream, subscribe, receive, send, headers)


async def serve_stream(
    stream: EventStream,
    subscribe: Callable[[], Awaitable[Any]],
    receive: Receive,
    send: Send,
    headers: list[tuple[bytes, bytes]],
) -> None:
    """:func:`serve` for any stream: ``subscribe`` gives it what sends it the
    versions (a delivery, or ``/events/select``'s selection)."""
    config = get_config()
    request = stream.request
    connections = get_connections()
    try:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if request.method == "HEAD":
            await send({"type": "http.response.body", "body": b""})
            return
        retry = retry_field(config.RETRY_AFTER * 1000)
        if connections.draining:
            # Not a 503, after which EventSource would never try again: an
            # empty stream, and the client reconnects after `retry`.
            await send({"type": "http.response.body", "body": retry})
            return
        await send({"type": "http.response.body", "body": retry, "more_body": True})
        connections.track(TRANSPORT, stream)
        try:
            stream.delivery = await subscribe()
        except Refused:
            # The resource went away between the check and now: the stream
            # ends, and the client's reconnect is answered 404.
            stream.end()
        else:
            stream.keep_alive()
        while (await receive())["type"] != "http.disconnect":
            pass  # a request body, which a stream does not read
    finally:
        connections.untrack(TRANSPORT, stream)
        await stream.aclose()
        open_sockets.closed()


class EventStream:
    """One open event stream: the delivery's ``send``, the keep-alive timer,
    and ending (by the drain, or a client that does not read).

    Ending sends the response's last chunk: both servers then tell the
    handler ``http.disconnect``, and its ``finally`` cleans up.
    """

    __slots__ = (
        "_last_sent",
        "_loop",
        "_send",
        "_timer",
        "daphne",
        "delivery",
        "finished",
        "interval",
        "max_unsent",
        "metered",
        "opened_at",
        "request",
        "stuck",
        "tasks",
        "timed",
    )

    #: A stream's client reconnects at once: the drain spreads them out.
    ends_at_once = False

    def __init__(self, send: Send, request: HttpRequest, config: Config) -> None:
        self._send = send
        self._loop = asyncio.get_running_loop()
        self._last_sent = self._loop.time()
        self._timer: asyncio.TimerHandle | None = None
        self.request = request
        self.daphne: DaphneRequest | None = daphne_request(send)
        self.interval = config.KEEP_ALIVE_INTERVAL
        self.max_unsent = config.MAX_UNSENT_BYTES
        #: Tasks finishing a send the server held back, and the last chunk.
        self.tasks = OwnedTasks()
        self.delivery: Delivery | None = None
        #: No chunk goes out any more (the stream is ending or has ended).
        self.finished = False
        #: A send the server holds back (its client reads slowly) is in flight.
        self.stuck = False
        self.metered = config.METRICS
        self.timed = self.metered and metrics.timed_socket()
        self.opened_at = time.time()

    # Sending -------------------------------------------------------------------

    def push(self, snapshot: Snapshot) -> Awaitable[None] | None:
        """The delivery's ``send``: hand the event to the server without
        awaiting it (see :mod:`selector_app.fanout`)."""
        if self.finished:
            return None
        rest = self._write(event_bytes(snapshot))
        if self.metered:
            metrics.sent[TRANSPORT] += 1
            if self.timed:
                metrics.delivered(TRANSPORT, snapshot, self.opened_at)
        return rest

    def _write(self, body: bytes) -> Awaitable[None] | None:
        if self.daphne is not None and self.max_unsent:
            unsent = self.daphne.unsent_bytes()
            if unsent is not None and unsent > self.max_unsent:
                raise NotReading(
                    f"The client left over {self.max_unsent} bytes unread."
                )
        self._last_sent = self._loop.time()
        rest = eagerly(
            self._send({"type": "http.response.body", "body": body, "more_body": True})
        )
        if rest is None:
            return None
        self.stuck = True
        return _Unstuck(self, rest)

    def keep_alive(self) -> None:
        """Send a comment after ``interval`` seconds of silence, for good."""
        if self.finished:
            return
        silent = self._loop.time() - self._last_sent
        if silent >= self.interval:
            silent = 0.0
            if not self.stuck:  # a held send: the stream is not silent
                try:
                    rest = self._write(KEEP_ALIVE)
                except Exception as error:
                    self.failed(error)
                    return
                if rest is not None:
                    self.tasks.start(_await(rest), "selector_app keep-alive")
        self._timer = self._loop.call_later(self.interval - silent, self.keep_alive)

    # Ending --------------------------------------------------------------------

    def failed(self, error: Exception) -> None:
        """A send raised: a client that does not read is dropped, a client
        gone is left to its disconnect, anything else is logged."""
        if isinstance(error, Refused):
            self.log_refusal(error)
            if self.daphne is not None:
                self.finished = True
                self.daphne.drop()
                return
        elif client_gone(error):
            logger.debug("A send raced the client's disconnect.", exc_info=error)
            return
        else:
            logger.error("Sending to an event stream failed.", exc_info=error)
        self.end()

    def end(self) -> None:
        """Send the last chunk (the drain calls this); nothing follows it."""
        if self.finished:
            return
        self.finished = True
        self._stop()
        self.tasks.start(self._finish(), "selector_app end stream")

    async def _finish(self) -> None:
        try:
            await self._send({"type": "http.response.body", "body": b""})
        except Exception as error:
            if not client_gone(error):
                raise

    def _stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.delivery is not None:
            self.delivery.close()

    async def aclose(self) -> None:
        """Nothing more is sent and nothing of the stream is left running."""
        self.finished = True
        self._stop()
        await self.tasks.aclose()

    def log_refusal(self, error: Refused) -> None:
        metrics.refusals[type(error).__name__] += 1
        client = self.request.META.get("REMOTE_ADDR", "?")
        logger.info("Dropped %s for %s: %s", self.request.path, client, error)


class _Unstuck:
    """A held send; awaiting it finishes the send and clears ``stuck``.

    Not a coroutine, so one never awaited (its stream ended first) is simply
    dropped, like :func:`~selector_app.tasks.eagerly`'s.
    """

    __slots__ = ("_rest", "_stream")

    def __init__(self, stream: EventStream, rest: Awaitable[None]) -> None:
        self._stream = stream
        self._rest = rest

    def __await__(self) -> Generator[Any, None, None]:
        try:
            yield from self._rest.__await__()
        finally:
            self._stream.stuck = False


async def _await(awaitable: Awaitable[None]) -> None:
    try:
        await awaitable
    except Exception as error:
        if not client_gone(error):
            raise
