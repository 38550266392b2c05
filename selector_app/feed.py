"""What keeps a hub current: the channel-layer subscription and re-reads of the rows.

The layer is a doorbell, not the store: its messages carry each new version
so that no process queries the database per publish, but they may be lost
(channel layers are at-most-once). So the feed also re-reads the rows when it
subscribes and every ``RESYNC_INTERVAL``, and it pings itself through the
layer to notice a subscription that has silently died.

Both cost what this process watches, not what the table holds: a message
about a resource the hub does not want is dropped before it is decoded, and
a re-read reads the rows written since the previous one plus the sequence of
each resource the hub holds (:func:`selector_app.services.resource_reread`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from channels.layers import BaseChannelLayer

from . import metrics
from .hub import Hub
from .outages import Outage, describe
from .protocol import PUBLISHED, Snapshot, Unavailable
from .reader import RowReader
from .tasks import OwnedTasks

logger = logging.getLogger(__name__)

#: Back-off between attempts to (re)subscribe to an unreachable layer.
RETRY_DELAYS = (0.1, 0.5, 1.0, 2.0, 5.0)

#: The message the feed sends itself every RESYNC_INTERVAL to prove that its
#: subscription still delivers.
PING = "selector_app.ping"
#: Silence, in RESYNC_INTERVALs, after which the subscription counts as dead.
SILENCE_LIMIT = 3


class Feed:
    """Feeds one hub from one channel in the app's group, plus periodic re-reads."""

    def __init__(
        self,
        hub: Hub,
        layer: BaseChannelLayer,
        *,
        group: str,
        resync_interval: float,
        reader: RowReader,
    ) -> None:
        self.hub = hub
        self.layer = layer
        self.group = group
        self.resync_interval = resync_interval
        #: Reads the rows; the feed closes it (the hub's loader may share it).
        self.reader = reader
        #: Where the next re-read's look for written rows starts
        #: (:mod:`selector_app.markers`); None until the first re-read.
        self.horizon: int | None = None
        #: The feed's channel in the group, once subscribed.
        self.channel: str | None = None
        self.tasks = OwnedTasks()
        self.layer_outage = Outage(logger, "the channel layer")
        #: Whether the feed holds a subscription, and the loop time the layer
        #: last delivered anything on it (our own ping at least): what the
        #: health endpoint and the ``layer up`` metric report.
        self.subscribed = False
        self.last_heard: float | None = None

    @property
    def silence_limit(self) -> float:
        """Seconds without any message after which the subscription is dead.

        The ping goes out once a round, and a round includes a re-read that
        may take the reader's whole timeout when the database hangs.
        """
        return SILENCE_LIMIT * self.resync_interval + self.reader.timeout

    def layer_alive(self) -> bool:
        """Subscribed, and heard from within :attr:`silence_limit`."""
        if not self.subscribed or self.last_heard is None:
            return False
        silent = asyncio.get_running_loop().time() - self.last_heard
        return silent <= self.silence_limit

    def start(self) -> None:
        """Subscribe and start re-reading, in tasks of the running loop."""
        self.tasks.start(self._listen(), "selector_app feed: listen")
        self.tasks.start(self._resync_forever(), "selector_app feed: resync")

    async def aclose(self) -> None:
        """Stop every task, leave the group, close the reader."""
        await self.tasks.aclose()
        if self.channel is not None:
            try:
                async with asyncio.timeout(self.resync_interval):
                    await self.layer.group_discard(self.group, self.channel)
            except Exception:
                logger.debug("Could not leave the group on close.", exc_info=True)
            self.channel = None
        await self.reader.aclose()

    async def resync(self) -> None:
        """Re-read what changed; a lost layer message costs only this long.

        ``Unavailable`` if the database does not answer in time.
        """
        # The marker first: whatever the layer delivers while the read is in
        # flight is newer than the read, and the hub keeps it.
        since = self.hub.marker()
        held = self.hub.held()
        started = time.perf_counter()
        try:
            found = await self.reader.reread(
                horizon=self.horizon, held=held, watched=self.hub.orphans()
            )
        except Exception:
            metrics.rereads["failed"] += 1
            raise
        metrics.rereads["ok"] += 1
        metrics.reread_duration.observe(time.perf_counter() - started)
        metrics.reread_rows["narrow"] += found.narrow
        metrics.reread_rows["whole"] += found.whole
        self.horizon = found.horizon
        self.hub.adopt(found.snapshots, gone=found.gone, since=since)
        for snapshot in found.snapshots:
            now = self.hub.get(snapshot.name)
            before = held.get(snapshot.name)
            if now is not None and (before is None or before[0] != now.sequence):
                metrics.publishes_seen[snapshot.name, "reread"] += 1
        # Counted per resource while this process holds it: a process that
        # served a million resources over a week must not keep a million
        # series (a dropped series is normal in Prometheus).
        get = self.hub.get
        for key in [key for key in metrics.publishes_seen if get(key[0]) is None]:
            del metrics.publishes_seen[key]

    async def _reread(self) -> None:
        try:
            await self.resync()
        except Unavailable:
            # The reader has logged the outage (once); the next round tries
            # again, and clients keep the versions they have meanwhile.
            return
        except Exception:
            logger.exception("Re-reading the rows failed; retrying next round.")

    # Re-reads ------------------------------------------------------------------

    async def _resync_forever(self) -> None:
        while True:
            await asyncio.sleep(self.resync_interval)
            await self._renew()
            # Re-read even when the layer is down: the database still has
            # every publish, so clients keep getting updates meanwhile.
            await self._reread()

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
        except Exception as error:
            self.layer_outage.failed(
                "Could not renew the channel-layer subscription (%s); updates "
                "arrive through the re-reads of the rows every %s s meanwhile.",
                describe(error),
                self.resync_interval,
                error=error,
            )
        else:
            self.layer_outage.recovered()

    # The subscription ----------------------------------------------------------

    async def _listen(self) -> None:
        attempt = 0
        while True:
            try:
                channel = await self._subscribe()
                self.subscribed = True
                self.last_heard = asyncio.get_running_loop().time()
                self.layer_outage.recovered("Re-reading the rows.")
                # Subscribed first, read second: nothing published in between
                # can be missed.
                await self._reread()
                attempt = 0
                while True:
                    self._receive(await self._receive_or_silence(channel))
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if self.subscribed:
                    metrics.resubscribes["layer"] += 1
                self.subscribed = False
                delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
                attempt += 1
                self.layer_outage.failed(
                    "Lost the channel-layer subscription (%s); subscribing again "
                    "with back-off up to %s s. Updates arrive through the re-reads "
                    "of the rows every %s s meanwhile.",
                    describe(error),
                    RETRY_DELAYS[-1],
                    self.resync_interval,
                    error=error,
                )
                await asyncio.sleep(delay)

    async def _subscribe(self) -> str:
        # Bounded: with redis-py's socket_timeout=None a black-holed Redis
        # would hold these calls for ever.
        async with asyncio.timeout(self.resync_interval):
            # Keep the channel across attempts: messages queued for it while
            # we were away are not lost, and the group gets no dead members.
            channel = self.channel or await self.layer.new_channel()
            await self.layer.group_add(self.group, channel)
        self.channel = channel
        return channel

    async def _receive_or_silence(self, channel: str) -> dict[str, Any]:
        # channels_redis's receive() never returns on a half-open connection
        # (Redis gone without a FIN/RST; socket_timeout is None) and raises
        # nothing. Our own ping arrives every resync interval, so a longer
        # silence means the subscription is dead. Cancelling receive() is
        # safe: channels_redis keeps an in-flight message in its backup queue.
        limit = self.silence_limit
        try:
            async with asyncio.timeout(limit):
                message = await self.layer.receive(channel)
                self.last_heard = asyncio.get_running_loop().time()
                return message
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
        name = message.get("name")
        if type(name) is str and not self.hub.wanted(name):
            return  # nobody here watches it: not even decoded
        try:
            snapshot = Snapshot.from_event(message)
        except ValueError:
            logger.warning("Ignoring a malformed %s message.", PUBLISHED)
            return
        if self.hub.advance(snapshot):
            metrics.publishes_seen[snapshot.name, "layer"] += 1
