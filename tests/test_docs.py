"""The code the guides show is the code the tests run.

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
