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
from .exceptions import InvalidCursor, UnknownResource
from .gc_tuning import tune_gc
from .live import parse_cursor, resource_follow
from .snapshots import Snapshot

logger = logging.getLogger(__name__)

#: A close frame's reason must fit in 123 bytes of UTF-8.
MAX_REASON = 123


def close_reason(text: str) -> str:
    """``text`` cut to what a WebSocket close frame can carry."""
    return text.encode()[:MAX_REASON].decode(errors="ignore")


class OwnedTasksMixin:
    """Gives a consumer tasks that never outlive its connection.

    Whatever ends the consumer (client disconnect, server shutdown, an
    error), every task started with :meth:`start_task` is cancelled and
    awaited before the consumer returns.
    """

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        self._owned_tasks: set[asyncio.Task[None]] = set()
        try:
            await super().__call__(scope, receive, send)  # type: ignore[misc]
        finally:
            await self.cancel_tasks()

    def start_task(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(self._supervised(coro), name=name)
        self._owned_tasks.add(task)
        task.add_done_callback(self._owned_tasks.discard)

    async def cancel_tasks(self) -> None:
        tasks = list(self._owned_tasks)
        for task in tasks:
            task.cancel()
        # gather() with return_exceptions never raises the children's
        # CancelledError; a cancellation of *this* task still propagates.
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _supervised(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            await coro
        except OSError:
            # Servers may raise on a send that races the client's disconnect
            # (e.g. uvicorn's ClientDisconnected); the connection is ending.
            logger.debug("Send raced a disconnect.", exc_info=True)
        except Exception:
            logger.exception("A task of %s failed; closing.", type(self).__name__)
            await self.close(code=1011)  # type: ignore[attr-defined]


class NoDatabaseMixin:
    """For consumers that never use the ORM: no thread hop per message.

    Channels' ``dispatch()`` runs ``close_old_connections()`` in a thread
    before every handler, which costs more CPU than the rest of handling an
    echo frame. These consumers only read the hub's snapshots, and the hub's
    own database reads release their connections themselves.
    """

    async def dispatch(self, message: dict[str, Any]) -> None:
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}.")
        await handler(message)


class PushConsumer(NoDatabaseMixin, OwnedTasksMixin, AsyncWebsocketConsumer):
    """``WS /websocket[/<name>]?seq=N``: one frame per newer version.

    A single task loops "wait for a version newer than the last one sent,
    send it", so a slow client gets the latest version, never a backlog.
    """

    #: No channel-layer channel per socket: the hub is the process's only
    #: subscriber. With channels_redis a per-socket channel would cost a Redis
    #: connection blocked in BZPOPMIN per socket, and a Redis outage would
    #: close every socket with 1011.
    channel_layer_alias = None

    async def connect(self) -> None:
        await self.accept()
        name = self.scope["url_route"]["kwargs"].get("name")
        query = QueryDict(self.scope.get("query_string", b"").decode("latin-1"))
        try:
            cursor = parse_cursor(query.get("seq"))
            stream = await resource_follow(
                name=name or get_config().DEFAULT_RESOURCE, cursor=cursor
            )
        except InvalidCursor as error:
            await self.close(code=4400, reason=close_reason(str(error)))
        except UnknownResource as error:
            await self.close(code=4404, reason=close_reason(str(error)))
        else:
            self.start_task(self._send_each(stream), "selector_app push")

    async def _send_each(self, stream: AsyncIterator[Snapshot]) -> None:
        async for snapshot in stream:
            await self.send(text_data=snapshot.message)

    async def receive(self, text_data: str | None = None, bytes_data=None) -> None:
        """Frames from the client are ignored."""

    async def disconnect(self, code: int) -> None:
        await self.cancel_tasks()


def echo_reply(text: str) -> str:
    """The bidirectional socket's answer (full Unicode upper-casing)."""
    return f"you said: {text.upper()}"


class BidirectionalConsumer(NoDatabaseMixin, OwnedTasksMixin, AsyncWebsocketConsumer):
    """``WS /bidirectional``: echoes upper-cased text while ticking every second.

    Incoming frames are handled by the consumer itself, outgoing ticks by an
    owned task; a disconnect ends the first and so cancels the second.
    """

    #: No channel-layer channel per socket: the hub is the process's only
    #: subscriber. With channels_redis a per-socket channel would cost a Redis
    #: connection blocked in BZPOPMIN per socket, and a Redis outage would
    #: close every socket with 1011.
    channel_layer_alias = None

    async def connect(self) -> None:
        # This socket never starts the hub, which tunes the collector for the
        # others; a process serving only echo sockets needs it just as much.
        tune_gc()
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
            await self.cancel_tasks()
            await self.close(
                code=1009, reason=f"Text frames are limited to {limit} bytes."
            )
            return
        await self.send(text_data=echo_reply(text_data))

    async def disconnect(self, code: int) -> None:
        await self.cancel_tasks()
