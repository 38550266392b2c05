"""The check `trigger` runs: snapshot, re-check, per-watcher evaluation, isolation."""

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from selector_app.selector import Watcher
from tests.selector.conftest import Calls, Res, logged_errors


def test_level_and_edge_triggered_watchers(sel):
    sel.register(a=Res(1))
    level, edge = Calls(), Calls()
    sel.watch(level, a=0)
    sel.watch_et(edge, a=0)
    assert (len(level.calls), len(edge.calls)) == (1, 0)
    sel.trigger("a")
    assert (len(level.calls), len(edge.calls)) == (2, 1)


# -- snapshot and re-check -----------------------------------------------------------


def test_a_watcher_cancelled_by_an_earlier_callback_does_not_fire(sel):
    # Each callback cancels the other watcher: whatever the order, exactly one fires.
    sel.register(a=Res(1))
    handles: dict[str, Watcher] = {}
    first = Calls(lambda *_: handles["second"].cancel())
    second = Calls(lambda *_: handles["first"].cancel())
    handles["first"] = sel.watch_et(first, a=0)
    handles["second"] = sel.watch_et(second, a=0)
    sel.trigger("a")
    assert len(first.calls) + len(second.calls) == 1
    fired = handles["first"] if first.calls else handles["second"]
    assert sel.watchers() == [fired]


def test_a_watcher_cancelled_by_a_nested_trigger_is_skipped(sel):
    # `nester` triggers "a" again from its callback once; `once` cancels itself when
    # fired. Whatever the order, `once` fires exactly once and `nester` twice.
    sel.register(a=Res(1))
    depth = []

    def nest(watcher, results):
        if not depth:
            depth.append(1)
            sel.trigger("a")

    nester = Calls(nest)
    once = Calls(lambda w, _: w.cancel())
    sel.watch_et(nester, a=0)
    sel.watch_et(once, a=0)
    sel.trigger("a")
    assert len(once.calls) == 1
    assert len(nester.calls) == 2


def test_a_nested_trigger_runs_fully_with_its_own_snapshot(sel):
    sel.register(a=Res(1), b=Res(1))
    on_b = Calls()
    sel.watch_et(Calls(lambda *_: sel.trigger("b")), a=0)
    sel.watch_et(on_b, b=0)
    sel.trigger("a")
    assert on_b.results == [{"b": 1}]


def test_a_watcher_created_during_a_trigger_is_not_visited_by_it(sel):
    sel.register(a=Res(1))
    new_level, new_edge = Calls(), Calls()

    def create(watcher, results):
        if not new_level.calls:
            sel.watch(new_level, a=0)
            sel.watch_et(new_edge, a=0)

    sel.watch_et(Calls(create), a=0)
    sel.trigger("a")
    assert len(new_level.calls) == 1  # its own check inside watch, not the trigger
    assert new_edge.calls == []
    sel.trigger("a")
    assert (len(new_level.calls), len(new_edge.calls)) == (2, 1)


def test_unregister_in_a_callback_affects_later_checks_of_the_same_trigger(sel):
    sel.register(a=Res(1))
    unregistering = [Calls(lambda *_: sel.unregister("a")) for _ in range(3)]
    for calls in unregistering:
        sel.watch_et(calls, a=0)
    sel.trigger("a")
    assert sum(len(calls.calls) for calls in unregistering) == 1


def test_register_in_a_callback_affects_later_checks_of_the_same_trigger(sel):
    sel.register(a=Res(1))
    registering = [Calls(lambda *_: sel.register(b=Res(2))) for _ in range(2)]
    for calls in registering:
        sel.watch_et(calls, a=0, b=0)
    sel.trigger("a", "b")
    got = sorted((r for calls in registering for r in calls.results), key=len)
    assert got == [{"a": 1}, {"a": 1, "b": 2}]


def test_a_provider_cancelling_its_own_watcher_still_gets_the_one_callback(sel):
    holder: list[Watcher] = []

    def cancelling(_):
        holder[0].cancel()
        return "a-value"

    b = Res(1)
    sel.register(a=cancelling, b=b)
    calls = Calls()
    holder.append(sel.watch_et(calls, a=0, b=0))
    sel.trigger("a", "b")
    assert calls.results == [{"a": "a-value", "b": 1}]
    assert calls.calls[0][0] is holder[0]
    assert not holder[0].active()
    sel.trigger("a", "b")
    assert len(calls.calls) == 1


# -- what is evaluated -------------------------------------------------------------


@pytest.mark.parametrize("value", [0, "", False, [], {}, 0.0, set()])
def test_falsy_values_are_available(sel, value):
    sel.register(a=lambda _: value)
    calls = Calls()
    sel.watch_et(calls, a=0)
    sel.trigger("a")
    assert len(calls.results) == 1
    assert calls.results[0] == {"a": value}
    assert calls.results[0]["a"] is value


def test_none_is_not_available(sel):
    sel.register(a=lambda _: None)
    calls = Calls()
    sel.watch(calls, a=0)
    sel.trigger("a")
    assert calls.calls == []


def test_only_triggered_names_are_evaluated(sel):
    a, b = Res(1), Res(0)
    sel.register(a=a, b=b)
    calls = Calls()
    sel.watch_et(calls, a=0, b=0)
    sel.trigger("b")
    assert calls.calls == []
    assert a.inputs == [] and b.inputs == [0]
    sel.trigger("a")
    assert calls.results == [{"a": 1}]
    assert b.inputs == [0]


def test_watchers_not_watching_a_triggered_name_are_not_checked(sel):
    a, b = Res(1), Res(1)
    sel.register(a=a, b=b)
    on_b = Calls()
    sel.watch_et(on_b, b=0)
    sel.trigger("a")
    assert on_b.calls == [] and b.inputs == []


def test_results_hold_only_available_names_as_a_plain_dict(sel):
    sel.register(a=Res(1), b=Res(0), c=Res(1))
    calls = Calls()
    sel.watch_et(calls, a=0, b=0, unregistered=0, c=5)
    sel.trigger("a", "b", "unregistered", "c", "not-watched")
    assert calls.results == [{"a": 1}]
    assert type(calls.results[0]) is dict


def test_providers_run_per_watcher_with_its_own_condition_without_caching(sel):
    inputs: list[Any] = []

    def provider(cond):
        inputs.append(cond)
        return f"value-for-{cond}"

    sel.register(a=provider)
    one, two = Calls(), Calls()
    sel.watch_et(one, a=1)
    sel.watch_et(two, a=2)
    sel.trigger("a")
    assert sorted(inputs) == [1, 2]
    assert one.results == [{"a": "value-for-1"}]
    assert two.results == [{"a": "value-for-2"}]


def test_providers_run_once_per_occurrence_of_a_name_and_callbacks_once(sel):
    inputs: list[Any] = []
    sel.register(a=lambda cond: inputs.append(cond) or cond)
    one, two = Calls(), Calls()
    sel.watch_et(one, a=1)
    sel.watch_et(two, a=2)
    sel.trigger("a", "a", "a")
    assert sorted(inputs) == [1, 1, 1, 2, 2, 2]
    assert one.results == [{"a": 1}] and two.results == [{"a": 2}]


def test_names_are_evaluated_in_the_order_given(sel):
    order: list[str] = []
    sel.register(a=lambda _: order.append("a") or "A", b=lambda _: order.append("b"))
    calls = Calls()
    sel.watch_et(calls, a=0, b=0)
    sel.trigger("b", "a", "b")
    assert order == ["b", "a", "b"]
    assert calls.results == [{"a": "A"}]


def test_a_later_none_for_a_repeated_name_keeps_the_stored_value(sel):
    values: Iterator[Any] = iter([1, None, 2, None])
    sel.register(a=lambda _: next(values))
    calls = Calls()
    sel.watch_et(calls, a=0)
    sel.trigger("a", "a")
    sel.trigger("a", "a")
    assert calls.results == [{"a": 1}, {"a": 2}]


def test_a_later_value_for_a_repeated_name_replaces_the_earlier_one(sel):
    values: Iterator[Any] = iter([1, 2])
    sel.register(a=lambda _: next(values))
    calls = Calls()
    sel.watch_et(calls, a=0)
    sel.trigger("a", "a")
    assert calls.results == [{"a": 2}]


# -- exception isolation -----------------------------------------------------------


def test_a_raising_provider_is_logged_and_the_trigger_goes_on(sel, caplog):
    def provider(cond):
        if cond == "boom":
            raise RuntimeError("provider failed")
        return cond

    sel.register(a=provider)
    good = [Calls() for _ in range(3)]
    bad = Calls()
    sel.watch_et(good[0], a="x")
    bad_watcher = sel.watch_et(bad, a="boom")
    sel.watch_et(good[1], a="y")
    sel.watch_et(good[2], a="z")
    assert sel.trigger("a") is sel
    assert [c.results for c in good] == [[{"a": "x"}], [{"a": "y"}], [{"a": "z"}]]
    assert bad.calls == []
    assert bad_watcher.active()
    [record] = logged_errors(caplog)
    assert record.name == "selector_app.selector"
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError


def test_a_raising_callback_is_logged_and_the_trigger_goes_on(sel, caplog):
    sel.register(a=Res(1))

    def boom(watcher, results):
        raise ValueError("callback failed")

    before, after = Calls(), Calls()
    sel.watch_et(before, a=0)
    bad_watcher = sel.watch_et(boom, a=0)
    sel.watch_et(after, a=0)
    sel.trigger("a")
    sel.trigger("a")
    assert len(before.calls) == len(after.calls) == 2
    assert bad_watcher.active()
    records = logged_errors(caplog)
    assert len(records) == 2
    for record in records:
        assert record.name == "selector_app.selector"
        assert record.exc_info is not None and record.exc_info[0] is ValueError


def test_a_provider_raising_in_watch_cancels_the_watcher_and_propagates(sel):
    sel.register(a=lambda _: 1 / 0)
    calls = Calls()
    with pytest.raises(ZeroDivisionError):
        sel.watch(calls, a=0)
    assert sel.watchers() == []
    assert calls.calls == []
    sel.register(a=Res(1))
    sel.trigger("a")
    assert calls.calls == []


def test_a_callback_raising_in_watch_cancels_the_watcher_and_propagates(sel):
    sel.register(a=Res(1))
    seen: list[Watcher] = []

    def boom(watcher, results):
        seen.append(watcher)
        raise KeyError("callback failed")

    with pytest.raises(KeyError):
        sel.watch(boom, a=0)
    assert len(seen) == 1
    assert not seen[0].active()
    assert sel.watchers() == []
    sel.trigger("a")
    assert len(seen) == 1
