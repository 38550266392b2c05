"""The demo page's grid in headless Chromium: six resources on one /select
socket, falling back to /events/select and /select long-polls when a server
refuses WebSockets or event streams; and client.js's subscribeMany changing
its set on a live connection."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.support.browser import VIEWPORT, PageRecorder, save_screenshot
from tests.support.docs import doc_block, replace
from tests.support.server import ServerProcess, manage, project_env
from tests.test_browser_events import blocking_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

CELLS = [f"cell-{number}" for number in range(1, 7)]

#: Every cell's sequence, once all show one.
SEQUENCES = """() => {
  const cells = document.querySelectorAll('[data-live="grid"] [data-cell]');
  const out = {};
  for (const cell of cells) {
    const text = cell.querySelector('[data-role="sequence"]').textContent;
    if (!text) return null;
    out[cell.dataset.cell] = Number(text);
  }
  return out;
}"""


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


def grid_sequences(page, after: dict[str, int] | None = None) -> dict[str, int]:
    """The cells' sequences once every one is past ``after``'s."""
    after = after or {}
    page.wait_for_function(
        """([read, after]) => {
          const now = eval(read)();
          return now && Object.keys(now).every((n) => now[n] > (after[n] || 0));
        }""",
        arg=[SEQUENCES, after],
        timeout=15_000,
    )
    return page.evaluate(SEQUENCES)


@pytest.mark.parametrize(
    ("blocked", "transport"),
    [("", "websocket"), ("websocket", "sse"), ("websocket,sse", "comet")],
)
def test_the_grid_follows_six_resources_on_one_connection(
    env, tmp_path, page, blocked, transport
):
    with blocking_server(env, tmp_path, blocked) as server:
        page.goto(server.url + "/")
        grid = page.locator('[data-live="grid"]')
        expect(grid).to_have_attribute("data-state", "live")
        expect(grid).to_have_attribute("data-transport", transport)
        first = grid_sequences(page)
        assert sorted(first) == CELLS
        later = grid_sequences(page, first)  # every cell moves on
        assert all(later[name] > first[name] for name in CELLS)
        save_screenshot(page, f"grid-over-{transport}.png")


CHANGES = """async () => {
  const { subscribeMany } = await import("/static/selector_app/client.js");
  window.got = [];
  window.grid = subscribeMany({ "cell-1": 0 }, (v) => got.push([v.name, v.sequence]));
}"""


def test_subscribe_many_watches_and_unwatches_on_the_open_socket(env, tmp_path, page):
    server = ServerProcess(env, tmp_path / "server.log").start()
    try:
        page.goto(server.url + "/")
        page.evaluate(CHANGES)
        page.wait_for_function("got.length >= 1 && grid.state === 'live'")
        page.evaluate("grid.watch({'cell-2': 0})")
        page.wait_for_function("got.some(([name]) => name === 'cell-2')")
        page.evaluate("grid.unwatch(['cell-1']); window.mark = got.length")
        page.evaluate("grid.watch({'cell-3': 0})")
        page.wait_for_function(
            "got.slice(mark).filter(([name]) => name === 'cell-2').length >= 2"
            " && got.some(([name]) => name === 'cell-3')"
        )
        got = page.evaluate("got")
        assert page.evaluate("grid.transport") == "websocket"
        page.evaluate("grid.close()")
    finally:
        server.stop()
    mark = page.evaluate("mark")
    assert all(name != "cell-1" for name, _ in got[mark:])
    for name in ("cell-1", "cell-2", "cell-3"):
        sequences = [sequence for seen, sequence in got if seen == name]
        assert sequences == sorted(set(sequences)), (name, sequences)


def test_the_embedding_guides_subscribe_many_block(env, tmp_path, page):
    """The guide's block, run as a module on the demo page, with the demo's
    grid resources for its names and the demo's mount point."""
    block = doc_block("embedding/client-many")
    for placeholder, value in [
        ('"/live/"', '"/"'),
        ("prices: 0", '"cell-1": 0'),
        ("news: 0", '"cell-2": 0'),
        ("weather: 0", '"cell-3": 0'),
        ('["news"]', '["cell-2"]'),
    ]:
        block = replace(block, placeholder, value)
    server = ServerProcess(env, tmp_path / "server.log").start()
    try:
        page.goto(server.url + "/")
        said = page.expect_console_message(
            lambda message: message.text.startswith("cell-3 is at "), timeout=15_000
        )
        with said:
            page.add_script_tag(content=block, type="module")
    finally:
        server.stop()
