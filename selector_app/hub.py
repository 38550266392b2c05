"""The per-process hub: one channel-layer subscription feeding one Selector.

Clients never join channel-layer groups. Each server process (each event
loop) has one hub with one channel in one group; it keeps the latest version
of every resource and calls ``selector.trigger(name)`` when one moves forward,
so an update costs one channel-layer message per process, whatever the number
of clients. The hub starts lazily on the running loop at first use.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Coroutine
from functools import wraps
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from channels.layers import BaseChannelLayer, InMemoryChannelLayer
from django.db import close_old_connections

from . import services
from .conf import get_config
from .gc_tuning import tune_gc
from .selector import Selector
from .snapshots import Snapshot

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Back-off between attempts to (re)subscribe to an unreachable layer.
RETRY_DELAYS = (0.1, 0.5, 1.0, 2.0, 5.0)

#: The message the hub sends itself every RESYNC_INTERVAL to prove that its
#: subscription still delivers.
PING = "selector_app.ping"
#: Silence, in RESYNC_INTERVALs, after which the subscription counts as dead.
SILENCE_LIMIT = 3


def _background_db(func: Callable[..., T]) -> Callable[..., Coroutine[Any, Any, T]]:
    """Run ``func`` in Django's sync thread with a healthy, released connection.

    The hub's reads happen outside any request, so nothing else would drop a
    connection the database has closed, or release one between re-reads.
    """

    @wraps(func)
    def run(*args: Any, **kwargs: Any) -> T:
        close_old_connections()
        try:
            return func(*args, **kwargs)
        finally:
            close_old_connections()

    return sync_to_async(run)


_read_all = _background_db(services.resource_snapshots)
_read_one = _background_db(services.resource_snapshot)


class Hub:
    """Keeps the latest snapshot per resource and wakes its waiters."""

    def __init__(self, layer: BaseChannelLayer) -> None:
        self.selector = Selector()
        self.layer = layer
        #: Comet requests currently held (waiting for a publish) by this hub.
        self.held = 0
        self._snapshots: dict[str, Snapshot] = {}
        self._channel: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        #: Set after the first full read of the rows (useful to tests and
        #: readiness probes).
        self.synced = asyncio.Event()

    # Lifecycle -------------------------------------------------------------

    def start(self) -> None:
        """Tune the collector, subscribe, start the periodic re-read and the
        embedded updater.

        The hub starts once the server is up and serving, which is the moment
        ``tune_gc()`` wants: the start-up objects are all there to be frozen.
        """
        tune_gc()
        self._spawn(self._listen(), "listen")
        self._spawn(self._resync_forever(), "resync")
        config = get_config()
        if config.EMBEDDED_UPDATER and isinstance(self.layer, InMemoryChannelLayer):
            from .updater import Updater

            updater = Updater(
                name=config.UPDATER_RESOURCE,
                interval=config.UPDATE_INTERVAL,
                length=config.RESOURCE_LENGTH,
            )
            self._spawn(updater.run(), "embedded updater")

    async def aclose(self) -> None:
        """Cancel every task of the hub and wait for them to finish."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._channel is not None:
            try:
                await self.layer.group_discard(get_config().GROUP, self._channel)
            except Exception:
                logger.debug("Could not leave the group on close.", exc_info=True)
            self._channel = None

    def _spawn(self, coro: Coroutine[Any, Any, None], what: str) -> None:
        task = asyncio.create_task(coro, name=f"selector_app hub: {what}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "%s stopped unexpectedly.", task.get_name(), exc_info=task.exception()
            )

    # Snapshots ---------------------------------------------------------------

    def advance(self, snapshot: Snapshot) -> bool:
        """Store ``snapshot`` if it is newer than what we have, and wake waiters.

        Versions only ever move forward, so a late layer message or a re-read
        that raced a publish can never send a client backwards.
        """
        name = snapshot.name
        current = self._snapshots.get(name)
        if current is not None and snapshot.sequence <= current.sequence:
            return False
        self._snapshots[name] = snapshot
        if current is None:
            self.selector.register({name: self._provider(name)})
        self.selector.trigger(name)
        return True

    def _provider(self, name: str) -> Callable[[int], Snapshot | None]:
        snapshots = self._snapshots

        def differs_from(cursor: int) -> Snapshot | None:
            # A cursor ahead of us (the database was reset) is answered too,
            # instead of being held forever.
            snapshot = snapshots.get(name)
            return snapshot if snapshot and snapshot.sequence != cursor else None

        return differs_from

    def _forget(self, name: str) -> None:
        self._snapshots.pop(name, None)
        self.selector.unregister(name)

    def snapshot(self, name: str) -> Snapshot | None:
        """The latest version of ``name`` this hub knows, without I/O."""
        return self._snapshots.get(name)

    async def aget(self, name: str) -> Snapshot | None:
        """The latest version of ``name``, read from the database on a miss."""
        snapshot = self._snapshots.get(name)
        if snapshot is None:
            snapshot = await _read_one(name=name)
            if snapshot is not None:
                self.advance(snapshot)
                snapshot = self._snapshots[name]
        return snapshot

    async def next_version(self, name: str, cursor: int) -> Snapshot:
        """Wait until ``name`` has a version whose sequence is not ``cursor``."""
        results = await self.selector.wait({name: cursor})
        return results[name]

    # Background tasks -------------------------------------------------------------

    async def resync(self) -> None:
        """Re-read every row; a lost layer message costs only this long."""
        snapshots = await _read_all()
        for snapshot in snapshots:
            self.advance(snapshot)
        present = {snapshot.name for snapshot in snapshots}
        for name in [name for name in self._snapshots if name not in present]:
            self._forget(name)
        self.synced.set()

    async def _resync_forever(self) -> None:
        while True:
            await asyncio.sleep(get_config().RESYNC_INTERVAL)
            await self._renew()
            # Re-read even when the layer is down: the database still has
            # every publish, so clients keep getting updates meanwhile.
            try:
                await self.resync()
            except Exception:
                logger.warning("Periodic re-read failed; retrying.", exc_info=True)

    async def _renew(self) -> None:
        channel = self._channel
        if channel is None:
            return
        try:
            # Bounded: with redis-py's socket_timeout=None a black-holed Redis
            # would block here for ever, and the re-reads with it. Cancelling
            # is harmless: both calls are retried at the next round.
            async with asyncio.timeout(get_config().RESYNC_INTERVAL):
                # Group membership expires (channels_redis: group_expiry, or
                # a Redis restart; in-memory: on any expired message).
                await self.layer.group_add(get_config().GROUP, channel)
                await self.layer.send(channel, {"type": PING})
        except Exception:
            logger.warning(
                "Could not renew the channel-layer subscription; updates arrive "
                "through the periodic re-read until it is back.",
                exc_info=True,
            )

    async def _listen(self) -> None:
        attempt = 0
        while True:
            try:
                # Keep the channel across attempts: messages queued for it
                # while we were away are not lost, and the group gets no
                # dead members.
                channel = self._channel or await self.layer.new_channel()
                await self.layer.group_add(get_config().GROUP, channel)
                self._channel = channel
                if attempt:
                    logger.info("Channel layer reachable again; re-reading rows.")
                # Subscribed first, read second: nothing published in between
                # can be missed.
                await self.resync()
                attempt = 0
                while True:
                    self._receive(await self._receive_or_silence(channel))
            except asyncio.CancelledError:
                raise
            except Exception:
                delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
                attempt += 1
                logger.warning(
                    "Channel layer or database unavailable (attempt %s); "
                    "retrying in %s s.",
                    attempt,
                    delay,
                    exc_info=attempt == 1,
                )
                await asyncio.sleep(delay)

    async def _receive_or_silence(self, channel: str) -> dict[str, Any]:
        # channels_redis's receive() never returns on a half-open connection
        # (Redis gone without a FIN/RST; socket_timeout is None) and raises
        # nothing. Our own ping arrives every RESYNC_INTERVAL, so a longer
        # silence means the subscription is dead. Cancelling receive() is
        # safe: channels_redis keeps an in-flight message in its backup queue.
        limit = SILENCE_LIMIT * get_config().RESYNC_INTERVAL
        try:
            async with asyncio.timeout(limit):
                return await self.layer.receive(channel)
        except TimeoutError:
            raise TimeoutError(
                f"Nothing arrived from the channel layer for {limit} s, not even "
                "the hub's own ping; subscribing again."
            ) from None

    def _receive(self, message: dict[str, Any]) -> None:
        if message.get("type") == PING:
            return
        if message.get("type") != "resource.published":
            logger.warning("Ignoring unexpected message %r.", message.get("type"))
            return
        try:
            snapshot = Snapshot.from_event(message)
        except ValueError:
            logger.warning("Ignoring a malformed resource.published message.")
            return
        self.advance(snapshot)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = (
    weakref.WeakKeyDictionary()
)


def get_hub() -> Hub:
    """The running loop's hub, created and started on first use."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = Hub(services.channel_layer())
        hub.start()
    return hub


async def close_hub() -> None:
    """Stop the running loop's hub, if it has one (tests, shutdown hooks)."""
    hub = _hubs.pop(asyncio.get_running_loop(), None)
    if hub is not None:
        await hub.aclose()
