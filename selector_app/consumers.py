"""WebSocket consumers: resource push and the echo/tick socket. Thin."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from django.http import QueryDict

from .conf import get_config
from .connections import Connections
from .protocol import (
    SHUTTING_DOWN,
    Refused,
    ShuttingDown,
    Snapshot,
    close_reason,
    parse_cursor,
)
from .runtime import get_hub, tune_gc
from .shutdown import get_connections
from .tasks import OwnedTasks

logger = logging.getLogger(__name__)


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
        self.tasks = OwnedTasks()
        self.connections: Connections | None = None
        #: Set once the drain has started closing this socket.
        self.ending = False
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self.connections is not None:
                self.connections.untrack(self.transport, self)
            await self.tasks.aclose()

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

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        """Refuse the handshake while the process drains, else connect."""
        if get_connections().draining:
            await self.refuse_handshake(ShuttingDown(SHUTTING_DOWN))
            return
        await super().websocket_connect(message)

    async def accept(self, subprotocol: str | None = None, headers=None) -> None:
        """Accept, and count the socket among the loop's open connections."""
        await super().accept(subprotocol, headers)
        self.connections = get_connections()
        self.connections.track(self.transport, self)

    async def refuse_handshake(self, error: Refused) -> None:
        """Refuse before accepting: an HTTP answer with the refusal's status
        where the server lets the app send one (Uvicorn: the ASGI
        ``websocket.http.response`` extension); elsewhere (Daphne, whose own
        refusal would be a 403) accept, and close at once with its code."""
        if "websocket.http.response" in self.scope.get("extensions", {}):
            headers = [(b"content-type", b"text/plain; charset=utf-8")]
            if error.retry_later:
                retry = str(get_config().RETRY_AFTER).encode()
                headers.append((b"retry-after", retry))
            await self.base_send(
                {
                    "type": "websocket.http.response.start",
                    "status": error.status,
                    "headers": headers,
                }
            )
            await self.base_send(
                {"type": "websocket.http.response.body", "body": f"{error}\n".encode()}
            )
            return
        await super().accept()
        await self.refuse(error)

    def end(self) -> None:
        """Close with 1012 because the process is shutting down (the drain
        calls this); no frame follows the close."""
        if not self.ending:
            self.ending = True
            self.start_task(self._close_for_restart(), "selector_app drain")

    async def _close_for_restart(self) -> None:
        this = asyncio.current_task()
        others = [task for task in self.tasks if task is not this]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        await self.refuse(ShuttingDown(SHUTTING_DOWN))

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

    async def refuse(self, error: Refused) -> None:
        """Close with the refusal's code and its reason."""
        await self.close(code=error.close_code, reason=close_reason(str(error)))

    def query(self) -> QueryDict:
        return QueryDict(self.scope.get("query_string", b"").decode("latin-1"))

    async def disconnect(self, code: int) -> None:
        await self.tasks.aclose()


class PushConsumer(SelectorConsumer):
    """``WS /websocket[/<name>]?seq=N``: one frame per newer version.

    A single task loops "wait for a version newer than the last one sent,
    send it", so a slow client gets the latest version, never a backlog.
    """

    transport = "push"

    async def connect(self) -> None:
        await self.accept()
        name = self.scope["url_route"]["kwargs"].get("name")
        try:
            cursor = parse_cursor(self.query().get("seq"))
            versions = await get_hub().follow(
                name or get_config().DEFAULT_RESOURCE, cursor
            )
        except Refused as error:
            await self.refuse(error)
        else:
            self.start_task(self._send_each(versions), "selector_app push")

    async def _send_each(self, versions: AsyncIterator[Snapshot]) -> None:
        async for snapshot in versions:
            await self.send(text_data=snapshot.message)

    async def receive(self, text_data: str | None = None, bytes_data=None) -> None:
        """Frames from the client are ignored."""


def echo_reply(text: str) -> str:
    """The bidirectional socket's answer (full Unicode upper-casing)."""
    return f"you said: {text.upper()}"


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
        # Only measure the UTF-8 length when the text could be over the limit.
        if len(text_data) * 4 > limit and len(text_data.encode()) > limit:
            # No tick may follow the close frame.
            await self.tasks.aclose()
            await self.close(
                code=1009, reason=f"Text frames are limited to {limit} bytes."
            )
            return
        await self.send(text_data=echo_reply(text_data))
