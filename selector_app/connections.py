"""The open connections of one event loop, by transport, and draining them.

Every transport tracks what it holds open here: each socket once accepted, each
Comet request while it is held. That gives two things a server process needs:

- a cheap count per transport (:meth:`Connections.count`, a ``len()``), for
  limits and metrics;
- the drain (:meth:`Connections.drain`): when the process is told to stop,
  refuse what arrives from then on, end held requests at once (a 503 with
  ``Retry-After``), close connections one by one, evenly over a window (so that
  thousands of clients do not reconnect in the same instant), and return once
  all have gone or the time is up.

A new transport (an event stream, ``/select``) takes part by tracking objects
that have an ``end()`` method; :meth:`Connections.hold` does it for a request
that waits. No Django, no I/O: :mod:`selector_app.shutdown` decides when to
drain.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import Counter
from typing import Protocol

from .protocol import SHUTTING_DOWN, ShuttingDown

logger = logging.getLogger(__name__)


class Member(Protocol):
    """Something a transport holds open: a socket, a held request, a stream."""

    #: Ended as soon as the drain starts (a held request: it is answered and
    #: the client asks again later), rather than at its turn in the spread (a
    #: socket or stream, whose client reconnects at once).
    ends_at_once: bool

    def end(self) -> None:
        """Start ending it because the process is shutting down; it untracks
        itself once it has ended. Must not block: it may schedule work."""


class Connections:
    """One event loop's open connections, by transport name.

    ``track`` and ``untrack`` are set operations; ``draining`` turns true when
    the drain starts and stays true.
    """

    def __init__(self) -> None:
        self.draining = False
        self._open: dict[str, set[Member]] = {}
        self._gone = asyncio.Event()
        _every.add(self)

    # Tracking ------------------------------------------------------------------

    def track(self, transport: str, member: Member) -> None:
        """Count ``member`` as open; one that arrives during the drain is
        ended at once (it raced the start of the drain)."""
        members = self._open.get(transport)
        if members is None:
            members = self._open[transport] = set()
        members.add(member)
        if self.draining:
            asyncio.get_running_loop().call_soon(_end, member)

    def untrack(self, transport: str, member: Member) -> None:
        """Forget ``member`` (it has ended); unknown members are ignored."""
        members = self._open.get(transport)
        if members is not None:
            members.discard(member)
        if self.draining and not self.count():
            self._gone.set()

    def count(self, transport: str | None = None) -> int:
        """Open members of ``transport``, or of every transport."""
        if transport is not None:
            return len(self._open.get(transport, ()))
        return sum(map(len, self._open.values()))

    def counts(self) -> dict[str, int]:
        """Open members per transport (for logs and metrics)."""
        return {name: len(members) for name, members in self._open.items()}

    def hold(self, transport: str) -> Hold:
        """``async with connections.hold("comet"):`` around a request's wait.

        Raises :class:`~selector_app.protocol.ShuttingDown` on entry during
        the drain, and out of the wait when the drain ends it.
        """
        return Hold(self, transport)

    # Draining ------------------------------------------------------------------

    async def drain(self, *, spread: float, timeout: float) -> bool:
        """End every open member and wait, at most ``timeout`` seconds, until
        all have gone; return whether they have.

        From now on new requests and sockets are refused. Members that end at
        once are ended first; the others one by one, evenly over ``spread``
        seconds (0: all at once).
        """
        self.draining = True
        members = [(name, m) for name, ms in self._open.items() for m in ms]
        at_once = [(name, m) for name, m in members if m.ends_at_once]
        in_turn = [(name, m) for name, m in members if not m.ends_at_once]
        logger.info(
            "Draining: ending %d held request(s) now and %d connection(s) over %.1f s.",
            len(at_once),
            len(in_turn),
            spread,
        )
        for _, member in at_once:
            _end(member)
        if not self.count():
            return True
        try:
            async with asyncio.timeout(timeout):
                await self._end_in_turn(in_turn, spread)
                await self._gone.wait()
        except TimeoutError:
            logger.warning(
                "Drain timed out after %.1f s with %s still open; the server "
                "closes them.",
                timeout,
                self.counts(),
            )
            return False
        return True

    async def _end_in_turn(
        self, members: list[tuple[str, Member]], spread: float
    ) -> None:
        """End ``members`` evenly over ``spread`` seconds, skipping those that
        have gone meanwhile."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        step = spread / len(members) if members else 0.0
        for index, (name, member) in enumerate(members):
            delay = start + index * step - loop.time()
            if delay > 0 and await self._all_gone_within(delay):
                return
            if member in self._open.get(name, ()):
                _end(member)

    async def _all_gone_within(self, delay: float) -> bool:
        """Sleep ``delay`` seconds, or less if every member leaves meanwhile."""
        try:
            async with asyncio.timeout(delay):
                await self._gone.wait()
        except TimeoutError:
            return False
        return True


#: Every Connections of this process (one per event loop serving the app).
_every: weakref.WeakSet[Connections] = weakref.WeakSet()


def process_counts() -> dict[str, int]:
    """Open members per transport over the whole process (metrics and
    heartbeats read this when asked, so tracking costs them nothing)."""
    total: Counter[str] = Counter()
    for connections in list(_every):
        total.update(connections.counts())
    return dict(total)


def _end(member: Member) -> None:
    try:
        member.end()
    except Exception:
        logger.exception("Could not end %r during the drain.", member)


class Hold:
    """A held request's place among the open connections.

    The drain ends it by making its timeout expire now: whatever the request
    awaits is cancelled there, and :class:`ShuttingDown` comes out of the
    ``async with``. ``asyncio.timeout`` already tells a cancellation it caused
    from one coming from outside (a client that went away), and costs no
    task or timer while nothing ends it.
    """

    __slots__ = ("_connections", "_timeout", "_transport", "ended")

    ends_at_once = True

    def __init__(self, connections: Connections, transport: str) -> None:
        self._connections = connections
        self._transport = transport
        self._timeout = asyncio.timeout(None)
        self.ended = False

    async def __aenter__(self) -> Hold:
        if self._connections.draining:
            raise ShuttingDown(SHUTTING_DOWN)
        await self._timeout.__aenter__()
        self._connections.track(self._transport, self)
        return self

    async def __aexit__(self, exc_type, exc, traceback) -> bool | None:
        self._connections.untrack(self._transport, self)
        try:
            return await self._timeout.__aexit__(exc_type, exc, traceback)
        except TimeoutError:
            if self.ended:
                raise ShuttingDown(SHUTTING_DOWN) from None
            raise

    def end(self) -> None:
        self.ended = True
        self._timeout.reschedule(asyncio.get_running_loop().time())
