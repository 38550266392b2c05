"""WebSocket consumers: resource push and the echo/tick socket. Thin."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer

from .access import authorize_scope
from .conf import get_config
from .protocol import (
    Query,
    Refused,
    Snapshot,
    UnknownEndpoint,
    close_reason,
    parse_cursor,
    parse_query,
)
from .runtime import get_hub, tune_gc
from .tasks import OwnedTasks

logger = logging.getLogger(__name__)


class SelectorConsumer(AsyncWebsocketConsumer):
    """The base of the app's consumers: no layer channel, no database hop, and
    tasks that never outlive the connection.

    Whatever ends the consumer (client disconnect, server shutdown, an
    error), every task started with :meth:`start_task` is cancelled and
    awaited before the consumer returns.
    """

    #: No channel-layer channel per socket: the hub is the process's only
    #: subscriber. With channels_redis a per-socket channel would cost a Redis
    #: connection blocked in BZPOPMIN per socket, and a Redis outage would
    #: close every socket with 1011.
    channel_layer_alias = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        # A process serving sockets needs the collector tuned whether or not
        # anything has started its runtime yet (the echo socket never does).
        tune_gc()
        self.tasks = OwnedTasks()
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.tasks.aclose()

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Call the handler directly, without Channels' database hop.

        Channels' ``dispatch()`` runs ``close_old_connections()`` in a thread
        before every handler, which costs more CPU than the rest of handling
        an echo frame. These consumers never use the ORM: they read the hub,
        whose own database reads tidy their connections.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}.")
        await handler(message)

    def start_task(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        self.tasks.start(self._supervised(coro), name)

    async def _supervised(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            await coro
        except OSError:
            # Servers may raise on a send that races the client's disconnect
            # (e.g. uvicorn's ClientDisconnected); the connection is ending.
            logger.debug("Send raced a disconnect.", exc_info=True)
        except Exception:
            logger.exception("A task of %s failed; closing.", type(self).__name__)
            await self.close(code=1011)

    async def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Close, with ``code`` moved to the private range where the server
        refuses it.

        Daphne (autobahn) sends only 1000 and 3000-4999 from the server side
        and raises for the protocol's 1008/1009/1011, which would turn a
        refusal into an "Exception inside application" and a 1011. There the
        client gets ``code + 3000`` (4009 for 1009) with the same reason.
        """
        try:
            await super().close(code=code, reason=reason)
        except Exception as error:
            # autobahn raises a bare Exception("invalid close code ...").
            if code is None or not 1000 < code < 2000 or "close code" not in str(error):
                raise
            logger.debug("The server refused close code %s.", code, exc_info=True)
            await super().close(code=code + 3000, reason=reason)

    async def refuse(self, error: Refused) -> None:
        """Close with the refusal's code and its reason."""
        await self.close(code=error.close_code, reason=close_reason(str(error)))

    def query(self) -> Query:
        """The socket's query; a malformed one raises ``MalformedQuery``
        (a :class:`Refused`: call it where refusals are handled)."""
        return parse_query(self.scope.get("query_string", b""))

    async def disconnect(self, code: int) -> None:
        await self.tasks.aclose()


class PushConsumer(SelectorConsumer):
    """``WS /websocket[/<name>]?seq=N``: one frame per newer version.

    A single task loops "wait for a version newer than the last one sent,
    send it", so a slow client gets the latest version, never a backlog.
    """

    async def connect(self) -> None:
        await self.accept()
        name = self.scope["url_route"]["kwargs"].get("name")
        name = name or get_config().DEFAULT_RESOURCE
        try:
            cursor = parse_cursor(self.query().get("seq"))
            # Before the lookup: a refusal must not tell whether it exists.
            await authorize_scope(self.scope, name)
            versions = await get_hub().follow(name, cursor)
        except Refused as error:
            await self.refuse(error)
        else:
            self.start_task(self._send_each(versions), "selector_app push")

    async def _send_each(self, versions: AsyncIterator[Snapshot]) -> None:
        async for snapshot in versions:
            await self.send(text_data=snapshot.message)

    async def receive(self, text_data: str | None = None, bytes_data=None) -> None:
        """Frames from the client are ignored."""


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


def echo_reply(text: str) -> str:
    """The bidirectional socket's answer (full Unicode upper-casing)."""
    return f"you said: {text.upper()}"


class BidirectionalConsumer(SelectorConsumer):
    """``WS /bidirectional``: echoes upper-cased text while ticking every second.

    Incoming frames are handled by the consumer itself, outgoing ticks by an
    owned task; a disconnect ends the first and so cancels the second.
    """

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
        # Only measure the UTF-8 length when the text could be over the limit.
        if len(text_data) * 4 > limit and len(text_data.encode()) > limit:
            # No tick may follow the close frame.
            await self.tasks.aclose()
            await self.close(
                code=1009, reason=f"Text frames are limited to {limit} bytes."
            )
            return
        await self.send(text_data=echo_reply(text_data))
