"""The package reads from the bottom up: no module imports one above it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import selector_app

PACKAGE = Path(selector_app.__file__).parent

#: Each module's layer, lowest first; a module may import its own layer and
#: those below. Old paths kept for one release (snapshots, exceptions,
#: gc_tuning) only forward to the new ones and are left out.
LAYERS = [
    {
        "selector",
        "protocol",
        "tasks",
        "signals",
        "outages",
        "_deprecated",
        "limits",
        "servers",
        "rules",
        "metrics",
        "extras",
        "sse",
        "select_wire",
    },
    {"hub", "fanout", "selection", "conf", "connections"},
    {"models", "markers", "layers", "security", "autobahn_logs", "twisted_writes"},
    {"services", "access", "status"},
    {"reader", "feed", "locks", "updater", "heartbeat"},
    {"runtime", "shutdown", "health", "exposition"},
    {
        "endpoints",
        "events",
        "events_django",
        "events_select",
        "views",
        "consumers",
        "fastpath",
        "urls",
        "routing",
    },
    {"templatetags", "admin", "checks", "apps", "management", "migrations", "daphne"},
]
LAYER = {name: level for level, names in enumerate(LAYERS) for name in names}
FORWARDERS = {"snapshots", "exceptions", "gc_tuning", "__init__"}


def top_level(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0].removesuffix(".py")


def imported(path: Path) -> set[str]:
    """The app's modules ``path`` imports, lazily or not, by top-level name."""
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                parts = [*base, *(node.module or "").split(".")]
                parts = [part for part in parts if part]
                if len(parts) == 1:  # from . import x, y
                    names |= {alias.name for alias in node.names}
                else:
                    names.add(parts[1])
            elif node.module and node.module.startswith("selector_app."):
                names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("selector_app."):
                    names.add(alias.name.split(".")[1])
    return names


def test_every_module_has_a_layer():
    modules = {top_level(path) for path in PACKAGE.rglob("*.py")}
    assert modules - FORWARDERS <= set(LAYER), modules - FORWARDERS - set(LAYER)


def test_no_module_imports_one_above_it():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = top_level(path)
        if module in FORWARDERS:
            continue
        for name in imported(path) - {module}:
            if LAYER.get(name, -1) > LAYER[module]:
                upward.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert upward == []


def test_the_hub_and_the_selector_import_no_django():
    code = (
        "import sys, selector_app.hub; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
