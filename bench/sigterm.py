"""What clients see when one server process gets SIGTERM.

Starts the demo (SQLite, in-memory layer, no updater: the resource stays
quiet, so Comet requests are held) under Daphne and Uvicorn, opens held Comet
requests, push and bidirectional sockets, sends SIGTERM and prints, per
server: the Comet answers, the sockets' close codes and when they came, what
a new connection gets during the drain, and when the process exited.

    .venv/bin/python -m bench.sigterm [--clients 20] [--drain-timeout 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.support.server import SERVERS, ServerProcess, manage, project_env


async def held_comet(client: httpx.AsyncClient, url: str, t0: list[float]) -> str:
    try:
        response = await client.get(url)
    except httpx.HTTPError as error:
        return f"no response ({type(error).__name__})"
    after = time.monotonic() - t0[0] if t0 else float("nan")
    retry = response.headers.get("Retry-After")
    return f"{response.status_code} Retry-After={retry} after {after:.1f} s"


async def open_socket(
    url: str, origin: str, closes: list[tuple[int | None, float]]
) -> None:
    async with connect(url, origin=origin, open_timeout=10, close_timeout=2) as socket:
        try:
            async for _ in socket:
                pass
        except ConnectionClosed:
            pass
        closes.append((socket.close_code, time.monotonic()))


async def new_connections(server: ServerProcess, seq: int) -> list[str]:
    """What a client that connects during the drain gets."""
    seen = []
    async with httpx.AsyncClient(timeout=10) as client:
        try:
            response = await client.get(f"{server.url}/comet?seq={seq}")
            seen.append(f"comet: {response.status_code}")
        except httpx.HTTPError as error:
            seen.append(f"comet: {type(error).__name__}")
    try:
        async with connect(
            f"{server.ws_url}/websocket", origin=server.origin, open_timeout=5
        ) as socket:
            await socket.recv()
            seen.append("websocket: accepted")
    except InvalidStatus as error:
        seen.append(f"websocket: HTTP {error.response.status_code}")
    except ConnectionClosed as error:
        seen.append(f"websocket: accepted, closed {error.rcvd and error.rcvd.code}")
    except (OSError, TimeoutError) as error:
        seen.append(f"websocket: {type(error).__name__}")
    return seen


async def probe(kind: str, clients: int, directory: Path, drain: float) -> None:
    env = project_env(
        DATABASE_URL=f"sqlite:///{directory / 'db.sqlite3'}",
        SELECTOR_EMBEDDED_UPDATER="0",
        SELECTOR_DRAIN_TIMEOUT=str(drain),
    )
    manage("migrate", "-v0", env=env)
    log = directory / f"{kind}.log"
    server = ServerProcess.documented(env, log, kind).start()
    try:
        async with httpx.AsyncClient(timeout=60) as client:
            first = await client.get(f"{server.url}/comet?seq=0")
            seq = int(first.text.split(" ", 1)[0])
            t0: list[float] = []
            comets = [
                asyncio.create_task(
                    held_comet(client, f"{server.url}/comet?seq={seq}", t0)
                )
                for _ in range(clients)
            ]
            closes: list[tuple[int | None, float]] = []
            sockets = [
                asyncio.create_task(
                    open_socket(f"{server.ws_url}/{path}", server.origin, closes)
                )
                for path in ("websocket", "bidirectional")
                for _ in range(clients)
            ]
            await asyncio.sleep(1.5)  # a probe, not a test: let everything settle
            t0.append(time.monotonic())
            server.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.2)
            during = await new_connections(server, seq)
            answers = await asyncio.gather(*comets)
            for failure in await asyncio.gather(*sockets, return_exceptions=True):
                if failure is not None:
                    print(f"socket failed: {failure!r}")
            await asyncio.to_thread(server.process.wait, 60)
            exited = time.monotonic() - t0[0]
    finally:
        server.stop()
    codes = Counter(code for code, _ in closes)
    times = sorted(at - t0[0] for _, at in closes)
    text = log.read_text(errors="replace")
    print(f"--- {kind} (DRAIN_TIMEOUT {drain} s)")
    print(f"held Comet:     {dict(Counter(answers))}")
    print(f"socket closes:  {dict(codes)}")
    if times:
        print(f"close times:    {times[0]:.2f} .. {times[-1]:.2f} s after SIGTERM")
    print(f"during drain:   {', '.join(during)}")
    print(f"process exit:   {exited:.2f} s after SIGTERM")
    print(f"lifespan warn:  {'appears unsupported' in text}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--drain-timeout", type=float, default=5.0)
    parser.add_argument("--server", choices=SERVERS, action="append")
    args = parser.parse_args()
    for kind in args.server or SERVERS:
        with tempfile.TemporaryDirectory() as directory:
            asyncio.run(probe(kind, args.clients, Path(directory), args.drain_timeout))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
