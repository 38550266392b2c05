"""Several resources to one socket: one watcher on the Selector, re-armed.

A ``/select`` socket or event stream holds one :class:`Selection`, the
multi-resource form of :class:`~selector_app.fanout.Delivery`: a persistent,
level-triggered watcher on the hub's Selector over every resource of its
watch set, whose condition input per resource is a :class:`Cursor` (the
version the client has of it). The Selector's pass over a resource's
watchers sends its frame to each socket at once; a socket costs no task,
whatever the number of resources it follows.

Changing the set (:meth:`Selection.watch`, :meth:`Selection.unwatch`)
cancels the watcher and creates the next one in the same turn of the loop,
with the same cursors, so a version published meanwhile cannot be lost: the
new watcher is level-triggered and fires at once for anything that differs.
A send the server holds back is finished by a task, which then sends the
latest version of every resource that moved meanwhile (latest-wins per
resource, never a backlog, never the same version twice).
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Mapping
from typing import TYPE_CHECKING

from .fanout import OnError, Send, Start
from .protocol import Snapshot, differs
from .selector import Watcher

if TYPE_CHECKING:
    from .hub import Hub


class Cursor:
    """The sequence a client has of one resource: the condition input the
    hub's provider reads (it reads ``.sequence``, as of a Delivery)."""

    __slots__ = ("sequence",)

    def __init__(self, sequence: int) -> None:
        self.sequence = sequence


class Selection:
    """Sends every version newer than the client's of each watched resource.

    Created by :meth:`Hub.select <selector_app.hub.Hub.select>`; the owner
    calls :meth:`close` when the socket ends and cancels its tasks.
    """

    __slots__ = (
        "_catching_up",
        "_closed",
        "_hub",
        "_on_error",
        "_send",
        "_start",
        "_watcher",
        "cursors",
    )

    def __init__(
        self,
        hub: Hub,
        cursors: Mapping[str, int],
        send: Send,
        *,
        start: Start,
        on_error: OnError,
    ) -> None:
        #: Resource name -> the client's cursor, in the order watched.
        self.cursors: dict[str, Cursor] = {
            name: Cursor(sequence) for name, sequence in cursors.items()
        }
        self._hub = hub
        self._send = send
        self._start = start
        self._on_error = on_error
        self._catching_up = False
        #: Closed by its owner, or a send failed: it stays stopped.
        self._closed = False
        self._watcher: Watcher = Watcher(None, {})
        self._arm()

    # The watch set -------------------------------------------------------------

    def sequences(self) -> dict[str, int]:
        """Each watched resource's cursor (an SSE event's ``id:``)."""
        return {name: cursor.sequence for name, cursor in self.cursors.items()}

    def watch(self, cursors: Mapping[str, int]) -> None:
        """Add resources; one already watched keeps its own cursor (what this
        socket has sent), so it is never sent the same version twice."""
        added = False
        for name, sequence in cursors.items():
            if name not in self.cursors:
                self.cursors[name] = Cursor(sequence)
                added = True
        if added:
            self._arm()

    def unwatch(self, names: Iterable[str]) -> None:
        """Stop sending these resources (names not watched are ignored)."""
        removed = [name for name in names if self.cursors.pop(name, None)]
        if removed:
            self._arm()

    def _arm(self) -> None:
        """Replace the watcher with one on the current set, in one turn of
        the loop: level-triggered, it sends at once whatever differs."""
        if self._closed:
            return
        self._watcher.cancel()
        if self.cursors:
            self._watcher = self._hub.selector.watch(self._fire, dict(self.cursors))
        else:
            self._watcher = Watcher(None, {})

    def close(self) -> None:
        """Send nothing more (idempotent)."""
        self._closed = True
        self._watcher.cancel()

    def active(self) -> bool:
        """Whether it still sends (not closed, no send failed)."""
        return not self._closed

    def _fail(self, watcher: Watcher, error: Exception) -> None:
        self._closed = True
        watcher.cancel()
        self._watcher.cancel()
        self._on_error(error)

    # Sending -------------------------------------------------------------------

    def _fire(self, watcher: Watcher, results: dict[str, Snapshot]) -> None:
        """The Selector's callback: this socket's share of a pass."""
        if self._catching_up:
            return  # its task sends the latest versions when the send completes
        try:
            rest = self._send_all(results.values())
        except Exception as error:
            # `watcher`, not self._watcher: this may be the first check,
            # inside _arm()'s watch().
            self._fail(watcher, error)
            return
        if rest is not None:
            self._catching_up = True
            self._start(self._catch_up(rest), "selector_app slow select send")

    def _send_all(self, snapshots: Iterable[Snapshot]) -> Awaitable[None] | None:
        """Send each version still newer than the client's, until a send is
        held back (returned: the rest waits for it)."""
        cursors = self.cursors
        for snapshot in snapshots:
            cursor = cursors.get(snapshot.name)
            if cursor is None or differs(snapshot, cursor.sequence) is None:
                continue
            cursor.sequence = snapshot.sequence
            rest = self._send(snapshot)
            if rest is not None:
                return rest
        return None

    def _pending(self) -> list[Snapshot]:
        get = self._hub.get
        return [
            snapshot
            for name, cursor in self.cursors.items()
            if (snapshot := differs(get(name), cursor.sequence)) is not None
        ]

    async def _catch_up(self, rest: Awaitable[None]) -> None:
        """Finish a held send, then send what moved meanwhile (the latest of
        each resource), until the sends complete at once."""
        try:
            while rest is not None:
                await rest
                if self._closed:
                    return
                rest = self._send_all(self._pending())
        except Exception as error:
            self._fail(self._watcher, error)
        finally:
            # Nothing awaits between the last check and here: the next pass
            # that finds a newer version sends it.
            self._catching_up = False
