"""The package as an index would get it, installed the way a host site would.

``python -m build`` makes the wheel and the sdist, ``twine check`` reads them
as a package index does, and the wheel goes into fresh virtual environments
(``python -m venv``, not the development one) with no extra, with
``[daphne]`` and with ``[redis]``. In each, a brand-new
``django-admin startproject`` site adds the app and runs: ``check``,
``migrate``, the page, Comet and WebSocket through a real server, and the
updater (embedded, or ``runupdater`` with Redis). Every dependency comes from
one local wheel directory filled once per run, so no environment waits on the
network.
"""

from __future__ import annotations

import asyncio
import email
import os
import re
import subprocess
import sys
import tarfile
import textwrap
import time
import zipfile
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

import selector_app
from tests.support.server import ROOT, free_port, tail, terminate

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

#: Where the README's images and links must point (pyproject's project URLs).
PROJECT = "https://github.com/selector-app/django-selector-app"
EXTRA = 'pip install "django-selector-app[redis]"'


def run(*command: object, cwd: Path | None = None, env=None, timeout: float = 240):
    """Run ``command``; return its output, or fail the test with it."""
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """``python -m build``: the sdist, then the wheel built from that sdist."""
    directory = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--outdir", directory, ROOT, cwd=ROOT)
    return directory


@pytest.fixture(scope="module")
def wheel(dist) -> Path:
    [built] = dist.glob("*.whl")
    return built


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory, wheel) -> Path:
    """Every wheel the environments below install, fetched once."""
    directory = tmp_path_factory.mktemp("wheelhouse")
    run(
        *(sys.executable, "-m", "pip", "download", "--quiet", "-d", directory),
        f"{wheel}[daphne,redis]",
        *("uvicorn", "websockets"),
    )
    return directory


def test_build_gives_a_wheel_and_an_sdist_that_twine_accepts(dist):
    names = sorted(path.name for path in dist.iterdir())
    version = selector_app.__version__
    assert names == [
        f"django_selector_app-{version}-py3-none-any.whl",
        f"django_selector_app-{version}.tar.gz",
    ]
    output = run(sys.executable, "-m", "twine", "check", "--strict", *dist.iterdir())
    assert output.count("PASSED") == 2, output


def test_the_wheel_carries_templates_static_files_migrations_and_types(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "selector_app/py.typed",
        "selector_app/templates/selector_app/index.html",
        "selector_app/templates/selector_app/panels/websocket.html",
        "selector_app/static/selector_app/live.js",
        "selector_app/static/selector_app/client.js",
        "selector_app/templates/selector_app/panels/sse.html",
        "selector_app/migrations/0001_initial.py",
        "selector_app/templatetags/live_panels.py",
        "selector_app/selector/selector.py",
        "selector_app/management/commands/runupdater.py",
        f"django_selector_app-{selector_app.__version__}.dist-info/licenses/LICENSE",
    ):
        assert required in names
    assert not [name for name in names if name.startswith(("tests/", "realtime_site/"))]


def test_the_metadata_says_licence_versions_and_where_the_project_lives(wheel):
    [path] = [
        name for name in zipfile.ZipFile(wheel).namelist() if name.endswith("METADATA")
    ]
    metadata = email.message_from_bytes(zipfile.ZipFile(wheel).read(path))
    assert metadata["License-Expression"] == "MIT"
    assert metadata["Requires-Python"] == ">=3.11"
    classifiers = metadata.get_all("Classifier")
    for tested in (
        "Programming Language :: Python :: 3.11",
        "Framework :: Django :: 5.2",
        "Typing :: Typed",
    ):
        assert tested in classifiers
    urls = dict(line.split(", ", 1) for line in metadata.get_all("Project-URL"))
    assert urls["Homepage"] == PROJECT
    assert set(urls) >= {"Homepage", "Documentation", "Changelog", "Issues"}
    assert set(metadata.get_all("Provides-Extra")) == {"daphne", "metrics", "redis"}
    # The description is the README, whose images and links must work on an
    # index that has none of the repository's other files.
    description = metadata.get_payload()
    assert "![The demo page" in description
    targets = re.findall(r"\]\(([^)\s]+)\)", description)
    assert targets
    relative = [target for target in targets if not target.startswith("https://")]
    assert not relative, f"relative links break on a package index: {relative}"


def test_the_sdist_carries_licence_changelog_and_readme(dist):
    [sdist] = dist.glob("*.tar.gz")
    top = f"django_selector_app-{selector_app.__version__}"
    with tarfile.open(sdist) as archive:
        names = set(archive.getnames())
    for required in ("LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml"):
        assert f"{top}/{required}" in names
    assert f"{top}/selector_app/py.typed" in names


def test_the_changelog_names_this_release():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## {selector_app.__version__} — " in changelog


# A brand-new site, as `django-admin startproject mysite .` makes it, plus
# what embedding the app takes. {daphne}, {layer} and {updater} vary by extra.
SETTINGS = """
INSTALLED_APPS = [{daphne}*INSTALLED_APPS, "channels", "selector_app"]
ASGI_APPLICATION = "mysite.asgi.application"
ALLOWED_HOSTS = ["127.0.0.1"]
CHANNEL_LAYERS = {{"default": {layer}}}
SELECTOR_APP = {{"EMBEDDED_UPDATER": {updater}, "UPDATE_INTERVAL": 0.3}}
SILENCED_SYSTEM_CHECKS = ["selector_app.W001"]
"""

ASGI = """
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from selector_app.routing import websocket_urlpatterns  # noqa: E402
from selector_app.security import OriginValidator  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": OriginValidator(
            URLRouter([path("live/", URLRouter(websocket_urlpatterns))])
        ),
    }
)
"""

URLS = """
from django.urls import include, path

urlpatterns = [path("live/", include("selector_app.urls"))]
"""

LAYERS = {
    "memory": '{"BACKEND": "channels.layers.InMemoryChannelLayer"}',
    "redis": '__import__("selector_app.layers").layers.redis_channel_layer('
    'os.environ["REDIS_URL"])',
}


class Site:
    """A startproject site in a fresh virtual environment of its own."""

    def __init__(self, directory: Path, wheelhouse: Path, wheel: Path, extra: str):
        self.directory = directory
        self.venv = directory / "venv"
        self.python = self.venv / "bin" / "python"
        self.project = directory / "project"
        self.env = {
            "PATH": f"{self.venv / 'bin'}:/usr/bin:/bin",
            "HOME": str(directory),
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SETTINGS_MODULE": "mysite.settings",
        }
        run(sys.executable, "-m", "venv", self.venv)
        requirement = f"{wheel}[{extra}]" if extra else str(wheel)
        server = [] if extra == "daphne" else ["uvicorn", "websockets"]
        run(
            *(self.python, "-m", "pip", "install", "--quiet", "--no-index"),
            *("--find-links", wheelhouse, requirement, *server),
            env=self.env,
        )
        self.project.mkdir()
        run(self.venv / "bin" / "django-admin", "startproject", "mysite", ".",
            cwd=self.project, env=self.env)  # fmt: skip

    def configure(self, *, daphne: bool, layer: str, updater: bool) -> None:
        settings = self.project / "mysite" / "settings.py"
        settings.write_text(
            "import os\n"
            + settings.read_text()
            + SETTINGS.format(
                daphne='"daphne", ' if daphne else "",
                layer=LAYERS[layer],
                updater=updater,
            )
        )
        (self.project / "mysite" / "asgi.py").write_text(ASGI)
        (self.project / "mysite" / "urls.py").write_text(URLS)

    def manage(self, *args: str, check: bool = True, **env: str):
        command = [self.python, "manage.py", *args]
        environment = {**self.env, **env}
        if check:
            return run(*command, cwd=self.project, env=environment)
        return subprocess.run(
            command,
            cwd=self.project,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def python_says(self, code: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.python, "-c", textwrap.dedent(code)],
            cwd=self.project,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )


class Process:
    """A command of the site running in the background until the block ends."""

    def __init__(self, site: Site, command: list[object], name: str, **env: str):
        self.log = site.directory / f"{name}.log"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(part) for part in command],
                cwd=site.project,
                env={**site.env, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def listening(self, port: int, timeout: float = 60.0) -> Process:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, tail(self.log)
            try:
                with httpx.Client() as client:
                    client.get(f"http://127.0.0.1:{port}/live/", timeout=1)
                return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError(f"nothing listened on {port}:\n{tail(self.log)}")

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc_info: object) -> None:
        terminate(self.process)
        assert "Traceback" not in self.log.read_text(), tail(self.log)


def server_command(site: Site, server: str, port: int) -> list[object]:
    if server == "runserver":  # Daphne's, as "daphne" first in INSTALLED_APPS makes it
        return [
            site.python,
            "manage.py",
            "runserver",
            "--noreload",
            f"127.0.0.1:{port}",
        ]
    return [
        *(site.python, "-m", "uvicorn", "mysite.asgi:application"),
        *("--host", "127.0.0.1", "--port", port, "--ws", "websockets-sansio"),
    ]


async def live(port: int) -> None:
    """The page, Comet (a held poll answered by the next publish) and WebSocket
    push under /live/, as a browser and a script see them."""
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        page = await http.get("/live/")
        assert page.status_code == 200 and "/live/comet" in page.text
        script = re.search(r'src="([^"]+live\.js)"', page.text).group(1)
        first = await http.get("/live/comet?seq=0")
        assert first.status_code == 200, first.text
        sequence = int(first.text.split(" ", 1)[0])
        async with asyncio.timeout(10):
            held = await http.get(f"/live/comet?seq={sequence}")
        assert int(held.text.split(" ", 1)[0]) > sequence  # the updater publishes
    async with asyncio.timeout(10), connect(f"ws://127.0.0.1:{port}/live/websocket",
                                            origin=base) as ws:  # fmt: skip
        one, two = await ws.recv(), await ws.recv()
        assert int(two.split(" ", 1)[0]) > int(one.split(" ", 1)[0])
    assert script.endswith("selector_app/live.js")


def assert_no_redis(site: Site) -> None:
    """The environment really lacks the extra, and the app says which to add."""
    assert site.python_says("import redis").returncode != 0
    assert site.python_says("import channels_redis").returncode != 0
    lock = site.python_says(
        """
        import django; django.setup()
        import selector_app.locks
        """
    )
    assert "ImproperlyConfigured" in lock.stderr and EXTRA in lock.stderr
    assert "ModuleNotFoundError" not in lock.stderr.split("ImproperlyConfigured")[1]
    # runupdater's help needs no Redis; running it says why it cannot run here.
    assert "--resource" in site.manage("runupdater", "--help")
    # A channels_redis layer in the settings: check names the extra.
    checked = site.manage(
        "check",
        check=False,
        DJANGO_SETTINGS_MODULE="mysite.redis_settings",
    )
    assert checked.returncode != 0
    assert "selector_app.E010" in checked.stderr and EXTRA in checked.stderr


@pytest.mark.parametrize("extra", ["", "daphne"])
async def test_a_new_site_without_redis_runs_with_the_embedded_updater(
    extra, tmp_path, wheelhouse, wheel
):
    site = Site(tmp_path, wheelhouse, wheel, extra)
    site.configure(daphne=extra == "daphne", layer="memory", updater=True)
    (site.project / "mysite" / "redis_settings.py").write_text(
        "from mysite.settings import *  # noqa: F403\n"
        "CHANNEL_LAYERS = {'default': {'BACKEND': "
        "'channels_redis.core.RedisChannelLayer'}}\n"
    )
    assert "no issues" in site.manage("check")
    site.manage("migrate", "-v0")
    assert_no_redis(site)
    port = free_port()
    server = "runserver" if extra == "daphne" else "uvicorn"
    with Process(site, server_command(site, server, port), server).listening(port):
        await live(port)


async def test_a_new_site_with_redis_runs_runupdater_beside_its_servers(
    tmp_path, wheelhouse, wheel, redis_server
):
    site = Site(tmp_path, wheelhouse, wheel, "redis")
    site.configure(daphne=False, layer="redis", updater=False)
    env = {"REDIS_URL": redis_server.url}
    assert "no issues" in site.manage("check", **env)
    site.manage("migrate", "-v0", **env)
    assert site.python_says("import daphne").returncode != 0  # not asked for
    ports = free_port(), free_port()
    updater = [site.python, "manage.py", "runupdater", "--create", "--interval", "0.3"]
    with (
        Process(site, updater, "runupdater", **env) as publisher,
        Process(
            site, server_command(site, "uvicorn", ports[0]), "one", **env
        ).listening(ports[0]),
        Process(
            site, server_command(site, "uvicorn", ports[1]), "two", **env
        ).listening(ports[1]),
    ):
        for port in ports:  # both processes follow the one updater
            await live(port)
    assert "acquired the lock" in publisher.log.read_text()


def test_runupdater_help_and_the_embedded_updater_import_no_redis():
    """In process: the modules a site without Redis loads never import it."""
    code = textwrap.dedent(
        """
        import sys
        sys.modules["redis"] = None  # as if it were not installed
        sys.modules["channels_redis"] = None
        import django
        from django.conf import settings
        settings.configure(
            INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth",
                            "channels", "selector_app"],
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3",
                                   "NAME": ":memory:"}},
            CHANNEL_LAYERS={"default": {
                "BACKEND": "channels.layers.InMemoryChannelLayer"}},
        )
        django.setup()
        from django.core.management import call_command
        import selector_app.runtime, selector_app.updater, selector_app.views
        import selector_app.consumers, selector_app.fastpath
        from selector_app.management.commands import runupdater
        try:
            import selector_app.locks
        except Exception as error:
            print(type(error).__name__, error)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ImproperlyConfigured") and EXTRA in result.stdout
