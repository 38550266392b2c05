"""Fixtures shared by the whole suite.

Every test gets fresh settings, a fresh in-memory layer and no runtime; a
test that needs the hub asks for the ``hub`` fixture, which yields once the
hub has read the rows and always closes it.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from channels.layers import channel_layers
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from selector_app import runtime, services
from selector_app.conf import get_config
from selector_app.outages import Outage
from tests.support.server import (
    ServerProcess,
    documented_command,
    manage,
    project_env,
)

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
        "server_database",
        "serve",
        "browser",
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
        wait_for_resource(server.url, "/live/comet/res?seq=0")
        yield server


def wait_for_resource(base_url: str, path: str, timeout: float = 15.0) -> None:
    """Until ``path`` answers 200: the host site's migrations create no ``res``;
    its embedded updater does, once the first request has started the hub."""
    import time

    import httpx

    deadline = time.monotonic() + timeout
    while (status := httpx.get(base_url + path, timeout=5).status_code) != 200:
        assert time.monotonic() < deadline, f"{path}: {status} after {timeout} s"
        time.sleep(0.1)


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


#: What a server's log must never show.
TROUBLE = ("ERROR", "Traceback", "never retrieved", "took too long")


@pytest.fixture(scope="module")
def server_database(tmp_path_factory) -> str:
    """A migrated SQLite database for the servers of one test module."""
    directory = tmp_path_factory.mktemp("served")
    url = f"sqlite:///{directory / 'db.sqlite3'}"
    manage("migrate", "-v0", env=project_env(DATABASE_URL=url))
    return url


@pytest.fixture
def serve(server_database, tmp_path):
    """``with serve(kind, **settings) as server``: the documented command of
    ``kind`` with those ``SELECTOR_APP`` settings (``replace=`` edits the
    command, e.g. shorter pings). Its log must show no error or traceback."""

    @contextmanager
    def start(kind: str, replace=None, **overrides) -> Iterator[ServerProcess]:
        env = project_env(
            DATABASE_URL=server_database,
            DJANGO_SETTINGS_MODULE="tests.support.settings_from_env",
            SELECTOR_TEST_OVERRIDES=json.dumps(overrides),
        )
        command = documented_command(kind, **(replace or {}))
        log = Path(tmp_path) / f"{kind}.log"
        with ServerProcess(env, log, command=command) as server:
            yield server
        text = log.read_text(errors="replace")
        assert not [word for word in TROUBLE if word in text], text[-3000:]

    return start


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium through Playwright, for one test module."""
    from playwright.sync_api import sync_playwright

    from tests.support.browser import launch, require_chromium

    executable_path = require_chromium()
    with sync_playwright() as playwright:
        browser = launch(playwright, executable_path)
        yield browser
        browser.close()
