"""The hook into the server's signal handling, the lifespan app, and Daphne's
close codes, in process. A stand-in "server handler" is installed for the
signals as Daphne and Uvicorn install theirs; real servers are in
test_sigterm.py."""

from __future__ import annotations

import asyncio
import signal
import threading

import pytest
from channels.testing import ApplicationCommunicator

from selector_app import shutdown
from selector_app.connections import Connections
from selector_app.shutdown import chain_signal_handlers, get_connections
from tests.support.waiting import until


class Held:
    """A stand-in held request: ended at once, gone when ended."""

    ends_at_once = True

    def __init__(self, connections: Connections, *, leaves: bool = True) -> None:
        self.connections = connections
        self.leaves = leaves
        self.ended = False
        connections.track("comet", self)

    def end(self) -> None:
        self.ended = True
        if self.leaves:
            self.connections.untrack("comet", self)


class ServerHandler:
    """Records the calls a server's own signal handler gets."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        #: What was already ended when the server was told to stop.
        self.ended_before: list[bool] = []
        self.watch: list[Held] = []

    def __call__(self, number: int, frame: object) -> None:
        self.calls.append(number)
        self.ended_before.append(all(held.ended for held in self.watch))


@pytest.fixture
def server_handler(monkeypatch):
    """A server's handler for SIGTERM and SIGINT; the real ones are restored."""
    monkeypatch.setattr(shutdown, "_installed", {})
    monkeypatch.setattr(shutdown, "_drain_task", None)
    handler = ServerHandler()
    saved = {n: signal.getsignal(n) for n in (signal.SIGTERM, signal.SIGINT)}
    for number in saved:
        signal.signal(number, handler)
    yield handler
    for number, original in saved.items():
        signal.signal(number, original)


async def test_the_first_use_chains_the_servers_handlers_once(server_handler):
    get_connections()
    for number in (signal.SIGTERM, signal.SIGINT):
        assert signal.getsignal(number) is not server_handler
    assert chain_signal_handlers(asyncio.get_running_loop()) == []  # idempotent


async def test_sigterm_drains_then_calls_the_servers_handler(server_handler):
    connections = get_connections()
    server_handler.watch = [Held(connections), Held(connections)]
    signal.raise_signal(signal.SIGTERM)
    await until(lambda: server_handler.calls)
    assert server_handler.calls == [signal.SIGTERM]
    assert server_handler.ended_before == [True]
    assert connections.draining and connections.count() == 0


async def test_a_second_signal_during_the_drain_goes_to_the_server_at_once(
    server_handler,
):
    connections = get_connections()
    server_handler.watch = [Held(connections, leaves=False)]  # drain waits
    signal.raise_signal(signal.SIGTERM)
    await until(lambda: shutdown._drain_task is not None)
    signal.raise_signal(signal.SIGINT)  # Ctrl-C: stop now
    assert server_handler.calls == [signal.SIGINT]
    shutdown._drain_task.cancel()  # the server would now exit
    await asyncio.gather(shutdown._drain_task, return_exceptions=True)


async def test_sigint_ends_everything_at_once(server_handler, selector_settings):
    selector_settings(DRAIN_TIMEOUT=30)  # a spread would take 22.5 s
    connections = get_connections()

    class Socket(Held):
        ends_at_once = False

    server_handler.watch = [Socket(connections) for _ in range(3)]
    signal.raise_signal(signal.SIGINT)
    await until(lambda: server_handler.calls)
    assert server_handler.ended_before == [True]


async def test_without_a_server_handler_signals_are_left_alone(monkeypatch):
    """A test runner, ``asyncio.run()`` (which handles only SIGINT): nothing
    handles SIGTERM, so neither signal is taken over."""
    monkeypatch.setattr(shutdown, "_installed", {})
    sigint = signal.getsignal(signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    assert chain_signal_handlers(asyncio.get_running_loop()) == []
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is sigint


async def test_drain_timeout_zero_installs_nothing(server_handler, selector_settings):
    selector_settings(DRAIN_TIMEOUT=0)
    assert chain_signal_handlers(asyncio.get_running_loop()) == []
    assert signal.getsignal(signal.SIGTERM) is server_handler


def test_only_the_main_thread_installs_handlers(server_handler):
    """``runserver`` with its autoreloader runs Daphne in another thread."""
    chained = []

    def serve() -> None:
        loop = asyncio.new_event_loop()
        chained.append(chain_signal_handlers(loop))
        loop.close()

    thread = threading.Thread(target=serve)
    thread.start()
    thread.join(5)
    assert chained == [[]]
    assert signal.getsignal(signal.SIGTERM) is server_handler


def test_a_signal_after_the_loop_stopped_goes_to_the_server(server_handler):
    loop = asyncio.new_event_loop()
    try:
        chain_signal_handlers(loop)
        signal.raise_signal(signal.SIGTERM)
    finally:
        loop.close()
    assert server_handler.calls == [signal.SIGTERM]


# Lifespan ------------------------------------------------------------------------


async def test_the_demo_speaks_lifespan(server_handler):
    from realtime_site.asgi import application

    lifespan = ApplicationCommunicator(
        application, {"type": "lifespan", "asgi": {"version": "3.0"}}
    )
    await lifespan.send_input({"type": "lifespan.startup"})
    assert await lifespan.receive_output(5) == {"type": "lifespan.startup.complete"}
    assert signal.getsignal(signal.SIGTERM) is not server_handler  # chained
    await lifespan.send_input({"type": "lifespan.shutdown"})
    assert await lifespan.receive_output(5) == {"type": "lifespan.shutdown.complete"}
    await lifespan.wait(5)


async def test_lifespan_shutdown_closes_the_hub(hub):
    from selector_app import runtime

    lifespan = ApplicationCommunicator(shutdown.lifespan, {"type": "lifespan"})
    await lifespan.send_input({"type": "lifespan.startup"})
    await lifespan.receive_output(5)
    await lifespan.send_input({"type": "lifespan.shutdown"})
    await lifespan.receive_output(5)
    assert asyncio.get_running_loop() not in runtime._runtimes
