"""Every command and code block of README.md, run as written.

The blocks are read from the README itself, so editing one edits the test:

- ``./scripts/test`` (both forms): .ci/run runs them verbatim; checked here.
- ``./scripts/demo``: run in a copy of this working tree, as a new user runs
  it (it makes its own ``.venv``); then, against it, the ``curl`` session,
  ``manage.py createsuperuser`` answered at its prompts, and a login to the
  admin it points to.
- The Python block: executed, and its async function awaited.
- The browser-console block: run in Chromium on the demo page.
- The websocat session: tests/test_origins.py.
"""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from selector_app.models import Resource
from tests.support.server import ROOT, tail

README = ROOT / "README.md"
#: Where the README's examples say the demo is.
DEMO = "http://127.0.0.1:8000"


def blocks(language: str) -> list[str]:
    """The README's fenced blocks in ``language``, in order."""
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), re.S)


def commands(block: str) -> list[str]:
    """A ``sh`` block's command lines (its comments are the shell's)."""
    return [line for line in block.splitlines() if line.strip()]


def test_every_fenced_block_is_one_this_module_knows():
    languages = re.findall(r"^```(\w*)\n", README.read_text(), re.M)
    assert set(languages) == {"console", "sh", "js", "python", ""}, languages


def test_ci_runs_the_readmes_test_commands_verbatim_fast_first():
    tests = [
        line
        for block in blocks("sh")
        for line in commands(block)
        if line.startswith("./scripts/test")
    ]
    assert tests == ["./scripts/test", './scripts/test -m "not slow"']
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    ran = [line for line in ci if line.startswith("./scripts/test")]
    assert ran == [tests[1], tests[0]]


async def test_the_python_block_publishes(res):
    [block] = blocks("python")
    namespace: dict[str, object] = {}
    from asgiref.sync import sync_to_async

    await sync_to_async(exec)(block, namespace)
    first = await Resource.objects.aget(name="res")
    assert (first.sequence, first.data) == (2, "hello")
    await namespace["publish_from_async_code"]()
    second = await Resource.objects.aget(name="res")
    assert (second.sequence, second.data) == (3, "hello")


# The demo as the README starts it --------------------------------------------


def port_8000_free() -> None:
    with socket.socket() as sock:
        if sock.connect_ex(("127.0.0.1", 8000)) == 0:
            reason = "Port 8000 is in use; the README's examples need it."
            if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
                pytest.fail(reason, pytrace=False)
            pytest.skip(reason)


def user_env() -> dict[str, str]:
    """This environment without the project's variables (pytest-django sets
    DJANGO_SETTINGS_MODULE, for one): a user's shell."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "SELECTOR_", "VIRTUAL_ENV"))
        and key not in ("DATABASE_URL", "REDIS_URL")
    }


def copy_of_this_tree(target: Path) -> Path:
    """The working tree's files as a clone would have them (no .venv, no db)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = ROOT / name.decode()
        if source.is_file() and not source.is_symlink():
            (target / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name.decode())
    return target


@pytest.fixture(scope="module")
def readme_demo(tmp_path_factory):
    """``./scripts/demo`` in a fresh copy, until its first 200 on port 8000."""
    port_8000_free()
    tree = copy_of_this_tree(tmp_path_factory.mktemp("clone"))
    log = tree / "demo.log"
    [demo] = [c for b in blocks("sh") for c in commands(b) if c == "./scripts/demo"]
    with log.open("ab") as output:
        process = subprocess.Popen(
            demo,
            shell=True,
            cwd=tree,
            env=user_env(),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 240  # installs .venv first
        while True:
            assert process.poll() is None, tail(log)
            assert time.monotonic() < deadline, tail(log)
            try:
                if httpx.get(f"{DEMO}/", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield tree
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_curl_session(readme_demo):
    [session] = [block for block in blocks("console") if "$ curl '" in block]
    typed = [line[2:] for line in session.splitlines() if line.startswith("$ ")]
    assert len(typed) == 2
    shown = [
        subprocess.run(
            command, shell=True, capture_output=True, text=True, timeout=40
        ).stdout
        for command in typed
    ]
    first, second = (reply.split(" ", 1) for reply in shown)
    assert first[0].isdigit() and len(first[1]) == 1024
    # "held until sequence 2 is published": whatever it is now, it is not 1.
    assert second[0].isdigit() and second[0] != "1" and len(second[1]) == 1024


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_event_stream_session_prints_an_event_a_second(readme_demo):
    [session] = [block for block in blocks("console") if "$ curl -N" in block]
    [typed] = [line[2:] for line in session.splitlines() if line.startswith("$ ")]
    shown = subprocess.run(
        f"timeout 3.5 {typed}", shell=True, capture_output=True, text=True
    ).stdout  # curl -N streams until it is stopped: 3.5 s of it
    assert shown.startswith("retry: 2000\n\n")
    events = [block.splitlines() for block in shown.split("\n\n")[1:] if block]
    ids = [int(lines[0].removeprefix("id: ")) for lines in events]
    # The current version at once, then one a second.
    assert 3 <= len(ids) <= 5 and ids == list(range(ids[0], ids[0] + len(ids)))
    for event_id, (_, data) in zip(ids, events, strict=True):
        sequence, text = data.removeprefix("data: ").split(" ", 1)
        assert int(sequence) == event_id and len(text) == 1024


def answer_prompts(command: str, cwd: Path, answers: list[tuple[str, str]]) -> str:
    """Run ``command`` on a terminal, typing each answer after its prompt."""
    pid, terminal = pty.fork()
    if pid == 0:  # the child: the shell, on the terminal
        os.chdir(cwd)
        os.execve("/bin/sh", ["/bin/sh", "-c", command], user_env())
    seen, ended = b"", False

    def read(deadline: float) -> None:
        nonlocal seen, ended
        assert time.monotonic() < deadline, seen.decode(errors="replace")
        ready, _, _ = select.select([terminal], [], [], 1)
        if ready:
            try:
                chunk = os.read(terminal, 4096)
            except OSError:  # the terminal closed: the command ended
                chunk = b""
            seen += chunk
            ended = not chunk

    try:
        for prompt, answer in answers:
            deadline = time.monotonic() + 60
            while prompt.encode() not in seen and not ended:
                read(deadline)
            assert not ended, seen.decode(errors="replace")
            seen = seen[seen.index(prompt.encode()) + len(prompt) :]
            os.write(terminal, f"{answer}\n".encode())
        deadline = time.monotonic() + 60
        while not ended:
            read(deadline)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(terminal)
    assert os.waitstatus_to_exitcode(status) == 0, seen.decode(errors="replace")
    return seen.decode(errors="replace")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_admin_block_creates_a_user_who_can_log_in(readme_demo):
    [block] = [block for block in blocks("sh") if "createsuperuser" in block]
    create, demo = commands(block)
    assert demo.startswith("./scripts/demo") and f"{DEMO}/admin/" in demo
    password = "a-long-unusual-passphrase-42"
    output = answer_prompts(
        create,
        readme_demo,
        [
            ("Username", "reader"),
            ("Email address", "reader@example.com"),
            ("Password:", password),
            ("Password (again):", password),
        ],
    )
    assert "Superuser created successfully." in output
    with httpx.Client(base_url=DEMO, timeout=10) as http:
        form = http.get("/admin/login/?next=/admin/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        logged_in = http.post(
            "/admin/login/?next=/admin/",
            data={
                "csrfmiddlewaretoken": token.group(1),
                "username": "reader",
                "password": password,
                "next": "/admin/",
            },
            headers={"Referer": f"{DEMO}/admin/login/"},
            follow_redirects=True,
        )
        assert logged_in.status_code == 200 and "Live resources" in logged_in.text


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_browser_console_block_on_the_demo_page(readme_demo):
    from playwright.sync_api import sync_playwright

    from tests.support.browser import launch, require_chromium

    [block] = blocks("js")
    chromium = require_chromium()
    with sync_playwright() as playwright:
        browser = launch(playwright, chromium)
        try:
            page = browser.new_page()
            page.goto(f"{DEMO}/")
            said = page.expect_console_message(
                lambda message: message.text == "you said: HELLO", timeout=15_000
            )
            ticked = page.expect_console_message(
                lambda message: message.text == "server tick #1", timeout=15_000
            )
            with ticked, said:  # both listen before the block runs
                page.add_script_tag(content=block)  # as typed into the console
        finally:
            browser.close()
