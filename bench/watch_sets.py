"""W5: several resources per socket (``WS /select``) against W1 in the same run.

One server process (the documented Daphne or Uvicorn command, pinned to one
core) with Redis as its channel layer; one ``runupdater`` process publishes
each of 100 resources once a second (``--resource`` a hundred times): 100
publishes a second in total. The clients (this process), Redis and the
publisher run on the other core, and measure three windows against the same
server:

- ``idle``: no client; the server's CPU for the layer messages and re-reads;
- ``w1``: N push sockets, each on one of the 100 resources (``WS
  /websocket/<name>``): one frame a second per socket;
- ``w5``: N ``WS /select`` sockets, each watching 10 of the 100 resources:
  ten messages a second per socket, one watcher per socket.

It prints, per server, the server's CPU per delivered message over the idle
window's (µs), for W1 and W5, and their ratio, with what each client got
(missed versions: a message whose sequence skipped one; duplicates or
regressions fail the run). Run it only at small N while developing; the lead
runs the figures on a quiet machine::

    .venv/bin/python -m bench.watch_sets --n 1000 --servers daphne,uvicorn --window 30
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

from bench.stack import sample
from tests.support.redis import RedisServer
from tests.support.server import (
    ROOT,
    SERVERS,
    ServerProcess,
    manage,
    project_env,
    terminate,
)

RESOURCES = [f"r{number:03d}" for number in range(100)]
#: Resources per /select socket.
WATCHED = 10


class Counts:
    """What the clients got in the window: messages, and skipped versions."""

    def __init__(self) -> None:
        self.messages = 0
        self.missed = 0
        self.last: dict[tuple[int, str], int] = {}
        self.counting = False
        #: CPU seconds the clients (this process) used in the window.
        self.client_cpu = 0.0

    def take(self, client: int, name: str, sequence: int) -> None:
        key = (client, name)
        last = self.last.get(key)
        if last is not None:
            if sequence <= last:
                raise AssertionError(f"{name} went from {last} to {sequence}")
            if self.counting:
                self.missed += sequence - last - 1
        self.last[key] = sequence
        if self.counting:
            self.messages += 1


async def push_client(url: str, index: int, name: str, counts: Counts) -> None:
    async with connect(
        f"{url}/websocket/{name}", ping_interval=None, max_queue=None
    ) as socket:
        async for frame in socket:
            counts.take(index, name, int(frame.split(" ", 1)[0]))


async def select_client(url: str, index: int, names: list[str], counts: Counts) -> None:
    query = "&".join(f"r={name}" for name in names)
    async with connect(
        f"{url}/select?{query}", ping_interval=None, max_queue=None
    ) as socket:
        async for frame in socket:
            message = json.loads(frame)
            counts.take(index, message["name"], message["sequence"])


def start_publisher(env: dict[str, str], directory: Path) -> subprocess.Popen:
    """One runupdater for the 100 resources (it creates them)."""
    resources = [part for name in RESOURCES for part in ("--resource", name)]
    options = ["--create", "--interval", "1", "--length", "1024"]
    with (directory / "runupdater.log").open("ab") as log:
        return subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "manage.py"),
                "runupdater",
                *resources,
                *options,
            ],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def measure(server: ServerProcess, clients: list, window: float, warmup: float):
    """Open the clients, warm up, then the server's CPU seconds and the
    messages over ``window``."""
    counts = Counts()
    tasks = [asyncio.create_task(make(counts)) for make in clients]
    try:
        await asyncio.sleep(warmup)
        for task in tasks:
            if task.done():
                task.result()  # a client failed: say why
        counts.counting = True
        before = sample([server.process.pid])[0]
        client_before = time.process_time()
        started = time.monotonic()
        await asyncio.sleep(window)
        cpu = sample([server.process.pid])[0] - before
        counts.client_cpu = time.process_time() - client_before
        elapsed = time.monotonic() - started
        counts.counting = False
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return cpu, elapsed, counts


async def bench(kind: str, n: int, window: float, warmup: float, core: int) -> dict:
    directory = Path(tempfile.mkdtemp(prefix="bench-select-"))
    overrides = {"MAX_OPEN_SOCKETS": 0, "HEARTBEATS": False}
    with contextlib.ExitStack() as stack:
        redis = RedisServer(directory).start()
        stack.callback(terminate, redis.process)
        env = project_env(
            DATABASE_URL=f"sqlite:///{directory / 'db.sqlite3'}",
            DJANGO_SETTINGS_MODULE="tests.support.settings_from_env",
            SELECTOR_TEST_OVERRIDES=json.dumps(overrides),
            SELECTOR_METRICS="0",
            SELECTOR_EMBEDDED_UPDATER="0",
            REDIS_URL=redis.url,
        )
        manage("migrate", "-v0", env=env)
        publisher = start_publisher(env, directory)
        stack.callback(terminate, publisher)
        server = stack.enter_context(
            ServerProcess.documented(env, directory / f"{kind}.log", kind)
        )
        os.sched_setaffinity(server.process.pid, {core})
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            deadline = time.monotonic() + 60
            while (await http.get(f"/comet/{RESOURCES[-1]}?seq=0")).status_code != 200:
                assert time.monotonic() < deadline, "runupdater made no resources"
                await asyncio.sleep(0.5)
        url = server.ws_url
        chooser = random.Random(5)
        idle = await measure(server, [], window, warmup)
        w1 = await measure(
            server,
            [partial(push_client, url, i, chooser.choice(RESOURCES)) for i in range(n)],
            window,
            warmup,
        )
        w5 = await measure(
            server,
            [
                partial(select_client, url, i, chooser.sample(RESOURCES, WATCHED))
                for i in range(n)
            ],
            window,
            warmup,
        )
    idle_cpu_per_s = idle[0] / idle[1]

    def per_message(run) -> tuple[float, int, int, float]:
        cpu, elapsed, counts = run
        extra = cpu - idle_cpu_per_s * elapsed
        us = extra / counts.messages * 1e6 if counts.messages else float("nan")
        return us, counts.messages, counts.missed, cpu / elapsed

    row = {"server": kind, "n": n, "idle_cpu": idle_cpu_per_s}
    row["w1_us"], row["w1_messages"], row["w1_missed"], row["w1_cpu"] = per_message(w1)
    row["w5_us"], row["w5_messages"], row["w5_missed"], row["w5_cpu"] = per_message(w5)
    row["ratio"] = row["w5_us"] / row["w1_us"]
    row["w5_client_cpu"] = w5[2].client_cpu / w5[1]
    return row


TABLE = (
    "| server | N | idle CPU | W1 msgs/s | W1 CPU | W1 µs/frame | W5 msgs/s | "
    "W5 CPU | W5 µs/message | W5 / W1 | missed W1/W5 | W5 client CPU |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def line(row: dict, window: float) -> str:
    return (
        f"| {row['server']} | {row['n']:,} | {row['idle_cpu']:.0%} "
        f"| {row['w1_messages'] / window:,.0f} | {row['w1_cpu']:.0%} "
        f"| {row['w1_us']:.1f} | {row['w5_messages'] / window:,.0f} "
        f"| {row['w5_cpu']:.0%} | {row['w5_us']:.1f} | {row['ratio']:.2f} "
        f"| {row['w1_missed']}/{row['w5_missed']} | {row['w5_client_cpu']:.0%} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="sockets (default 200)")
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--client-core", type=int, default=1)
    args = parser.parse_args()
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {args.client_core})
    rows = []
    for kind in args.servers.split(","):
        rows.append(
            asyncio.run(bench(kind, args.n, args.window, args.warmup, args.server_core))
        )
        print(line(rows[-1], args.window), flush=True)
    print(TABLE)
    for row in rows:
        print(line(row, args.window))


if __name__ == "__main__":
    main()
