"""Daphne on uvloop (selector_app/daphne.py), in real Daphne processes.

The documented production command and ``manage.py runserver`` must run
Daphne's reactor on uvloop and say so; without uvloop (hidden by a module on
``PYTHONPATH`` whose import fails) or with the opt-out they must still serve,
on asyncio's own loop, and say why.
"""

from __future__ import annotations

import sys

import httpx
import pytest

from tests.support.server import ROOT, ServerProcess, manage, project_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

ON_UVLOOP = "INFO selector_app.daphne: Daphne is running on uvloop (uvloop.Loop)."
ON_ASYNCIO = "selector_app.daphne: Daphne is running on asyncio's own event loop"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    directory = tmp_path_factory.mktemp("daphne")
    env = project_env(DATABASE_URL=f"sqlite:///{directory / 'db.sqlite3'}")
    manage("migrate", "-v0", env=env)
    return env


@pytest.fixture
def without_uvloop(env, tmp_path):
    """The environment of a machine where ``import uvloop`` fails."""
    (tmp_path / "uvloop.py").write_text("raise ImportError('no uvloop here')\n")
    return {**env, "PYTHONPATH": f"{tmp_path}:{env['PYTHONPATH']}"}


def serve_and_read_log(server: ServerProcess) -> str:
    """Start the server, get one Comet answer (the reactor has run its
    start-up calls by then), stop it and return its log."""
    with server:
        reply = httpx.get(f"{server.url}/comet?seq=0", timeout=10)
        assert reply.status_code == 200, server.log_tail()
    return server.log_path.read_text()


def test_the_documented_command_runs_daphne_on_uvloop(env, tmp_path):
    log = serve_and_read_log(
        ServerProcess.documented(env, tmp_path / "server.log", "daphne")
    )
    assert ON_UVLOOP in log
    assert ON_ASYNCIO not in log


def test_without_uvloop_it_warns_and_serves_on_asyncio(without_uvloop, tmp_path):
    log = serve_and_read_log(
        ServerProcess.documented(without_uvloop, tmp_path / "server.log", "daphne")
    )
    assert (
        f"WARNING {ON_ASYNCIO} (asyncio.unix_events._UnixSelectorEventLoop), "
        "not uvloop: uvloop is not installed (pip install uvloop)." in log
    )


def test_the_opt_out_keeps_asyncio_without_a_warning(env, tmp_path):
    opted_out = {**env, "SELECTOR_DAPHNE_UVLOOP": "0"}
    log = serve_and_read_log(
        ServerProcess.documented(opted_out, tmp_path / "server.log", "daphne")
    )
    assert f"INFO {ON_ASYNCIO}" in log
    assert "SELECTOR_DAPHNE_UVLOOP=0" in log
    assert "WARNING" not in log


def runserver(env: dict[str, str], log_path) -> ServerProcess:
    # --noreload: stopping the autoreloader's parent would orphan its child;
    # the child runs manage.py's main() just the same.
    command = [sys.executable, str(ROOT / "manage.py"), "runserver", "--noreload"]
    return ServerProcess(env, log_path, command=[*command, "{port}"])


def test_runserver_runs_daphne_on_uvloop(env, tmp_path):
    log = serve_and_read_log(runserver(env, tmp_path / "server.log"))
    assert "Starting ASGI/Daphne" in log
    assert ON_UVLOOP in log


def test_runserver_without_uvloop_warns_and_serves(without_uvloop, tmp_path):
    log = serve_and_read_log(runserver(without_uvloop, tmp_path / "server.log"))
    assert f"WARNING {ON_ASYNCIO}" in log
