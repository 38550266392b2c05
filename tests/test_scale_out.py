"""Scaled out for real: redis-server, two Daphne processes and runupdaters.

Runs once on SQLite and once on PostgreSQL when one is reachable (see
tests/support/cluster.py). Each database gets one Redis and two servers for
the module; every test starts and stops its own updaters.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.support.cluster import (
    UpdaterProcess,
    postgres_admin_url,
    postgres_database,
    resource_sequence,
)
from tests.support.redis import RedisServer
from tests.support.server import ServerProcess, manage, project_env
from tests.support.waiting import until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

#: The issue's requirement for a standby taking over after a SIGKILL.
TAKEOVER_LIMIT = 5.0


@dataclass
class Cluster:
    redis: RedisServer
    servers: list[ServerProcess]
    env: dict[str, str]
    database_url: str
    directory: Path
    updaters: list[UpdaterProcess] = field(default_factory=list)
    started: int = 0

    def updater(self, *args: str) -> UpdaterProcess:
        self.started += 1
        log = self.directory / f"updater-{self.started}.log"
        process = UpdaterProcess(self.env, log, "--interval", "0.2", *args)
        self.updaters.append(process)
        return process.start()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def database_url(request, tmp_path_factory):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'db.sqlite3'}"
        return
    admin = postgres_admin_url()
    if admin is None:
        pytest.skip("No PostgreSQL answers (set SELECTOR_TEST_POSTGRES_URL).")
    with postgres_database(admin) as url:
        yield url


@pytest.fixture(scope="module")
def cluster(database_url, tmp_path_factory):
    directory = tmp_path_factory.mktemp("cluster")
    with contextlib.ExitStack() as stack:
        redis = stack.enter_context(RedisServer(directory))
        env = project_env(
            DATABASE_URL=database_url,
            REDIS_URL=redis.url,
            SELECTOR_EMBEDDED_UPDATER="0",
        )
        manage("migrate", "-v0", env=env)
        servers = [
            stack.enter_context(ServerProcess(env, directory / f"server-{n}.log"))
            for n in range(2)
        ]
        yield Cluster(redis, servers, env, database_url, directory)


@pytest.fixture
def scaled(cluster):
    """The cluster, with every updater a test started stopped afterwards."""
    try:
        yield cluster
    finally:
        for updater in cluster.updaters:
            updater.kill()
        cluster.updaters.clear()


class Received:
    """What one client has seen: (arrival time, sequence, data) in order."""

    def __init__(self) -> None:
        self.frames: list[tuple[float, int, str]] = []
        self.changed = asyncio.Event()

    def add(self, message: str) -> None:
        sequence, data = message.split(" ", 1)
        self.frames.append((asyncio.get_running_loop().time(), int(sequence), data))
        self.changed.set()

    @property
    def sequences(self) -> list[int]:
        return [sequence for _, sequence, _ in self.frames]

    def latest(self) -> int:
        return self.frames[-1][1] if self.frames else 0

    async def first_after(self, sequence: int, timeout: float) -> float:
        """Wait for a frame newer than ``sequence``; return when it arrived."""
        async with asyncio.timeout(timeout):
            while True:
                for arrived, seen, _ in self.frames:
                    if seen > sequence:
                        return arrived
                self.changed.clear()
                await self.changed.wait()


async def push_client(server: ServerProcess, received: Received) -> None:
    async with connect(f"{server.ws_url}/websocket", origin=server.origin) as ws:
        async for message in ws:
            received.add(message)


async def comet_client(server: ServerProcess, received: Received) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=40) as http:
        while True:
            answer = await http.get("/comet", params={"seq": str(received.latest())})
            if answer.status_code == 200:
                received.add(answer.text)


@contextlib.asynccontextmanager
async def clients(cluster: Cluster, kinds=("push", "comet")):
    """One client of each kind per server, reading in the background."""
    runners = {"push": push_client, "comet": comet_client}
    seen = {(kind, n): Received() for kind in kinds for n in range(2)}
    tasks = [
        asyncio.create_task(runners[kind](cluster.servers[n], received))
        for (kind, n), received in seen.items()
    ]
    try:
        yield seen
    finally:
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if not isinstance(result, asyncio.CancelledError):
            raise AssertionError(f"A client failed: {result!r}")


def assert_increasing(sequences: list[int]) -> None:
    assert all(a < b for a, b in itertools.pairwise(sequences)), sequences


async def test_every_client_on_both_servers_sees_the_same_versions(scaled):
    scaled.updater()
    async with clients(scaled) as seen:
        await until(lambda: all(len(r.frames) >= 12 for r in seen.values()), timeout=15)
    for received in seen.values():
        assert_increasing(received.sequences)
    push = [seen["push", n] for n in range(2)]
    # At 5 publishes a second nothing is conflated: every version, on both.
    common = range(max(r.sequences[0] for r in push), min(r.latest() for r in push))
    for received in push:
        assert set(common) <= set(received.sequences)
        assert received.sequences == list(
            range(received.sequences[0], received.latest() + 1)
        )
    versions = {seq: data for r in push for _, seq, data in r.frames}
    for received in seen.values():  # same sequence, same data, everywhere
        assert all(versions.get(seq, data) == data for _, seq, data in received.frames)
        assert all(len(data) == 1024 for _, _, data in received.frames)


async def test_a_standby_takes_over_within_5_s_of_a_sigkill(scaled):
    active = scaled.updater()
    await active.wait_for_log("acquired the lock on 'res'")
    standby = scaled.updater()
    await standby.wait_for_log("standby: waiting for the lock on 'res'")
    async with clients(scaled, kinds=("push",)) as seen:
        await until(lambda: all(len(r.frames) >= 3 for r in seen.values()), timeout=10)
        loop = asyncio.get_running_loop()
        killed_at = loop.time()
        active.kill()
        last = resource_sequence(scaled.database_url)  # it can publish no more
        assert standby.published() == []  # never both
        arrivals = [
            await received.first_after(last, timeout=TAKEOVER_LIMIT + 5)
            for received in seen.values()
        ]
    takeover = max(arrivals) - killed_at
    print(f"takeover after SIGKILL: {takeover:.2f} s")
    assert takeover < TAKEOVER_LIMIT
    assert "acquired the lock on 'res'" in standby.log()
    assert min(standby.published()) == last + 1
    for received in seen.values():
        assert_increasing(received.sequences)


async def test_delivery_resumes_after_a_redis_restart_without_new_servers(scaled):
    updater = scaled.updater()
    await updater.wait_for_log("acquired the lock on 'res'")
    async with clients(scaled) as seen:
        await until(lambda: all(len(r.frames) >= 2 for r in seen.values()), timeout=10)
        scaled.redis.stop()
        before = max(r.latest() for r in seen.values())
        restarted_at = asyncio.get_running_loop().time()
        scaled.redis.start()
        arrivals = [
            await received.first_after(before, timeout=15) for received in seen.values()
        ]
        resumed = max(arrivals) - restarted_at
        # And it keeps flowing through the doorbell, not only the re-reads.
        after = max(r.latest() for r in seen.values())
        await until(
            lambda: all(r.latest() >= after + 3 for r in seen.values()), timeout=3
        )
    print(f"delivery resumed {resumed:.2f} s after the Redis restart")
    assert resumed < 10
    for received in seen.values():
        assert_increasing(received.sequences)
    assert all(server.process.poll() is None for server in scaled.servers)
