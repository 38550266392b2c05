"""A throw-away PostgreSQL cluster of the test's own, which it may stop and restart.

Fault tests restart the database under running servers, so they cannot use
a shared server. The cluster lives in a temporary directory, listens on a
free port of 127.0.0.1 with trust authentication, and is removed afterwards.
PostgreSQL refuses to run as root: as root, every command runs as the
``postgres`` user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from .server import free_port


def postgres_bin() -> Path | None:
    """The directory with ``initdb`` and ``pg_ctl`` (the newest version), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


def unavailable_reason() -> str | None:
    """Why no cluster can be started here, or None if one can."""
    if postgres_bin() is None:
        return (
            "PostgreSQL's initdb/pg_ctl are not installed (looked in "
            "/usr/lib/postgresql/*/bin and PATH); apt-get install postgresql."
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "Running as root and there is no `postgres` user to run PostgreSQL."
    return None


class PostgresCluster:
    """``initdb`` + ``pg_ctl`` in a temporary directory, on a free port."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.bin = postgres_bin()
        self.directory = Path(tempfile.mkdtemp(prefix="selector-pg-"))
        self.data = self.directory / "data"
        self.log = self.directory / "postgres.log"

    @property
    def admin_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> PostgresCluster:
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(self.directory, account.pw_uid, account.pw_gid)
        if not self.data.exists():
            self._run("initdb", "-D", self.data, "-A", "trust", "-U", "postgres")
        self._pg_ctl("start", "-w", "-t", "30")
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: disconnect every client, as a restart does)."""
        self._pg_ctl("stop", "-w", "-t", "30", "-m", mode, check=False)

    def restart(self) -> None:
        self.stop()
        self._pg_ctl("start", "-w", "-t", "30")

    def create_database(self, name: str) -> str:
        self._run(
            "createdb", "-h", "127.0.0.1", "-p", self.port, "-U", "postgres", name
        )
        return self.url(name)

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        from .server import tail

        return tail(self.log, lines)

    def __enter__(self) -> PostgresCluster:
        try:
            return self.start()
        except BaseException:
            self.remove()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.remove()

    def _pg_ctl(self, action: str, *args: object, check: bool = True) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory}"
        self._run(
            "pg_ctl",
            action,
            "-D",
            self.data,
            "-l",
            self.log,
            "-o",
            options,
            *args,
            check=check,
        )

    def _run(self, program: str, *args: object, check: bool = True) -> None:
        command = [str(self.bin / program), *map(str, args)]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=60, cwd=self.directory
        )
        if check and result.returncode:
            raise RuntimeError(
                f"{' '.join(command)} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}\n{self.log_tail()}"
            )
