"""The per-process read side: the latest version of each resource, and waiting on it.

Every held Comet request and every push socket of a server process waits on
one :class:`Hub`. It keeps the latest :class:`~selector_app.protocol.Snapshot`
of each resource, registers one provider per resource on a
:class:`~selector_app.selector.Selector` and triggers it whenever a resource
changes (forward, or backwards when a re-read finds the database reset), so
waiting is the Selector's level-triggered question: "is there a version whose
sequence differs from my cursor?" A long-poll asks it once (:meth:`Hub.poll`);
a push socket asks it for good (:meth:`Hub.deliver`), and the Selector's pass
over its watchers sends the frames (:mod:`selector_app.fanout`).

The hub does no I/O and imports no Django: what keeps it current (the
channel layer, the database) lives in :mod:`selector_app.feed`. Once it has
had a full read of the store it knows every name there is, so an unknown name
costs nothing; before that, a name it has not seen is read through a loader
passed in, once for all the requests that ask for it at the same time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping

from .fanout import Delivery, OnError, Send, Start
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
        #: How many times a snapshot was stored, and each name's last store:
        #: what tells a re-read which resources changed while it ran.
        self._stores = 0
        self._stored_at: dict[str, int] = {}

    # Keeping current -----------------------------------------------------------

    def advance(self, snapshot: Snapshot) -> bool:
        """Store ``snapshot`` if it is newer than what we have, and wake waiters.

        This is how layer messages and first lookups arrive: they only ever
        move a resource forward, so a late or duplicated message can never
        send a client backwards.
        """
        current = self._snapshots.get(snapshot.name)
        if current is not None and snapshot.sequence <= current.sequence:
            return False
        self._store(snapshot, current)
        return True

    def marker(self) -> int:
        """A point in the hub's history, to pass to :meth:`reload` along with
        a read of the store that started after it."""
        return self._stores

    def reload(
        self, snapshots: Iterable[Snapshot], *, since: int | None = None
    ) -> None:
        """Take a full read of the store: the database is the truth.

        Every row is adopted as it is, even one whose sequence went *down*
        (the database was restored, or the row deleted and created again),
        and resources the store no longer has are forgotten. Only what this
        hub stored after ``since`` (the :meth:`marker` taken before the read
        started) is left alone: a layer message that arrived while the read
        was in flight is newer than the read. Without ``since`` the read is
        taken to be newer than everything.
        """
        if since is None:
            since = self._stores
        newer = {name for name, stored in self._stored_at.items() if stored > since}
        present = set()
        for snapshot in snapshots:
            present.add(snapshot.name)
            current = self._snapshots.get(snapshot.name)
            if snapshot.name not in newer and snapshot != current:
                self._store(snapshot, current)
        for name in [name for name in self._snapshots if name not in present]:
            if name not in newer:
                self._forget(name)
        self.synced.set()

    def _store(self, snapshot: Snapshot, current: Snapshot | None) -> None:
        name = snapshot.name
        self._stores += 1
        self._stored_at[name] = self._stores
        self._snapshots[name] = snapshot
        if current is None:
            self.selector.register({name: self._provider(name)})
        # A provider answers any cursor that differs from the sequence, so a
        # version that went down reaches every waiter once, like a new one.
        self.selector.trigger(name)

    def _forget(self, name: str) -> None:
        del self._snapshots[name]
        del self._stored_at[name]
        self.selector.unregister(name)

    def _provider(self, name: str) -> Callable[[int | Delivery], Snapshot | None]:
        snapshots = self._snapshots

        def provide(cursor: int | Delivery) -> Snapshot | None:
            # A one-shot wait's condition is the client's sequence; a push
            # socket's is its Delivery, whose sequence moves as it sends.
            if type(cursor) is not int:
                cursor = cursor.sequence
            return differs(snapshots.get(name), cursor)

        return provide

    # Reading -------------------------------------------------------------------

    def get(self, name: str) -> Snapshot | None:
        """The latest version of ``name`` this hub knows, without I/O."""
        return self._snapshots.get(name)

    def sequences(self) -> dict[str, int]:
        """The sequence of every resource this hub knows (metrics, status)."""
        return {name: s.sequence for name, s in self._snapshots.items()}

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
            raise UnknownResource(f"There is no resource named {name[:100]!r}.")
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

        For code of your own that wants to loop over versions (the app's push
        sockets use :meth:`deliver`, which needs no task per socket). The
        iterator yields every version newer than the last one it yielded,
        starting with the current one unless its sequence is ``cursor``; a
        slow loop gets the latest version when it asks, never a backlog.
        """
        await self._against(name, cursor)
        return self._versions(name, cursor)

    async def _versions(self, name: str, cursor: int) -> AsyncIterator[Snapshot]:
        wait = self.selector.wait
        while True:
            snapshot = (await wait({name: cursor}))[name]
            cursor = snapshot.sequence
            yield snapshot

    async def deliver(
        self, name: str, cursor: int, send: Send, *, start: Start, on_error: OnError
    ) -> Delivery:
        """Check that ``name`` exists, then send its versions to one socket.

        ``send`` gets the current version at once unless its sequence is
        ``cursor``, then every newer one, from the hub's own fan-out pass (see
        :mod:`selector_app.fanout`): a slow socket gets the latest version
        when it has taken the previous one, never a backlog.
        """
        await self._against(name, cursor)
        return Delivery(self, name, cursor, send, start=start, on_error=on_error)
