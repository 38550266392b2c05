"""The server side of a benchmark run: Redis, publisher and server processes.

Every process is started here, pinned with ``taskset`` to the server core,
waited for until it is ready, sampled through ``/proc`` and stopped again.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tests.support.redis import RedisServer
from tests.support.server import (
    ROOT,
    documented_command,
    free_port,
    manage,
    project_env,
    tail,
    terminate,
)

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
#: Seconds between two scrapes of each server's /metrics in ``-metrics``
#: configurations (Prometheus' default scrape interval is 15 s; 5 s is an
#: aggressive one, so the cost measured is an upper bound).
SCRAPE_EVERY = float(os.environ.get("BENCH_SCRAPE_EVERY", "5"))  # 0: no scrapes
PAGE = os.sysconf("SC_PAGE_SIZE")
PUBLISHED = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*Published \S+ #(\d+)", re.M
)


@dataclass(frozen=True)
class Config:
    """One server configuration of the comparison."""

    name: str
    server: str  # "daphne", "uvicorn" or "baseline"
    processes: int = 1
    redis: bool = False
    application: str = "realtime_site.asgi:application"
    publisher: str = "runupdater"  # "embedded", "runupdater", "stock", "self"
    gc_tuning: bool = True
    comet_fast_path: bool = True
    workloads: tuple[str, ...] = ("w1", "w2", "w3", "w4")
    label: str = ""
    settings: str = "realtime_site.settings"
    ws: str = "websockets"  # uvicorn's --ws
    #: How Daphne starts: "launcher" (docs/deployment.md's command, uvloop),
    #: "stock" (the same arguments to plain ``daphne``) or "runserver".
    daphne: str = "launcher"
    #: "main": run the servers and the publisher from a checkout of the
    #: ``--main-rev`` revision (today's main) instead of this tree.
    checkout: str = ""
    #: Extra environment of the servers, e.g. (("SELECTOR_DAPHNE_UVLOOP", "0"),).
    env: tuple[tuple[str, str], ...] = ()
    #: The configurations tables.py divides this one's µs/frame by (same N).
    floor: str = ""
    main: str = ""
    #: SELECTOR_APP["METRICS"] on, and /metrics scraped every SCRAPE_EVERY s.
    metrics: bool = False


def _configs() -> dict[str, Config]:
    stock = "bench.stock_channels_asgi:application"
    base = [
        Config(
            "daphne1",
            "daphne",
            publisher="embedded",
            floor="floor-daphne",
            main="daphne1-main",
            label="Daphne x1 (docs/deployment.md's command)",
        ),
        Config(
            "daphne2",
            "daphne",
            2,
            redis=True,
            floor="floor-daphne",
            label="Daphne x2 + Redis",
        ),
        Config(
            "uvicorn1",
            "uvicorn",
            1,
            redis=True,
            floor="floor-uvicorn",
            label="Uvicorn x1 + Redis",
        ),
        Config(
            "uvicorn2",
            "uvicorn",
            2,
            redis=True,
            floor="floor-uvicorn",
            label="Uvicorn x2 + Redis",
        ),
        Config(
            "baseline",
            "baseline",
            application="",
            publisher="self",
            workloads=("w1",),
            label="raw websockets (baseline)",
        ),
    ]
    base += [
        Config(
            f"stock-{server}1",
            server,
            redis=True,
            application=stock,
            publisher="stock",
            workloads=("w1",),
            label=f"stock Channels groups, {server.capitalize()} x1 + Redis",
        )
        for server in ("uvicorn", "daphne")
    ]
    base += [
        Config(
            "daphne1-django",
            "daphne",
            publisher="embedded",
            comet_fast_path=False,
            workloads=("w2",),
            label="Daphne x1, Comet through Django's handler and middleware",
        ),
        Config(
            "uvicorn1-django",
            "uvicorn",
            redis=True,
            comet_fast_path=False,
            workloads=("w2",),
            label="Uvicorn x1 + Redis, Comet through Django's handler and middleware",
        ),
        Config(
            "uvicorn1-django-nomw",
            "uvicorn",
            redis=True,
            comet_fast_path=False,
            workloads=("w2",),
            settings="bench.settings_nomw",
            label="Uvicorn x1 + Redis, Comet through Django's handler, no middleware",
        ),
    ]
    base.append(
        Config(
            "uvicorn1-sansio",
            "uvicorn",
            redis=True,
            ws="websockets-sansio",
            floor="floor-uvicorn",
            main="uvicorn1-main",
            label="Uvicorn x1 + Redis, --ws websockets-sansio",
        )
    )
    base.append(
        Config(
            "uvicorn2-sansio",
            "uvicorn",
            2,
            redis=True,
            ws="websockets-sansio",
            floor="floor-uvicorn",
            main="uvicorn2-main",
            label="Uvicorn x2 + Redis, --ws websockets-sansio",
        )
    )
    base += _floors_and_main()
    configs = {config.name: config for config in base}
    for config in base:
        if config.application != "realtime_site.asgi:application":
            continue  # not the app: nothing to count
        name = f"{config.name}-metrics"
        configs[name] = Config(
            **{
                **config.__dict__,
                "name": name,
                "metrics": True,
                "label": f"{config.label}, metrics on (scraped every {SCRAPE_EVERY} s)",
            }
        )
    for config in base:
        name = f"{config.name}-nogc"
        configs[name] = Config(
            **{
                **config.__dict__,
                "name": name,
                "gc_tuning": False,
                "label": f"{config.label}, no GC tuning",
            }
        )
    return configs


def _floors_and_main() -> list[Config]:
    """Issue 19's comparison: the one-loop floor under each server, today's
    main alongside, and the Daphne variants that attribute the gain."""
    floor = "bench.floor_app:application"
    daphne = {"floor": "floor-daphne", "main": "daphne1-main"}
    own = {"publisher": "self", "application": floor, "workloads": ("w1",)}
    return [
        Config(
            "floor-uvicorn",
            "uvicorn",
            ws="websockets-sansio",
            **own,
            label="one-loop ASGI floor, Uvicorn sansio (uvloop)",
        ),
        Config(
            "floor-daphne",
            "daphne",
            **own,
            label="one-loop ASGI floor, Daphne on uvloop, lazy autobahn logs",
        ),
        Config(
            "floor-daphne-stock",
            "daphne",
            daphne="stock",
            **own,
            env=(("SELECTOR_LAZY_AUTOBAHN_LOGS", "0"),),
            label="one-loop ASGI floor, stock Daphne",
        ),
        Config(
            "daphne1-main",
            "daphne",
            publisher="embedded",
            daphne="stock",
            checkout="main",
            floor="floor-daphne-stock",
            label="today's main, stock Daphne x1",
        ),
        Config(
            "uvicorn1-main",
            "uvicorn",
            redis=True,
            ws="websockets-sansio",
            checkout="main",
            floor="floor-uvicorn",
            label="today's main, Uvicorn x1 + Redis, sansio",
        ),
        Config(
            "uvicorn2-main",
            "uvicorn",
            2,
            redis=True,
            ws="websockets-sansio",
            checkout="main",
            label="today's main, Uvicorn x2 + Redis, sansio",
        ),
        Config(
            "daphne1-runserver",
            "daphne",
            publisher="embedded",
            daphne="runserver",
            **daphne,
            label="manage.py runserver --noreload (Daphne x1)",
        ),
        # Attribution: daphne1 with one of issue 19's changes turned off.
        *(
            Config(
                name,
                "daphne",
                publisher="embedded",
                **daphne,
                env=((variable, "0"),),
                label=f"Daphne x1, {what}",
            )
            for name, variable, what in (
                (
                    "daphne1-asyncio",
                    "SELECTOR_DAPHNE_UVLOOP",
                    "asyncio's loop (uvloop off)",
                ),
                (
                    "daphne1-eager-logs",
                    "SELECTOR_LAZY_AUTOBAHN_LOGS",
                    "autobahn's eager debug-log arguments",
                ),
                (
                    "daphne1-buffered-writes",
                    "SELECTOR_EAGER_TWISTED_WRITES",
                    "Twisted's buffered writes",
                ),
            )
        ),
    ]


CONFIGS = _configs()
#: What ``--configs all`` means (the GC-off and stock variants are opt-in).
DEFAULT_CONFIGS = ("daphne1", "daphne2", "uvicorn1", "uvicorn2", "baseline")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


def pin(pid: int, cores: str) -> None:
    subprocess.run(
        ["taskset", "-a", "-p", "-c", cores, str(pid)],
        check=True,
        capture_output=True,
    )


@dataclass
class Process:
    """A child process with its log file."""

    name: str
    popen: subprocess.Popen
    log: Path
    port: int | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 30) -> str:
        return tail(self.log, lines)

    def stop(self, timeout: float = 15.0) -> None:
        terminate(self.popen, timeout)


@dataclass
class Workspace:
    """A temporary directory with a migrated SQLite database, shared by runs."""

    directory: Path = field(
        default_factory=lambda: Path(tempfile.mkdtemp(prefix="selector-bench-"))
    )

    #: The revision ``checkout="main"`` configurations run (``--main-rev``).
    main_rev: str = "e9da150"

    def __post_init__(self) -> None:
        self.database = self.directory / "bench.sqlite3"
        env = self.env()
        manage("migrate", "--verbosity", "0", env=env, timeout=120)
        manage(
            "shell",
            "-c",
            "from selector_app.services import resource_ensure; "
            "resource_ensure(name='res')",
            env=env,
        )

    def root(self, config: Config) -> Path:
        """The source tree ``config``'s processes run from."""
        if config.checkout != "main":
            return ROOT
        target = self.directory / f"checkout-{self.main_rev}"
        if not target.exists():
            # git archive, not a worktree: nothing to clean up in the repository.
            archive = subprocess.run(
                ["git", "-C", str(ROOT), "archive", self.main_rev],
                capture_output=True,
                check=True,
            ).stdout
            target.mkdir()
            subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
        return target

    def env(self, **overrides: str) -> dict[str, str]:
        values = {
            "DATABASE_URL": f"sqlite:///{self.database}",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": "bench",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SELECTOR_SERVE_STATIC": "0",
            "SELECTOR_EMBEDDED_UPDATER": "0",
            "SELECTOR_LOG_LEVEL": "INFO",
            # The demo turns metrics on; the ``-metrics`` configurations do.
            "SELECTOR_METRICS": "0",
            # Plain-HTTP loopback: never redirect to HTTPS, whatever the
            # production profile of the settings would do.
            "DJANGO_SECURE_SSL_REDIRECT": "0",
        }
        values.update(overrides)
        return project_env(**values)


class Stack:
    """Starts a configuration's processes on ``core``; a context manager."""

    def __init__(self, config: Config, workspace: Workspace, core: str) -> None:
        self.config = config
        self.workspace = workspace
        self.core = core
        self.root = workspace.root(config)
        self.logs = workspace.directory / f"{config.name}-{int(time.time())}"
        self.logs.mkdir()
        self.redis: RedisServer | None = None
        self.publisher: Process | None = None
        self.servers: list[Process] = []
        self.scraper: Scraper | None = None

    # -- lifecycle ----------------------------------------------------------------

    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        config = self.config
        env = {
            "SELECTOR_GC_TUNING": "1" if config.gc_tuning else "0",
            "SELECTOR_COMET_FAST_PATH": "1" if config.comet_fast_path else "0",
            "DJANGO_SETTINGS_MODULE": config.settings,
            "PYTHONPATH": str(self.root),
            **dict(config.env),
            "SELECTOR_METRICS": "1" if config.metrics else "0",
            # No grid: the embedded updater publishes `res` only.
            "SELECTOR_GRID_RESOURCES": "",
        }
        if config.redis:
            self.redis = RedisServer(self.logs).start()
            pin(self.redis.process.pid, self.core)
            env["REDIS_URL"] = self.redis.url
        if config.publisher == "embedded":
            env.update(SELECTOR_EMBEDDED_UPDATER="1", SELECTOR_LOG_LEVEL="DEBUG")
        if config.publisher in ("runupdater", "stock"):
            # DEBUG logs "Published res #N": the publish times.
            publisher_env = self.workspace.env(**env, SELECTOR_LOG_LEVEL="DEBUG")
            command = self._publisher_command()
            self.publisher = self._spawn("publisher", command, publisher_env)
        env = self.workspace.env(**env)
        for index in range(config.processes):
            port = free_port()
            server = self._spawn(
                f"server{index}", self._server_command(port), env, port=port
            )
            self.servers.append(server)
        for server in self.servers:
            self._wait_ready(server)
        self._wait_published()
        if config.metrics and SCRAPE_EVERY > 0:
            urls = [f"http://127.0.0.1:{s.port}/metrics" for s in self.servers]
            self.scraper = Scraper(urls, SCRAPE_EVERY)
            self.scraper.start()

    def stop(self) -> None:
        if self.scraper is not None:
            self.scraper.stop()
        for process in [*self.servers, self.publisher]:
            if process is not None:
                process.stop()
        if self.redis is not None:
            self.redis.stop()

    def _spawn(
        self, name: str, command: list[str], env: dict[str, str], port: int = 0
    ) -> Process:
        log = self.logs / f"{name}.log"
        with log.open("ab") as output:
            popen = subprocess.Popen(
                ["taskset", "-c", self.core, *command],
                env=env,
                cwd=self.root,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        return Process(name, popen, log, port)

    def _publisher_command(self) -> list[str]:
        if self.config.publisher == "stock":
            return [sys.executable, "-m", "bench.stock_publisher"]
        return [
            sys.executable,
            str(self.root / "manage.py"),
            "runupdater",
            "--resource",
            "res",
            "--interval",
            "1",
        ]

    def _server_command(self, port: int) -> list[str]:
        config = self.config
        if config.server == "daphne":
            return self._daphne_command(port)
        if config.server == "uvicorn":
            return [
                sys.executable,
                "-m",
                "uvicorn",
                config.application,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--ws",
                config.ws,
                "--lifespan",
                "off",
                "--no-access-log",
                "--log-level",
                "warning",
                "--backlog",
                "4096",
            ]
        return [sys.executable, "-m", "bench.baseline_server", "--port", str(port)]

    def _daphne_command(self, port: int) -> list[str]:
        """docs/deployment.md's Daphne command (``-v 0``: no access log), on
        this port and application; ``stock``: the same arguments to plain
        ``daphne``; ``runserver``: ``manage.py runserver --noreload``."""
        config = self.config
        if config.daphne == "runserver":
            manage_py = str(self.root / "manage.py")
            address = f"127.0.0.1:{port}"
            return [sys.executable, manage_py, "runserver", "--noreload", address]
        command = documented_command(
            "daphne", **{"realtime_site.asgi:application": config.application}
        )
        command = [part.format(port=port) for part in command]
        if config.daphne == "stock":
            assert command[1:3] == ["-m", "selector_app.daphne"], command
            command[2] = "daphne"
        return command

    def _wait_ready(self, server: Process, timeout: float = 60.0) -> None:
        """Listening, and (Django) answering ``/comet`` with 200."""
        deadline = time.monotonic() + timeout
        django = self.config.server != "baseline"
        stock = self.config.publisher == "stock"
        path = "/admin/login/" if stock else "/comet?seq=0"
        while time.monotonic() < deadline:
            if not server.alive():
                raise RuntimeError(f"{server.name} exited:\n{server.tail()}")
            try:
                with socket.create_connection(("127.0.0.1", server.port), 0.5):
                    pass
                if not django:
                    return
                url = f"http://127.0.0.1:{server.port}{path}"
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{server.name} not ready in {timeout} s:\n{server.tail()}")

    def _wait_published(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.publish_times():
                return
            time.sleep(0.2)
        where = self.publisher or self.servers[0]
        raise RuntimeError(f"Nothing published in {timeout} s:\n{where.tail()}")

    # -- measurements ---------------------------------------------------------------

    def server_pids(self) -> list[int]:
        # ``taskset -c N cmd`` execs cmd: the pid is the program's own.
        return [server.pid for server in self.servers]

    def infra_pids(self) -> list[int]:
        """Redis and the publisher: server-side CPU outside the ASGI servers."""
        pids = [] if self.redis is None else [self.redis.process.pid]
        if self.publisher is not None:
            pids.append(self.publisher.pid)
        return pids

    def publish_times(self) -> dict[int, float]:
        """Sequence -> publish time (epoch seconds) from the publisher's log."""
        source = self.publisher or self.servers[0]
        text = source.log.read_text(errors="replace")
        times = {}
        for stamp, sequence in PUBLISHED.findall(text):
            moment = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f")
            times[int(sequence)] = moment.timestamp()
        return times

    def describe(self) -> dict[str, object]:
        return {
            "logs": str(self.logs),
            "source": "this tree"
            if self.root == ROOT
            else f"{self.workspace.main_rev} ({self.root})",
            "servers": [server.popen.args for server in self.servers],
            "publisher": self.publisher.popen.args if self.publisher else None,
        }


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent not idle since boot (/proc/stat)."""
    with open("/proc/stat") as stat:
        values = [int(value) for value in stat.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / CLOCK_TICKS


def sample(pids: list[int]) -> tuple[float, int]:
    """Total CPU seconds and RSS bytes of ``pids`` (gone ones count as 0)."""
    cpu, rss = 0.0, 0
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            cpu += cpu_seconds(pid)
            rss += rss_bytes(pid)
    return cpu, rss


class Scraper(threading.Thread):
    """Fetches each server's ``/metrics`` every ``every`` seconds, as
    Prometheus would, until stopped; counts the scrapes that got 200."""

    def __init__(self, urls: list[str], every: float) -> None:
        super().__init__(name="bench scraper", daemon=True)
        self.urls = urls
        self.every = every
        self.scrapes = 0
        self.failures = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.every):
            for url in self.urls:
                try:
                    with urllib.request.urlopen(url, timeout=5) as response:
                        response.read()
                        self.scrapes += response.status == 200
                except (OSError, urllib.error.URLError):
                    self.failures += 1

    def stop(self) -> None:
        self._halt.set()
        self.join(10)
