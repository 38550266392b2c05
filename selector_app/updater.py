"""The periodic updater: publishes fresh random data to one resource.

Runs inside the server process when the channel layer is in-memory (the
embedded default) and as ``manage.py runupdater`` otherwise. There it is
*exclusive*: it holds a lock per resource (:mod:`selector_app.locks`), so a
second ``runupdater`` waits as a standby, and never publishes without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from channels.db import database_sync_to_async

from . import services
from .conf import get_config
from .heartbeat import Heartbeat
from .outages import Outage, Report, describe, say

if TYPE_CHECKING:
    from .locks import LockKeeper

logger = logging.getLogger(__name__)


class Updater:
    """Publishes to one resource at a fixed rate until stopped.

    :meth:`stop` lets a publish in flight finish (the row and its doorbell go
    out together) instead of cancelling it half-way.
    """

    #: Seconds between the info-level summary lines.
    summary_every = 60.0

    def __init__(
        self,
        *,
        name: str,
        interval: float,
        length: int,
        exclusive: bool = False,
        report: Report | None = None,
    ) -> None:
        self.name = name
        self.interval = interval
        self.length = length
        #: Hold the resource's lock and publish only while holding it.
        self.exclusive = exclusive
        #: Also shows the state changes and each publish (runupdater's output).
        self.report = report
        self.published = 0
        self.failed = 0
        #: Failing publishes (the database: the layer's failures are only
        #: logged) are one outage, logged when it starts and when it ends.
        self.outage = Outage(logger, "the database")
        self._stopping = asyncio.Event()
        self._lock: LockKeeper | None = None

    def stop(self) -> None:
        """Finish the current publish, if any, and return from :meth:`run`."""
        self._stopping.set()

    async def run(self, count: int | None = None) -> None:
        """Publish every ``interval`` seconds, ``count`` times or until stopped.

        A failed publish (database or layer down) is logged and retried at the
        next tick instead of ending the updater. An exclusive updater first
        waits for its resource's lock and publishes only while it holds it.
        """
        await database_sync_to_async(services.resource_ensure)(
            name=self.name, length=self.length
        )
        say(
            logger,
            self.report,
            logging.INFO,
            "Updating %r every %s s with %s characters.",
            self.name,
            self.interval,
            self.length,
        )
        async with self._locked():
            await self._loop(count)

    async def _loop(self, count: int | None) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        next_summary = started + self.summary_every
        next_tick = None
        while count is None or self.published < count:
            if not self._may_publish():
                next_tick = None
                if not await self._until_held():
                    break
            if next_tick is None:  # started, or (re)acquired the lock
                next_tick = loop.time()
            # An absolute schedule keeps the rate exact: a slow publish
            # shortens the next wait instead of drifting every later tick.
            next_tick += self.interval
            if await self._stopped_within(next_tick - loop.time()):
                break
            await self._publish_once()
            if loop.time() >= next_summary:
                next_summary += self.summary_every
                self._log_summary(loop.time() - started)
        self._log_summary(loop.time() - started)

    @contextlib.asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        if not self.exclusive:
            yield
            return
        # Imported here: the lock needs redis, which only an exclusive
        # updater (runupdater, several processes) needs installed.
        from .locks import resource_lock

        async with resource_lock(self.name, report=self.report) as lock:
            self._lock = lock
            beating = self._start_heartbeat(lock)
            try:
                yield
            finally:
                self._lock = None
                if beating is not None:
                    beating.cancel()
                    await asyncio.gather(beating, return_exceptions=True)

    def _start_heartbeat(self, lock: LockKeeper) -> asyncio.Task[None] | None:
        """Report this updater and its lease on the status page."""
        config = get_config()
        if not config.HEARTBEATS:
            return None
        heartbeat = Heartbeat(
            role="updater",
            software="runupdater",
            describe=lambda: {
                "resource": self.name,
                "state": "holding" if lock.held() else "standby",
            },
            interval=config.RESYNC_INTERVAL,
            timeout=config.READ_TIMEOUT,
            check_every=lock.retry_every,
        )
        return asyncio.create_task(
            heartbeat.run(), name=f"selector_app heartbeat: {self.name}"
        )

    def _may_publish(self) -> bool:
        return self._lock is None or self._lock.held()

    async def _until_held(self) -> bool:
        """Wait for the lock or for :meth:`stop`; whether the lock is held."""
        assert self._lock is not None
        waits = [
            asyncio.create_task(self._lock.wait_held()),
            asyncio.create_task(self._stopping.wait()),
        ]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        return not self._stopping.is_set()

    async def _stopped_within(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, seconds)):
                await self._stopping.wait()
        return self._stopping.is_set()

    async def _publish_once(self) -> None:
        if not self._may_publish():
            return  # the lock was lost while waiting; the loop waits for it
        try:
            snapshot = await services.aresource_publish_random(
                name=self.name, length=self.length
            )
        except Exception as error:
            self.failed += 1
            self._tell(
                logging.WARNING,
                self.outage.failed(
                    "Publishing %r failed (%s); trying again every tick.",
                    self.name,
                    describe(error),
                    error=error,
                ),
            )
        else:
            self.published += 1
            self._tell(logging.INFO, self.outage.recovered())
            say(
                logger,
                self.report,
                logging.DEBUG,
                "Published %s #%s.",
                self.name,
                snapshot.sequence,
            )

    def _tell(self, level: int, line: str | None) -> None:
        """Show a line already logged (an outage's start or end) in the report."""
        if line is not None and self.report is not None:
            self.report(level, line)

    def _log_summary(self, elapsed: float) -> None:
        logger.info(
            "%s: %s published, %s failed in %.0f s.",
            self.name,
            self.published,
            self.failed,
            elapsed,
        )
