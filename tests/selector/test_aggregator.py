"""Aggregator: every rule of add(), watchers(), active() and cancel()."""

import pytest

from selector_app.selector import Aggregator, Selector, Watcher
from tests.selector.conftest import tick

# `sel` has "a" and "b" registered (only "a" is used here), each always one ahead.
pytestmark = pytest.mark.usefixtures("ticking")


class Fake:
    """A duck-typed watcher that counts cancels."""

    def __init__(self, active: bool = True) -> None:
        self.is_active = active
        self.cancels = 0

    def active(self) -> bool:
        return self.is_active

    def cancel(self) -> None:
        self.cancels += 1
        self.is_active = False


def test_a_new_aggregator_is_active_and_empty():
    agg = Aggregator()
    assert agg.active() is True
    assert agg.watchers() == []


class NotCallable:
    active = True

    def cancel(self) -> None: ...


class NoCancel:
    def active(self) -> bool:
        return True


@pytest.mark.parametrize("bad", [None, object(), 1, NotCallable(), NoCancel()])
def test_add_rejects_objects_without_callable_active_and_cancel(bad):
    agg = Aggregator()
    with pytest.raises(TypeError):
        agg.add(bad)
    assert agg.watchers() == []
    assert agg.active()


def test_add_rejects_the_aggregator_itself():
    agg = Aggregator()
    with pytest.raises(ValueError):
        agg.add(agg)
    assert agg.watchers() == []
    assert agg.active()


def test_adding_active_watchers_to_an_active_aggregator_keeps_all_active(sel):
    agg = Aggregator()
    w1 = sel.watch_et(lambda w, r: None, a=0)
    w2 = sel.watch_et(lambda w, r: None, a=0)
    assert agg.add(w1) is None
    agg.add(w2)
    assert agg.active() and w1.active() and w2.active()
    assert agg.watchers() == [w1, w2]


def test_adding_an_active_watcher_to_an_inactive_aggregator_cancels_it(sel):
    agg = Aggregator()
    agg.cancel()
    w = sel.watch_et(lambda w, r: None, a=0)
    agg.add(w)
    assert not w.active()
    assert not agg.active()
    assert agg.watchers() == [w]
    assert sel.watchers() == []


def test_adding_an_inactive_watcher_cancels_the_aggregator_and_its_members(sel):
    agg = Aggregator()
    w1 = sel.watch_et(lambda w, r: None, a=0)
    fake = Fake()
    agg.add(w1)
    agg.add(fake)
    inactive = Watcher(None, {})
    agg.add(inactive)
    assert not agg.active()
    assert not w1.active()
    assert fake.cancels == 1
    assert agg.watchers() == [w1, fake, inactive]
    assert sel.watchers() == []


def test_adding_an_inactive_watcher_to_an_inactive_aggregator_only_appends():
    agg = Aggregator()
    agg.cancel()
    fake = Fake(active=False)
    agg.add(fake)
    assert fake.cancels == 0
    assert agg.watchers() == [fake]


def test_watchers_lists_everything_ever_added_in_order_as_a_new_list(sel):
    agg = Aggregator()
    members = [sel.watch_et(lambda w, r: None, a=0) for _ in range(3)]
    members.insert(1, Fake())
    for member in members:
        agg.add(member)
    members[0].cancel()  # cancelled individually: still listed
    listed = agg.watchers()
    assert listed == members
    listed.clear()
    assert agg.watchers() == members


def test_cancel_cancels_every_member_recursively_and_is_idempotent(sel):
    outer, inner = Aggregator(), Aggregator()
    w_outer = sel.watch_et(lambda w, r: None, a=0)
    w_inner = sel.watch_et(lambda w, r: None, a=0)
    fake = Fake()
    inner.add(w_inner)
    inner.add(fake)
    outer.add(w_outer)
    outer.add(inner)
    outer.cancel()
    assert not outer.active() and not inner.active()
    assert not w_outer.active() and not w_inner.active()
    assert sel.watchers() == []
    assert fake.cancels == 1
    outer.cancel()
    assert not outer.active()
    assert fake.cancels == 2  # as in Perl, a second cancel cancels members again


def test_an_inactive_aggregator_added_to_an_active_one_cancels_it(sel):
    outer, inner = Aggregator(), Aggregator()
    w = sel.watch_et(lambda w, r: None, a=0)
    outer.add(w)
    inner.cancel()
    outer.add(inner)
    assert not outer.active()
    assert not w.active()
    assert outer.watchers() == [w, inner]


def test_an_active_aggregator_added_to_an_inactive_one_is_cancelled(sel):
    outer, inner = Aggregator(), Aggregator()
    w = sel.watch_et(lambda w, r: None, a=0)
    inner.add(w)
    outer.cancel()
    outer.add(inner)
    assert not inner.active()
    assert not w.active()


def test_aggregated_watchers_stop_firing_once_one_fires_and_cancels_all(sel):
    # The use case: one answer from any of several selectors cancels the rest.
    other = Selector().register(b=tick)
    agg = Aggregator()
    fired = []

    def callback(watcher, results):
        fired.append(results)
        agg.cancel()

    agg.add(sel.watch_et(callback, a=0))
    agg.add(other.watch_et(callback, b=0))
    other.trigger("b")
    sel.trigger("a")
    assert fired == [{"b": 1}]
    assert sel.watchers() == [] and other.watchers() == []


def test_aggregators_containing_each_other_cancel_without_recursing_forever():
    first, second = Aggregator(), Aggregator()
    fake = Fake()
    first.add(second)
    second.add(first)
    second.add(fake)
    first.cancel()
    assert not first.active() and not second.active()
    assert fake.cancels >= 1
