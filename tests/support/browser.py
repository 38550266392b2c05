"""Headless Chromium for end-to-end tests: the system's browser through Playwright.

Playwright never downloads a browser here (``playwright install`` fails on these
machines); it drives Debian's ``chromium`` through ``executable_path``. Also a
command: ``python -m tests.support.browser docs/screenshot.png`` saves the
screenshot for the README (``scripts/screenshot`` runs it).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"

# Headless, no sandbox (root in containers), and no traffic of the browser's
# own: background networking, component updates and sync would all reach
# Google and make "no request to any other host" hard to trust.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CANDIDATES = ("chromium", "chromium-browser")
VIEWPORT = {"width": 1000, "height": 900}
DIGITS = re.compile(r"^\d+$")


def find_chromium() -> str | None:
    """The Chromium to drive: ``$CHROMIUM`` if set, else one on ``PATH``."""
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    for name in CANDIDATES:
        if path := shutil.which(name):
            return path
    return None


def require_chromium() -> str:
    """Chromium's path; skip without it, except in CI where it must be there."""
    path = find_chromium()
    if path:
        return path
    reason = (
        "No Chromium found (looked for $CHROMIUM, then chromium and "
        "chromium-browser on PATH). Install it with `apt-get install chromium` "
        "or run ./scripts/test, which does."
    )
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"Browser tests must run in CI. {reason}", pytrace=False)
    pytest.skip(reason)


def launch(playwright, executable_path: str):
    """A headless Chromium browser started from ``executable_path``."""
    return playwright.chromium.launch(
        executable_path=executable_path, headless=True, args=CHROMIUM_ARGS
    )


@dataclass
class PageRecorder:
    """Everything a page asked for and every error it reported."""

    urls: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def attach(self, context) -> PageRecorder:
        context.on("request", lambda request: self.urls.append(request.url))
        context.on("page", self._watch)
        for page in context.pages:
            self._watch(page)
        return self

    def _watch(self, page) -> None:
        page.on("websocket", lambda ws: self.urls.append(ws.url))
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.console_errors.append(str(error)))

    def _console(self, message) -> None:
        if message.type == "error":
            where = message.location.get("url") or "?"
            self.console_errors.append(f"{where}: {message.text}")

    def foreign(self, netloc: str) -> list[str]:
        """The recorded URLs that went anywhere but ``netloc``."""
        return [url for url in self.urls if urlsplit(url).netloc != netloc]


def save_screenshot(page, name: str) -> Path:
    """A full-page PNG in ``test-artifacts/`` (git-ignored), for a human."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=path, full_page=True)
    return path


def wait_until_live(page, *, timeout: float = 10_000) -> None:
    """Wait until every panel is live and both resource panels show data."""
    from playwright.sync_api import expect

    for state in page.locator('[data-live] [data-role="state"]').all():
        expect(state).to_have_attribute("data-state", "live", timeout=timeout)
    for sequence in page.locator('[data-live] [data-role="sequence"]').all():
        expect(sequence).to_have_text(DIGITS, timeout=timeout)


def capture_docs_screenshot(path: Path) -> None:
    """Start the demo, let all the panels go live, and save a small PNG."""
    from playwright.sync_api import expect, sync_playwright

    from tests.support.server import ServerProcess, manage, project_env

    chromium = find_chromium()
    if chromium is None:
        sys.exit("No Chromium found: apt-get install chromium (or set $CHROMIUM).")
    with tempfile.TemporaryDirectory() as directory:
        env = project_env(DATABASE_URL=f"sqlite:///{directory}/db.sqlite3")
        manage("migrate", "-v0", env=env)
        server = ServerProcess(env, Path(directory) / "server.log")
        with server, sync_playwright() as playwright:
            browser = launch(playwright, chromium)
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(server.url + "/")
            wait_until_live(page)
            log = page.locator("#bidirectional_log")
            expect(log.locator("li.tick").first).to_have_text("server tick #2")
            page.fill("#bidirectional_input", "hello")
            page.press("#bidirectional_input", "Enter")
            expect(log.locator("li.echo").first).to_have_text("you said: HELLO")
            expect(log.locator("li.tick").first).to_have_text("server tick #3")
            page.screenshot(path=path, full_page=True)
            browser.close()


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "docs/screenshot.png")
    capture_docs_screenshot(target)
    print(f"Saved {target} ({target.stat().st_size // 1024} KB).")
