"""The periodic updater: publishes fresh random data to one resource.

Runs inside the server process when the channel layer is in-memory (the
embedded default) and as ``manage.py runupdater`` otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from asgiref.sync import sync_to_async

from . import services

logger = logging.getLogger(__name__)


class Updater:
    """Publishes to one resource at a fixed rate until stopped.

    :meth:`stop` lets a publish in flight finish (the row and its doorbell go
    out together) instead of cancelling it half-way.
    """

    #: Seconds between the info-level summary lines.
    summary_every = 60.0

    def __init__(self, *, name: str, interval: float, length: int) -> None:
        self.name = name
        self.interval = interval
        self.length = length
        self.published = 0
        self.failed = 0
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Finish the current publish, if any, and return from :meth:`run`."""
        self._stopping.set()

    async def run(self, count: int | None = None) -> None:
        """Publish every ``interval`` seconds, ``count`` times or until stopped.

        A failed publish (database or layer down) is logged and retried at the
        next tick instead of ending the updater.
        """
        await sync_to_async(services.resource_ensure)(
            name=self.name, length=self.length
        )
        logger.info(
            "Updating %r every %s s with %s characters.",
            self.name,
            self.interval,
            self.length,
        )
        loop = asyncio.get_running_loop()
        started = next_tick = loop.time()
        next_summary = started + self.summary_every
        while count is None or self.published < count:
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

    async def _stopped_within(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, seconds)):
                await self._stopping.wait()
        return self._stopping.is_set()

    async def _publish_once(self) -> None:
        try:
            snapshot = await services.aresource_publish_random(
                name=self.name, length=self.length
            )
        except Exception:
            self.failed += 1
            logger.exception("Publishing %r failed; trying again next tick.", self.name)
        else:
            self.published += 1
            logger.debug("Published %s #%s.", self.name, snapshot.sequence)

    def _log_summary(self, elapsed: float) -> None:
        logger.info(
            "%s: %s published, %s failed in %.0f s.",
            self.name,
            self.published,
            self.failed,
            elapsed,
        )
