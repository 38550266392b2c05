"""The handle a `Selector.watch*` call returns (port of Async::Selector::Watcher)."""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .selector import Selector

__all__ = ["Watcher"]


class Watcher:
    """One watch on a Selector: its conditions, and the way to cancel it.

    It holds only a weak reference to its selector and never its callback (the selector
    owns that), so a callback that closes over its own watcher forms no reference cycle.
    """

    __slots__ = ("__weakref__", "_conditions", "_selector")

    def __init__(
        self, selector: Selector | None, conditions: Mapping[str, Any]
    ) -> None:
        """Only `Selector` stores a watcher; `Watcher(None, {})` is an inactive one."""
        self._selector: weakref.ref[Selector] | None = (
            None if selector is None else weakref.ref(selector)
        )
        self._conditions: dict[str, Any] = dict(conditions)

    def active(self) -> bool:
        """Whether the watcher is stored in a selector that is still alive."""
        ref = self._selector
        if ref is None:
            return False
        selector = ref()
        return selector is not None and selector._holds(self)

    def cancel(self) -> Watcher:
        """Remove the watcher from its selector and drop its callback; idempotent.

        Safe from anywhere, including its own callback, a provider or a nested trigger.
        """
        ref = self._selector
        if ref is not None:
            # Forget the selector first, so a re-entrant cancel() is a plain no-op.
            self._selector = None
            selector = ref()
            if selector is not None:
                selector._discard(self)
        return self

    def conditions(self) -> dict[str, Any]:
        """A new shallow copy of name -> condition input; still valid after cancel."""
        return dict(self._conditions)

    def resources(self) -> list[str]:
        """The watched resource names; still valid after cancel."""
        return list(self._conditions)

    def __repr__(self) -> str:
        state = "active" if self.active() else "inactive"
        return f"<Watcher {state} resources={list(self._conditions)!r}>"
