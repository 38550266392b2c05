"""What keeps a hub current: the channel-layer subscription and re-reads of the rows.

The layer is a doorbell, not the store: its messages carry each new version
so that no process queries the database per publish, but they may be lost
(channel layers are at-most-once). So the feed also re-reads every row when
it subscribes and every ``RESYNC_INTERVAL``, and it pings itself through the
layer to notice a subscription that has silently died.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from channels.db import database_sync_to_async
from channels.layers import BaseChannelLayer

from . import services
from .hub import Hub
from .protocol import PUBLISHED, Snapshot
from .tasks import OwnedTasks

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Back-off between attempts to (re)subscribe to an unreachable layer.
RETRY_DELAYS = (0.1, 0.5, 1.0, 2.0, 5.0)

#: The message the feed sends itself every RESYNC_INTERVAL to prove that its
#: subscription still delivers.
PING = "selector_app.ping"
#: Silence, in RESYNC_INTERVALs, after which the subscription counts as dead.
SILENCE_LIMIT = 3


async def _in_database_thread(func: Callable[..., T], **kwargs: Any) -> T:
    """``func(**kwargs)`` in Django's database thread, with its connection tidied
    before and after (``database_sync_to_async``).

    Cancelling the caller does not stop the thread, so a cancelled caller
    waits for it before re-raising: once a feed or a request has finished,
    nothing it started still uses the database (a test's teardown flushing
    the tables would otherwise meet "database table is locked").
    """
    future = asyncio.ensure_future(database_sync_to_async(func)(**kwargs))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await future
        raise


async def read_rows() -> list[Snapshot]:
    """Every resource's current version, from the database."""
    return await _in_database_thread(services.resource_snapshots)


async def read_row(name: str) -> Snapshot | None:
    """One resource's current version from the database (the hub's loader)."""
    return await _in_database_thread(services.resource_snapshot, name=name)


class Feed:
    """Feeds one hub from one channel in the app's group, plus periodic re-reads."""

    def __init__(
        self,
        hub: Hub,
        layer: BaseChannelLayer,
        *,
        group: str,
        resync_interval: float,
    ) -> None:
        self.hub = hub
        self.layer = layer
        self.group = group
        self.resync_interval = resync_interval
        #: The feed's channel in the group, once subscribed.
        self.channel: str | None = None
        self.tasks = OwnedTasks()

    def start(self) -> None:
        """Subscribe and start re-reading, in tasks of the running loop."""
        self.tasks.start(self._listen(), "selector_app feed: listen")
        self.tasks.start(self._resync_forever(), "selector_app feed: resync")

    async def aclose(self) -> None:
        """Stop every task, then leave the group."""
        await self.tasks.aclose()
        if self.channel is not None:
            try:
                await self.layer.group_discard(self.group, self.channel)
            except Exception:
                logger.debug("Could not leave the group on close.", exc_info=True)
            self.channel = None

    async def resync(self) -> None:
        """Re-read every row; a lost layer message costs only this long."""
        started = self.hub.read_started()
        self.hub.reload(await read_rows(), started)

    # Re-reads ------------------------------------------------------------------

    async def _resync_forever(self) -> None:
        while True:
            await asyncio.sleep(self.resync_interval)
            await self._renew()
            # Re-read even when the layer is down: the database still has
            # every publish, so clients keep getting updates meanwhile.
            try:
                await self.resync()
            except Exception:
                logger.warning("Periodic re-read failed; retrying.", exc_info=True)

    async def _renew(self) -> None:
        channel = self.channel
        if channel is None:
            return
        try:
            # Bounded: with redis-py's socket_timeout=None a black-holed Redis
            # would block here for ever, and the re-reads with it. Cancelling
            # is harmless: both calls are retried at the next round.
            async with asyncio.timeout(self.resync_interval):
                # Group membership expires (channels_redis: group_expiry, or
                # a Redis restart; in-memory: on any expired message).
                await self.layer.group_add(self.group, channel)
                await self.layer.send(channel, {"type": PING})
        except Exception:
            logger.warning(
                "Could not renew the channel-layer subscription; updates arrive "
                "through the periodic re-read until it is back.",
                exc_info=True,
            )

    # The subscription ----------------------------------------------------------

    async def _listen(self) -> None:
        attempt = 0
        while True:
            try:
                # Keep the channel across attempts: messages queued for it
                # while we were away are not lost, and the group gets no
                # dead members.
                channel = self.channel or await self.layer.new_channel()
                await self.layer.group_add(self.group, channel)
                self.channel = channel
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
        # nothing. Our own ping arrives every resync interval, so a longer
        # silence means the subscription is dead. Cancelling receive() is
        # safe: channels_redis keeps an in-flight message in its backup queue.
        limit = SILENCE_LIMIT * self.resync_interval
        try:
            async with asyncio.timeout(limit):
                return await self.layer.receive(channel)
        except TimeoutError:
            raise TimeoutError(
                f"Nothing arrived from the channel layer for {limit} s, not even "
                "the feed's own ping; subscribing again."
            ) from None

    def _receive(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == PING:
            return
        if kind != PUBLISHED:
            logger.warning("Ignoring unexpected message %r.", kind)
            return
        try:
            snapshot = Snapshot.from_event(message)
        except ValueError:
            logger.warning("Ignoring a malformed %s message.", PUBLISHED)
            return
        self.hub.advance(snapshot)
