"""Deprecated: the errors clients are told of live in :mod:`selector_app.protocol`."""

from ._deprecated import moved

__getattr__ = moved(
    __name__,
    {
        name: f"selector_app.protocol.{name}"
        for name in ("InvalidCursor", "TooManyWaiters", "UnknownResource")
    },
)
