"""Old import paths that keep working, with a warning, for one release."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable


def moved(module: str, names: dict[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` that serves ``names`` from their new homes.

    ``names`` maps an old attribute of ``module`` to ``"new.module.attribute"``.
    Each access warns with a ``DeprecationWarning`` that names the new path.
    """

    def __getattr__(name: str) -> object:
        target = names.get(name)
        if target is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        new_module, _, attribute = target.rpartition(".")
        warnings.warn(
            f"{module}.{name} has moved to {target}; import it from there. "
            "The old path will be removed in the next release.",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(new_module), attribute)

    return __getattr__
