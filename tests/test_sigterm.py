"""SIGTERM on a real Daphne and a real Uvicorn process: the drain as clients see it.

Each server runs the command docs/deployment.md gives for it (on a free
port), holds Comet requests (on a quiet resource: no updater) and has push and
bidirectional sockets open when it is sent SIGTERM, with ``DRAIN_TIMEOUT`` = 2 s.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.support.server import (
    SERVERS,
    ServerProcess,
    manage,
    project_env,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

DRAIN_TIMEOUT = 2.0
CLIENTS = 10


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    directory = tmp_path_factory.mktemp("sigterm")
    env = project_env(
        DATABASE_URL=f"sqlite:///{directory / 'db.sqlite3'}",
        SELECTOR_EMBEDDED_UPDATER="0",  # a quiet resource: Comet requests wait
        SELECTOR_DRAIN_TIMEOUT=str(DRAIN_TIMEOUT),
    )
    manage("migrate", "-v0", env=env)
    return env


@pytest.fixture(params=SERVERS)
def server(request, env, tmp_path):
    with ServerProcess.documented(
        env, tmp_path / "server.log", request.param
    ) as server:
        yield server


@dataclass
class Reply:
    status: int
    headers: dict[str, str]


async def send_comet(
    server: ServerProcess, seq: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Send a Comet request and return once its bytes are on their way."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        f"GET /comet?seq={seq} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    await writer.drain()
    return reader, writer


async def reply_of(
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter],
) -> Reply | None:
    """The response's status and headers; ``None`` if the connection closed
    without one."""
    reader, writer = connection
    head = await reader.read(65536)
    writer.close()
    if not head:
        return None
    status_line, *lines = head.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines)
    return Reply(int(status_line.split()[1]), headers)


async def closed(socket: ClientConnection) -> tuple[int | None, float]:
    """Read until the server closes; the close code and when it came."""
    try:
        async for _ in socket:
            pass
    except ConnectionClosed:
        pass
    return socket.close_code, time.monotonic()


async def new_websocket(server: ServerProcess) -> str:
    """What a handshake during the drain gets."""
    try:
        async with connect(
            f"{server.ws_url}/websocket", origin=server.origin, open_timeout=5
        ) as socket:
            await socket.recv()
    except InvalidStatus as error:
        response = error.response
        return f"HTTP {response.status_code} {response.headers.get('Retry-After')}"
    except ConnectionClosed as error:
        return f"closed {error.rcvd.code if error.rcvd else None}"
    return "served"


async def test_sigterm_answers_held_requests_closes_sockets_and_exits(server):
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        first = await client.get("/comet?seq=0")
        seq = int(first.text.split(" ", 1)[0])
        held = [await send_comet(server, seq) for _ in range(CLIENTS)]
        sockets = []
        for path in [f"websocket?seq={seq - 1}"] * CLIENTS + [
            "bidirectional"
        ] * CLIENTS:
            socket = await connect(f"{server.ws_url}/{path}", origin=server.origin)
            sockets.append(socket)
            if path.startswith("websocket"):
                assert (await socket.recv()).startswith(f"{seq} ")  # it is served

        server.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        closes = [asyncio.create_task(closed(socket)) for socket in sockets]
        async with asyncio.timeout(DRAIN_TIMEOUT + 5):
            replies = await asyncio.gather(
                *(reply_of(connection) for connection in held)
            )
            await asyncio.wait(closes, return_when=asyncio.FIRST_COMPLETED)
            # The drain has started and is closing sockets: newcomers are refused.
            during = await client.get(f"/comet?seq={seq}")
            handshake = await new_websocket(server)
            ends = await asyncio.gather(*closes)
        exit_code = await asyncio.to_thread(server.process.wait, DRAIN_TIMEOUT + 2)
        exited = time.monotonic() - signalled

    for reply in replies:
        assert reply is not None and reply.status == 503
        assert reply.headers["retry-after"] == "2"
    assert {code for code, _ in ends} == {1012}
    times = sorted(at for _, at in ends)
    assert times[0] < times[-1]  # spread over the window, not all at once
    assert during.status_code == 503 and during.headers["Retry-After"] == "2"
    expected = "HTTP 503 2" if server.server == "uvicorn" else "closed 1012"
    assert handshake == expected
    assert exited < DRAIN_TIMEOUT + 2, f"exit code {exit_code} after {exited:.1f} s"
    log = server.log_tail(400)
    assert "Drained in" in log
    assert "Traceback" not in log, log


def test_uvicorn_finds_the_lifespan_protocol(env, tmp_path):
    with ServerProcess.documented(env, tmp_path / "server.log", "uvicorn") as server:
        httpx.get(f"{server.url}/comet?seq=0", timeout=10)
    log = server.log_tail(400)
    assert "Application startup complete." in log
    assert "lifespan" not in log.lower(), log
    assert "Application shutdown complete." in log


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")
def test_the_documented_daphne_command_sets_a_listen_backlog(env, tmp_path):
    somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
    with ServerProcess.documented(env, tmp_path / "server.log", "daphne") as server:
        listening = subprocess.run(
            ["ss", "-Hltn", f"sport = :{server.port}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    # For a listening socket, ss's Send-Q column is its backlog.
    assert int(listening[2]) == min(4096, somaxconn)
