"""The per-process read side: the latest version of each resource, and waiting on it.

Every held Comet request and every push socket of a server process waits on
one :class:`Hub`. It keeps the latest :class:`~selector_app.protocol.Snapshot`
of each resource, registers one provider per resource on a
:class:`~selector_app.selector.Selector` and triggers it whenever a resource
moves forward, so waiting is the Selector's level-triggered question: "is
there a version whose sequence differs from my cursor?"

The hub does no I/O and imports no Django: what keeps it current (the
channel layer, the database) lives in :mod:`selector_app.feed`. Once it has
had a full read of the store it knows every name there is, so an unknown name
costs nothing; before that, a name it has not seen is read through a loader
passed in, once for all the requests that ask for it at the same time.
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
        #: Loads in flight before the first full read, one per name.
        self._loading: dict[str, asyncio.Future[Snapshot | None]] = {}
        #: Counts the names that became known, to tell a full read which of
        #: them appeared (by a layer message) after it had started.
        self._arrivals = 0
        self._arrived: dict[str, int] = {}

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
            self._arrivals += 1
            self._arrived[name] = self._arrivals
            self.selector.register({name: self._provider(name)})
        self.selector.trigger(name)
        return True

    def read_started(self) -> int:
        """Call before a full read of the store; pass the result to :meth:`reload`."""
        return self._arrivals

    def reload(self, snapshots: Iterable[Snapshot], started: int | None = None) -> None:
        """Take a full read of the store: advance every resource in it and
        forget those it no longer has.

        ``started`` (from :meth:`read_started`) keeps the names that arrived
        while the read was under way: a resource created a moment ago is
        known from its layer message even if the read missed it.
        """
        present = set()
        for snapshot in snapshots:
            present.add(snapshot.name)
            self.advance(snapshot)
        newer = self._arrivals if started is None else started
        for name in [name for name in self._snapshots if name not in present]:
            if self._arrived[name] <= newer:
                del self._snapshots[name]
                del self._arrived[name]
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
        """The latest version of ``name``; ``None`` if there is no such resource.

        After the first full read the hub knows every name (new ones arrive by
        layer message or the next re-read), so a miss is answered without I/O:
        a flood of made-up names costs no database query. Before it, a miss is
        loaded, once for every caller asking for that name meanwhile.
        """
        snapshot = self._snapshots.get(name)
        if snapshot is None and not self.synced.is_set():
            loaded = await self._load_shared(name)
            if loaded is not None:
                self.advance(loaded)
                snapshot = self._snapshots[name]
        return snapshot

    async def _load_shared(self, name: str) -> Snapshot | None:
        """Load ``name`` once for all the callers that want it at the same time."""
        while (pending := self._loading.get(name)) is not None:
            try:
                # Shielded: a caller that leaves must not cancel the others' load.
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not pending.cancelled() or (task and task.cancelling()):
                    raise
                # The caller that was loading it left: load it ourselves.
        pending = asyncio.get_running_loop().create_future()
        self._loading[name] = pending
        try:
            loaded = await self._load(name)
        except asyncio.CancelledError:
            pending.cancel()
            raise
        except Exception as error:
            pending.set_exception(error)
            pending.exception()  # retrieved: nobody may be waiting for it
            raise
        else:
            pending.set_result(loaded)
            return loaded
        finally:
            del self._loading[name]

    async def _known(self, name: str) -> Snapshot:
        snapshot = await self.aget(name)
        if snapshot is None:
            raise UnknownResource(f"There is no resource named {name!r}.")
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
        answer = differs(await self._known(name), cursor)
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
        await self._known(name)
        return self._versions(name, cursor)

    async def _versions(self, name: str, cursor: int) -> AsyncIterator[Snapshot]:
        wait = self.selector.wait
        while True:
            snapshot = (await wait({name: cursor}))[name]
            cursor = snapshot.sequence
            yield snapshot
