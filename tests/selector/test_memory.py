"""Memory and lifetime: no reference cycles, cancel drops the callback."""

import gc
import weakref
from collections.abc import Iterator

import pytest

from selector_app.selector import Selector, Watcher
from tests.selector.conftest import tick


@pytest.fixture
def no_gc() -> Iterator[None]:
    """Only reference counting may free objects while the test runs."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _self_referencing_watch(
    selector: Selector, *, level: bool = True
) -> tuple[weakref.ref, weakref.ref]:
    """Watch with a callback whose closure holds its own watcher; weakrefs to both.

    Built in a helper so that only the closure, not a test frame, holds the cell.
    """
    watcher: Watcher | None = None

    def callback(w: Watcher, results: dict) -> None:
        if watcher is not None:  # None while the check inside watch() runs
            watcher.conditions()

    watch = selector.watch if level else selector.watch_et
    watcher = watch(callback, a=0)
    return weakref.ref(callback), weakref.ref(watcher)


def test_dropping_the_selector_frees_watchers_and_callbacks_without_gc(no_gc):
    selector = Selector()
    selector.register(a=tick)  # available: fires inside watch
    refs = [_self_referencing_watch(selector, level=level) for level in (True, False)]
    selector.trigger("a")
    selector_ref = weakref.ref(selector)
    for callback_ref, watcher_ref in refs:
        assert callback_ref() is not None  # kept alive by the selector alone
        assert watcher_ref() is not None
    del selector
    assert selector_ref() is None
    for callback_ref, watcher_ref in refs:
        assert callback_ref() is None
        assert watcher_ref() is None


def test_cancel_releases_the_callback_while_the_watcher_is_held(no_gc):
    selector = Selector()
    callback_ref, watcher_ref = _self_referencing_watch(selector)
    watcher = watcher_ref()
    assert watcher is not None and watcher.active()
    assert watcher.cancel() is watcher
    assert callback_ref() is None
    assert watcher_ref() is watcher
    assert watcher.resources() == ["a"]
    assert selector.watchers() == []


def test_cancel_from_inside_the_callback_releases_it_afterwards(no_gc):
    selector = Selector()
    selector.register(a=tick)

    def one_shot(watcher: Watcher, results: dict) -> None:
        watcher.cancel()

    watcher = selector.watch_et(one_shot, a=0)
    callback_ref = weakref.ref(one_shot)
    del one_shot
    assert callback_ref() is not None
    selector.trigger("a")
    assert callback_ref() is None
    assert not watcher.active()


def test_a_watcher_does_not_keep_its_selector_alive(no_gc):
    selector = Selector()
    selector.register(a=tick)
    watcher = selector.watch_et(lambda w, r: None, {"a": 5})
    selector_ref = weakref.ref(selector)
    del selector
    assert selector_ref() is None
    assert not watcher.active()
    assert watcher.cancel() is watcher
    assert watcher.conditions() == {"a": 5}
    assert watcher.resources() == ["a"]


def test_watchers_can_be_weakly_referenced():
    selector = Selector()
    watcher = selector.watch_et(lambda w, r: None, a=0)
    ref = weakref.ref(watcher)
    assert ref() is watcher
    watcher.cancel()
    del watcher
    assert ref() is None
    bare = Watcher(None, {})
    bare_ref = weakref.ref(bare)
    del bare
    assert bare_ref() is None
