"""The code the guides show is the code the tests run (and the reproduction
in docs/benchmarks.md's autobahn report runs as written).

docs/embedding.md's blocks headed ``# mysite/<file>`` are tests/hostsite's
files (the router from ``application =`` on, whose imports name a project),
and tests/test_hostsite.py runs that site on real servers.
"""

from __future__ import annotations

import re

from tests.support.server import ROOT

GUIDE = ROOT / "docs" / "embedding.md"
HOSTSITE = ROOT / "tests" / "hostsite"


def guide_block(header: str) -> str:
    """The python block of the embedding guide whose first line is ``header``."""
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.DOTALL)
    [block] = [block for block in blocks if block.startswith(f"{header}\n")]
    return block.removeprefix(f"{header}\n")


def test_the_guides_manage_py_lines_are_the_demos():
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.DOTALL)
    [block] = [block for block in blocks if "use_uvloop()" in block]
    assert block in (ROOT / "manage.py").read_text()


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
    assert guide_block("# mysite/access.py") == (HOSTSITE / "access.py").read_text()


def test_the_guides_router_is_the_host_sites():
    block = guide_block("# mysite/asgi.py")
    router = block[block.index("application = ProtocolTypeRouter(") :]
    assert "AuthMiddlewareStack(" in router and "OriginValidator(" in router
    assert router in (HOSTSITE / "asgi.py").read_text()


def test_the_host_site_points_authorize_at_that_hook():
    from tests.hostsite import settings

    assert settings.SELECTOR_APP["AUTHORIZE"] == "tests.hostsite.access.can_read"
    assert '"AUTHORIZE": "mysite.access.can_read"' in GUIDE.read_text()
