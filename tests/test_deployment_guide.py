"""docs/deployment.md's commands and nginx configuration, run as written.

Only what cannot run on a test machine is replaced, each a documented
placeholder that must still be in the block (``replace``): fixed ports become
free ones, the secret key a random one, the TLS certificate a throw-away one,
and ``/srv/app/staticfiles/`` the app's static files. The server commands
themselves are run by tests/test_sigterm.py and tests/test_limits_servers.py
(``documented_command``); tests/test_docs.py checks those are the blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import signal
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.support.docs import doc_block, replace
from tests.support.server import (
    ROOT,
    ServerProcess,
    free_port,
    manage,
    project_env,
    tail,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def shell_env(**overrides: str) -> dict[str, str]:
    """The demo's environment, with the project's virtualenv first on PATH
    (the guide's ``python`` is that one)."""
    env = project_env(**overrides)
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env['PATH']}"
    for key in ("DJANGO_ALLOWED_HOSTS", "SELECTOR_SERVE_STATIC"):
        env.pop(key, None)  # the guide's blocks set what they need
    return env


# Environment ------------------------------------------------------------------


def test_the_production_environment_passes_check_deploy():
    block = replace(
        doc_block("deployment/environment"),
        "…50+ random characters…",
        secrets.token_urlsafe(50),
    )
    result = subprocess.run(
        [
            "bash",
            "-euo",
            "pipefail",
            "-c",
            block + "\npython manage.py check --deploy",
        ],
        env=shell_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # Only the two HSTS parts the guide leaves to the reader's decision.
    warned = set(re.findall(r"\((\w+\.[EW]\d+)\)", output))
    assert warned == {"security.W005", "security.W021"}, output


# A shell, typed into line by line --------------------------------------------


class Typist:
    """A bash process fed one line at a time, as a user types them, with
    background jobs in its own session (ended together by :meth:`close`)."""

    def __init__(self, cwd: Path, env: dict[str, str], log: Path) -> None:
        self.log = log
        self.lines = 0
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                ["bash"],
                stdin=subprocess.PIPE,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=env,
                text=True,
                start_new_session=True,
            )

    def type(self, line: str, *, timeout: float = 60, wait: bool = True) -> str:
        """Run ``line``; return its output once bash is ready for the next
        (at once for a line that ends with ``&``). ``wait=False``: a command
        that runs until stopped, in the foreground."""
        self.lines += 1
        marker = f"__line_{self.lines}_done__"
        start = len(self.output())
        self.process.stdin.write(f"{line}\necho; echo {marker}\n")
        self.process.stdin.flush()
        if not wait:
            return ""
        self.wait_for(marker, timeout=timeout)
        return self.output()[start:].split(marker)[0]

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, text: str, *, count: int = 1, timeout: float = 30) -> None:
        """Until ``text`` is in the output ``count`` times."""
        deadline = time.monotonic() + timeout
        while self.output().count(text) < count:
            assert self.process.poll() is None, f"bash exited:\n{tail(self.log)}"
            assert time.monotonic() < deadline, f"no {text!r}:\n{tail(self.log, 60)}"
            time.sleep(0.05)

    def close(self, first: signal.Signals = signal.SIGTERM) -> None:
        """Signal the whole session (SIGKILL if it outlives 10 s), and reap."""
        for sig in (first, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
                self.process.wait(10)
                return
            except ProcessLookupError:
                return
            except subprocess.TimeoutExpired:
                continue


def wait_for_port(port: int, timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            assert time.monotonic() < deadline, f"nothing listens on {port}"
            time.sleep(0.05)


def stop_redis(port: int) -> None:
    """The block's ``redis-server --daemonize yes`` left its session."""
    import redis

    # It answers by closing the connection, which redis-py reads as an error.
    with contextlib.suppress(redis.ConnectionError):
        redis.Redis(port=port, socket_timeout=5).shutdown(nosave=True)


ACQUIRED = "acquired the lock on 'res'; publishing."
STANDBY = "standby: waiting for the lock on 'res'"


def test_on_one_machine(tmp_path):
    """The section "On one machine", typed line by line; then its prose:
    ``kill -9`` the first runupdater, and the second takes over."""
    redis_port, server_port = free_port(), free_port()
    block = replace(doc_block("deployment/one-machine"), "6390", str(redis_port))
    block = replace(block, "8001", str(server_port))
    # The guide runs in the checkout: a directory of its own here, for the
    # database ($PWD/db.sqlite3), with the checkout's manage.py and .venv.
    (tmp_path / "manage.py").symlink_to(ROOT / "manage.py")
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    typist = Typist(tmp_path, shell_env(), tmp_path / "shell.log")
    try:
        lines = block.splitlines()
        for line in lines:
            command = line.split("#")[0].strip()
            if command.startswith("curl"):
                continue  # below, once the server listens
            typist.type(line)
            if command.startswith("redis-server"):
                wait_for_port(redis_port)
            elif "daphne" in command:
                wait_for_port(server_port)
            elif "runupdater" in command:
                # The first says it publishes, the second that it waits.
                typist.wait_for(STANDBY if ACQUIRED in typist.output() else ACQUIRED)
        [first, held] = [line for line in lines if line.startswith("curl")]
        # Their answers (between the server's and updaters' log lines).
        reply = re.compile(r"^(\d+) \S{1024}$", re.M)
        sequence = int(reply.search(typist.type(first, timeout=10))[1])
        # "your sequence": the one the first answer gave ("5" in the guide).
        held = replace(held, "seq=5'", f"seq={sequence}'")
        newer = int(reply.search(typist.type(held, timeout=10))[1])
        assert newer > sequence  # held until the next version
        assert (tmp_path / "db.sqlite3").exists()
        # "kill -9 the first runupdater: the second says acquired ...".
        typist.type("kill -9 $(jobs -p | sed -n 2p)")
        typist.wait_for(ACQUIRED, count=2, timeout=15)
    finally:
        typist.close()
        stop_redis(redis_port)
    assert "Traceback" not in typist.output()


def test_one_updater_per_resource(tmp_path, redis_server):
    """The two lines of "One updater per resource": the first publishes, the
    second waits, and takes over when the first is killed (SIGKILL)."""
    env = shell_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        REDIS_URL=redis_server.url,
        SELECTOR_EMBEDDED_UPDATER="0",
    )
    manage("migrate", "-v0", env=env)
    first, second = doc_block("deployment/runupdater").splitlines()
    host_a = Typist(ROOT, env, tmp_path / "a.log")
    host_b = Typist(ROOT, env, tmp_path / "b.log")
    try:
        host_a.type(first, wait=False)
        host_a.wait_for(ACQUIRED)
        host_b.type(second, wait=False)
        host_b.wait_for(STANDBY)
        host_a.close(signal.SIGKILL)  # host A dies, its runupdater with it
        host_b.wait_for(ACQUIRED, timeout=15)
    finally:
        host_a.close()
        host_b.close()


# nginx ---------------------------------------------------------------------------


def nginx_conf(directory: Path, upstream_port: int, https: int, http: int) -> Path:
    """The guide's nginx block inside a minimal main configuration."""
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes"),
            *("-days", "1", "-subj", "/CN=live.example.com"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    site = doc_block("deployment/nginx")
    for port in ("8001", "8002", "8003"):  # one demo server stands for all
        site = replace(site, f"127.0.0.1:{port};", f"127.0.0.1:{upstream_port};")
    site = replace(site, "listen 443 ssl;", f"listen 127.0.0.1:{https} ssl;")
    site = replace(site, "listen 80;", f"listen 127.0.0.1:{http};")
    site = replace(
        site,
        "# ssl_certificate …; ssl_certificate_key …;",
        f"ssl_certificate {cert}; ssl_certificate_key {key};",
    )
    # What collectstatic would have put there, and a file only nginx has.
    static = directory / "staticfiles"
    shutil.copytree(ROOT / "selector_app" / "static", static)
    (static / "only-in-nginx.txt").write_text("served by nginx")
    site = replace(site, "/srv/app/staticfiles/", f"{static}/")
    temp = "".join(
        f"{kind}_temp_path {directory / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = directory / "nginx.conf"
    conf.write_text(
        "daemon off;\nmaster_process off;\n"
        f"pid {directory / 'nginx.pid'};\nerror_log {directory / 'error.log'};\n"
        "events {}\n"
        f"http {{\naccess_log {directory / 'access.log'};\n{temp}{site}\n}}\n"
    )
    return conf


#: Debian's nginx (``scripts/test`` installs it); /usr/sbin is not on every PATH.
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@pytest.fixture
def behind_nginx(tmp_path):
    """The demo (Daphne, the guide's command) behind the guide's nginx."""
    from tests.conftest import demo_env

    assert Path(NGINX).exists(), "Install nginx (scripts/test does: apt nginx)."
    env = demo_env(tmp_path)
    env["DJANGO_ALLOWED_HOSTS"] = "live.example.com,127.0.0.1"
    env["SELECTOR_SERVE_STATIC"] = "0"  # nginx serves /static/
    https, http = free_port(), free_port()
    with ServerProcess.documented(env, tmp_path / "server.log", "daphne") as server:
        conf = nginx_conf(tmp_path, server.port, https, http)
        log = tmp_path / "nginx.out"
        with log.open("wb") as output:
            nginx = subprocess.Popen(
                [NGINX, "-p", str(tmp_path), "-c", str(conf), "-e", "stderr"],
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for_port(https)
            yield https, http
        finally:
            nginx.terminate()
            nginx.wait(10)
        assert "[emerg]" not in log.read_text(), log.read_text()


async def test_the_demo_behind_the_guides_nginx(behind_nginx):
    https, http = behind_nginx
    base = f"https://127.0.0.1:{https}"
    async with httpx.AsyncClient(base_url=base, verify=False, timeout=10) as client:
        page = await client.get("/")
        assert page.status_code == 200 and "live.js" in page.text
        static = await client.get("/static/only-in-nginx.txt")  # nginx's alias
        assert static.text == "served by nginx"
        assert (await client.get("/static/selector_app/live.js")).status_code == 200
        first = await client.get("/comet?seq=0")  # location /comet
        assert first.status_code == 200
        sequence = int(first.text.split(" ", 1)[0])
        async with asyncio.timeout(10):
            held = await client.get(f"/comet?seq={sequence}")
        assert int(held.text.split(" ", 1)[0]) > sequence
    async with httpx.AsyncClient() as plain:
        moved = await plain.get(f"http://127.0.0.1:{http}/comet?seq=0")
    assert moved.status_code == 301
    assert moved.headers["location"] == "https://127.0.0.1/comet?seq=0"
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    async with asyncio.timeout(10):  # location / with the Upgrade headers
        async with connect(
            f"wss://127.0.0.1:{https}/websocket", ssl=context, origin=base
        ) as socket_:
            first_frame, second_frame = await socket_.recv(), await socket_.recv()
    assert int(second_frame.split(" ", 1)[0]) > int(first_frame.split(" ", 1)[0])


async def test_event_streams_pass_through_the_guides_nginx_unbuffered(behind_nginx):
    """location /events: each event reaches the client as it is published
    (a buffering proxy would hold them back), ``Last-Event-ID`` gets through."""
    https, _ = behind_nginx
    base = f"https://127.0.0.1:{https}"
    async with httpx.AsyncClient(base_url=base, verify=False, timeout=10) as client:
        async with asyncio.timeout(10), client.stream("GET", "/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            ids = []
            async for line in stream.aiter_lines():
                if line.startswith("id: "):
                    ids.append(int(line[4:]))
                    if len(ids) == 3:  # the updater publishes once a second
                        break
        assert ids == list(range(ids[0], ids[0] + 3))
        headers = {"Last-Event-ID": str(ids[-1])}
        async with (
            asyncio.timeout(10),
            client.stream("GET", "/events", headers=headers) as stream,
        ):
            async for line in stream.aiter_lines():
                if line.startswith("id: "):
                    assert int(line[4:]) > ids[-1]
                    break
