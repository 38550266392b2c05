"""Fixtures shared by the whole suite.

Every test gets fresh settings, a fresh in-memory layer and no runtime; a
test that needs the hub asks for the ``hub`` fixture, which yields once the
hub has read the rows and always closes it.
"""

from __future__ import annotations

import asyncio
import os

import pytest
from channels.layers import channel_layers
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from selector_app import runtime, services
from selector_app.conf import get_config
from selector_app.outages import Outage

# The fuzz suite (tests/test_fuzz*.py) runs the same examples on every run:
# CI never fails by chance. `--hypothesis-profile=deep` explores further. The
# examples of one test share its fixtures (one hub, one database) on purpose.
hypothesis_settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
hypothesis_settings.register_profile(
    "deep",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
hypothesis_settings.load_profile("ci")

#: Fixtures that start a process; a test using one must be marked ``slow``.
PROCESS_FIXTURES = frozenset(
    {
        "redis_server",
        "demo_server",
        "host_server",
        "demo_on",
        "readme_server",
        "readme_demo",
        "authorizing_host",
    }
)


def pytest_collection_modifyitems(items):
    """``-m "not slow"`` must leave out every test that starts a process."""
    for item in items:
        started = PROCESS_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if started and item.get_closest_marker("slow") is None:
            raise pytest.UsageError(
                f"{item.nodeid} uses {', '.join(sorted(started))}, which starts a "
                "process: mark it (or its module) with pytest.mark.slow."
            )


@pytest.fixture(autouse=True)
def _untuned_collector(monkeypatch):
    """The test runner's collector is never tuned by a runtime a test starts.

    The memory tests need ``gc.collect()`` to see every object: a frozen
    start-up would hide them. The GC tests opt back in.
    """
    monkeypatch.setattr(runtime, "_tuned_in", os.getpid())


@pytest.fixture(autouse=True)
def _fresh_process_state(monkeypatch):
    """Each test gets a new in-memory layer, freshly read settings, no outage
    of an earlier test, and must leave no runtime behind."""
    channel_layers.backends.clear()
    monkeypatch.setattr(
        services, "announcements", Outage(services.logger, "the channel layer")
    )
    get_config.cache_clear()
    yield
    left = list(runtime._runtimes.values())
    runtime._runtimes.clear()
    assert not left, "A test left a runtime running: use the `hub` fixture."


@pytest.fixture
def selector_settings(settings):
    """``selector_settings(KEY=value, ...)`` sets ``SELECTOR_APP`` keys over
    the test project's own (whose embedded updater is off)."""
    base = dict(settings.SELECTOR_APP)

    def configure(**overrides: object) -> None:
        settings.SELECTOR_APP = {**base, **overrides}

    return configure


@pytest.fixture
async def hub(transactional_db):
    """The test loop's hub, once it has read the rows; closed afterwards
    (its tasks, and any database read they started, finished)."""
    started = runtime.get_hub()
    try:
        async with asyncio.timeout(5):
            await started.synced.wait()
        yield started
    finally:
        await runtime.close_hub()


@pytest.fixture
def res(transactional_db):
    """The demo resource at sequence 1 (transactional tests flush migrations' rows)."""
    from selector_app.models import Resource
    from selector_app.services import random_data

    Resource.objects.filter(name="res").delete()
    return Resource.objects.create(name="res", data=random_data(1024))


@pytest.fixture
def redis_server(tmp_path):
    """A private redis-server for this test, stopped afterwards."""
    from tests.support.redis import RedisServer

    with RedisServer(tmp_path) as server:
        yield server


def demo_env(directory) -> dict[str, str]:
    """The demo's environment, with a migrated SQLite database in ``directory``."""
    from tests.support.server import manage, project_env

    env = project_env(DATABASE_URL=f"sqlite:///{directory / 'db.sqlite3'}")
    manage("migrate", "-v0", env=env)
    return env


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    """The demo as a user runs it: a real Daphne process, SQLite, in-memory
    layer and the embedded updater, on a free port."""
    from tests.support.server import ServerProcess

    directory = tmp_path_factory.mktemp("demo")
    with ServerProcess(demo_env(directory), directory / "server.log") as server:
        yield server


def hostsite_env(directory) -> dict[str, str]:
    """tests/hostsite's environment: a migrated SQLite database in
    ``directory`` with an admin user ``admin`` / ``admin-pass``."""
    from tests.support.server import manage, project_env

    env = project_env(
        DJANGO_SETTINGS_MODULE="tests.hostsite.settings",
        DATABASE_URL=f"sqlite:///{directory / 'db.sqlite3'}",
    )
    manage("migrate", "-v0", env=env)
    manage(
        "createsuperuser",
        "--noinput",
        env={
            **env,
            "DJANGO_SUPERUSER_USERNAME": "admin",
            "DJANGO_SUPERUSER_EMAIL": "admin@example.com",
            "DJANGO_SUPERUSER_PASSWORD": "admin-pass",
        },
    )
    return env


@pytest.fixture(scope="module")
def host_server(tmp_path_factory):
    """tests/hostsite (the app embedded under /live/) on a real Daphne process,
    with an admin user ``admin`` / ``admin-pass``."""
    from tests.support.server import ServerProcess

    directory = tmp_path_factory.mktemp("hostsite")
    server = ServerProcess(
        hostsite_env(directory),
        directory / "server.log",
        application="tests.hostsite.asgi:application",
    )
    with server:
        yield server


@pytest.fixture
async def start_feed(transactional_db):
    """``await start_feed(resync_interval=..., layer=..., read_timeout=...)``: a
    hub and its feed on the test's loop, once the feed has read the rows;
    closed afterwards."""
    from channels.layers import get_channel_layer

    from selector_app.feed import Feed
    from selector_app.hub import Hub
    from selector_app.reader import RowReader

    started = []

    async def start(
        *, resync_interval: float = 5.0, layer=None, read_timeout: float = 5.0
    ) -> Feed:
        reader = RowReader(timeout=read_timeout)
        hub = Hub(load=reader.row, max_waiting_polls=100)
        feed = Feed(
            hub,
            layer or get_channel_layer(),
            group="selector_app",
            resync_interval=resync_interval,
            reader=reader,
        )
        started.append(feed)
        feed.start()
        async with asyncio.timeout(5):
            await hub.synced.wait()
        return feed

    try:
        yield start
    finally:
        for feed in started:
            await feed.aclose()
