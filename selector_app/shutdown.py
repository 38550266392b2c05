"""Drain on SIGTERM: the hook into Daphne's and Uvicorn's own signal handling.

Neither server tells an ASGI application in time that it is stopping.
Uvicorn sends ``lifespan.shutdown`` only after every connection has closed,
and keeps waiting for a held long-poll until it is answered; Daphne speaks no
lifespan at all and drops its connections without a response or close frame.
So the app chains the server's own handlers: the first time a loop serves
the app (its first connection, or ``lifespan.startup`` where the server sends
it), :func:`get_connections` replaces the server's SIGTERM and SIGINT handlers
with one that first drains the loop's connections
(:meth:`~selector_app.connections.Connections.drain`), then closes the hub,
and only then calls the server's handler, which finds nothing left to wait for
and exits.

- SIGTERM (a deploy) spreads the socket closes over ``DRAIN_TIMEOUT``; SIGINT
  (Ctrl-C) ends everything at once. A second signal during the drain goes to
  the server's handler at once (Uvicorn: a second Ctrl-C forces the exit).
- Only from the main thread, and only over a handler the server installed: a
  process without one (a test runner, ``runserver`` with its autoreloader,
  which runs Daphne in another thread) keeps its own SIGTERM behaviour.
- ``DRAIN_TIMEOUT = 0`` installs nothing.
- Nothing is installed at import or in ``AppConfig.ready()``.

:data:`lifespan` is an ASGI lifespan application for the ``"lifespan"`` key of
a ``ProtocolTypeRouter``: it installs the hook at start-up and closes the hub
at shutdown.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
import threading
import weakref
from collections.abc import Awaitable, Callable, MutableMapping
from types import FrameType
from typing import Any

from .conf import get_config
from .connections import Connections
from .runtime import close_hub

logger = logging.getLogger(__name__)

#: The share of ``DRAIN_TIMEOUT`` over which SIGTERM spreads the socket
#: closes; the rest lets the last close handshakes finish.
SPREAD_SHARE = 0.75
#: Seconds closing the hub may take on the way out (its feed may be waiting
#: for a database read); the process stops anyway after that.
CLOSE_HUB_TIMEOUT = 1.0

SignalHandler = Callable[[int, FrameType | None], Any]

_connections: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Connections] = (
    weakref.WeakKeyDictionary()
)
#: Our handler installed for each signal, to recognise it (idempotence).
_installed: dict[int, SignalHandler] = {}
#: The drain the first signal started; later signals go to the server.
_drain_task: asyncio.Task[None] | None = None


def get_connections() -> Connections:
    """The running loop's open connections; the first call per loop also
    chains the server's signal handlers (see the module's docstring)."""
    loop = asyncio.get_running_loop()
    connections = _connections.get(loop)
    if connections is None:
        connections = _connections[loop] = Connections()
        chain_signal_handlers(loop)
    return connections


def chain_signal_handlers(loop: asyncio.AbstractEventLoop) -> list[int]:
    """Make SIGTERM and SIGINT drain ``loop`` before the server's handler
    runs; return the signals chained now. Idempotent."""
    if threading.current_thread() is not threading.main_thread():
        return []
    if get_config().DRAIN_TIMEOUT <= 0:
        return []
    if not _server_handler(signal.SIGTERM):
        # No server handles SIGTERM (a test runner, a script; asyncio.run()
        # handles only SIGINT): leave both signals alone.
        return []
    chained = []
    for number in (signal.SIGTERM, signal.SIGINT):
        current = _server_handler(number)
        if current is None:
            continue
        handler = functools.partial(_on_signal, loop, current)
        signal.signal(number, handler)
        _installed[number] = handler
        chained.append(number)
    if chained:
        logger.debug(
            "Signals %s drain this process before the server's own handler.",
            [signal.Signals(number).name for number in chained],
        )
    return chained


def _server_handler(number: int) -> SignalHandler | None:
    """The handler a server installed for ``number`` and we have not chained
    yet; ``None`` for the default action, ignoring, Python's KeyboardInterrupt,
    or our own."""
    current = signal.getsignal(number)
    if not callable(current) or current is signal.default_int_handler:
        return None
    if current is _installed.get(number):
        return None
    return current


def _on_signal(
    loop: asyncio.AbstractEventLoop,
    server_handler: SignalHandler,
    number: int,
    frame: FrameType | None,
) -> None:
    """The signal handler: start the drain on ``loop`` (it runs in the main
    thread between two bytecodes, so it only schedules)."""
    if _drain_task is not None or not loop.is_running():
        server_handler(number, frame)  # a second signal: the server's way now
        return
    loop.call_soon_threadsafe(_start_drain, loop, server_handler, number, frame)


def _start_drain(
    loop: asyncio.AbstractEventLoop,
    server_handler: SignalHandler,
    number: int,
    frame: FrameType | None,
) -> None:
    global _drain_task
    if _drain_task is not None:
        return
    _drain_task = loop.create_task(
        _drain_then_stop(loop, server_handler, number, frame),
        name="selector_app drain",
    )


async def _drain_then_stop(
    loop: asyncio.AbstractEventLoop,
    server_handler: SignalHandler,
    number: int,
    frame: FrameType | None,
) -> None:
    timeout = get_config().DRAIN_TIMEOUT
    spread = timeout * SPREAD_SHARE if number == signal.SIGTERM else 0.0
    connections = _connections.get(loop) or Connections()
    logger.info(
        "%s: draining %s for up to %.1f s.",
        signal.Signals(number).name,
        connections.counts(),
        timeout,
    )
    started = loop.time()
    try:
        await connections.drain(spread=spread, timeout=timeout)
        await _close_hub_in_time()
        logger.info("Drained in %.2f s; stopping.", loop.time() - started)
    except Exception:
        logger.exception("The drain failed; stopping the server anyway.")
    finally:
        server_handler(number, frame)


async def _close_hub_in_time() -> None:
    try:
        async with asyncio.timeout(CLOSE_HUB_TIMEOUT):
            await close_hub()
    except TimeoutError:
        logger.warning(
            "The hub did not close within %.1f s; stopping anyway.", CLOSE_HUB_TIMEOUT
        )


# The ASGI lifespan protocol ----------------------------------------------------

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


async def lifespan(
    scope: Scope,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    """ASGI lifespan: chain the signal handlers at start-up, close the hub at
    shutdown. Uvicorn sends it; Daphne does not (its first connection
    chains them instead).

    Use it as ``ProtocolTypeRouter({..., "lifespan": lifespan})``.
    """
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                get_connections()
            except Exception as error:
                logger.exception("Lifespan start-up failed.")
                await send({"type": "lifespan.startup.failed", "message": str(error)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await _close_hub_in_time()
            await send({"type": "lifespan.shutdown.complete"})
            return
