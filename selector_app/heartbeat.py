"""Each process tells the deployment it is alive: a heartbeat row every interval.

A server process's runtime and every exclusive updater run a
:class:`Heartbeat`: it writes the process's row (:mod:`selector_app.status`)
at once, then every ``interval`` seconds, and sooner when the state it
reports changes (an updater that takes or loses its lease), and deletes it
when it stops. Writes run in a daemon thread of their own, each bounded like
the hub's reads, so a database that hangs blocks nothing: the process just
drops off the status page until the database answers again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

from channels.db import database_sync_to_async
from django.db import connections
from django.utils import timezone

from . import metrics, status
from .connections import process_counts
from .hub import Hub
from .outages import describe
from .reader import DaemonWorker

logger = logging.getLogger(__name__)

#: What a beat reports besides who the process is: ``state`` (and the
#: ``resource`` it is about) for updaters, ``details`` for servers.
Describe = Callable[[], dict[str, Any]]


class Heartbeat:
    """Writes this process's row every ``interval``, deletes it on the way out.

    ``describe()`` is asked every ``check_every`` seconds; a new ``state`` in
    its answer is written at once, anything else at the next interval.
    """

    def __init__(
        self,
        *,
        role: str,
        software: str,
        describe: Describe,
        interval: float,
        timeout: float,
        check_every: float | None = None,
    ) -> None:
        self.id = secrets.token_hex(16)
        self.role = role
        self.software = software
        self.describe = describe
        self.interval = interval
        self.timeout = timeout
        self.check_every = min(check_every or interval, interval)
        self.started_at = timezone.now()
        self.host = socket.gethostname()
        self.pid = os.getpid()
        #: Whether the last write failed (the failure is logged once).
        self.failing = False
        self._worker = DaemonWorker("selector_app heartbeat")
        self._state: tuple[object, object] | None = None
        self._state_since: datetime | None = None

    async def run(self) -> None:
        """Beat until cancelled, then remove the row (bounded)."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        try:
            while True:
                fields = self.describe()
                state = (fields.get("resource"), fields.get("state"))
                if state != self._state:
                    self._state, self._state_since = state, timezone.now()
                    due = loop.time()
                if loop.time() >= due:
                    due = loop.time() + self.interval
                    await self._call(self._save, fields)
                await asyncio.sleep(self.check_every)
        finally:
            await self._call(status.heartbeat_delete, {"id": self.id})
            self._worker.submit(connections.close_all)
            self._worker.shutdown(wait=False)

    def _save(self, **fields: Any) -> None:
        status.heartbeat_save(
            id=self.id,
            role=self.role,
            host=self.host,
            pid=self.pid,
            software=self.software,
            started_at=self.started_at,
            every=self.interval,
            state_since=self._state_since if fields.get("state") else None,
            **fields,
        )

    async def _call(self, func: Callable[..., None], kwargs: dict[str, Any]) -> None:
        """Run ``func`` in the heartbeat's thread, for at most ``timeout`` s.

        Skipped while an earlier call still hangs there: one thread, never a
        pile of them. Failures are logged once per outage.
        """
        if self._worker.busy_since is not None:
            return
        call = asyncio.ensure_future(
            database_sync_to_async(func, thread_sensitive=False, executor=self._worker)(
                **kwargs
            )
        )
        try:
            async with asyncio.timeout(self.timeout):
                await asyncio.shield(call)
        except asyncio.CancelledError:
            call.cancel()
            raise
        except Exception as error:
            call.cancel()
            # INFO, once: the outage itself is already a warning of the part
            # that needs the database (the hub's reads, the updater).
            logger.log(
                logging.DEBUG if self.failing else logging.INFO,
                "Could not write this process's heartbeat (%s); it is missing "
                "from the status page until the database answers.",
                describe(error),
            )
            self.failing = True
        else:
            if self.failing:
                logger.info("Heartbeats are written again.")
            self.failing = False


def server_software() -> str:
    """The ASGI server running this process, with its version."""
    # Uvicorn first: Django imports daphne wherever it is an installed app.
    for name in ("uvicorn", "daphne.server", "hypercorn"):
        if name in sys.modules:
            package = sys.modules[name.split(".")[0]]
            return f"{package.__name__} {getattr(package, '__version__', '')}".strip()
    return "unknown"


class LagWindow:
    """Publish-to-delivery latency quantiles since the previous look."""

    def __init__(self) -> None:
        self._last = self._counts()

    @staticmethod
    def _counts() -> list[int]:
        histograms = metrics.delivery.values()
        return [
            sum(column) for column in zip(*(h.counts for h in histograms), strict=True)
        ]

    def take(self) -> dict[str, Any]:
        counts = self._counts()
        window = [now - before for now, before in zip(counts, self._last, strict=True)]
        self._last = counts
        bounds = metrics.LATENCY_BUCKETS
        return {
            "deliveries": sum(window),
            "lag_p50": _rounded(metrics.quantile(bounds, window, 0.5)),
            "lag_p99": _rounded(metrics.quantile(bounds, window, 0.99)),
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


#: Versions of held resources a server's beat reports (the first by name).
VERSIONS_SHOWN = 20


def server_describer(hub: Hub, *, embedded_updater: str = "") -> Describe:
    """What a server process's beats report: its connections, held polls,
    the versions its hub has, the delivery lag since the last beat, and the
    resource its embedded updater publishes, if it runs one."""
    lag = LagWindow()

    def describe() -> dict[str, Any]:
        held = hub.sequences()
        return {
            "details": {
                "connections": process_counts(),
                "held_polls": hub.waiting_polls,
                # A process may hold thousands: the row (written every beat)
                # and the status page carry the first few and the count.
                "versions": dict(sorted(held.items())[:VERSIONS_SHOWN]),
                "held": len(held),
                "embedded_updater": embedded_updater,
                **lag.take(),
            }
        }

    return describe
