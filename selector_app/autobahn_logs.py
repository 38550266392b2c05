"""autobahn's debug-log arguments, built only when a debug line is written.

autobahn (Daphne's WebSocket implementation) logs every frame it writes::

    self.log.debug(
        "{func} sent {data_len} bytes for peer {peer}",
        func=hltype(self.sendData),
        peer=hlval(self.peer),
        data_len=hlval(len(data)),
    )

With debug logging off, ``self.log.debug`` does nothing, but Python has
already built its arguments: ``hltype`` and ``hlval`` colour their text with
``click.style`` (when click is installed, as it is with Uvicorn) and
``hltype`` inspects the method. That was about an eighth of Daphne's CPU per
pushed frame (docs/benchmarks.md, which also holds the upstream report). No
setting avoids it: txaio's log level only decides whether ``debug`` formats.

:func:`install` replaces those two names, in the two autobahn modules that
log per frame or per read, with twins that return a :class:`Styled`: a
placeholder that calls autobahn's own helper when the log line is formatted.
A debug line, when enabled, therefore reads exactly as before, and nothing
else in autobahn changes. ``SELECTOR_APP["LAZY_AUTOBAHN_LOGS"] = False``
leaves autobahn alone; the app's ``ready()`` applies the setting only when
autobahn is already loaded (Daphne imports it first), never importing it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from .conf import get_config

#: The modules whose per-frame (or per-read) debug calls build styled text.
MODULES = ("autobahn.websocket.protocol", "autobahn.twisted.websocket")
#: The helpers they call, all from ``autobahn.util``.
HELPERS = ("hltype", "hlval")


class Styled:
    """What ``autobahn.util.<helper>(*args, **kwargs)`` returns, made when
    the log line is formatted rather than when the call is made."""

    __slots__ = ("args", "helper", "kwargs")

    def __init__(self, helper: Callable[..., str], args: tuple, kwargs: dict) -> None:
        self.helper = helper
        self.args = args
        self.kwargs = kwargs

    def __str__(self) -> str:
        return self.helper(*self.args, **self.kwargs)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __repr__(self) -> str:
        return repr(str(self))


def deferred(helper: Callable[..., str]) -> Callable[..., Styled]:
    """``helper``'s twin that returns a :class:`Styled` of its call."""

    def styled(*args: Any, **kwargs: Any) -> Styled:
        return Styled(helper, args, kwargs)

    styled.__wrapped__ = helper  # type: ignore[attr-defined]
    styled.__name__ = helper.__name__
    return styled


def install() -> list[str]:
    """Patch the loaded modules of :data:`MODULES`; return their names.

    A module whose names are not autobahn's helpers (another version of
    autobahn) is left as it is.
    """
    util = sys.modules.get("autobahn.util")
    patched = []
    for name in MODULES:
        module = sys.modules.get(name)
        if util is None or module is None:
            continue
        for helper in HELPERS:
            if getattr(module, helper, None) is getattr(util, helper):
                setattr(module, helper, deferred(getattr(util, helper)))
        if installed(name):
            patched.append(name)
    return patched


def uninstall() -> None:
    """Give the patched modules autobahn's helpers back."""
    for name in MODULES:
        module = sys.modules.get(name)
        for helper in HELPERS:
            current = getattr(module, helper, None)
            original = getattr(current, "__wrapped__", None)
            if original is not None:
                setattr(module, helper, original)


def installed(name: str) -> bool:
    """Whether module ``name`` has the deferred helpers."""
    module = sys.modules.get(name)
    return all(
        hasattr(getattr(module, helper, None), "__wrapped__") for helper in HELPERS
    )


def configure() -> list[str]:
    """Apply ``SELECTOR_APP["LAZY_AUTOBAHN_LOGS"]``; return the patched modules.

    Called from ``AppConfig.ready()``: the patch must be in place before
    Daphne writes its first frame. Invalid settings patch nothing here (the
    system checks report them).
    """
    try:
        enabled = get_config().LAZY_AUTOBAHN_LOGS
    except ImproperlyConfigured:
        return []
    if not enabled:
        uninstall()
        return []
    return install()
