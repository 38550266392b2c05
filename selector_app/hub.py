"""The per-process read side: the latest version of each resource, and waiting on it.

Every held Comet request and every push socket of a server process waits on
one :class:`Hub`. It keeps the latest :class:`~selector_app.protocol.Snapshot`
of each resource, registers one provider per resource on a
:class:`~selector_app.selector.Selector` and triggers it whenever a resource
moves forward, so waiting is the Selector's level-triggered question: "is
there a version whose sequence differs from my cursor?"

The hub does no I/O and imports no Django: what keeps it current (the
channel layer, the database) lives in :mod:`selector_app.feed`, and the one
read it needs itself, a resource it has not seen yet, is a loader passed in.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping

from .protocol import Snapshot, TooManyWaiters, UnknownResource, differs
from .selector import Selector

#: Reads one resource's current version from the store, or ``None``.
Loader = Callable[[str], Awaitable[Snapshot | None]]


class Hub:
    """Keeps the latest snapshot per resource and wakes its waiters."""

    def __init__(self, *, load: Loader, max_waiting_polls: int) -> None:
        self.selector = Selector()
        #: Long-polls waiting for a publish right now, and their limit.
        self.waiting_polls = 0
        self.max_waiting_polls = max_waiting_polls
        #: Set by the first :meth:`reload` (tests and readiness probes wait on it).
        self.synced = asyncio.Event()
        self._snapshots: dict[str, Snapshot] = {}
        self._load = load

    # Keeping current -----------------------------------------------------------

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

    def reload(self, snapshots: Iterable[Snapshot]) -> None:
        """Take a full read of the store: advance every resource in it and
        forget those it no longer has."""
        present = set()
        for snapshot in snapshots:
            present.add(snapshot.name)
            self.advance(snapshot)
        for name in [name for name in self._snapshots if name not in present]:
            del self._snapshots[name]
            self.selector.unregister(name)
        self.synced.set()

    def _provider(self, name: str) -> Callable[[int], Snapshot | None]:
        snapshots = self._snapshots

        def provide(cursor: int) -> Snapshot | None:
            return differs(snapshots.get(name), cursor)

        return provide

    # Reading -------------------------------------------------------------------

    def get(self, name: str) -> Snapshot | None:
        """The latest version of ``name`` this hub knows, without I/O."""
        return self._snapshots.get(name)

    async def aget(self, name: str) -> Snapshot | None:
        """The latest version of ``name``, loaded from the store on a miss."""
        snapshot = self._snapshots.get(name)
        if snapshot is None:
            loaded = await self._load(name)
            if loaded is not None:
                self.advance(loaded)
                snapshot = self._snapshots[name]
        return snapshot

    async def _known(self, name: str) -> Snapshot:
        snapshot = await self.aget(name)
        if snapshot is None:
            raise UnknownResource(f"There is no resource named {name!r}.")
        return snapshot

    async def _against(self, name: str, cursor: int) -> Snapshot:
        """The version to compare a client's ``cursor`` with.

        A cursor ahead of this hub may come from another process that heard
        of a publish first (a client that moved here in a restart): asking
        the store first keeps that client from being sent an older version.
        Only a cursor the store is behind too (a reset) is answered with it.
        """
        snapshot = await self._known(name)
        if cursor > snapshot.sequence:
            loaded = await self._load(name)
            if loaded is not None:
                self.advance(loaded)
            snapshot = self._snapshots.get(name, snapshot)
        return snapshot

    # Waiting -------------------------------------------------------------------

    async def wait(
        self, cursors: Mapping[str, int], *, timeout: float | None = None
    ) -> dict[str, Snapshot]:
        """Wait until any of ``cursors``' resources differs from its cursor;
        every one that differs then. ``TimeoutError`` after ``timeout``."""
        return await self.selector.wait(cursors, timeout=timeout)

    async def poll(
        self, name: str, cursor: int, *, timeout: float | None = None
    ) -> Snapshot | None:
        """One long-poll: the current version at once if it differs from
        ``cursor``, else the next one published; ``None`` after ``timeout``.

        Only a poll that has to wait counts against ``max_waiting_polls``: an
        immediate answer holds nothing and is never refused.
        """
        answer = differs(await self._against(name, cursor), cursor)
        if answer is not None:
            return answer
        if self.waiting_polls >= self.max_waiting_polls:
            raise TooManyWaiters(
                f"This server process already holds {self.waiting_polls} "
                "long-poll requests. Retry later."
            )
        self.waiting_polls += 1
        try:
            return (await self.wait({name: cursor}, timeout=timeout))[name]
        except TimeoutError:
            return None
        finally:
            self.waiting_polls -= 1

    async def follow(self, name: str, cursor: int) -> AsyncIterator[Snapshot]:
        """Check that ``name`` exists, then return an iterator of its versions.

        The iterator yields every version newer than the last one it yielded,
        starting with the current one unless its sequence is ``cursor``. A
        slow consumer simply asks later and gets the latest version, never a
        backlog.
        """
        await self._against(name, cursor)
        return self._versions(name, cursor)

    async def _versions(self, name: str, cursor: int) -> AsyncIterator[Snapshot]:
        wait = self.selector.wait
        while True:
            snapshot = (await wait({name: cursor}))[name]
            cursor = snapshot.sequence
            yield snapshot
