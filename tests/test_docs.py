"""The code the guides show is the code the tests run (and the reproduction
in docs/benchmarks.md's autobahn report runs as written).

Every fenced block of docs/embedding.md and docs/deployment.md carries a
marker (tests/support/docs.py): ``<!-- test: NAME -->`` for a block some test
runs as written, found with ``doc_block("NAME")``, or ``<!-- not run: REASON
-->``. This module checks that the markers are complete and that every named
block is used by a test, and runs the blocks that need no process:
tests/test_embedding_guide.py and tests/test_deployment_guide.py run the rest
against a brand-new site and real servers.
"""

from __future__ import annotations

import re
import shlex
import textwrap

import pytest
from django.template import Context, Template
from django.test import RequestFactory

from tests.support.docs import (
    GUIDES,
    UnmarkedBlock,
    blocks,
    doc_block,
    parse,
    without_header,
)
from tests.support.server import ROOT, documented_command

HOSTSITE = ROOT / "tests" / "hostsite"


# The markers -------------------------------------------------------------------


@pytest.mark.parametrize("guide", GUIDES, ids=lambda path: path.name)
def test_every_block_of_the_guides_is_run_or_says_why_not(guide):
    for block in parse(guide.read_text(), guide.name):
        assert block.name or len(block.reason) > 10, block


def test_every_named_block_is_run_by_a_test():
    used = set()
    for path in (ROOT / "tests").rglob("*.py"):
        # doc_block("guide/name"), or the name in a table a test loops over.
        names = re.findall(
            r"""["']((?:embedding|deployment)/[\w-]+)["']""", path.read_text()
        )
        used |= set(names)
    assert set(blocks()) - used == set()
    assert used - set(blocks()) == set()  # no test names a block that is gone


@pytest.mark.parametrize(
    ("markdown", "problem"),
    [
        ("Text.\n\n```python\nx = 1\n```\n", "without a marker"),
        ("<!-- test: a -->\nText in between.\n```sh\nls\n```\n", "without a marker"),
        ("<!-- not run: -->\n```sh\nls\n```\n", "needs a name or reason"),
        ("<!-- test: a -->\n```sh\nls\n```\n<!-- test: b -->\n", "mark no block"),
        ("- item\n\n  ```python\n  x = 1\n  ```\n", "without a marker"),
    ],
)
def test_a_block_without_a_proper_marker_fails(markdown, problem):
    with pytest.raises(UnmarkedBlock, match=problem):
        parse(markdown)


def test_a_marked_block_indented_in_a_list_is_dedented():
    [block] = parse("- item\n\n  <!-- test: a -->\n  ```python\n  x = 1\n  ```\n")
    assert (block.name, block.language, block.text) == ("a", "python", "x = 1\n")


@pytest.mark.parametrize(
    "name", [name for name, block in blocks().items() if block.language == "python"]
)
def test_every_python_block_compiles(name):
    compile(doc_block(name), name, "exec")


# Blocks that are the test site's files -------------------------------------------


def test_the_guides_manage_py_lines_are_the_demos():
    lines = textwrap.indent(doc_block("embedding/manage-uvloop"), "    ")
    assert lines in (ROOT / "manage.py").read_text()


def test_the_autobahn_reproduction_runs_as_written(capsys):
    text = (ROOT / "docs" / "benchmarks.md").read_text()
    quoted = re.search(r"> ```python\n(.*?)> ```", text, re.DOTALL).group(1)
    block = "\n".join(
        line.removeprefix(">").removeprefix(" ") for line in quoted.splitlines()
    )
    from autobahn.websocket import protocol

    helpers = protocol.hltype, protocol.hlval
    try:
        exec(compile(block, "autobahn_sendData_cost.py", "exec"), {})
    finally:
        protocol.hltype, protocol.hlval = helpers
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "sendData",
        "sendData, debug arguments not built",
    ]


def test_the_guides_hook_is_the_host_sites():
    access = without_header(doc_block("embedding/access"))
    assert access == (HOSTSITE / "access.py").read_text()


def test_the_guides_consumer_is_the_host_sites():
    consumer = without_header(doc_block("embedding/consumer"))
    assert consumer == (HOSTSITE / "consumers.py").read_text()


def test_the_guides_router_is_the_host_sites():
    block = doc_block("embedding/asgi")
    router = block[block.index("application = ProtocolTypeRouter(") :]
    assert "AuthMiddlewareStack(" in router and "OriginValidator(" in router
    assert router in (HOSTSITE / "asgi.py").read_text()


def test_the_guides_receiver_is_the_host_sites():
    signals = (HOSTSITE / "notes" / "signals.py").read_text()
    assert doc_block("embedding/post-save") in signals


def test_the_host_site_points_authorize_at_that_hook():
    from tests.hostsite import settings

    assert settings.SELECTOR_APP["AUTHORIZE"] == "tests.hostsite.access.can_read"
    assert "mysite.access.can_read" in doc_block("embedding/authorize")


# Settings blocks, run as Python -------------------------------------------------


def run(block: str, **namespace: object) -> dict:
    exec(compile(block, "<guide>", "exec"), namespace)
    return namespace


def test_the_in_memory_layer_block_is_the_host_sites():
    from tests.hostsite import settings

    ran = run(doc_block("embedding/in-memory-layer"))
    assert ran["CHANNEL_LAYERS"] == settings.CHANNEL_LAYERS
    assert ran["SILENCED_SYSTEM_CHECKS"] == settings.SILENCED_SYSTEM_CHECKS


def test_the_redis_layer_block_builds_a_channels_redis_layer():
    layer = run(doc_block("embedding/redis-layer"))["CHANNEL_LAYERS"]["default"]
    assert layer["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    [host] = layer["CONFIG"]["hosts"]
    assert host["address"] == "redis://127.0.0.1:6379/0"
    assert host["socket_timeout"] is None


def test_the_sqlite_options_block_is_what_the_demo_uses():
    from realtime_site import settings

    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
        pytest.skip("DATABASE_URL names another database")
    ran = run(doc_block("deployment/sqlite-options"), DATABASES={"default": {}})
    assert ran["DATABASES"]["default"]["OPTIONS"] == {
        key: settings.DATABASES["default"]["OPTIONS"][key]
        for key in ("init_command", "transaction_mode", "timeout")
    }


def test_the_live_panels_block_renders_five_panels():
    request = RequestFactory().get("/")
    html = Template(doc_block("embedding/panels")).render(Context({"request": request}))
    assert html.count("data-live=") == 5
    assert 'data-live="sse" data-url="/events/notes"' in html
    assert 'data-live="comet" data-url="/comet/notes"' in html
    assert "WebSocket: Today's prices" in html and "live.js" in html


# Commands of docs/deployment.md ------------------------------------------------


@pytest.mark.parametrize(
    ("name", "server", "port"),
    [
        ("deployment/daphne", "daphne", "8001"),
        ("deployment/uvicorn", "uvicorn", "8003"),
    ],
)
def test_the_server_commands_tests_run_are_the_marked_blocks(name, server, port):
    # tests/support/server.py's documented_command() finds them by pattern.
    text = doc_block(name).replace("\\\n", " ")
    assert as_module(shlex.split(text)) == [
        arg.replace("{port}", port) for arg in documented_command(server)[1:]
    ]


def as_module(command: list[str]) -> list[str]:
    """``daphne …`` or ``python -m selector_app.daphne …`` as ``-m MODULE …``."""
    program, *args = command
    if program.endswith("python"):
        return args
    return ["-m", program.rsplit("/", 1)[-1], *args]


def test_the_systemd_unit_starts_the_documented_daphne_command():
    [unit] = [
        block
        for block in parse((ROOT / "docs" / "deployment.md").read_text())
        if block.language == "ini"
    ]
    [start] = [line for line in unit.text.splitlines() if line.startswith("ExecStart=")]
    command = shlex.split(start.removeprefix("ExecStart="))
    assert command[0].startswith("/srv/app/.venv/bin/")
    documented = [
        arg.replace("{port}", "%i") for arg in documented_command("daphne")[1:]
    ]
    assert as_module(command) == documented


def test_the_operations_guides_metrics_settings_are_valid(settings):
    from selector_app import checks

    text = (ROOT / "docs" / "operations.md").read_text()
    [block] = [
        block
        for block in re.findall(r"```python\n(.*?)```", text, re.DOTALL)
        if "METRICS" in block
    ]
    namespace: dict = {}
    exec(block, namespace)
    settings.SELECTOR_APP = namespace["SELECTOR_APP"]
    assert checks.check_settings() == [] and checks.check_metrics() == []
