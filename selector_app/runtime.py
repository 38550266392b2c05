"""A server process's live parts, wired together on first use.

Each event loop that serves the app gets one :class:`Runtime`: a hub (the
read side), the feed that keeps it current, and, with the in-memory layer
and ``EMBEDDED_UPDATER`` on, the updater inside the process (an in-memory
layer cannot reach another process). This module is the one place where
the read side and the write side meet: the hub never starts the updater.

Nothing starts at import or in ``AppConfig.ready()``: :func:`get_hub` starts
the running loop's runtime the first time a request or socket needs it, and
:func:`close_hub` stops it (tests, shutdown hooks).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import weakref

from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer

from . import services
from .conf import Config, get_config
from .feed import Feed
from .heartbeat import Heartbeat, server_describer, server_software
from .hub import Hub
from .layers import channel_layer
from .protocol import Snapshot
from .reader import RowReader
from .tasks import OwnedTasks
from .updater import Updater

logger = logging.getLogger(__name__)


class Runtime:
    """One loop's hub, its feed, and the embedded updater when there is one."""

    def __init__(self) -> None:
        config = get_config()
        layer = channel_layer()
        # One reader for the re-reads and the hub's first lookups: both are
        # bounded, and neither can block Django's shared database thread.
        reader = RowReader(timeout=config.READ_TIMEOUT)
        self.reader = reader
        #: The embedded updater's resource being created (see :meth:`start`).
        self.resource_made: asyncio.Task[None] | None = None
        self.hub = Hub(
            load=self._load,
            max_waiting_polls=config.MAX_HELD_REQUESTS,
            cache=config.SNAPSHOT_CACHE,
        )
        self.feed = Feed(
            self.hub,
            layer,
            group=config.GROUP,
            resync_interval=config.RESYNC_INTERVAL,
            reader=reader,
        )
        self.tasks = OwnedTasks()
        self.embedded_updater = config.EMBEDDED_UPDATER and isinstance(
            layer, InMemoryChannelLayer
        )
        #: Tells the deployment's status page this process is alive.
        self.heartbeat = (
            Heartbeat(
                role="server",
                software=server_software(),
                describe=server_describer(
                    self.hub,
                    embedded_updater=(
                        config.UPDATER_RESOURCE if self.embedded_updater else ""
                    ),
                ),
                interval=config.RESYNC_INTERVAL,
                timeout=config.READ_TIMEOUT,
            )
            if config.HEARTBEATS
            else None
        )

    def start(self) -> None:
        if self.embedded_updater:
            # Its resource exists before anything reads the store: the first
            # request of a new site must not get a 404 for the very resource
            # the updater is about to create.
            self.resource_made = self.tasks.start(
                self._make_resource_then_feed(), "selector_app embedded resource"
            )
        else:
            self.feed.start()
        if self.heartbeat is not None:
            self.tasks.start(self.heartbeat.run(), "selector_app heartbeat")
        if self.embedded_updater:
            config = get_config()
            for name in updated_resources(config):
                updater = Updater(
                    name=name,
                    interval=config.UPDATE_INTERVAL,
                    length=config.RESOURCE_LENGTH,
                )
                self.tasks.start(updater.run(), "selector_app embedded updater")

    async def aclose(self) -> None:
        await self.tasks.aclose()
        await self.feed.aclose()

    async def _load(self, name: str) -> Snapshot | None:
        """The hub's loader: a row, once the embedded updater's resource is made."""
        if self.resource_made is not None and not self.resource_made.done():
            await asyncio.wait([self.resource_made])
        return await self.reader.row(name)

    async def _make_resource_then_feed(self) -> None:
        config = get_config()
        try:
            for name in updated_resources(config):
                snapshot = await database_sync_to_async(services.resource_ensure)(
                    name=name, length=config.RESOURCE_LENGTH
                )
                self.hub.advance(snapshot)
        except Exception as error:
            # The updater tries again at its start and on every tick.
            logger.warning(
                "Could not create the embedded updater's resource %r yet: %s",
                config.UPDATER_RESOURCE,
                error,
            )
        self.feed.start()


def updated_resources(config: Config) -> list[str]:
    """What the embedded updater publishes: its resource and the grid's."""
    return list(dict.fromkeys((config.UPDATER_RESOURCE, *config.GRID_RESOURCES)))


_runtimes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Runtime] = (
    weakref.WeakKeyDictionary()
)


def get_runtime() -> Runtime:
    """The running loop's runtime, created and started on first use.

    The first use is also the moment :func:`tune_gc` wants: the server is up,
    and its start-up objects are all there to be frozen.
    """
    loop = asyncio.get_running_loop()
    runtime = _runtimes.get(loop)
    if runtime is None:
        tune_gc()
        runtime = _runtimes[loop] = Runtime()
        runtime.start()
    return runtime


def runtimes() -> list[Runtime]:
    """Every runtime of this process (metrics read them at scrape time)."""
    return list(_runtimes.values())


def get_hub() -> Hub:
    """The running loop's hub, started (with its feed) on first use."""
    return get_runtime().hub


async def close_hub() -> None:
    """Stop the running loop's runtime, if it has one, and wait for its tasks."""
    runtime = _runtimes.pop(asyncio.get_running_loop(), None)
    if runtime is not None:
        await runtime.aclose()


# Garbage-collector tuning ------------------------------------------------------

#: The process that has applied the tuning (a forked child re-applies it).
_tuned_in: int | None = None


def tune_gc() -> bool:
    """Apply ``SELECTOR_APP["GC_THRESHOLDS"]`` and ``gc.freeze()`` once per process.

    With thousands of open sockets, every generation-2 collection walks every
    live connection's objects: in benchmarks that took 30-40% of a server's
    CPU and paused it for tenths of a second. Raised thresholds, and freezing
    what exists after start-up (modules, settings, URL patterns), remove most
    of that; reference counting still frees almost everything.

    Does nothing when ``GC_TUNING`` is off or this process is already tuned;
    returns whether this call tuned it. Called when a runtime starts and when
    a socket that needs no runtime (``/bidirectional``) connects.
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
