"""WebSocket consumers: resource push and the echo/tick socket. Thin."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Coroutine
from typing import Any

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer

from . import metrics
from .access import authorize_scope
from .conf import Config, get_config
from .connections import Connections
from .fanout import Delivery
from .limits import ReceiveLimit, open_sockets
from .protocol import (
    SERVER_ERROR,
    SHUTTING_DOWN,
    MessageTooBig,
    NotReading,
    Query,
    RateLimited,
    Refused,
    ShuttingDown,
    Snapshot,
    TooManySockets,
    UnknownEndpoint,
    close_reason,
    parse_cursor,
    parse_query,
)
from .runtime import get_hub, tune_gc
from .select_wire import check_size, message, parse_control, query_cursors
from .selection import Selection
from .servers import client_gone, daphne_socket, offers_denial_response
from .shutdown import get_connections
from .tasks import OwnedTasks, eagerly

logger = logging.getLogger(__name__)

#: Refusals of what a client sends: under Daphne such a client is not read
#: any more once refused (see DaphneSocket.stop_reading).
SENDS_TOO_MUCH = (RateLimited, MessageTooBig, NotReading)


class SelectorConsumer(AsyncWebsocketConsumer):
    """The base of the app's consumers: no layer channel, no database hop, and
    tasks that never outlive the connection.

    Whatever ends the consumer (client disconnect, server shutdown, an
    error), every task started with :meth:`start_task` is cancelled and
    awaited before the consumer returns. An accepted socket counts among the
    loop's open connections under :attr:`transport`; during a drain new
    handshakes are refused and open sockets are closed with 1012.
    """

    #: The name this consumer's sockets are counted under.
    transport = "websocket"
    #: The drain closes sockets in turn, spread over its window.
    ends_at_once = False

    #: No channel-layer channel per socket: the hub is the process's only
    #: subscriber. With channels_redis a per-socket channel would cost a Redis
    #: connection blocked in BZPOPMIN per socket, and a Redis outage would
    #: close every socket with 1011.
    channel_layer_alias = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        # A process serving sockets needs the collector tuned whether or not
        # anything has started its runtime yet (the echo socket never does).
        tune_gc()
        config = get_config()
        self.tasks = OwnedTasks()
        self.receive_limit = receive_limit(config)
        self.max_unsent = config.MAX_UNSENT_BYTES
        self.daphne = daphne_socket(send)
        self.closing = False
        self.counted = False  # holds one of the process's open sockets
        self.connections: Connections | None = None
        #: Set once the drain has started closing this socket.
        self.ending = False
        #: What the hub's fan-out sends to this socket, if anything.
        self.delivery: Delivery | None = None
        #: Count frames (SELECTOR_APP["METRICS"]); time the deliveries of
        #: one socket in metrics.LATENCY_SAMPLE, counting versions published
        #: after the socket opened.
        self.metered = config.METRICS
        self.timed = self.metered and metrics.timed_socket()
        self.opened_at = time.time()
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self.connections is not None:
                self.connections.untrack(self.transport, self)
            await self.stop_sending()
            if self.counted:
                open_sockets.closed()

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Call the handler directly, without Channels' database hop.

        Channels' ``dispatch()`` runs ``close_old_connections()`` in a thread
        before every handler, which costs more CPU than the rest of handling
        an echo frame. These consumers never use the ORM: they read the hub,
        whose own database reads tidy their connections.
        """
        if self.ending and message["type"] == "websocket.receive":
            return  # closing for a restart: nothing more is answered
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}.")
        await handler(message)

    async def accept(self, subprotocol: str | None = None, headers=None) -> None:
        """Accept, and count the socket among the loop's open connections."""
        await super().accept(subprotocol, headers)
        self.connections = get_connections()
        self.connections.track(self.transport, self)

    def end(self) -> None:
        """Close with 1012 because the process is shutting down (the drain
        calls this); no frame follows the close."""
        if not self.ending:
            self.ending = True
            self.start_task(self._close_for_restart(), "selector_app drain")

    async def _close_for_restart(self) -> None:
        await self.refuse(ShuttingDown(SHUTTING_DOWN))

    async def stop_sending(self) -> None:
        """Nothing more is sent: the delivery stops and the tasks this
        consumer started end (but the one calling this)."""
        if self.delivery is not None:
            self.delivery.close()
        await self.tasks.aclose()

    def start_task(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        self.tasks.start(self._supervised(coro), name)

    async def _supervised(self, coro: Awaitable[None]) -> None:
        try:
            await coro
        except Refused as error:
            await self.refuse(error)
        except Exception as error:
            if client_gone(error):
                # A send that races the client's disconnect: the connection
                # is ending, and its disconnect event ends the consumer.
                logger.debug("A send raced the client's disconnect.", exc_info=True)
                return
            logger.exception("A task of %s failed; closing.", type(self).__name__)
            await self.close(code=SERVER_ERROR, reason="Internal server error.")

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        """Refuse the handshake while the process drains, or past its limit
        of open sockets."""
        if get_connections().draining:
            await self.refuse_handshake(ShuttingDown(SHUTTING_DOWN))
            return
        limit = get_config().MAX_OPEN_SOCKETS
        if not open_sockets.try_open(limit):
            await self.refuse_handshake(
                TooManySockets(
                    f"This server process holds its limit of {limit} open "
                    "sockets; try again later."
                )
            )
            return
        self.counted = True
        await super().websocket_connect(message)

    async def refuse_handshake(self, error: Refused) -> None:
        """Answer the handshake with the refusal's HTTP status where the server
        can (Uvicorn); else (Daphne answers any refusal 403) accept and close
        with the refusal's close code."""
        if not offers_denial_response(self.scope):
            self.log_refusal(error, error.close_code)
            # Not self.accept(): a refused socket never counts as open.
            await super().accept()
            await self.refuse(error, logged=True)
            return
        self.log_refusal(error, error.status)
        self.closing = True
        await self.base_send(
            {
                "type": "websocket.http.response.start",
                "status": error.status,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"retry-after", str(get_config().RETRY_AFTER).encode()),
                ],
            }
        )
        await self.base_send(
            {"type": "websocket.http.response.body", "body": f"{error}\n".encode()}
        )

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        """Count the frame against the socket's rate limit, then handle it."""
        if self.closing:
            return  # still arriving behind the close frame: ignored
        waiting = 0 if self.daphne is None else self.daphne.waiting_frames()
        try:
            self.receive_limit.check(frame_size(message), waiting=waiting)
            await super().websocket_receive(message)
        except Refused as error:
            await self.refuse(error)

    async def send(self, text_data=None, bytes_data=None, close=False) -> None:
        """Send a frame, unless the client leaves too much unread on a server
        without back-pressure (Daphne): then :class:`NotReading`."""
        self.check_unsent()
        await super().send(text_data, bytes_data, close)
        if self.metered:
            metrics.sent[self.transport] += 1

    def check_unsent(self) -> None:
        """Refuse a client that leaves too much unread where the server does
        not hold the sender back (Daphne): :class:`NotReading`."""
        if self.daphne is not None and self.max_unsent:
            unsent = self.daphne.unsent_bytes()
            if unsent is not None and unsent > self.max_unsent:
                raise NotReading(
                    f"The client left over {self.max_unsent} bytes unread."
                )

    async def refuse(self, error: Refused, *, logged: bool = False) -> None:
        """Close with the refusal's code and its reason; nothing follows it."""
        if not logged:
            self.log_refusal(error, error.close_code)
        await self.stop_sending()
        if self.daphne is not None and isinstance(error, SENDS_TOO_MUCH):
            self.daphne.stop_reading()
        await self.close(code=error.close_code, reason=close_reason(str(error)))

    async def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Close once, with ``code`` and ``reason`` on every server.

        Under Daphne the close frame is sent by its protocol object, since
        Daphne itself drops the reason and raises for any code but 1000 and
        3000-4999 (see selector_app/servers.py). A close that races the
        client's own is not an error.
        """
        if code is True:  # Channels' send(..., close=True)
            code = None
        if self.closing:
            return
        self.closing = True
        metrics.closes["server", code or 1000] += 1
        if self.daphne is not None and self.daphne.close(code or 1000, reason or ""):
            return
        try:
            await super().close(code=code, reason=reason)
        except Exception as error:
            if client_gone(error):
                logger.debug("A close raced the client's disconnect.", exc_info=True)
                return
            # Daphne without its protocol object at hand: autobahn raises a
            # bare Exception("invalid close code ...") for 1008/1009/1011...;
            # the client gets code + 3000 (4009 for 1009) with the reason.
            if code is None or not 1000 < code < 2000 or "close code" not in str(error):
                raise
            logger.debug("The server refused close code %s.", code, exc_info=True)
            await super().close(code=code + 3000, reason=reason)

    def log_refusal(self, error: Refused, code: int) -> None:
        """One INFO line per refused socket: operators see which limit."""
        metrics.refusals[type(error).__name__] += 1
        client = self.scope.get("client") or ("?", 0)
        logger.info(
            "Refused %s for %s:%s (%s): %s",
            self.scope.get("path"),
            client[0],
            client[1],
            code,
            error,
        )

    def query(self) -> Query:
        """The socket's query; a malformed one raises ``MalformedQuery``
        (a :class:`Refused`: call it where refusals are handled)."""
        return parse_query(self.scope.get("query_string", b""))

    async def disconnect(self, code: int) -> None:
        if not self.closing:
            metrics.closes["client", code] += 1
        await self.stop_sending()


def receive_limit(config: Config) -> ReceiveLimit:
    """A new socket's rate limit on what it receives, from the settings."""
    return ReceiveLimit(
        frames_per_second=config.RECEIVE_FRAMES_PER_SECOND,
        frame_burst=config.RECEIVE_FRAME_BURST,
        bytes_per_second=config.RECEIVE_BYTES_PER_SECOND,
        byte_burst=config.RECEIVE_BYTE_BURST,
    )


def frame_size(message: dict[str, Any]) -> int:
    """A received frame's size in bytes (UTF-8 for text)."""
    text = message.get("text")
    if text is None:
        return len(message.get("bytes") or b"")
    return len(text) if text.isascii() else len(text.encode())


class PushConsumer(SelectorConsumer):
    """``WS /websocket[/<name>]?seq=N``: one frame per newer version.

    The socket has no task of its own: the hub's fan-out pass sends each new
    version to it (:mod:`selector_app.fanout`), and a slow client gets the
    latest version when it has taken the previous one, never a backlog.
    """

    transport = "push"

    async def connect(self) -> None:
        await self.accept()
        name = self.scope["url_route"]["kwargs"].get("name")
        name = name or get_config().DEFAULT_RESOURCE
        try:
            cursor = parse_cursor(self.query().get("seq"))
            # Before the lookup: a refusal must not tell whether it exists.
            await authorize_scope(self.scope, name)
            self.delivery = await get_hub().deliver(
                name,
                cursor,
                self.push,
                start=self.tasks.start,
                on_error=self.push_failed,
            )
        except Refused as error:
            await self.refuse(error)

    def push(self, snapshot: Snapshot) -> Awaitable[None] | None:
        """Hand a version's frame to the server without awaiting it: ``None``
        once the server has it, else an awaitable that completes when it
        takes it (Uvicorn's back-pressure). The hub's fan-out calls this for
        every socket in one pass; raises :class:`NotReading` like ``send``."""
        if self.closing:
            return None
        if self.daphne is not None:
            self.check_unsent()
        rest = eagerly(
            self.base_send({"type": "websocket.send", "text": snapshot.message})
        )
        if self.metered:
            metrics.sent["push"] += 1
            if self.timed:
                metrics.delivered("push", snapshot, self.opened_at)
        return rest

    def push_failed(self, error: Exception) -> None:
        """A send raised (a refusal, a client gone, a bug): handled like any
        of the consumer's tasks failing, in a task of its own."""
        self.start_task(_raise(error), "selector_app push failure")

    async def receive(self, text_data: str | None = None, bytes_data=None) -> None:
        """Frames from the client are ignored."""


async def _raise(error: Exception) -> None:
    raise error


class SelectConsumer(PushConsumer):
    """``WS /select?r=a:3&r=b:7``: one JSON frame per newer version of each
    watched resource, and ``watch`` / ``unwatch`` frames that change the set.

    As a push socket, with one :class:`~selector_app.selection.Selection`
    (one watcher for the whole set) instead of a delivery; frames from the
    client count against the rate limit like on every socket.
    """

    transport = "select"
    #: What the hub's fan-out sends to this socket.
    selection: Selection | None = None

    async def connect(self) -> None:
        await self.accept()
        config = get_config()
        try:
            cursors = query_cursors(self.query(), limit=config.MAX_SELECT_RESOURCES)
            await self.authorize(cursors)
            self.selection = await get_hub().select(
                cursors, self.push, start=self.tasks.start, on_error=self.push_failed
            )
        except Refused as error:
            await self.refuse(error)

    async def authorize(self, cursors: dict[str, int]) -> None:
        # Before the lookup: a refusal must not tell whether a name exists.
        for name in cursors:
            await authorize_scope(self.scope, name)

    def push(self, snapshot: Snapshot) -> Awaitable[None] | None:
        """As :meth:`PushConsumer.push`, with the JSON message."""
        if self.closing:
            return None
        if self.daphne is not None:
            self.check_unsent()
        rest = eagerly(
            self.base_send({"type": "websocket.send", "text": message(snapshot)})
        )
        if self.metered:
            metrics.sent["select"] += 1
            if self.timed:
                metrics.delivered("select", snapshot, self.opened_at)
        return rest

    async def receive(self, text_data: str | None = None, bytes_data=None) -> None:
        """A ``{"watch": {...}}`` or ``{"unwatch": [...]}`` frame."""
        selection = self.selection
        if selection is None:
            return  # refused already
        limit = get_config().MAX_MESSAGE_SIZE
        if text_data is not None and utf8_over(text_data, limit):
            raise MessageTooBig(f"Text frames are limited to {limit} bytes.")
        control = parse_control(text_data)
        if control.unwatch:
            selection.unwatch(control.unwatch)
            return
        new = {n: c for n, c in control.watch.items() if n not in selection.cursors}
        check_size(
            {**selection.cursors, **new},
            limit=get_config().MAX_SELECT_RESOURCES,
            what="The watch set",
        )
        await self.authorize(new)
        await get_hub().extend(selection, new)

    async def stop_sending(self) -> None:
        if self.selection is not None:
            self.selection.close()
        await super().stop_sending()


class UnknownEndpointConsumer(SelectorConsumer):
    """A handshake to a path no WebSocket route matches: closed 4404.

    Channels' ``URLRouter`` raises ``ValueError`` for such a path, which both
    servers turn into a 500 and a traceback in the log. Routed last (see
    ``selector_app.routing.websocket_fallback``), this answers it like an
    unknown resource instead: accepted, then closed with a reason.
    """

    async def connect(self) -> None:
        await self.accept()
        await self.refuse(
            UnknownEndpoint("There is no WebSocket endpoint at this path.")
        )


ECHO_PREFIX = "you said: "


def echo_reply(text: str) -> str:
    """The bidirectional socket's answer (full Unicode upper-casing)."""
    return ECHO_PREFIX + text.upper()


def utf8_over(text: str, limit: int) -> bool:
    """Whether ``text`` is over ``limit`` bytes of UTF-8; measured only when it
    could be (a character is at most 4 bytes)."""
    return len(text) * 4 > limit and len(text.encode()) > limit


class BidirectionalConsumer(SelectorConsumer):
    """``WS /bidirectional``: echoes upper-cased text while ticking every second.

    Incoming frames are handled by the consumer itself, outgoing ticks by an
    owned task; a disconnect ends the first and so cancels the second.
    """

    transport = "bidirectional"

    async def connect(self) -> None:
        await self.accept()
        self.start_task(self._tick(), "selector_app ticker")

    async def _tick(self) -> None:
        interval = get_config().TICK_INTERVAL
        number = 0
        while True:
            await asyncio.sleep(interval)
            number += 1
            await self.send(text_data=f"server tick #{number}")

    async def receive(self, text_data: str | None = None, bytes_data=None) -> None:
        if text_data is None:
            return  # binary frames are ignored
        limit = get_config().MAX_MESSAGE_SIZE
        if utf8_over(text_data, limit):
            raise MessageTooBig(f"Text frames are limited to {limit} bytes.")
        reply = echo_reply(text_data)
        # Upper-casing can triple the text ("ΐ" is 2 bytes, "Ϊ́" 6).
        if utf8_over(reply, limit + len(ECHO_PREFIX)):
            raise MessageTooBig(
                f"The upper-cased echo of this frame would be over {limit} bytes."
            )
        await self.send(text_data=reply)
