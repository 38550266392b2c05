"""Faults with real parts: what a client sees when the database or Redis fails.

Every test runs against Daphne and Uvicorn processes of the demo (with
``tests/support/fault_settings.py``: a re-read every 0.5 s) and asserts what
a client or an admin notices: no version lost, no request or save left
hanging, the documented status, and one log line per outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.support.admin import AdminSession, superuser_env
from tests.support.cluster import UpdaterProcess, resource_sequence
from tests.support.postgres import PostgresCluster, unavailable_reason
from tests.support.proxy import BlackHoleProxy
from tests.support.server import SERVERS, ServerProcess, manage, project_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

#: Long enough for anything that should happen; a hang fails the test.
BOUND = 10.0


@pytest.fixture(params=SERVERS)
def kind(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def postgres():
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with PostgresCluster() as cluster:
        yield cluster


def fault_env(**overrides: str) -> dict[str, str]:
    return project_env(
        **{
            "DJANGO_SETTINGS_MODULE": "tests.support.fault_settings",
            "SELECTOR_EMBEDDED_UPDATER": "0",
            **overrides,
        }
    )


def shell(env: dict[str, str], code: str) -> None:
    """Run ``code`` in ``manage.py shell``: another process, as an admin's is."""
    manage("shell", "-c", code, env=env)


def publish(env: dict[str, str], *data: str) -> None:
    shell(
        env,
        "from selector_app import services\n"
        f"for data in {list(data)!r}:\n"
        "    services.resource_publish(name='res', data=data)\n",
    )


def log_lines(path: Path, text: str) -> list[str]:
    return [line for line in path.read_text().splitlines() if text in line]


async def logged(path: Path, text: str, count: int) -> None:
    """Wait until ``text`` is on ``count`` lines of a server's log."""
    async with asyncio.timeout(BOUND):
        while len(log_lines(path, text)) < count:  # noqa: ASYNC110 (a file)
            await asyncio.sleep(0.05)


class Frames:
    """Every version one client received, in order."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self._looked_at = 0
        self._changed = asyncio.Event()

    @property
    def sequences(self) -> list[int]:
        return [int(message.split(" ", 1)[0]) for message in self.messages]

    def add(self, message: str) -> None:
        self.messages.append(message)
        self._changed.set()

    async def next(self) -> str:
        """The first version the test has not looked at yet."""
        async with asyncio.timeout(BOUND):
            await self._more_than(self._looked_at)
        self._looked_at += 1
        return self.messages[self._looked_at - 1]

    async def until(self, sequence: int) -> None:
        """Wait for ``sequence`` or a later one; the test has seen all so far."""
        async with asyncio.timeout(BOUND * 2):
            while not self.messages or self.sequences[-1] < sequence:
                await self._more_than(len(self.messages))
        self._looked_at = len(self.messages)

    async def _more_than(self, count: int) -> None:
        while len(self.messages) <= count:
            self._changed.clear()
            await self._changed.wait()

    async def read(self, ws) -> None:
        async for message in ws:
            self.add(message)


@contextlib.asynccontextmanager
async def push(
    server: ServerProcess, path: str = "/websocket"
) -> AsyncIterator[Frames]:
    frames = Frames()
    async with connect(f"{server.ws_url}{path}", origin=server.origin) as ws:
        reader = asyncio.create_task(frames.read(ws))
        try:
            yield frames
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)


# The database is the truth ------------------------------------------------------

RESET = """
from django.db import transaction
from selector_app import services
from selector_app.models import Resource
with transaction.atomic():
    Resource.objects.filter(name='res').delete()
    services.resource_create(name='res', data='fresh')
    services.resource_publish(name='res', data='after reset')
"""


async def test_a_reset_database_is_adopted_after_one_re_read(
    kind, tmp_path, redis_server
):
    """The issue's case: the hub had 7; the row was deleted, created again at
    1 and published once. Both announcements are older than 7 and ignored;
    the next re-read adopts the row."""
    env = fault_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", REDIS_URL=redis_server.url
    )
    manage("migrate", "-v0", env=env)
    with ServerProcess(env, tmp_path / "server.log", server=kind) as server:
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=BOUND) as http,
            push(server) as frames,
        ):
            publish(env, *(f"old {n}" for n in range(2, 8)))
            await frames.until(7)
            held = asyncio.create_task(http.get("/comet", params={"seq": "7"}))
            shell(env, RESET)
            assert await frames.next() == "2 after reset"  # once, going down
            assert (await held).text == "2 after reset"  # a client ahead: answered
            assert (await http.get("/comet?seq=0")).text == "2 after reset"
            publish(env, "next")
            assert await frames.next() == "3 next"  # increasing from there
    assert frames.sequences[-3:] == [7, 2, 3]


# Redis ---------------------------------------------------------------------------


def resource_pk(database: Path, name: str = "res") -> int:
    with sqlite3.connect(database) as db:
        query = "SELECT id FROM selector_app_resource WHERE name = ?"
        return db.execute(query, (name,)).fetchone()[0]


async def bounded_save(admin: AdminSession, pk: int, data: str) -> float:
    """Save through the admin; how long it took (a hang fails the test)."""
    started = time.monotonic()
    async with asyncio.timeout(BOUND):
        response = await admin.save(pk, data)
    assert response.status_code == 302, response.text[:2000]
    return time.monotonic() - started


async def test_admin_saves_go_through_while_redis_is_black_holed_or_killed(
    kind, tmp_path, redis_server
):
    """A stopped Redis (SIGSTOP: connections open, nothing answered) and a
    killed one: the save returns, clients get the version from the re-read."""
    database = tmp_path / "db.sqlite3"
    env = fault_env(DATABASE_URL=f"sqlite:///{database}", REDIS_URL=redis_server.url)
    manage("migrate", "-v0", env=env)
    manage("createsuperuser", "--noinput", env=superuser_env(env))
    pk = resource_pk(database)
    log = tmp_path / "server.log"
    with ServerProcess(env, log, server=kind) as server:
        async with AdminSession(server.url) as admin, push(server) as frames:
            assert (await frames.next()).startswith("1 ")
            redis_server.process.send_signal(signal.SIGSTOP)
            try:
                await bounded_save(admin, pk, "while stopped")
                assert await frames.next() == "2 while stopped"
                await bounded_save(admin, pk, "still stopped")
                assert await frames.next() == "3 still stopped"
            finally:
                redis_server.process.send_signal(signal.SIGCONT)
            await bounded_save(admin, pk, "redis back")
            assert await frames.next() == "4 redis back"
            redis_server.process.kill()
            redis_server.process.wait(10)
            await bounded_save(admin, pk, "redis killed")
            assert await frames.next() == "5 redis killed"
            redis_server.start()
            await bounded_save(admin, pk, "redis restarted")
            assert await frames.next() == "6 redis restarted"
    assert frames.sequences == [1, 2, 3, 4, 5, 6]
    # One warning per outage and part (the feed's subscription, the admin's
    # announcements), not one per attempt; each outage's end is logged.
    warnings = log_lines(log, "WARNING selector_app")
    assert 2 <= len(warnings) <= 4, "\n".join(warnings)
    assert log_lines(log, "The channel layer answers again")


# PostgreSQL ------------------------------------------------------------------------


async def comet_follower(server: ServerProcess, seen: Frames) -> None:
    """A long-polling client: asks again with the sequence it has."""
    async with httpx.AsyncClient(base_url=server.url, timeout=40) as http:
        while True:
            cursor = seen.sequences[-1] if seen.messages else 0
            answer = await http.get("/comet", params={"seq": str(cursor)})
            if answer.status_code == 200:
                seen.add(answer.text)


async def test_postgresql_restarted_under_running_servers(
    kind, tmp_path, postgres, redis_server
):
    """runupdater publishes every 0.2 s while PostgreSQL restarts: publishes
    fail for a moment, then go on; clients see every version in order."""
    url = postgres.create_database(f"restart_{kind}")
    env = fault_env(DATABASE_URL=url, REDIS_URL=redis_server.url)
    manage("migrate", "-v0", env=env)
    updater = UpdaterProcess(env, tmp_path / "updater.log", "--interval", "0.2")
    log = tmp_path / "server.log"
    with ServerProcess(env, log, server=kind) as server:
        comet = Frames()
        follower = asyncio.create_task(comet_follower(server, comet))
        try:
            async with push(server) as frames:
                updater.start()
                await frames.until(4)
                await asyncio.to_thread(postgres.restart)
                restarted = frames.sequences[-1]
                await frames.until(restarted + 5)  # publishes go on
                updater.stop()
                final = resource_sequence(url)
                await frames.until(final)
            await comet.until(final)
        finally:
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)
            updater.kill()
    for seen in (frames.sequences, comet.sequences):
        assert seen == sorted(set(seen)), seen  # never back, never twice
        assert seen[-1] == final  # the last version reached every client
    assert updater.process.returncode == 0, updater.log()
    assert len(log_lines(tmp_path / "updater.log", "WARNING selector_app")) <= 1
    assert len(log_lines(log, "WARNING selector_app.reader")) <= 1


async def test_a_database_that_stops_answering_blocks_nothing(kind, tmp_path, postgres):
    """The database accepts connections but never answers. A client of a
    resource the process does not hold gets 503 (4503) instead of a request
    that hangs, before and after the first read (the process holds only what
    its clients watch, so it cannot tell an unknown name from one it has not
    loaded); a resource it holds is served as it is. Updates resume once the
    database answers; the process exits on SIGTERM."""
    direct = postgres.create_database(f"black_hole_{kind}")
    admin = project_env(DATABASE_URL=direct)
    log = tmp_path / "server.log"
    with BlackHoleProxy(postgres.port) as proxy:
        env = fault_env(DATABASE_URL=proxied(direct, postgres.port, proxy))
        manage("migrate", "-v0", env=env)
        proxy.swallow()  # from the start: the process has never read the rows
        server = ServerProcess(env, log, server=kind).start()
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=BOUND) as http:
                try:
                    first_read = await http.get("/comet?seq=0")
                    closed_first = await closing_code(server, "/websocket/other")
                finally:
                    proxy.release()
                await logged(log, "The database answers again", 1)
                async with push(server) as frames:
                    assert (await frames.next()).startswith("1 ")
                    # Another process's publish reaches this one only through
                    # a re-read (in-memory layer) of the rows written since.
                    publish(admin, "read")
                    current = await frames.next()
                    proxy.swallow()
                    try:
                        known = await http.get("/comet?seq=0")
                        unseen = await http.get("/comet/other")
                        closed = await closing_code(server, "/websocket/other")
                        await logged(log, "WARNING selector_app.reader", 2)
                    finally:
                        proxy.release()
                    publish(admin, "after the outage")
                    assert await frames.next() == "3 after the outage"
                await logged(log, "The database answers again", 2)
            proxy.swallow()  # hang a read again, then stop the server
            await logged(log, "WARNING selector_app.reader", 3)
            started = time.monotonic()
            server.stop()
            stopped_in = time.monotonic() - started
        finally:
            proxy.release()
            server.stop()
    assert first_read.status_code == 503 and first_read.headers["Retry-After"] == "2"
    assert closed_first == 4503
    assert current == "2 read"
    assert (known.status_code, known.text) == (200, current)
    assert unseen.status_code == 503 and unseen.headers["Retry-After"] == "2"
    assert closed == 4503
    assert server.process.returncode != -signal.SIGKILL, f"{stopped_in:.1f} s"
    assert len(log_lines(log, "WARNING selector_app.reader")) == 3, log.read_text()
    assert len(log_lines(log, "The database answers again")) == 2
    assert not log_lines(log, "channel-layer subscription")  # a hang is not silence


async def test_a_read_that_never_returns_is_abandoned(kind, tmp_path, postgres):
    """The connection a re-read waits on never answers again, while new
    connections work (a firewall or load balancer that lost its state for
    established connections). The process gives up on that read's thread and
    connection, reads through a new one, and updates resume."""
    direct = postgres.create_database(f"stranded_{kind}")
    log = tmp_path / "server.log"
    with BlackHoleProxy(postgres.port) as proxy:
        env = fault_env(
            DATABASE_URL=proxied(direct, postgres.port, proxy),
            DJANGO_SETTINGS_MODULE="tests.support.persistent_settings",
        )
        manage("migrate", "-v0", env=env)
        with ServerProcess(env, log, server=kind) as server:
            async with push(server) as frames:
                assert (await frames.next()).startswith("1 ")
                proxy.swallow()
                await logged(log, "WARNING selector_app.reader", 1)
                proxy.strand()  # the hung read's connection: silent for ever
                publish(project_env(DATABASE_URL=direct), "after the strand")
                assert await frames.next() == "2 after the strand"
    assert len(log_lines(log, "abandoning its thread")) == 1, log.read_text()
    assert len(log_lines(log, "The database answers again")) == 1


def proxied(url: str, port: int, proxy: BlackHoleProxy) -> str:
    """``url`` with the database reached through ``proxy``."""
    return url.replace(f":{port}/", f":{proxy.port}/")


async def closing_code(server: ServerProcess, path: str) -> int:
    async with connect(f"{server.ws_url}{path}", origin=server.origin) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(BOUND):
                await ws.recv()
    return closed.value.rcvd.code
