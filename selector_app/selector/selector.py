"""A level-triggered resource selector: a port of Perl's Async::Selector 1.03.

Providers are registered under resource names; watchers wait on names with a condition
input each; `trigger(name)` re-checks the watchers of that name and calls back those for
which a provider returns something other than ``None``. The contract is
docs/selector.md in the repository.

Not thread-safe: use a Selector from one event-loop thread only. From another thread,
trigger it with ``loop.call_soon_threadsafe(selector.trigger, name)``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeAlias

from .watcher import Watcher

__all__ = ["Callback", "Provider", "Selector"]

logger = logging.getLogger("selector_app.selector")

Provider: TypeAlias = Callable[[Any], Any]
"""`provider(condition_input)` returns the resource, or ``None`` if not available."""

Callback: TypeAlias = Callable[[Watcher, dict[str, Any]], object]
"""`callback(watcher, results)`; results maps each available name to its value."""


def _merge(mapping: Mapping[Any, Any] | None, more: dict[str, Any]) -> dict[str, Any]:
    """Merge a mapping and keywords into one dict of normalised names; later wins."""
    if type(mapping) is dict and not more:
        # The common call (one plain dict of str names) is on every wait():
        # skip the Mapping check and the per-name normalisation.
        for name in mapping:
            if type(name) is not str:
                break
        else:
            return dict(mapping)
    merged: dict[str, Any] = {}
    if mapping is not None:
        if not isinstance(mapping, Mapping):
            raise TypeError(
                f"Expected a mapping of resource name to value, got "
                f"{type(mapping).__name__}; pass a dict or keyword arguments."
            )
        for name, value in mapping.items():
            if name is None:
                raise TypeError(
                    "A resource name cannot be None; use a string such as 'res'."
                )
            merged[str(name)] = value
    merged.update(more)
    return merged


class Selector:
    """Observes named resources and calls back watchers when one becomes available.

    It owns each stored watcher's callback and keeps an index name -> watchers so that
    `trigger` visits only the watchers of the triggered names.
    """

    __slots__ = ("__weakref__", "_callbacks", "_index", "_providers")

    def __init__(self) -> None:
        self._providers: dict[str, Provider] = {}
        # The stored (active) watchers, in creation order, with their callbacks.
        self._callbacks: dict[Watcher, Callback] = {}
        # name -> stored watchers that watch it (a dict used as an ordered set).
        self._index: dict[str, dict[Watcher, None]] = {}

    # -- resources -------------------------------------------------------------------

    def register(
        self, providers: Mapping[Any, Provider] | None = None, /, **more: Provider
    ) -> Selector:
        """Add or replace providers; registers nothing if any of them is not callable.

        Never checks or fires a watcher: call `trigger` for that.
        """
        merged = _merge(providers, more)
        bad = [name for name, provider in merged.items() if not callable(provider)]
        if bad:
            raise TypeError(
                "Providers must be callable, but these are not: "
                f"{', '.join(map(repr, bad))}. Nothing was registered; pass "
                "functions taking the condition input and returning the resource "
                "or None."
            )
        self._providers.update(merged)
        return self

    def unregister(self, *names: object) -> Selector:
        """Remove providers; unknown names are ignored and watchers are left alone."""
        for name in names:
            if name is not None:
                self._providers.pop(str(name), None)
        return self

    def resources(self) -> list[str]:
        """The registered resource names."""
        return list(self._providers)

    def registered(self, name: object) -> bool:
        """Whether a provider is registered under `name`."""
        return name is not None and str(name) in self._providers

    # -- watching --------------------------------------------------------------------

    def watch(
        self,
        callback: Callback,
        conditions: Mapping[Any, Any] | None = None,
        /,
        **more: Any,
    ) -> Watcher:
        """Level-triggered watch: fires before returning if a resource is ready now.

        That is why the callback receives the watcher: it may run before `watch` ends.
        """
        return self._watch(callback, conditions, more, level=True)

    watch_lt = watch

    def watch_et(
        self,
        callback: Callback,
        conditions: Mapping[Any, Any] | None = None,
        /,
        **more: Any,
    ) -> Watcher:
        """Edge-triggered watch: as `watch`, but fires only on a later `trigger`."""
        return self._watch(callback, conditions, more, level=False)

    def watchers(self, *names: object) -> list[Watcher]:
        """Active watchers: all of them, or each one watching any of `names` once."""
        if not names:
            return list(self._callbacks)
        return list(self._select([str(name) for name in names if name is not None]))

    def watched(self, name: object) -> bool:
        """Whether any active watcher watches `name` (one dictionary look-up)."""
        return name is not None and str(name) in self._index

    def trigger(self, *names: object) -> Selector:
        """Tell the selector these resources may have changed, and run the check.

        A raising provider or callback is logged; its watcher stays active and the
        other watchers are still checked.
        """
        if not names:
            return self
        keys = [str(name) for name in names if name is not None]
        # Snapshot: watchers created or cancelled by callbacks must not change the
        # set visited; `_check` skips those cancelled meanwhile.
        snapshot = self._select(keys)
        for watcher in snapshot:
            try:
                self._check(watcher, keys)
            except Exception:
                logger.exception(
                    "Selector trigger %s: %r raised; the watcher stays active.",
                    keys,
                    watcher,
                )
        return self

    async def wait(
        self,
        conditions: Mapping[Any, Any] | None = None,
        /,
        *,
        timeout: float | None = None,
        **more: Any,
    ) -> dict[str, Any]:
        """Wait once, level-triggered, and return the results of the first fire.

        Raises `TimeoutError` after `timeout` seconds and re-raises `CancelledError`;
        its watcher is always cancelled before it returns or raises.
        """
        merged = _merge(conditions, more)
        if not merged:
            raise ValueError(
                "wait() needs at least one resource to wait for, e.g. wait(res=0)."
            )
        future: asyncio.Future[dict[str, Any]] = (
            asyncio.get_running_loop().create_future()
        )

        def on_fire(watcher: Watcher, results: dict[str, Any]) -> None:
            # One-shot: cancel here so a later trigger cannot fire it again before the
            # waiting task resumes; only the first result counts anyway.
            watcher.cancel()
            if not future.done():
                future.set_result(results)

        # If the immediate check raises, `_store` has already cancelled the watcher.
        watcher = self._store(on_fire, merged, level=True)
        try:
            if future.done():
                return future.result()
            if timeout is None:
                return await future
            async with asyncio.timeout(timeout):
                return await future
        finally:
            watcher.cancel()

    # -- internals -------------------------------------------------------------------

    def _watch(
        self,
        callback: Callback,
        conditions: Mapping[Any, Any] | None,
        more: dict[str, Any],
        *,
        level: bool,
    ) -> Watcher:
        if not callable(callback):
            raise TypeError(
                f"The watch callback must be callable, got {type(callback).__name__}; "
                "pass a function taking (watcher, results)."
            )
        return self._store(callback, _merge(conditions, more), level=level)

    def _store(
        self, callback: Callback, merged: dict[str, Any], *, level: bool
    ) -> Watcher:
        """Store a watcher on already merged conditions; check it if `level`."""
        if not merged:
            return Watcher(None, {})
        watcher = Watcher(self, merged)
        self._callbacks[watcher] = callback
        index = self._index
        for name in merged:
            bucket = index.get(name)
            if bucket is None:
                index[name] = {watcher: None}
            else:
                bucket[watcher] = None
        if level:
            try:
                self._check(watcher, merged)
            except BaseException:
                # Nobody holds a handle to it yet: do not leave it registered.
                watcher.cancel()
                raise
        return watcher

    def _select(self, names: Iterable[str]) -> Iterable[Watcher]:
        """The stored watchers watching any of the (normalised) `names`, each once.

        Always a new collection: a snapshot safe to iterate while callbacks run.
        """
        index = self._index
        buckets = [bucket for name in names if (bucket := index.get(name))]
        if not buckets:
            return ()
        if len(buckets) == 1:
            return list(buckets[0])
        return dict.fromkeys(watcher for bucket in buckets for watcher in bucket)

    def _check(self, watcher: Watcher, names: Iterable[str]) -> None:
        """Evaluate `names` for `watcher` and call its callback if anything is ready."""
        callback = self._callbacks.get(watcher)
        if callback is None:
            return  # cancelled since the snapshot was taken
        conditions = watcher._conditions
        providers = self._providers
        results: dict[str, Any] = {}
        for name in names:
            if name not in conditions:
                continue
            # Looked up now: a callback earlier in this trigger may have (un)registered.
            provider = providers.get(name)
            if provider is None:
                continue
            value = provider(conditions[name])
            if value is not None:
                results[name] = value
        if results:
            callback(watcher, results)

    def _holds(self, watcher: Watcher) -> bool:
        return watcher in self._callbacks

    def _discard(self, watcher: Watcher) -> None:
        """Forget a watcher and its callback (called by `Watcher.cancel`)."""
        if self._callbacks.pop(watcher, None) is None:
            return
        index = self._index
        for name in watcher._conditions:
            bucket = index.get(name)
            if bucket is not None:
                bucket.pop(watcher, None)
                if not bucket:
                    del index[name]
