"""The page in a real browser: headless Chromium against a real server process.

What a user would notice: the panels go live, Comet and WebSocket show the same
advancing resource, the bidirectional panel ticks and echoes, a server restart
is survived without a reload, and nothing is fetched from another host.
Screenshots for a human land in ``test-artifacts/``.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.support.browser import (
    VIEWPORT,
    PageRecorder,
    save_screenshot,
    wait_until_live,
)
from tests.support.server import ServerProcess, manage, project_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

PANELS = ("comet", "websocket", "sse", "bidirectional")

# Both resource panels at once, and only once they agree on a sequence newer
# than ``after``: the snapshot a user would see by looking at the two panels.
AGREEING_PANELS = """(after) => {
  const read = (name) => ({
    sequence: Number(document.querySelector(`#${name}_sequence`).textContent),
    data: document.querySelector(`#${name}_resource`).value,
  });
  const comet = read("comet");
  const websocket = read("websocket");
  const agree = comet.sequence === websocket.sequence && comet.data === websocket.data;
  return agree && comet.sequence > after ? comet : null;
}"""


@pytest.fixture
def recorder():
    return PageRecorder()


@pytest.fixture
def page(browser, recorder):
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(10_000)
    recorder.attach(context)
    yield context.new_page()
    context.close()


def state(page, panel: str):
    return page.locator(f'[data-live="{panel}"] [data-role="state"]')


def sequence(page, panel: str) -> int:
    return int(
        page.locator(f'[data-live="{panel}"] [data-role="sequence"]').inner_text()
    )


def agreeing_panels(page, *, after: int, timeout: float) -> dict:
    """What Comet and WebSocket both show once it is newer than ``after``."""
    handle = page.wait_for_function(AGREEING_PANELS, arg=after, timeout=timeout)
    return handle.json_value()


def check_resource_panels_advance_together(page, *, updates: int = 3) -> None:
    shown = agreeing_panels(page, after=0, timeout=10_000)
    for _ in range(updates):
        # The updater publishes every second: both panels catch up within 2 s.
        newer = agreeing_panels(page, after=shown["sequence"], timeout=2_000)
        assert len(newer["data"]) == 1024
        assert newer["data"] != shown["data"]
        shown = newer


def check_bidirectional_ticks_and_echoes(page) -> None:
    log = page.locator("#bidirectional_log")
    # Newest first, like PAGI's example page.
    expect(log.locator("li.tick")).to_have_text(
        ["server tick #2", "server tick #1"], timeout=5_000
    )
    page.locator("#bidirectional_input").fill("hello")
    page.locator("#bidirectional_input").press("Enter")
    expect(log.locator("li.echo").first).to_have_text("you said: HELLO", timeout=2_000)
    expect(log.locator("li.sent").first).to_have_text("> hello")
    expect(page.locator("#bidirectional_input")).to_have_value("")


def test_page_loads_without_errors_or_requests_to_other_hosts(
    demo_server, page, recorder
):
    page.goto(demo_server.url + "/")
    wait_until_live(page)
    check_resource_panels_advance_together(page, updates=1)
    save_screenshot(page, "page-loaded.png")

    assert recorder.console_errors == []
    assert recorder.foreign(f"127.0.0.1:{demo_server.port}") == []
    paths = {urlsplit(url).path for url in recorder.urls}
    assert {"/", "/comet", "/websocket", "/bidirectional"} <= paths


def test_comet_and_websocket_show_the_same_advancing_resource(demo_server, page):
    page.goto(demo_server.url + "/")
    check_resource_panels_advance_together(page)
    for panel in ("comet", "websocket"):
        expect(state(page, panel)).to_have_attribute("data-state", "live")


def test_bidirectional_panel_ticks_and_echoes(demo_server, page):
    page.goto(demo_server.url + "/")
    expect(state(page, "bidirectional")).to_have_attribute("data-state", "live")
    check_bidirectional_ticks_and_echoes(page)


@pytest.mark.timeout(120)
def test_panels_show_a_restart_and_resume_without_a_reload(tmp_path, page):
    env = project_env(DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    manage("migrate", "-v0", env=env)
    server = ServerProcess(env, tmp_path / "server.log").start()
    try:
        page.goto(server.url + "/")
        wait_until_live(page)
        page.evaluate("window.loadedOnce = true")
        expect(page.locator("#bidirectional_log li.tick").first).to_have_text(
            "server tick #1"
        )

        server.stop()
        for panel in PANELS:
            expect(state(page, panel)).to_have_attribute(
                "data-state", "disconnected", timeout=5_000
            )
            expect(state(page, panel)).to_contain_text("disconnected")
        before = max(sequence(page, panel) for panel in ("comet", "websocket"))

        # Same port, same database: the sequence carries on from where it was.
        server = ServerProcess(env, tmp_path / "server.log", port=server.port).start()
        for panel in PANELS:
            # The bidirectional panel retries every 2 s; the resource panels
            # back off exponentially with full jitter (client.js): after the
            # seconds this restart takes, the next try may be up to 16 s away.
            expect(state(page, panel)).to_have_attribute(
                "data-state", "live", timeout=35_000
            )
        resumed = agreeing_panels(page, after=before, timeout=5_000)
        connected = page.locator("#bidirectional_log li.note").filter(
            has_text=re.compile(r"^connected$")
        )
        first_ticks = page.locator("#bidirectional_log li.tick").filter(
            has_text=re.compile(r"^server tick #1$")
        )
        expect(first_ticks).to_have_count(2, timeout=3_000)
        # Once before and at least once after: a reconnect that lands while
        # the old process still drains is accepted and closed 1012 (Daphne
        # refuses no handshake with a status), which the panel logs too.
        assert connected.count() >= 2
        save_screenshot(page, "after-reconnect.png")
    finally:
        server.stop()

    assert resumed["sequence"] > before
    assert len(resumed["data"]) == 1024
    assert page.evaluate("window.loadedOnce") is True, "the page was reloaded"


def test_the_app_under_a_url_prefix_works_the_same(host_server, page, recorder):
    page.goto(host_server.url + "/live/")
    expect(page.locator("#host-nav")).to_be_visible()  # the host's own template
    wait_until_live(page)
    check_resource_panels_advance_together(page)
    check_bidirectional_ticks_and_echoes(page)
    save_screenshot(page, "prefix-page-loaded.png")

    assert recorder.console_errors == []
    assert recorder.foreign(f"127.0.0.1:{host_server.port}") == []
    endpoints = {
        urlsplit(url).path
        for url in recorder.urls
        if re.search(r"/(comet|websocket|bidirectional)\b", url)
    }
    assert endpoints == {"/live/comet", "/live/websocket", "/live/bidirectional"}
