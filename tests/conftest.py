from __future__ import annotations

import os

import pytest
from channels.layers import channel_layers

from selector_app import gc_tuning
from selector_app import hub as hub_module
from selector_app.conf import get_config


@pytest.fixture(autouse=True)
def _untuned_collector(monkeypatch):
    """The test runner's collector is never tuned by a hub a test starts.

    Many tests replace ``SELECTOR_APP`` wholesale (so ``GC_TUNING`` is back
    at its default, on), and the memory tests need ``gc.collect()`` to see
    every object: a frozen start-up would hide them. The GC tests opt back in.
    """
    monkeypatch.setattr(gc_tuning, "_tuned_in", os.getpid())


@pytest.fixture(autouse=True)
def _fresh_process_state():
    """Each test gets a new in-memory layer, no hub, and freshly read settings.

    Hubs belong to an event loop and each test has its own loop; the loop's
    runner cancels a left-over hub's tasks when the test ends.
    """
    channel_layers.backends.clear()
    hub_module._hubs.clear()
    get_config.cache_clear()
    yield
    hub_module._hubs.clear()


@pytest.fixture
async def hub():
    """The test loop's hub, started, and closed (tasks awaited) afterwards."""
    live = hub_module.get_hub()
    yield live
    await hub_module.close_hub()


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


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    """The demo as a user runs it: a real Daphne process, SQLite, in-memory
    layer and the embedded updater, on a free port."""
    from tests.support.server import ServerProcess, manage, project_env

    directory = tmp_path_factory.mktemp("demo")
    env = project_env(DATABASE_URL=f"sqlite:///{directory / 'db.sqlite3'}")
    manage("migrate", "-v0", env=env)
    with ServerProcess(env, directory / "server.log") as server:
        yield server


@pytest.fixture(scope="module")
def host_server(tmp_path_factory):
    """tests/hostsite (the app embedded under /live/) on a real Daphne process,
    with an admin user ``admin`` / ``admin-pass``."""
    from tests.support.server import ServerProcess, manage, project_env

    directory = tmp_path_factory.mktemp("hostsite")
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
    server = ServerProcess(
        env, directory / "server.log", application="tests.hostsite.asgi:application"
    )
    with server:
        yield server
