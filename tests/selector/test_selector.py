"""Selector API: resources, names, `watch*` step by step and `watchers()`."""

from typing import Any

import pytest

from selector_app.selector import Selector, Watcher
from tests.selector.conftest import Calls, Res


def test_new_selector_has_no_resources_and_no_watchers(sel):
    assert sel.resources() == []
    assert sel.watchers() == []
    assert sel.registered("a") is False


# -- register / unregister / resources / registered ----------------------------------


def test_register_returns_the_selector_and_lists_resources(sel):
    assert sel.register({"a": Res()}, b=Res()) is sel
    assert sorted(sel.resources()) == ["a", "b"]
    assert sel.registered("a") is True
    assert sel.registered("b") is True
    assert sel.registered("c") is False


def test_register_with_no_arguments_is_a_no_op(sel):
    assert sel.register() is sel
    assert sel.register({}) is sel
    assert sel.resources() == []


def test_register_replaces_a_provider(sel):
    sel.register(a=lambda _: "old")
    sel.register(a=lambda _: "new")
    calls = Calls()
    sel.watch(calls, a=0)
    assert calls.results == [{"a": "new"}]
    assert sel.resources() == ["a"]


def test_register_rejects_every_non_callable_and_registers_nothing(sel):
    old = Res(1)
    sel.register(a=old)
    with pytest.raises(TypeError) as excinfo:
        sel.register({"a": Res(2), "bad1": 1}, ok=Res(), bad2="x", bad3=None)
    message = str(excinfo.value)
    for name in ("bad1", "bad2", "bad3"):
        assert name in message
    assert "'ok'" not in message
    assert sorted(sel.resources()) == ["a"]
    calls = Calls()
    sel.watch(calls, a=0)
    assert calls.results == [{"a": 1}]  # the old provider was not replaced


def test_register_with_a_none_name_raises_and_registers_nothing(sel):
    with pytest.raises(TypeError):
        sel.register({"a": Res(), None: Res()})
    assert sel.resources() == []


def test_register_never_fires_a_watcher(sel):
    level, edge = Calls(), Calls()
    sel.watch(level, a=0)
    sel.watch_et(edge, a=0)
    sel.register(a=Res(5))
    assert level.calls == [] and edge.calls == []
    sel.trigger("a")
    assert level.results == [{"a": 5}] and edge.results == [{"a": 5}]


def test_unregister_removes_providers_and_ignores_unknown_duplicate_and_none(sel):
    sel.register(a=Res(), b=Res(), c=Res())
    assert sel.unregister("a", "a", "zzz", None) is sel
    assert sorted(sel.resources()) == ["b", "c"]
    assert sel.unregister() is sel
    assert sorted(sel.resources()) == ["b", "c"]


def test_unregister_leaves_watchers_active_without_that_name(sel):
    a, b = Res(1), Res(1)
    sel.register(a=a, b=b)
    calls = Calls()
    w = sel.watch_et(calls, a=0, b=0)
    sel.unregister("a")
    assert w.active()
    assert sel.watchers("a") == [w]
    sel.trigger("a", "b")
    assert calls.results == [{"b": 1}]
    assert a.inputs == []


def test_registered_none_is_false(sel):
    sel.register({"None": Res()})
    assert sel.registered(None) is False


# -- names -----------------------------------------------------------------------


def test_names_are_normalised_with_str(sel):
    # Separate mappings: in one dict literal 1 and 1.0 would be the same key.
    sel.register({1: Res(1)}).register({1.0: Res(2)}).register({"": Res(3)})
    assert sorted(sel.resources()) == ["", "1", "1.0"]
    assert sel.registered(1) and sel.registered("1")
    assert sel.registered(1.0) and sel.registered("1.0")
    assert sel.registered("")
    calls = Calls()
    w = sel.watch(calls, {1: 0, "": 0}, **{"1.0": 0})
    assert w.resources() == ["1", "", "1.0"]
    assert calls.results == [{"1": 1, "": 3, "1.0": 2}]
    sel.unregister(1)
    assert sorted(sel.resources()) == ["", "1.0"]
    sel.unregister(1.0)
    assert sel.resources() == [""]


def test_trigger_and_watchers_normalise_names(sel):
    sel.register({"1": Res(1)})
    calls = Calls()
    w = sel.watch_et(calls, {"1": 0})
    assert sel.watchers(1) == [w]
    sel.trigger(1)
    assert calls.results == [{"1": 1}]


def test_keywords_win_over_the_mapping(sel):
    first, second = Res(1), Res(2)
    sel.register({"a": first}, a=second)
    calls = Calls()
    w = sel.watch(calls, {"a": 100, "b": 7}, a=0)
    assert w.conditions() == {"a": 0, "b": 7}
    assert calls.results == [{"a": 2}]
    assert first.inputs == []
    assert second.inputs == [0]


def test_later_mapping_key_wins_for_the_same_name(sel):
    first, second = Res(1), Res(2)
    sel.register({1: first, "1": second})
    calls = Calls()
    w = sel.watch(calls, {"1": 100, 1: 0})
    assert w.conditions() == {"1": 0}
    assert calls.results == [{"1": 2}]
    assert first.inputs == []


def test_positional_only_parameters_leave_their_names_free_for_resources(sel):
    sel.register(providers=Res(1), callback=Res(2), conditions=Res(3))
    assert sorted(sel.resources()) == ["callback", "conditions", "providers"]
    calls = Calls()
    sel.watch(calls, callback=0, conditions=0)
    assert calls.results == [{"callback": 2, "conditions": 3}]


# -- watch step by step --------------------------------------------------------------


@pytest.mark.parametrize("method", ["watch", "watch_lt", "watch_et"])
def test_watch_rejects_a_non_callable_callback_before_anything_else(sel, method):
    res = Res(1)
    sel.register(a=res)
    with pytest.raises(TypeError, match="callback"):
        getattr(sel, method)("not callable", {None: 1}, a=0)
    with pytest.raises(TypeError, match="callback"):
        getattr(sel, method)(None)
    assert sel.watchers() == []
    assert res.inputs == []


@pytest.mark.parametrize("method", ["watch", "watch_lt", "watch_et"])
def test_watch_with_a_none_name_raises_before_storing(sel, method):
    res = Res(1)
    sel.register(a=res)
    calls = Calls()
    with pytest.raises(TypeError):
        getattr(sel, method)(calls, {"a": 0, None: 0})
    assert sel.watchers() == []
    assert res.inputs == []
    assert calls.calls == []


@pytest.mark.parametrize("method", ["watch", "watch_lt", "watch_et"])
@pytest.mark.parametrize("conditions", [None, {}])
def test_watch_without_conditions_returns_an_inactive_unstored_watcher(
    sel, method, conditions
):
    sel.register(a=Res(1))
    calls = Calls()
    w = getattr(sel, method)(calls, conditions)
    assert isinstance(w, Watcher)
    assert not w.active()
    assert w.conditions() == {} and w.resources() == []
    assert sel.watchers() == []
    sel.trigger("a")
    assert calls.calls == []
    assert w.cancel() is w


def test_watch_fires_synchronously_before_returning_with_the_watcher(sel):
    sel.register(a=Res(3))
    returned: list[Watcher] = []
    seen: list[tuple[Watcher, dict, bool]] = []

    def callback(watcher, results):
        seen.append((watcher, results, bool(returned)))

    returned.append(sel.watch(callback, a=1))
    w = returned[0]
    assert len(seen) == 1
    watcher, results, watch_had_returned = seen[0]
    assert watch_had_returned is False
    assert watcher is w
    assert results == {"a": 3}
    assert w.active()  # persistent unless the callback cancels
    assert sel.watchers() == [w]


def test_watch_returns_an_inactive_watcher_when_the_callback_cancels(sel):
    sel.register(a=Res(3))
    calls = Calls(lambda w, _: w.cancel())
    w = sel.watch(calls, a=1)
    assert len(calls.calls) == 1 and calls.calls[0][0] is w
    assert not w.active()
    assert sel.watchers() == []
    sel.trigger("a")
    assert len(calls.calls) == 1


def test_watch_counts_every_watched_name_as_triggered(sel):
    a, b, c = Res(1), Res(0), Res(2)
    sel.register(a=a, b=b, c=c)
    calls = Calls()
    sel.watch(calls, a=0, b=0, c=0, unregistered=0)
    assert calls.results == [{"a": 1, "c": 2}]
    assert (a.inputs, b.inputs, c.inputs) == ([0], [0], [0])


def test_watch_does_not_fire_when_nothing_is_available(sel):
    res = Res(1)
    sel.register(a=res)
    calls = Calls()
    w = sel.watch(calls, a=1)
    assert calls.calls == []
    assert res.inputs == [1]
    assert w.active() and sel.watchers() == [w]


def test_watch_lt_is_watch():
    assert Selector.watch_lt is Selector.watch


def test_watch_et_never_fires_at_watch_time(sel):
    res = Res(1)
    sel.register(a=res)
    calls = Calls()
    w = sel.watch_et(calls, a=0)
    assert calls.calls == []
    assert res.inputs == []
    assert w.active()
    sel.trigger("a")
    assert calls.results == [{"a": 1}]


def test_a_watcher_on_an_unregistered_name_waits_for_register_and_trigger(sel):
    calls = Calls()
    w = sel.watch(calls, a=0)
    assert calls.calls == [] and w.active()
    sel.trigger("a")
    assert calls.calls == []
    sel.register(a=Res(1))
    assert calls.calls == []
    sel.trigger("a")
    assert calls.results == [{"a": 1}]


def test_condition_inputs_are_passed_unchanged_including_none(sel):
    inputs: list[Any] = []
    sel.register(a=lambda cond: inputs.append(cond))
    marker = object()
    sel.watch(Calls(), a=None)
    sel.watch(Calls(), a=marker)
    assert inputs == [None, marker]
    assert inputs[1] is marker


# -- watchers() ------------------------------------------------------------------


def test_watchers_lists_active_watchers_each_once(sel):
    w1 = sel.watch_et(Calls(), a=0)
    w2 = sel.watch_et(Calls(), a=0, b=0)
    w3 = sel.watch_et(Calls(), c=0)
    assert set(sel.watchers()) == {w1, w2, w3} and len(sel.watchers()) == 3
    assert set(sel.watchers("a")) == {w1, w2} and len(sel.watchers("a")) == 2
    assert sel.watchers("b") == [w2]
    both = sel.watchers("a", "b", "a")
    assert set(both) == {w1, w2} and len(both) == 2
    assert set(sel.watchers("b", "c")) == {w2, w3}
    assert sel.watchers("zzz") == []
    w2.cancel()
    assert sel.watchers("b") == []
    assert set(sel.watchers()) == {w1, w3}


def test_watchers_skips_none_names(sel):
    w = sel.watch_et(Calls(), a=0)
    sel.watch_et(Calls(), {"None": 0})
    assert sel.watchers(None) == []
    assert sel.watchers(None, "a") == [w]


def test_trigger_skips_none_names_rather_than_using_the_name_none(sel):
    res = Res(1)
    sel.register({"None": res})
    calls = Calls()
    sel.watch_et(calls, {"None": 0})
    sel.trigger(None)
    assert calls.calls == [] and res.inputs == []
    sel.unregister(None)
    assert sel.registered("None")


def test_watchers_returns_a_new_list(sel):
    w = sel.watch_et(Calls(), a=0)
    listed = sel.watchers()
    listed.clear()
    assert sel.watchers() == [w]


# -- trigger ---------------------------------------------------------------------


def test_trigger_returns_the_selector_and_without_names_does_nothing(sel):
    res = Res(1)
    sel.register(a=res)
    calls = Calls()
    sel.watch_et(calls, a=0)
    assert sel.trigger() is sel
    assert sel.trigger(None) is sel
    assert calls.calls == [] and res.inputs == []
    assert sel.trigger(None, "a") is sel
    assert calls.results == [{"a": 1}]


def test_persistent_watchers_fire_on_every_trigger_while_available(sel):
    sel.register(a=Res(1))
    calls = Calls()
    sel.watch(calls, a=0)
    sel.trigger("a")
    sel.trigger("a")
    assert calls.results == [{"a": 1}] * 3
