"""Deprecated: ``Snapshot`` lives in :mod:`selector_app.protocol` now."""

from ._deprecated import moved

__getattr__ = moved(__name__, {"Snapshot": "selector_app.protocol.Snapshot"})
