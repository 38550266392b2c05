"""Real server processes for end-to-end tests: Daphne or Uvicorn on a free port.

Each server gets its own environment (database URL, channel layer, settings
module) and a log file whose tail is shown when something goes wrong.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def project_env(**overrides: str) -> dict[str, str]:
    """The environment for a child process of the demo project."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "SELECTOR_", "DATABASE_URL", "REDIS_URL"))
    }
    env.update(
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        DJANGO_SETTINGS_MODULE="realtime_site.settings",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        SELECTOR_SERVE_STATIC="1",
    )
    env.update(overrides)
    return env


#: How each server's command in docs/deployment.md names its port.
DOCUMENTED_PORT = {"daphne": "port=8001", "uvicorn": "--port 8003"}


def documented_command(server: str, port: int) -> list[str]:
    """The command line docs/deployment.md gives for ``server``, run with
    this Python and listening on ``port`` instead of the documented one."""
    documented = DOCUMENTED_PORT[server]
    text = (ROOT / "docs" / "deployment.md").read_text()
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.startswith(f"{server} ") and documented in line:
                mine = documented.replace("8001", str(port)).replace("8003", str(port))
                return [
                    sys.executable,
                    "-m",
                    *shlex.split(line.replace(documented, mine)),
                ]
    raise LookupError(f"docs/deployment.md gives no {server} command.")


def manage(*args: str, env: dict[str, str], timeout: float = 60) -> str:
    """Run ``manage.py`` with ``args``; return its output or raise with it."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode:
        raise RuntimeError(
            f"manage.py {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return result.stdout


#: The ASGI servers the tests run: each behaviour is checked on both.
SERVERS = ("daphne", "uvicorn")


class ServerProcess:
    """One Daphne or Uvicorn process serving an ASGI application on 127.0.0.1.

    :meth:`documented` starts the command line docs/deployment.md gives.
    """

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        *,
        application: str = "realtime_site.asgi:application",
        port: int | None = None,
        server: str = "daphne",
        argv: list[str] | None = None,
    ) -> None:
        if server not in SERVERS:
            raise ValueError(f"server must be one of {SERVERS}, not {server!r}.")
        self.env = env
        self.log_path = log_path
        self.application = application
        self.port = port or free_port()
        self.server = server
        #: A whole command line instead of the one :meth:`command` builds.
        self.argv = argv
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        """The server's command line."""
        if self.argv is not None:
            return self.argv
        if self.server == "uvicorn":
            return [
                *(sys.executable, "-m", "uvicorn", self.application),
                *("--host", "127.0.0.1", "--port", str(self.port)),
                *("--ws", "websockets-sansio", "--backlog", "2048"),
            ]
        return [
            *(sys.executable, "-m", "daphne", "-b", "127.0.0.1"),
            *("-p", str(self.port), self.application),
        ]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def origin(self) -> str:
        return self.url

    def start(self, timeout: float = 30.0) -> ServerProcess:
        """Start the server and return once it accepts connections."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command(),
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"The server exited early:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"The server did not listen within {timeout} s:\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and reap it."""
        terminate(self.process, timeout)

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log_path, lines)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @classmethod
    def documented(
        cls, env: dict[str, str], log_path: Path, server: str, port: int | None = None
    ) -> ServerProcess:
        """``server`` started with docs/deployment.md's command line."""
        port = port or free_port()
        argv = documented_command(server, port)
        return cls(env, log_path, server=server, port=port, argv=argv)


def terminate(process: subprocess.Popen | None, timeout: float = 10.0) -> None:
    """SIGTERM, SIGKILL if that is not enough within ``timeout``, and reap."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])
