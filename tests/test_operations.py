"""Operations for real: /health, /metrics and the live status of a deployment.

Real redis-server, real Daphne and Uvicorn processes, real runupdaters, a
real WebSocket client and headless Chromium on the admin page. The servers
use tests/support/fault_settings.py (a re-read, hence a heartbeat, every
0.5 s), so that what takes seconds in production takes a moment here.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from tests.support.admin import PASSWORD, USERNAME, superuser_env
from tests.support.browser import (
    ROOT,
    VIEWPORT,
    save_screenshot,
)
from tests.support.cluster import UpdaterProcess
from tests.support.redis import RedisServer
from tests.support.server import SERVERS, ServerProcess, manage, project_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

#: Where the admin page's screenshot goes for docs/operations.md.
DOCS_SCREENSHOT = ROOT / "docs" / "operations-status.png"


def documented(language: str, start: str) -> str:
    """The ``language`` block of docs/operations.md that starts with ``start``."""
    text = (ROOT / "docs" / "operations.md").read_text()
    blocks = re.findall(rf"```{language}\n(.*?)```", text, re.DOTALL)
    [block] = [block for block in blocks if block.startswith(start)]
    return block


def wait_for(predicate: Callable[[], object], what: str, timeout: float = 20.0):
    """Poll ``predicate`` (a process's HTTP answer or command output: nothing
    announces those) until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError(f"Not within {timeout} s: {what}.")


def cluster_env(directory: Path, redis: RedisServer) -> dict[str, str]:
    env = project_env(
        DATABASE_URL=f"sqlite:///{directory / 'db.sqlite3'}",
        DJANGO_SETTINGS_MODULE="tests.support.fault_settings",
        REDIS_URL=redis.url,
        SELECTOR_EMBEDDED_UPDATER="0",
    )
    manage("migrate", "-v0", env=env)
    return env


def health(server: ServerProcess) -> httpx.Response | None:
    try:
        return httpx.get(f"{server.url}/health", timeout=5)
    except httpx.TransportError:
        return None


def health_is(server: ServerProcess, status: int) -> Callable[[], object]:
    def check():
        reply = health(server)
        return reply is not None and reply.status_code == status and reply.json()

    return check


def scrape(server: ServerProcess) -> dict[tuple[str, tuple], float]:
    reply = httpx.get(f"{server.url}/metrics", timeout=5)
    assert reply.status_code == 200, reply.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(reply.text)
        for sample in family.samples
    }


@pytest.fixture(scope="module", params=SERVERS)
def single(request, tmp_path_factory) -> Iterator[tuple[ServerProcess, RedisServer]]:
    """One server process of each kind, with its own Redis."""
    directory = tmp_path_factory.mktemp(f"ops-{request.param}")
    with RedisServer(directory) as redis:
        env = cluster_env(directory, redis)
        server = ServerProcess(
            env, directory / "server.log", server=request.param
        ).start()
        try:
            yield server, redis
        finally:
            server.stop()


def test_health_follows_redis_down_and_back(single):
    server, redis = single
    body = wait_for(health_is(server, 200), "healthy after start")
    # docs/operations.md's command, on this server's port.
    command = documented("sh", "curl ").replace("8001", str(server.port))
    shown = subprocess.run(
        shlex.split(command), capture_output=True, text=True, timeout=10, check=True
    ).stdout
    assert shown.startswith("HTTP/1.1 200 OK") and '"status": "ok"' in shown
    assert body == {
        "status": "ok",
        "synced": True,
        "layer": "up",
        "draining": False,
        "connections": body["connections"],
    }
    redis.stop()
    try:
        down = wait_for(health_is(server, 503), "503 once Redis is gone")
        assert down["layer"] == "down" and "channel-layer" in down["reason"]
    finally:
        redis.start()
    back = wait_for(health_is(server, 200), "healthy once Redis is back", timeout=30)
    assert back["layer"] == "up"


def test_metrics_move_when_a_client_connects_and_a_version_is_published(single):
    server, _ = single
    wait_for(health_is(server, 200), "healthy")
    before = scrape(server)
    push = (("transport", "push"),)
    with connect(f"{server.ws_url}/websocket") as socket:
        first = int(socket.recv(timeout=10).split(" ", 1)[0])
        during = scrape(server)
        assert during["selector_app_open_connections", push] == (
            before["selector_app_open_connections", push] + 1
        )
        manage(
            "shell",
            "-c",
            "from selector_app.services import resource_publish; "
            "resource_publish(name='res', data='from the test')",
            env=server.env,
        )
        assert socket.recv(timeout=10) == f"{first + 1} from the test"
        after = scrape(server)
    sent = "selector_app_sent_total", push
    assert after[sent] == before[sent] + 2  # the current version, then the new one
    # By layer message, or by a re-read that came first (one every 0.5 s here).
    assert seen(after) == seen(before) + 1
    # The process's first socket: one of those whose deliveries are timed.
    latency = "selector_app_delivery_latency_seconds_count", push
    assert after[latency] == before[latency] + 1
    assert after["selector_app_resource_sequence", (("resource", "res"),)] == first + 1


def test_the_documented_scrape_config_and_rules_use_served_metrics(single):
    server, _ = single
    wait_for(health_is(server, 200), "healthy")
    served = {name for name, _ in scrape(server)}
    for header in ("# prometheus.yml", "# selector_app.rules.yml"):
        block = documented("yaml", header)
        assert yaml.safe_load(block)
        used = set(re.findall(r"selector_app_[a-z_]+", block))
        assert used <= served, used - served
    rules = yaml.safe_load(documented("yaml", "# selector_app.rules.yml"))
    assert len(rules["groups"][0]["rules"]) == 6
    config = yaml.safe_load(documented("yaml", "# prometheus.yml"))
    [job] = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"


def seen(samples: dict[tuple[str, tuple], float]) -> float:
    """Versions of ``res`` the hub has taken, by layer message or re-read."""
    return sum(
        value
        for (name, labels), value in samples.items()
        if name == "selector_app_publishes_seen_total" and ("resource", "res") in labels
    )


# The whole deployment on the admin page ----------------------------------------


def status(env: dict[str, str]) -> dict:
    """``selector_status --json``, as docs/operations.md runs it."""
    [_, command] = documented("sh", "python manage.py selector_status").splitlines()
    assert command == "python manage.py selector_status --json"
    return json.loads(manage(*shlex.split(command)[2:], env=env))


def test_the_admin_page_shows_servers_and_lease_holders_as_they_come_and_go(
    tmp_path, browser
):
    from playwright.sync_api import expect

    with RedisServer(tmp_path) as redis:
        env = cluster_env(tmp_path, redis)
        manage("createsuperuser", "--noinput", env=superuser_env(env))
        servers = [
            ServerProcess(env, tmp_path / f"{kind}.log", server=kind).start()
            for kind in SERVERS
        ]
        leader = UpdaterProcess(env, tmp_path / "leader.log", "--interval", "0.5")
        standby = UpdaterProcess(env, tmp_path / "standby.log", "--interval", "0.5")
        try:
            for server in servers:
                # A load balancer's first health check starts a process's hub.
                wait_for(health_is(server, 200), f"{server.server} healthy")
            leader.start()
            wait_for(lambda: "acquired the lock" in leader.log(), "a leader")
            standby.start()
            wait_for(lambda: "standby: waiting" in standby.log(), "a standby")

            def everyone_listed():
                state = status(env)
                [res] = state["resources"]
                pids = {p["pid"] for p in state["processes"]}
                return (
                    pids == {s.process.pid for s in servers}
                    and res["holder"]
                    and res["holder"]["pid"] == leader.process.pid
                    and [u["pid"] for u in res["standbys"]] == [standby.process.pid]
                    and state
                )

            state = wait_for(everyone_listed, "both servers, a leader and a standby")
            # A push client on each server: connections and delivery lag to show.
            sockets = contextlib.ExitStack()
            for server in servers:
                sockets.enter_context(connect(f"{server.ws_url}/websocket"))
            wait_for(
                lambda: all(
                    p["connections"].get("push") == 1 and p["lag_p99_seconds"]
                    for p in status(env)["processes"]
                ),
                "a push client and its deliveries on each server",
            )
            software = {p["pid"]: p["software"] for p in state["processes"]}
            assert software[servers[0].process.pid].startswith("daphne ")
            assert software[servers[1].process.pid].startswith("uvicorn ")

            table = manage("selector_status", env=env)
            assert "Server processes (2):" in table
            assert f"{standby.process.pid} (standby)" in table
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(
                f"{servers[0].url}/admin/login/?next=/admin/selector_app/resource/"
            )
            page.fill("#id_username", USERNAME)
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            page.click("text=Live status")
            processes = page.locator("#selector-processes tr.selector-process")
            expect(processes).to_have_count(2)
            for server in servers:
                expect(
                    processes.filter(has_text=str(server.process.pid))
                ).to_have_count(1)
            resource = page.locator("#selector-resources tr.selector-resource")
            expect(resource).to_contain_text(f":{leader.process.pid} since")
            expect(resource).to_contain_text(f":{standby.process.pid} (standby)")
            save_screenshot(page, "operations-status.png")
            page.screenshot(path=DOCS_SCREENSHOT, full_page=True)

            sockets.close()
            servers[1].process.kill()
            servers[1].process.wait(10)
            leader.kill()
            wait_for(
                lambda: (
                    [p["pid"] for p in status(env)["processes"]]
                    == [servers[0].process.pid]
                ),
                "the killed server gone from the list",
            )
            wait_for(
                lambda: (
                    (holder := status(env)["resources"][0]["holder"])
                    and holder["pid"] == standby.process.pid
                ),
                "the standby listed as the holder",
            )
            page.reload()
            expect(processes).to_have_count(1)
            expect(resource).to_contain_text(f":{standby.process.pid} since")
            page.close()
        finally:
            for process in (leader, standby, *servers):
                process.stop()
