"""Optional dependencies: imported only where a feature needs them.

The app itself needs Django and Channels. Redis (for several processes) and
Daphne (for ``runserver``) are extras of the package, so a host site that did
not ask for one must never import it: a module that needs one imports it at
the point of use and turns a missing package into an ``ImproperlyConfigured``
that names the extra to install, instead of a ``ModuleNotFoundError`` from
deep inside the app.
"""

from __future__ import annotations

import importlib.util

from django.core.exceptions import ImproperlyConfigured

#: The distribution name on the package index.
DISTRIBUTION = "django-selector-app"

#: Which extra brings each optional top-level module.
EXTRA_OF = {"redis": "redis", "channels_redis": "redis", "daphne": "daphne"}


def install_command(extra: str) -> str:
    """The command that installs ``extra``, quoted for any shell."""
    return f'pip install "{DISTRIBUTION}[{extra}]"'


def missing_extra(module: str, *, feature: str) -> ImproperlyConfigured:
    """The error for ``feature`` needing ``module``, which is not installed."""
    top = module.split(".")[0]
    extra = EXTRA_OF[top]
    return ImproperlyConfigured(
        f"{feature} needs the Python package {top!r}, which is not installed. "
        f"Install the {extra!r} extra: {install_command(extra)}"
    )


def is_missing(error: ModuleNotFoundError, module: str) -> bool:
    """Whether ``error`` says that optional ``module`` itself is not installed
    (not a module it imports in turn, which is a different bug)."""
    return error.name is not None and error.name.split(".")[0] == module


def installed(module: str) -> bool:
    """Whether the top-level ``module`` can be imported, without importing it."""
    return importlib.util.find_spec(module.split(".")[0]) is not None
