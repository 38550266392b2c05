"""Watcher: active(), cancel(), conditions() and resources()."""

import pytest

from selector_app.selector import Selector, Watcher
from tests.selector.conftest import tick

# `sel` has "a" and "b" registered, each always one ahead of its condition.
pytestmark = pytest.mark.usefixtures("ticking")


def test_a_bare_watcher_is_inactive_and_cancel_is_a_no_op():
    watcher = Watcher(None, {})
    assert watcher.active() is False
    assert watcher.cancel() is watcher
    assert watcher.active() is False
    assert watcher.conditions() == {}
    assert watcher.resources() == []


def test_a_watcher_is_active_until_cancelled(sel):
    calls = []
    watcher = sel.watch_et(lambda w, r: calls.append(r), a=0)
    assert watcher.active() is True
    assert watcher.cancel() is watcher
    assert watcher.active() is False
    assert sel.watchers() == []
    sel.trigger("a")
    assert calls == []


def test_cancel_is_idempotent_and_leaves_other_watchers_alone(sel):
    first = sel.watch_et(lambda w, r: None, a=0)
    second = sel.watch_et(lambda w, r: None, a=0, b=0)
    first.cancel()
    first.cancel()
    assert first.active() is False
    assert second.active() is True
    assert sel.watchers("a") == [second]
    assert sel.watchers("b") == [second]


def test_cancel_from_its_own_callback(sel):
    calls = []

    def one_shot(watcher, results):
        calls.append(results)
        watcher.cancel()
        watcher.cancel()

    watcher = sel.watch_et(one_shot, a=0)
    sel.trigger("a")
    sel.trigger("a")
    assert calls == [{"a": 1}]
    assert not watcher.active()


def test_cancel_from_a_nested_trigger(sel):
    # The callback on "b" cancels the watcher on "a" from inside a nested trigger.
    on_a = []
    target = sel.watch_et(lambda w, r: on_a.append(r), a=0)
    sel.watch_et(lambda w, r: target.cancel(), b=0)
    sel.watch_et(lambda w, r: sel.trigger("b"), c=0)
    sel.register(c=tick)
    sel.trigger("c")
    assert not target.active()
    sel.trigger("a")
    assert on_a == []


def test_conditions_is_a_new_shallow_copy_valid_after_cancel(sel):
    payload = {"nested": [1]}
    watcher = sel.watch_et(lambda w, r: None, {"a": payload, 2: None})
    conditions = watcher.conditions()
    assert conditions == {"a": payload, "2": None}
    assert conditions["a"] is payload
    conditions["x"] = 1
    del conditions["a"]
    assert watcher.conditions() == {"a": payload, "2": None}
    assert watcher.conditions() is not watcher.conditions()
    watcher.cancel()
    assert watcher.conditions() == {"a": payload, "2": None}


def test_resources_lists_watched_names_valid_after_cancel(sel):
    watcher = sel.watch_et(lambda w, r: None, {1: 0}, b=0, unregistered=0)
    assert sorted(watcher.resources()) == ["1", "b", "unregistered"]
    watcher.resources().append("zzz")
    watcher.cancel()
    assert sorted(watcher.resources()) == ["1", "b", "unregistered"]


def test_the_constructor_copies_its_conditions():
    source = {"a": 1}
    watcher = Watcher(None, source)
    source["b"] = 2
    assert watcher.conditions() == {"a": 1}
    assert not watcher.active()


def test_a_watcher_is_inactive_once_its_selector_is_gone():
    selector = Selector()
    watcher = selector.watch_et(lambda w, r: None, a=0)
    assert watcher.active()
    del selector
    assert not watcher.active()
    watcher.cancel()
    assert watcher.resources() == ["a"]
