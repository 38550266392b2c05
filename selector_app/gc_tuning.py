"""Garbage-collector tuning for server processes that hold many connections.

With thousands of open sockets, every generation-2 collection walks every
live connection's objects: in benchmarks that took 30-40% of a server's CPU
and paused it for up to a few tenths of a second. Raising the thresholds and
freezing the objects that exist after start-up (modules, settings, URL
patterns, the hub) removes most of that cost. Reference counting still frees
almost everything; only cyclic garbage waits longer to be collected.
"""

from __future__ import annotations

import gc
import logging
import os

from .conf import get_config

logger = logging.getLogger(__name__)

#: The process that has applied the tuning (a forked child re-applies it).
_tuned_in: int | None = None


def tune_gc() -> bool:
    """Apply ``SELECTOR_APP["GC_THRESHOLDS"]`` and ``gc.freeze()`` once per process.

    Does nothing when ``SELECTOR_APP["GC_TUNING"]`` is off or this process has
    already been tuned; returns whether this call tuned it. Call it once the
    process has started up (the hub does, when it starts), so that start-up
    objects are frozen and never scanned again.
    """
    global _tuned_in
    config = get_config()
    if not config.GC_TUNING or _tuned_in == os.getpid():
        return False
    _tuned_in = os.getpid()
    gc.set_threshold(*config.GC_THRESHOLDS)
    # Free start-up garbage first, so that freezing does not keep it forever.
    gc.collect()
    gc.freeze()
    logger.debug(
        "GC tuned: thresholds %s, %s objects frozen.",
        config.GC_THRESHOLDS,
        gc.get_freeze_count(),
    )
    return True
