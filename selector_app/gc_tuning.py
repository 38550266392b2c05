"""Deprecated: garbage-collector tuning lives in :mod:`selector_app.runtime` now."""

from ._deprecated import moved

__getattr__ = moved(__name__, {"tune_gc": "selector_app.runtime.tune_gc"})
