"""Pieces of a scaled-out deployment for tests: databases and runupdater processes.

``SELECTOR_TEST_POSTGRES_URL`` names a PostgreSQL database the tests may use
to create and drop throw-away databases (``.ci/run`` sets it when PostgreSQL
answers); without it, a local server with trust auth is tried.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .server import ROOT, terminate

POSTGRES_URL_VARIABLE = "SELECTOR_TEST_POSTGRES_URL"
LOCAL_POSTGRES_URLS = (
    "postgres://postgres@127.0.0.1:5432/test",
    "postgres://root@127.0.0.1:5432/test",
)


def postgres_admin_url() -> str | None:
    """A PostgreSQL URL that can create databases, or ``None`` if none answers.

    When ``SELECTOR_TEST_POSTGRES_URL`` is set it must work: CI relies on it.
    """
    import psycopg

    configured = os.environ.get(POSTGRES_URL_VARIABLE)
    for url in [configured] if configured else LOCAL_POSTGRES_URLS:
        try:
            with psycopg.connect(url, connect_timeout=3):
                return url
        except psycopg.Error:
            if configured:
                raise
    return None


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A new, empty database next to ``admin_url``'s; dropped afterwards."""
    import psycopg

    name = f"selector_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin_url)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def resource_sequence(database_url: str, name: str = "res") -> int:
    """The sequence stored in the database right now (the truth)."""
    query = "SELECT sequence FROM selector_app_resource WHERE name = %s"
    if database_url.startswith("sqlite:///"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
            return db.execute(query.replace("%s", "?"), (name,)).fetchone()[0]
    import psycopg

    with psycopg.connect(database_url) as db:
        return db.execute(query, (name,)).fetchone()[0]


class UpdaterProcess:
    """``manage.py runupdater`` as its own process, logging to a file."""

    def __init__(self, env: dict[str, str], log_path: Path, *args: str) -> None:
        self.env = {**env, "SELECTOR_LOG_LEVEL": "DEBUG"}
        self.log_path = log_path
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> UpdaterProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(ROOT / "manage.py"), "runupdater", *self.args],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def published(self) -> list[int]:
        """The sequences this process says it published."""
        return [int(n) for n in re.findall(r"Published \S+ #(\d+)", self.log())]

    async def wait_for_log(self, text: str, timeout: float = 15.0) -> None:
        """Poll the log until ``text`` appears (the process reports no events)."""
        try:
            async with asyncio.timeout(timeout):
                while text not in self.log():  # polling a file: no event announces it
                    if self.process is not None and self.process.poll() is not None:
                        raise RuntimeError(f"runupdater exited:\n{self.log()}")
                    await asyncio.sleep(0.02)
        except TimeoutError:
            raise TimeoutError(
                f"{text!r} not logged within {timeout} s:\n{self.log()}"
            ) from None

    def kill(self) -> None:
        """SIGKILL: no clean-up, no lock release, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self, timeout: float = 10.0) -> None:
        terminate(self.process, timeout)
