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
        DJANGO_ENV_FILE="",  # a developer's .env must not change the tests
    )
    env.update(overrides)
    return env


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


#: How docs/deployment.md starts each server: the command, and its port.
DOCUMENTED = {
    "daphne": (
        r"^python -m selector_app\.daphne -e .*?[^\\]$",
        "port=8001:",
        "port={port}:",
    ),
    "uvicorn": (r"^uvicorn realtime_site.*?[^\\]$", "--port 8003", "--port {port}"),
}


def documented_command(server: str, **replace: str) -> list[str]:
    """The ``daphne`` or ``uvicorn`` command of docs/deployment.md, as this
    Python runs it, with ``{port}`` for its port and the ``replace``
    substitutions made in its text (e.g. a shorter ping timeout)."""
    pattern, port, placeholder = DOCUMENTED[server]
    docs = (ROOT / "docs" / "deployment.md").read_text()
    text = re.search(pattern, docs, re.M | re.S).group().replace("\\\n", " ")
    for old, new in {port: placeholder, **replace}.items():
        assert old in text, f"{old!r} is not in the documented {server} command"
        text = text.replace(old, new)
    program, *args = shlex.split(text)
    if program == "python":  # python -m selector_app.daphne …
        return [sys.executable, *args]
    return [sys.executable, "-m", program, *args]


#: The ASGI servers the tests run: each behaviour is checked on both.
SERVERS = ("daphne", "uvicorn")


class ServerProcess:
    """One Daphne or Uvicorn process serving an ASGI application on 127.0.0.1.

    ``command`` (with ``{port}`` placeholders) replaces the command line;
    :meth:`documented` starts the one docs/deployment.md gives.
    """

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        *,
        application: str = "realtime_site.asgi:application",
        port: int | None = None,
        server: str = "daphne",
        command: list[str] | None = None,
    ) -> None:
        if server not in SERVERS:
            raise ValueError(f"server must be one of {SERVERS}, not {server!r}.")
        self.env = env
        self.log_path = log_path
        self.application = application
        self.port = port or free_port()
        self.server = server
        self.custom_command = command
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        """The server's command line."""
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
        command = self.command()
        if self.custom_command is not None:
            command = [part.format(port=self.port) for part in self.custom_command]
        self.process = subprocess.Popen(
            command,
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
        command = documented_command(server)
        return cls(env, log_path, server=server, port=port, command=command)


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


def tcp_state(local_port: int) -> str | None:
    """The kernel's state of this process's end of a loopback connection
    (from /proc/net/tcp): how a client that reads nothing learns that the
    server dropped it."""
    states = {"01": "ESTABLISHED", "08": "CLOSE_WAIT"}
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == local_port:
                return states.get(fields[3], "closed")
    return None
