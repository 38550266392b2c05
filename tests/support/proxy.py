"""A TCP proxy that can stop answering: a dependency that black-holes.

A server whose process hangs, or a network path that silently drops
packets, still lets the kernel accept connections and acknowledge bytes,
but nothing ever comes back. :class:`BlackHoleProxy` forwards to a real
server until :meth:`~BlackHoleProxy.swallow` is called; from then on it
accepts new connections and reads what clients send, but forwards nothing
either way, until :meth:`~BlackHoleProxy.release` lets everything held
through in order (a healed partition), or :meth:`~BlackHoleProxy.strand`
forwards new connections while those held stay silent for ever (a firewall
or load balancer that lost its state for established connections).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

from .server import free_port


class BlackHoleProxy:
    """Forwards 127.0.0.1:``port`` to 127.0.0.1:``target``, in a thread of its own."""

    def __init__(self, target: int, port: int | None = None) -> None:
        self.target = target
        self.port = port or free_port()
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Set while bytes flow; each connection follows the gate that was
        #: current when it was accepted.
        self._gate: asyncio.Event | None = None
        self._stopped: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def url(self, scheme: str, rest: str = "") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{rest}"

    def start(self) -> BlackHoleProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("The proxy did not start within 10 s.")
        return self

    def swallow(self) -> None:
        """Stop forwarding: connections stay open and bytes are read, never answered."""
        self._call(lambda: self._gate.clear())

    def release(self) -> None:
        """Forward again, including everything held meanwhile."""
        self._call(lambda: self._gate.set())

    def strand(self) -> None:
        """Forward new connections again; those open now stay swallowed for ever."""

        def open_a_new_gate() -> None:
            self._gate = asyncio.Event()
            self._gate.set()

        self._call(open_a_new_gate)

    def stop(self) -> None:
        if self._loop is not None and self._thread.is_alive():
            self._call(lambda: self._stopped.set())
            self._thread.join(10)

    def __enter__(self) -> BlackHoleProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _call(self, action) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(action)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._gate, self._stopped = asyncio.Event(), asyncio.Event()
        self._gate.set()
        connections: set[asyncio.Task] = set()

        async def accepted(reader, writer) -> None:
            task = asyncio.current_task()
            connections.add(task)
            try:
                await self._pipe(reader, writer, self._gate)
            except asyncio.CancelledError:
                pass  # the proxy is stopping; asyncio would log it otherwise
            finally:
                connections.discard(task)

        server = await asyncio.start_server(accepted, "127.0.0.1", self.port)
        self._ready.set()
        async with server:
            await self._stopped.wait()
            for task in list(connections):
                task.cancel()
            await asyncio.gather(*connections, return_exceptions=True)

    async def _pipe(self, client_reader, client_writer, gate: asyncio.Event) -> None:
        # A connection made while swallowing is accepted, but the upstream
        # one is only opened once bytes flow again.
        await gate.wait()
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self.target
            )
        except OSError:
            client_writer.close()
            return
        pumps = [
            asyncio.create_task(self._pump(client_reader, upstream_writer, gate)),
            asyncio.create_task(self._pump(upstream_reader, client_writer, gate)),
        ]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            for writer in (client_writer, upstream_writer):
                writer.close()

    async def _pump(self, reader, writer, gate: asyncio.Event) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                await gate.wait()
                writer.write(data)
                await writer.drain()
