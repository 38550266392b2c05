"""The fan-out against a real Daphne and a real Uvicorn: readers that keep up,
readers that stall and readers that vanish, all on one resource published
100 times a second. Each reader sees versions in strictly increasing order
and reaches the latest; a stalled one holds nobody up and, when it reads
again, gets the latest version instead of a backlog (Uvicorn, which holds the
sender back) or is closed 1008 (Daphne, which would buffer without limit);
the server's log stays clean."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import socket

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.support.server import ServerProcess
from tests.support.waiting import until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

PUBLISHING = {
    "EMBEDDED_UPDATER": True,
    "UPDATE_INTERVAL": 0.01,
    "RESOURCE_LENGTH": 64_000,
    "MAX_UNSENT_BYTES": 256 * 1024,
}


def sequence_of(frame: str) -> int:
    return int(frame.split(" ", 1)[0])


async def connect(
    server: ServerProcess, *, receive_buffer: int | None = None, max_queue: int = 1
):
    """A push socket; with ``receive_buffer``, the kernel's receive buffer is
    that small, so a client that stops reading stalls the server quickly."""
    sock = None
    if receive_buffer:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.connect(("127.0.0.1", server.port))
        sock.setblocking(False)
    return await websockets.connect(
        server.ws_url + "/websocket",
        sock=sock,
        max_queue=max_queue,
        max_size=2**20,
        open_timeout=30,
        ping_interval=None,
    )


class Reader:
    """Reads every frame of a socket as it comes and records the sequences."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.seen: list[int] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for frame in self.ws:
                self.seen.append(sequence_of(frame))

    async def close(self) -> None:
        await self.ws.close()
        await self.task


async def latest(server: ServerProcess) -> int:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        return sequence_of((await http.get("/comet", params={"seq": "0"})).text)


def port(ws) -> int:
    return ws.transport.get_extra_info("sockname")[1]


def strictly_increasing(seen: list[int]) -> bool:
    return all(a < b for a, b in itertools.pairwise(seen))


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
async def test_readers_keep_every_guarantee_beside_stalled_and_vanished_ones(
    serve, kind
):
    # Pings far apart: the stalled clients answer none until they read again.
    flag = "--ping" if kind == "daphne" else "--ws-ping"
    pings = {f"{flag}-interval 20": f"{flag}-interval 600"}
    with serve(kind, replace=pings, **PUBLISHING) as server:
        readers = [Reader(await connect(server, max_queue=16)) for _ in range(20)]
        stalled = [await connect(server, receive_buffer=4096) for _ in range(3)]
        vanishing = [await connect(server) for _ in range(6)]
        await until(lambda: min(len(r.seen) for r in readers) >= 20, timeout=60)
        for ws in vanishing[:3]:
            ws.transport.abort()  # gone without a close frame
        for ws in vanishing[3:]:
            await ws.close()
        # Enough for the stalled sockets to fill every buffer between them
        # and the server (the kernel's take a few MB) and then some.
        start = min(len(r.seen) for r in readers)
        await until(
            lambda: min(len(r.seen) for r in readers) >= start + 150, timeout=120
        )

        target = await latest(server)
        await until(lambda: all(r.seen[-1] >= target for r in readers), timeout=30)
        for reader in readers:
            assert strictly_increasing(reader.seen), reader.seen

        for ws in stalled:
            before = target
            seen = []
            try:
                async with asyncio.timeout(30):
                    async for frame in ws:
                        seen.append(sequence_of(frame))
                        if kind == "uvicorn" and seen[-1] >= before:
                            break
            except ConnectionClosed:
                pass
            assert strictly_increasing(seen), seen
            if kind == "daphne":
                # Over MAX_UNSENT_BYTES unread: closed (the close frame sits
                # behind what it left unread, so it may not reach it).
                assert ws.close_code in (1006, 1008)
            else:
                # It got the latest version, skipping what it could not take.
                assert seen[-1] >= before
                assert len(seen) < seen[-1] - seen[0]
                await ws.close()

        if kind == "daphne":
            refused = [
                line
                for line in server.log_path.read_text().splitlines()
                if "Refused /websocket" in line and "(1008): " in line
            ]
            assert all(line.endswith("bytes unread.") for line in refused)
            refused_ports = {
                int(re.search(r"for [\d.]+:(\d+) ", line).group(1)) for line in refused
            }
            assert {port(ws) for ws in stalled} <= refused_ports
            assert not {port(r.ws) for r in readers} & refused_ports

        # The server still serves everyone else, and a newcomer at once.
        newcomer = Reader(await connect(server))
        await until(lambda: len(newcomer.seen) >= 2, timeout=30)
        assert strictly_increasing(newcomer.seen)
        for reader in [*readers, newcomer]:
            await reader.close()
