"""Aggregator: keeps watchers (or aggregators) all active or all inactive together."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["Aggregator", "Cancellable"]


@runtime_checkable
class Cancellable(Protocol):
    """Anything `Aggregator.add` accepts: a `Watcher`, an `Aggregator` or alike."""

    def active(self) -> object: ...

    def cancel(self) -> object: ...


class Aggregator:
    """A group of watchers treated as one; it registers with no selector.

    Cancelling the group cancels every member, and adding an inactive member to an
    active group cancels the group, so members never end up in mixed states. The app
    itself does not use it (one watcher per wait suffices); it is kept because it is
    part of the Async::Selector API this package ports.
    """

    __slots__ = ("__weakref__", "_active", "_cancelling", "_watchers")

    def __init__(self) -> None:
        self._active = True
        self._cancelling = False
        self._watchers: list[Cancellable] = []

    def add(self, watcher: Cancellable) -> None:
        """Add `watcher`, first bringing it and the group to the same state.

        An active watcher added to an inactive group is cancelled; an inactive watcher
        added to an active group cancels the group (and everything in it).
        """
        if not (
            callable(getattr(watcher, "active", None))
            and callable(getattr(watcher, "cancel", None))
        ):
            raise TypeError(
                "Aggregator.add() takes a Watcher or an Aggregator (an object with "
                f"callable active() and cancel()), got {type(watcher).__name__}."
            )
        if watcher is self:
            raise ValueError("An Aggregator cannot be added to itself.")
        watcher_active = bool(watcher.active())
        if watcher_active and not self._active:
            watcher.cancel()
        elif not watcher_active and self._active:
            self.cancel()
        self._watchers.append(watcher)

    def watchers(self) -> list[Cancellable]:
        """Everything ever added, in order, cancelled ones included."""
        return list(self._watchers)

    def active(self) -> bool:
        """Whether the group is still active; once cancelled it stays inactive."""
        return self._active

    def cancel(self) -> Aggregator:
        """Make the group inactive for good and cancel every member; idempotent."""
        self._active = False
        # Guard against aggregators that contain each other, which would recurse
        # forever; a plain second cancel() still cancels every member again.
        if self._cancelling:
            return self
        self._cancelling = True
        try:
            for watcher in tuple(self._watchers):
                watcher.cancel()
        finally:
            self._cancelling = False
        return self
