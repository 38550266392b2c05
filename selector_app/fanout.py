"""One fan-out pass per version: the hub's watchers send the frames themselves.

A push socket does not wait in a task of its own. It holds one
:class:`Delivery`: a persistent, level-triggered watcher on the hub's
:class:`~selector_app.selector.Selector` whose condition input is the
delivery itself (its :attr:`Delivery.sequence`, the version the client has).
When the hub triggers a resource, the Selector's pass over that resource's
watchers *is* the fan-out: each callback hands the frame to its socket's
ASGI ``send`` at once, without a task wake-up per socket.

A send that cannot complete at once (the server applies back-pressure: the
client reads slowly) is finished by a task of that socket's owner, and the
socket is left out of the passes meanwhile; when the send completes, the
socket gets the latest version if a newer one was published (latest-wins,
never a backlog, never the same version twice). A failing send stops only
its own delivery and is reported to its owner.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from .protocol import Snapshot, differs
from .selector import Watcher

if TYPE_CHECKING:
    from .hub import Hub

#: Hands a version to the client: ``None`` once the frame is with the server,
#: or an awaitable that completes when the server takes it (see
#: :func:`selector_app.tasks.eagerly`).
Send = Callable[[Snapshot], Awaitable[None] | None]
#: Starts a task the delivery's owner owns (``OwnedTasks.start``).
Start = Callable[[Coroutine[Any, Any, None], str], object]
#: Told why a delivery stopped: its send raised.
OnError = Callable[[Exception], None]


class Delivery:
    """Sends every version of one resource newer than the client's to one socket.

    Created by :meth:`Hub.deliver`; the owner calls :meth:`close` when the
    socket ends and cancels its tasks (which hold a slow send, if any).
    """

    __slots__ = (
        "_catching_up",
        "_hub",
        "_name",
        "_on_error",
        "_send",
        "_start",
        "_watcher",
        "sequence",
    )

    def __init__(
        self,
        hub: Hub,
        name: str,
        cursor: int,
        send: Send,
        *,
        start: Start,
        on_error: OnError,
    ) -> None:
        #: The sequence of the version the client has (or its cursor): the
        #: watcher's condition input, read by the hub's provider on each pass.
        self.sequence = cursor
        self._hub = hub
        self._name = name
        self._send = send
        self._start = start
        self._on_error = on_error
        #: A send is in flight: passes leave this socket to its task.
        self._catching_up = False
        # Level-triggered: the current version goes out now if it differs.
        self._watcher: Watcher = hub.selector.watch(self._fire, {name: self})

    def close(self) -> None:
        """Send nothing more (idempotent)."""
        self._watcher.cancel()

    def active(self) -> bool:
        """Whether it still sends (not closed, no send failed)."""
        return self._watcher.active()

    def _fire(self, watcher: Watcher, results: dict[str, Snapshot]) -> None:
        """The Selector's callback: one socket's share of a fan-out pass."""
        if self._catching_up:
            return  # its task sends the latest version when the send completes
        snapshot = results[self._name]
        self.sequence = snapshot.sequence
        try:
            rest = self._send(snapshot)
        except Exception as error:
            # `watcher`, not self._watcher: this may be the first check,
            # inside the constructor's watch().
            watcher.cancel()
            self._on_error(error)
            return
        if rest is not None:
            self._catching_up = True
            self._start(self._catch_up(rest), "selector_app slow send")

    async def _catch_up(self, rest: Awaitable[None]) -> None:
        """Finish a send the server held back, then send what was published
        meanwhile (only the latest), until a send completes at once."""
        try:
            while True:
                await rest
                if not self.active():
                    return
                latest = differs(self._hub.get(self._name), self.sequence)
                if latest is None:
                    return
                self.sequence = latest.sequence
                rest = self._send(latest)
                if rest is None:
                    return
        except Exception as error:
            self._watcher.cancel()
            self._on_error(error)
        finally:
            # Nothing awaits between the last check and here: the next pass
            # that finds a newer version sends it.
            self._catching_up = False
