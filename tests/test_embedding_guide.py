"""docs/embedding.md, word for word, on a brand-new ``startproject`` site.

The module's fixture does what a new user does: a fresh virtual environment,
the guide's ``pip install`` (the checkout for ``/path/to/this/checkout``, its
one placeholder), ``django-admin startproject mysite``, then every block of
the guide as written: files whole (their ``# path`` line names them),
settings appended to ``mysite/settings.py`` in the guide's order. Then the
guide's ``check`` and ``migrate``, and each of its three ways to serve the
site (port 8000 becomes a free port), with a real HTTP client, real
WebSockets and a publish from ``manage.py shell``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.support.docs import doc_block, replace
from tests.support.server import ROOT, free_port, tail

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

#: Blocks appended to mysite/settings.py, in the guide's order.
SETTINGS_BLOCKS = (
    "embedding/installed-apps",
    "embedding/asgi-setting",
    "embedding/in-memory-layer",
    "embedding/settings",
    "embedding/template-dirs",
    "embedding/authorize",
)
#: Blocks that are whole files, by their header line.
FILE_BLOCKS = (
    "embedding/consumer",
    "embedding/asgi",
    "embedding/urls",
    "embedding/base-template",
    "embedding/access",
)


def header_path(block: str) -> str:
    """``mysite/asgi.py`` from ``# mysite/asgi.py`` or ``{# templates/x #}``."""
    first = block.splitlines()[0]
    return first.removeprefix("{#").removeprefix("#").removesuffix("#}").strip()


@dataclass
class Site:
    """The new site: its directory and the environment of its virtualenv."""

    project: Path
    env: dict[str, str]
    #: Resource rows right after ``migrate``, before the guide creates one.
    rows_after_migrate: int

    def sh(self, script: str, *, stdin: str | None = None, cwd: Path | None = None):
        """Run ``script`` with bash in the site's environment; its output."""
        return sh(script, env=self.env, cwd=cwd or self.project, stdin=stdin)

    def shell(self, code: str) -> str:
        """Run Python ``code`` in ``python manage.py shell``; its last line."""
        return self.sh("python manage.py shell", stdin=code).strip().splitlines()[-1]


def sh(script: str, *, env: dict[str, str], cwd: Path, stdin: str | None = None):
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env=env,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, (
        f"{script}\nfailed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout + result.stderr


def checkout_version() -> str:
    """``selector_app.__version__`` of the checkout, read without importing it."""
    source = (ROOT / "selector_app" / "__init__.py").read_text()
    return re.search(r"^__version__ = \"(.+)\"$", source, re.M)[1]


def fresh_env(venv: Path) -> dict[str, str]:
    """A shell of that virtualenv, with nothing of this project's."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "SELECTOR_", "PYTHON", "VIRTUAL_ENV"))
        and key not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        VIRTUAL_ENV=str(venv),
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Site:
    root = tmp_path_factory.mktemp("new-site")
    venv = root / "venv"
    subprocess.run(
        [getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(venv)],
        check=True,
        timeout=120,
    )
    env = fresh_env(venv)
    # Step 1, and a new site to follow the guide in.
    install = replace(
        doc_block("embedding/install"), "/path/to/this/checkout", str(ROOT)
    )
    install = replace(install, "-VERSION-", f"-{checkout_version()}-")
    sh(install, env=env, cwd=root)
    sh(doc_block("embedding/startproject"), env=env, cwd=root)
    project = root / "mysite"
    settings = project / "mysite" / "settings.py"
    # Steps 2-6: every block as written.
    for name in FILE_BLOCKS:
        block = doc_block(name)
        path = project / header_path(block)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(block)
    for name in SETTINGS_BLOCKS:
        with settings.open("a") as file:
            file.write("\n" + doc_block(name))
    fast_path = doc_block("embedding/fast-path")  # step 3's optional wrapper
    assert header_path(fast_path) == "mysite/asgi.py, at the end"
    with (project / "mysite" / "asgi.py").open("a") as file:
        file.write("\n" + fast_path)
    # Step 7.
    checked = sh(doc_block("embedding/migrate"), env=env, cwd=project)
    assert "System check identified no issues" in checked
    new = Site(project, env, rows_after_migrate=0)
    new.rows_after_migrate = int(
        new.shell(
            "from selector_app.models import Resource\n"
            "print(Resource.objects.count())\n"
        )
    )
    new.shell(doc_block("embedding/create"))
    return new


def test_migrate_puts_no_rows_in_the_new_sites_database(site):
    assert site.rows_after_migrate == 0  # no demo resource, no data at all


def test_the_new_site_installed_the_package_not_the_checkout(site):
    where = site.shell("import selector_app; print(selector_app.__file__)")
    assert "site-packages" in where and not where.startswith(str(ROOT))


class Served:
    """One of the guide's serve commands, running in its own session."""

    def __init__(self, site: Site, line: str, log: Path) -> None:
        self.port = free_port()
        self.log = log
        self.command = replace(line, "8000", str(self.port))
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                ["bash", "-c", self.command],
                env=site.env,
                cwd=site.project,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # runserver's reloader has a child
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"exited:\n{tail(log)}"
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError(f"{self.command} did not listen:\n{tail(log)}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """SIGTERM to the whole session (SIGKILL after 15 s), and reap."""
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break  # the session has ended
            try:
                self.process.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue


SERVE = {line.split()[0]: line for line in doc_block("embedding/serve").splitlines()}


def parse(message: str) -> tuple[int, str]:
    sequence, data = message.split(" ", 1)
    return int(sequence), data


@pytest.mark.parametrize("program", ["python", "daphne", "uvicorn"])
async def test_the_new_site_serves_the_page_comet_and_sockets(site, tmp_path, program):
    served = Served(site, SERVE[program], tmp_path / "server.log")
    try:
        await exercise(site, served, static=program == "python")
    except BaseException:
        print(tail(served.log, 80))
        raise
    finally:
        served.stop()
    assert "Traceback" not in served.log.read_text()


async def exercise(site: Site, served: Served, *, static: bool) -> None:
    origin, ws = served.url, served.url.replace("http", "ws", 1)
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
        page = await http.get("/live/")
        assert page.status_code == 200
        assert "· My site</title>" in page.text  # the guide's base template
        assert 'data-url="/live/comet"' in page.text
        if static:  # runserver serves static files; Daphne and Uvicorn do not
            script = "/static/selector_app/live.js"
            assert script in page.text
            assert (await http.get(script)).status_code == 200

        first = await http.get("/live/comet?seq=0")  # DEFAULT_RESOURCE: prices
        assert first.status_code == 200, first.text
        sequence, _ = parse(first.text)
        # The AUTHORIZE hook of the guide: anonymous clients read PUBLIC only.
        assert (await http.get("/live/comet/secret?seq=0")).status_code == 403

        held = asyncio.create_task(http.get(f"/live/comet/prices?seq={sequence}"))
        await asyncio.to_thread(publish_from_the_shell, site)
        # The shell is another process: with the in-memory layer the server
        # finds the new version at its next re-read (RESYNC_INTERVAL, 5 s).
        async with asyncio.timeout(20):
            answer = await held
        newer, data = parse(answer.text)
        assert newer > sequence and json.loads(data) == {"EUR": 1.08, "GBP": 0.86}

    async with asyncio.timeout(20):
        async with connect(f"{ws}/live/websocket", origin=origin) as socket_:
            assert parse(await socket_.recv())[0] >= newer
        async with connect(f"{ws}/live/bidirectional", origin=origin) as socket_:
            await socket_.send("hello")
            assert await socket_.recv() == "you said: HELLO"
        async with connect(f"{ws}/ws/ping", origin=origin) as socket_:
            await socket_.send("ping")
            assert await socket_.recv() == "pong anonymous"


def publish_from_the_shell(site: Site) -> None:
    """Step 9's blocks in ``manage.py shell``: the receiver, a sync publish,
    then the async one."""
    site.shell(
        doc_block("embedding/on-publish")
        + doc_block("embedding/publish")
        + "\nimport asyncio\n\nasyncio.run(publish_prices(prices))\n"
    )
