"""Server-Sent Events and client.js in headless Chromium against real servers.

A real ``EventSource`` on the demo page follows the resource and resumes by
itself (``Last-Event-ID``) after a server restart; the page's panels fall
back from WebSocket to SSE, and to Comet, when a server refuses them; and
client.js's back-off, with its timers and randomness injected, grows
exponentially with full jitter up to its cap, waits what ``Retry-After``
asks, and stops with the reason on a 404.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.support.browser import VIEWPORT, PageRecorder, save_screenshot
from tests.support.docs import doc_block, replace
from tests.support.server import ServerProcess, manage, project_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(10_000)
    PageRecorder().attach(context)
    yield context.new_page()
    context.close()


@pytest.fixture
def env(tmp_path):
    env = project_env(DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    manage("migrate", "-v0", env=env)
    return env


FOLLOW = """() => {
  window.seen = [];
  window.errors = 0;
  window.source = new EventSource("/events");
  source.onmessage = (event) => {
    seen.push([Number(event.lastEventId), Number(event.data.split(" ")[0])]);
  };
  source.onerror = () => { errors += 1; };
}"""


def test_an_event_source_on_the_demo_page_resumes_after_a_restart(env, tmp_path, page):
    server = ServerProcess(env, tmp_path / "server.log").start()
    try:
        page.goto(server.url + "/")
        page.evaluate("window.loadedOnce = true")
        page.evaluate(FOLLOW)
        page.wait_for_function("seen.length >= 2")
        server.stop()
        page.wait_for_function("errors >= 1 && source.readyState !== 2")
        before = page.evaluate("seen.length")
        server = ServerProcess(env, tmp_path / "server.log", port=server.port).start()
        # EventSource retries every `retry:` (2 s) by itself, with its cursor.
        page.wait_for_function(f"seen.length >= {before + 2}", timeout=20_000)
        seen = page.evaluate("seen")
    finally:
        server.stop()
    ids = [event_id for event_id, _ in seen]
    assert all(event_id == sequence for event_id, sequence in seen)
    # Strictly increasing across the restart: nothing shown twice, and no
    # version older than one already shown.
    assert ids == sorted(set(ids))
    assert page.evaluate("window.loadedOnce") is True, "the page was reloaded"


def blocking_server(env, tmp_path, blocked: str) -> ServerProcess:
    env = {**env, "SELECTOR_TEST_BLOCK": blocked}
    application = "tests.support.blocking_asgi:application"
    return ServerProcess(env, tmp_path / "server.log", application=application)


def panel(page, name: str):
    return page.locator(f'[data-live="{name}"]')


@pytest.mark.parametrize(
    ("blocked", "fallback", "shown"),
    [
        ("websocket", "sse", "live over Server-Sent Events"),
        ("websocket,sse", "comet", "live over Comet"),
    ],
)
def test_the_page_falls_back_when_a_transport_is_refused(
    env, tmp_path, page, blocked, fallback, shown
):
    with blocking_server(env, tmp_path, blocked) as server:
        page.goto(server.url + "/")
        websocket = panel(page, "websocket")
        expect(websocket).to_have_attribute("data-transport", fallback)
        expect(websocket.locator('[data-role="state"]')).to_have_text(shown)
        first = int(websocket.locator('[data-role="sequence"]').inner_text() or 0)
        expect(websocket.locator('[data-role="sequence"]')).not_to_have_text(
            str(first), timeout=5_000
        )
        sse = panel(page, "sse")
        expect(sse).to_have_attribute(
            "data-transport", "sse" if fallback == "sse" else "comet"
        )
        expect(sse).to_have_attribute("data-state", "live")
        save_screenshot(page, f"fallback-to-{fallback}.png")


BACKOFF = """async () => {
  const { subscribe } = await import("/static/selector_app/client.js");
  window.delays = [];
  window.states = [];
  window.timers = [];
  window.jitter = 1;
  const clock = {
    setTimeout: (fn, ms) => { delays.push(ms); timers.push(fn); return timers.length; },
    clearTimeout: () => {},
    random: () => jitter,
  };
  window.fire = () => timers.shift()();
  window.subscription = subscribe(null, () => {}, {
    transport: "comet",
    paths: { comet: "/comet/down" },
    clock: clock,
    onState: (state, info) => states.push([state, info.reason || ""]),
  });
}"""


def test_the_back_off_is_exponential_with_full_jitter_and_capped(demo_server, page):
    outcome = {"answer": "abort"}

    def down(route):
        if outcome["answer"] == "abort":
            route.abort()  # the server cannot be reached
        else:
            status, headers, body = outcome["answer"]
            route.fulfill(status=status, headers=headers, body=body)

    page.route("**/comet/down*", down)
    page.goto(demo_server.url + "/")
    page.evaluate(BACKOFF)

    def next_delay() -> float:
        """Fire the pending timer: the attempt it starts fails, and sets the
        next one."""
        count = page.evaluate("delays.length")
        page.evaluate("fire()")
        page.wait_for_function(f"delays.length > {count}")
        return page.evaluate("delays[delays.length - 1]")

    page.wait_for_function("delays.length === 1")
    delays = [page.evaluate("delays[0]")]
    for _ in range(7):
        delays.append(next_delay())
    # The ceiling doubles from 0.5 s and stops at 30 s; random() = 1 is it.
    assert delays == [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]
    page.evaluate("jitter = 0.25")
    assert next_delay() == 7500  # full jitter: random() x the ceiling

    text = {"Content-Type": "text/plain; charset=utf-8"}
    outcome["answer"] = (503, {**text, "Retry-After": "45"}, "Busy; try again later.\n")
    page.evaluate("jitter = 0")
    assert next_delay() == 45_000  # at least what Retry-After asks

    outcome["answer"] = (404, text, "There is no resource named 'down'.\n")
    page.evaluate("fire()")
    page.wait_for_function("states[states.length - 1][0] === 'stopped'")
    assert page.evaluate("states[states.length - 1]") == [
        "stopped",
        "There is no resource named 'down'.",
    ]
    assert page.evaluate("timers.length") == 0  # no retry after a 404


def test_the_embedding_guides_client_block_on_the_host_site(host_server, page):
    """The guide's import of client.js, run as a module on a page of the host
    site (the app under /live/, the host's STATIC_URL /assets/, no fast path:
    Django's handler serves its streams)."""
    block = replace(
        doc_block("embedding/client"),
        '"/static/selector_app/client.js"',
        '"/assets/selector_app/client.js"',
    )
    page.goto(host_server.url + "/live/")
    said = page.expect_console_message(
        lambda message: message.text.startswith("res is at "), timeout=15_000
    )
    live = page.expect_console_message(
        lambda message: message.text == "live over websocket", timeout=15_000
    )
    with said, live:
        page.add_script_tag(content=block, type="module")


FAKES = """async () => {
  const { subscribe } = await import("/static/selector_app/client.js");
  window.log = [];
  window.versions = [];
  window.sockets = [];
  class FakeSocket {
    constructor(url) { this.url = url; sockets.push(this); log.push("ws " + url); }
    close() {}
  }
  class FakeSource {
    constructor(url) { this.url = url; log.push("sse " + url); window.source = this; }
    close() {}
  }
  const timers = [];
  window.fire = () => timers.shift()();
  const paths = {
    websocket: "ws://fake/websocket/res", sse: "/fake-events", comet: "/fake-comet",
  };
  const clock = {
    setTimeout: (fn) => { timers.push(fn); }, clearTimeout: () => {}, random: () => 0,
  };
  const onState = (state, info) => {
    log.push(`${state} ${info.transport} ${info.reason || ""}`);
  };
  window.subscription = subscribe("res", (v) => versions.push([v.sequence, v.data]), {
    paths, WebSocket: FakeSocket, EventSource: FakeSource, clock, onState,
  });
}"""


def test_client_js_resumes_from_its_cursor_and_stops_on_4404(demo_server, page):
    """With the transports faked: a repeat is dropped, a reconnect carries the
    cursor, a socket that never opened falls back to SSE, 4404 stops."""
    page.goto(demo_server.url + "/")
    page.evaluate(FAKES)
    page.evaluate("""() => {
      const ws = sockets[0];
      ws.onopen();
      ws.onmessage({ data: "5 five" });
      ws.onmessage({ data: "5 five" });  // a repeat: dropped
      ws.onmessage({ data: "6 six\\nlines" });
      ws.onclose({ code: 1012, reason: "restart" });  // opened, then dropped
      fire();  // the back-off's timer: the same transport, from the cursor
      sockets[1].onclose({ code: 1006, reason: "" });  // never opened
      fire();  // the next transport at once
      source.onopen();
      source.onmessage({ data: "6 six\\nlines" });  // a repeat again
      source.onmessage({ data: "7 seven" });
    }""")
    assert page.evaluate("versions") == [[5, "five"], [6, "six\nlines"], [7, "seven"]]
    urls = [line for line in page.evaluate("log") if line.startswith(("ws ", "sse "))]
    assert urls == [
        "ws ws://fake/websocket/res",
        "ws ws://fake/websocket/res?seq=6",
        "sse /fake-events?seq=6",
    ]
    assert page.evaluate("subscription.transport") == "sse"
    page.evaluate("""() => {
      subscription.close();
      window.subscription = null;
    }""")
    page.evaluate(FAKES)
    page.evaluate("""() => {
      sockets[0].onopen();
      sockets[0].onclose({ code: 4404, reason: "There is no resource named 'res'." });
    }""")
    assert page.evaluate("log[log.length - 1]") == (
        "stopped websocket There is no resource named 'res'."
    )
