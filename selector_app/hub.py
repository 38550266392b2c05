"""The per-process read side: the latest version of each watched resource.

Every held Comet request and every push socket of a server process waits on
one :class:`Hub`. It keeps the latest :class:`~selector_app.protocol.Snapshot`
of each resource a client of this process watches (and of a bounded number
watched recently), registers one provider per resource it holds on a
:class:`~selector_app.selector.Selector` and triggers it whenever a resource
changes (forward, or backwards when a re-read finds the database reset), so
waiting is the Selector's level-triggered question: "is there a version whose
sequence differs from my cursor?" A long-poll asks it once (:meth:`Hub.poll`);
a push socket asks it for good (:meth:`Hub.deliver`), and the Selector's pass
over its watchers sends the frames (:mod:`selector_app.fanout`).

Memory follows the watchers, not the table: a resource is loaded from the
store when a client first asks for it (once for all the clients asking at the
same time), held while the Selector has a watcher on it, then kept among the
``cache`` most recently unwatched ones, then dropped. A layer message about a
resource nobody here watches costs a dictionary look-up. A name the store
does not have is remembered as absent until the next re-read, so a flood of
the same made-up name costs one query.

The hub does no I/O and imports no Django: what keeps it current (the
channel layer, the database) lives in :mod:`selector_app.feed`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
)

from .fanout import Delivery, OnError, Send, Start
from .protocol import Snapshot, TooManyWaiters, UnknownResource, differs
from .selection import Selection
from .selector import Selector

#: Reads one resource's current version from the store, or ``None``.
Loader = Callable[[str], Awaitable[Snapshot | None]]

#: Names remembered as absent from the store (between two re-reads) at most.
ABSENT_LIMIT = 10_000


def _newest(a: Snapshot | None, b: Snapshot | None) -> Snapshot | None:
    if a is None or (b is not None and b.sequence > a.sequence):
        return b
    return a


class Hub:
    """Keeps the latest snapshot per watched resource and wakes its waiters."""

    def __init__(
        self, *, load: Loader, max_waiting_polls: int, cache: int = 1000
    ) -> None:
        self.selector = Selector()
        #: Long-polls waiting for a publish right now, and their limit.
        self.waiting_polls = 0
        self.max_waiting_polls = max_waiting_polls
        #: How many snapshots of resources nobody watches it keeps (the most
        #: recently watched ones), besides the watched ones.
        self.cache = cache
        #: Set by the first re-read (tests and readiness probes wait on it).
        self.synced = asyncio.Event()
        self._snapshots: dict[str, Snapshot] = {}
        self._load = load
        #: Loads in flight, one per name, and versions announced meanwhile.
        self._loading: dict[str, asyncio.Future[Snapshot | None]] = {}
        self._early: dict[str, Snapshot] = {}
        #: Held names nobody watched when last looked at, oldest first.
        self._idle: dict[str, None] = {}
        #: Names the store did not have, since the last re-read.
        self._absent: dict[str, None] = {}
        #: Names waited on (:meth:`wait`) that the hub did not hold.
        self._orphans: set[str] = set()
        #: How many times a snapshot was stored, and each name's last store:
        #: what tells a re-read which resources changed while it ran.
        self._stores = 0
        self._stored_at: dict[str, int] = {}

    # Keeping current -----------------------------------------------------------

    def wanted(self, name: str) -> bool:
        """Whether a version of ``name`` is worth decoding and keeping: it is
        held, being loaded, or watched. A few dictionary look-ups.

        A message about an unwanted name still tells that it exists, so it is
        no longer remembered as absent.
        """
        if (
            name in self._snapshots
            or name in self._loading
            or self.selector.watched(name)
        ):
            return True
        self._absent.pop(name, None)
        return False

    def advance(self, snapshot: Snapshot) -> bool:
        """Store ``snapshot`` if it is newer than what we have, and wake waiters.

        This is how layer messages arrive: they only ever move a resource
        forward, so a late or duplicated message can never send a client
        backwards. A resource nobody here watches is not stored (a client
        that asks for it later loads it from the store).
        """
        name = snapshot.name
        current = self._snapshots.get(name)
        if current is None:
            if name in self._loading:
                # Its load may have read the row before this publish.
                self._early[name] = _newest(self._early.get(name), snapshot)
                return False
            if not self.wanted(name):
                return False
        elif snapshot.sequence <= current.sequence:
            return False
        self._store(snapshot, current)
        return True

    def marker(self) -> int:
        """A point in the hub's history, to pass to :meth:`adopt` or
        :meth:`reload` along with a read of the store that started after it."""
        return self._stores

    def held(self) -> dict[str, tuple[int, float | None]]:
        """What a re-read compares with the rows: each held name's sequence
        and publish time."""
        return {
            name: (snapshot.sequence, snapshot.published_at)
            for name, snapshot in self._snapshots.items()
        }

    def orphans(self) -> list[str]:
        """Names waited on that the hub does not hold (deleted, or never
        loaded): a re-read looks for their rows too."""
        watched = self.selector.watched
        self._orphans = {
            name
            for name in self._orphans
            if name not in self._snapshots and watched(name)
        }
        return sorted(self._orphans)

    def adopt(
        self,
        snapshots: Iterable[Snapshot],
        *,
        gone: Iterable[str] = (),
        since: int | None = None,
    ) -> None:
        """Take a re-read: ``snapshots`` are rows as the store has them now,
        ``gone`` names whose rows were deleted. The database is the truth.

        Every row is adopted as it is, even one whose sequence went *down*
        (the database was restored, or the row deleted and created again).
        Only what this hub stored after ``since`` (the :meth:`marker` taken
        before the read started) is left alone: a layer message that arrived
        while the read was in flight is newer than the read. Without
        ``since`` the read is taken to be newer than everything.
        """
        if since is None:
            since = self._stores
        newer = {name for name, stored in self._stored_at.items() if stored > since}
        for snapshot in snapshots:
            name = snapshot.name
            if name in newer:
                continue
            current = self._snapshots.get(name)
            if snapshot != current:
                self._store(snapshot, current)
            elif snapshot.published_at != current.published_at:
                self._snapshots[name] = snapshot  # the same version, the row's time
        for name in gone:
            if name in self._snapshots and name not in newer:
                self._forget(name)
        self._absent.clear()
        self.sweep()
        self.synced.set()

    def reload(
        self, snapshots: Iterable[Snapshot], *, since: int | None = None
    ) -> None:
        """Take a full read of the store (every row): as :meth:`adopt`, and
        every held resource the read does not have is gone."""
        if since is None:
            since = self._stores
        rows = list(snapshots)
        present = {snapshot.name for snapshot in rows}
        gone = [name for name in self._snapshots if name not in present]
        self.adopt(rows, gone=gone, since=since)

    def sweep(self) -> None:
        """Drop the snapshots nobody has watched for longest, keeping ``cache``
        of them (the feed calls it at every re-read)."""
        watched = self.selector.watched
        idle = self._idle
        for name in self._snapshots:
            if watched(name):
                idle.pop(name, None)
            elif name not in idle:
                idle[name] = None
        self._trim()

    def _trim(self, keep: str | None = None) -> None:
        idle = self._idle
        while len(idle) > self.cache:
            name = next(iter(idle))
            if name == keep:
                return  # just stored for a caller about to watch it
            del idle[name]
            if not self.selector.watched(name):
                self._forget(name)

    def _keep(self, snapshot: Snapshot) -> Snapshot:
        """Hold ``snapshot``, read from the store, unless a newer version is
        held; return the version held."""
        current = self._snapshots.get(snapshot.name)
        if current is not None and snapshot.sequence <= current.sequence:
            return current
        self._store(snapshot, current)
        return snapshot

    def _store(self, snapshot: Snapshot, current: Snapshot | None) -> None:
        name = snapshot.name
        self._stores += 1
        self._stored_at[name] = self._stores
        self._snapshots[name] = snapshot
        if current is None:
            self.selector.register({name: self._provider(name)})
            # Unwatched until a caller watches it; the next sweep knows.
            self._idle[name] = None
            self._trim(keep=name)
        # A provider answers any cursor that differs from the sequence, so a
        # version that went down reaches every waiter once, like a new one.
        self.selector.trigger(name)

    def _forget(self, name: str) -> None:
        del self._snapshots[name]
        del self._stored_at[name]
        self._idle.pop(name, None)
        self.selector.unregister(name)
        if self.selector.watched(name):
            self._orphans.add(name)  # deleted: a re-read sees it created again

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
        """The latest version of ``name`` this hub holds, without I/O."""
        return self._snapshots.get(name)

    def sequences(self) -> dict[str, int]:
        """The sequence of every resource this hub holds (metrics, status)."""
        return {name: s.sequence for name, s in self._snapshots.items()}

    async def aget(self, name: str) -> Snapshot | None:
        """The latest version of ``name``; ``None`` if there is no such resource.

        A resource the hub does not hold is loaded from the store, once for
        every caller asking for it meanwhile, and held. A name the store does
        not have is remembered until the next re-read (or a layer message
        about it): asking again costs no query.
        """
        snapshot = self._snapshots.get(name)
        if snapshot is not None or name in self._absent:
            return snapshot
        loaded = await self._load_shared(name)
        return self._snapshots.get(name, loaded)

    async def _load_shared(self, name: str) -> Snapshot | None:
        """Load ``name`` once for all the callers that want it at the same
        time, and hold it (or remember it absent)."""
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
            # A version announced while the row was being read may be newer.
            loaded = _newest(loaded, self._early.pop(name, None))
            del self._loading[name]
            if loaded is None:
                self._absent[name] = None
                if len(self._absent) > ABSENT_LIMIT:
                    del self._absent[next(iter(self._absent))]
            else:
                loaded = self._keep(loaded)
            pending.set_result(loaded)
            return loaded
        finally:
            self._loading.pop(name, None)
            self._early.pop(name, None)

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
                snapshot = _newest(snapshot, loaded)
        # Held again if it was dropped while we awaited: the caller watches
        # it next, without awaiting in between.
        return self._keep(snapshot)

    # Waiting -------------------------------------------------------------------

    async def wait(
        self, cursors: Mapping[str, int], *, timeout: float | None = None
    ) -> dict[str, Snapshot]:
        """Wait until any of ``cursors``' resources differs from its cursor;
        every one that differs then. ``TimeoutError`` after ``timeout``.

        A name the hub does not hold is loaded first (so the answer is the
        store's version, as for a held one; ``Unavailable`` if the database
        does not answer). One the store does not have is waited on all the
        same: its layer message, or the next re-read, brings the version
        that ends the wait.
        """
        for name in cursors:
            if name not in self._snapshots and await self.aget(name) is None:
                self._orphans.add(name)
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
        with self._holding_a_poll():
            try:
                return (await self.wait({name: cursor}, timeout=timeout))[name]
            except TimeoutError:
                return None

    async def poll_many(
        self, cursors: Mapping[str, int], *, timeout: float | None = None
    ) -> list[Snapshot] | None:
        """One long-poll over a watch set (``GET /select``): every resource
        whose version differs from its cursor, at once if any does, else
        when one does (with all that differ then); ``None`` after
        ``timeout``. One wait on the Selector, whatever the number of
        resources; it counts once against ``max_waiting_polls``."""
        snapshots = await self.prepare(cursors)
        ready = [
            s for s, c in zip(snapshots, cursors.values(), strict=True) if differs(s, c)
        ]
        if ready:
            return ready
        with self._holding_a_poll():
            try:
                fired = await self.wait(cursors, timeout=timeout)
            except TimeoutError:
                return None
        # The pass that woke us looked at the triggered resource only.
        return [
            snapshot
            for name, cursor in cursors.items()
            if (snapshot := fired.get(name) or differs(self.get(name), cursor))
        ]

    @contextlib.contextmanager
    def _holding_a_poll(self) -> Iterator[None]:
        """Count a long-poll that waits against ``max_waiting_polls``, or
        refuse it when the process holds that many already."""
        if self.waiting_polls >= self.max_waiting_polls:
            raise TooManyWaiters(
                f"This server process already holds {self.waiting_polls} "
                "long-poll requests. Retry later."
            )
        self.waiting_polls += 1
        try:
            yield
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
        while True:
            # A name dropped while the loop's body ran (nobody watched it
            # then) is loaded again by wait().
            snapshot = (await self.wait({name: cursor}))[name]
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

    async def prepare(self, cursors: Mapping[str, int]) -> list[Snapshot]:
        """Check that every resource of a watch set exists, loading those the
        hub does not hold (together, each once for every caller), and return
        their versions in order. :class:`UnknownResource` names every one
        the store does not have."""
        # Held ones without I/O; the others' reads together (a task each,
        # for the moment of the read only).
        found: dict[str, Snapshot | BaseException | None] = {
            name: snapshot
            if (snapshot := self._snapshots.get(name)) and cursor <= snapshot.sequence
            else None
            for name, cursor in cursors.items()
        }
        slow = [name for name, snapshot in found.items() if snapshot is None]
        if slow:
            results = await asyncio.gather(
                *(self._against(name, cursors[name]) for name in slow),
                return_exceptions=True,
            )
            found.update(zip(slow, results, strict=True))
        unknown = [
            name for name, item in found.items() if isinstance(item, UnknownResource)
        ]
        if unknown:
            listed = ", ".join(repr(name[:100]) for name in unknown[:10])
            raise UnknownResource(f"There is no resource named {listed}.")
        snapshots = []
        for item in found.values():
            if not isinstance(item, Snapshot):
                raise item  # type: ignore[misc]  # Unavailable, or a bug
            snapshots.append(item)
        return snapshots

    def hold(self, snapshots: Iterable[Snapshot]) -> None:
        """Hold these versions again (one may have been dropped while
        :meth:`prepare` awaited): call it right after watching them."""
        for snapshot in snapshots:
            self._keep(snapshot)

    async def select(
        self,
        cursors: Mapping[str, int],
        send: Send,
        *,
        start: Start,
        on_error: OnError,
    ) -> Selection:
        """Check that every resource of ``cursors`` exists, then send their
        versions to one socket with one watcher (:mod:`selector_app.selection`):
        at once every one whose sequence is not its cursor, then every newer
        one. Grow the set with :meth:`extend`."""
        snapshots = await self.prepare(cursors)
        selection = Selection(self, cursors, send, start=start, on_error=on_error)
        self.hold(snapshots)
        return selection

    async def extend(self, selection: Selection, cursors: Mapping[str, int]) -> None:
        """Add resources to a live selection (a ``watch`` frame): checked and
        loaded first, then watched in one turn of the loop."""
        snapshots = await self.prepare(cursors)
        selection.watch(cursors)
        self.hold(snapshots)
