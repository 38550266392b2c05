"""A stand-in socket for the hub's fan-out: records what it is sent."""

from __future__ import annotations

import asyncio

from selector_app.protocol import Snapshot
from selector_app.tasks import OwnedTasks, eagerly


class Recorder:
    """Takes every frame at once (or holds it while :attr:`blocked` is clear)
    and keeps the versions it got, in order."""

    def __init__(self) -> None:
        self.versions: asyncio.Queue[Snapshot] = asyncio.Queue()
        self.sent: list[int] = []
        self.errors: list[Exception] = []
        self.tasks = OwnedTasks()
        #: Cleared: a send completes only once it is set again.
        self.open = asyncio.Event()
        self.open.set()

    def send(self, snapshot: Snapshot):
        self.sent.append(snapshot.sequence)
        self.versions.put_nowait(snapshot)
        if self.open.is_set():
            return None
        return eagerly(self.open.wait())

    async def deliver(self, hub, name: str, cursor: int):
        """Subscribe this recorder to ``name`` on ``hub``."""
        return await hub.deliver(
            name, cursor, self.send, start=self.tasks.start, on_error=self.errors.append
        )

    async def next(self, timeout: float = 5) -> Snapshot:
        async with asyncio.timeout(timeout):
            return await self.versions.get()

    def pending(self) -> list[int]:
        """The sequences sent and not yet read with :meth:`next`."""
        out = []
        while not self.versions.empty():
            out.append(self.versions.get_nowait().sequence)
        return out
