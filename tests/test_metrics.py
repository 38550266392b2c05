"""The hot path's counters: buckets, quantiles, and which deliveries count."""

from __future__ import annotations

import time

import pytest

from selector_app import metrics
from selector_app.protocol import Snapshot


@pytest.fixture(autouse=True)
def _zeroed():
    metrics.reset()
    yield
    metrics.reset()


def test_a_histogram_counts_each_value_in_its_bucket():
    histogram = metrics.Histogram((0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 3.0):
        histogram.observe(value)
    # At most 0.1 (the bound included), at most 1.0, above every bound.
    assert histogram.state() == ([2, 1, 1], pytest.approx(3.65))


def test_quantiles_interpolate_within_the_bucket():
    bounds = (0.1, 0.2, 0.4)
    assert metrics.quantile(bounds, [0, 0, 0, 0], 0.5) is None
    assert metrics.quantile(bounds, [0, 10, 0, 0], 0.5) == pytest.approx(0.15)
    assert metrics.quantile(bounds, [10, 0, 0, 0], 0.99) == pytest.approx(0.099)
    # Past the last bound: that bound (as much as the buckets can tell).
    assert metrics.quantile(bounds, [0, 0, 0, 5], 0.5) == 0.4


def test_only_a_version_published_after_the_client_waited_counts():
    opened = time.time()
    old = Snapshot("res", 1, "old", published_at=opened - 60)
    metrics.delivered("push", old, opened)  # a new socket's first frame
    assert sum(metrics.delivery["push"].counts) == 0
    metrics.delivered("push", Snapshot("res", 2, "unknown time"), opened)
    assert sum(metrics.delivery["push"].counts) == 0
    new = Snapshot("res", 3, "new", published_at=time.time())
    metrics.delivered("push", new, opened)
    counts, total = metrics.delivery["push"].state()
    assert sum(counts) == 1 and 0 <= total < 1


def test_the_publish_time_is_not_part_of_the_version():
    # hub.reload compares snapshots: a re-read must not look like a change.
    assert Snapshot("res", 1, "x", 100.0) == Snapshot("res", 1, "x", None)
    event = Snapshot("res", 1, "x", 100.5).as_event()
    assert Snapshot.from_event(event).published_at == 100.5
    del event["published_at"]  # a publisher of the previous release
    assert Snapshot.from_event(event).published_at is None


def test_one_socket_in_eight_is_timed_starting_with_the_first():
    timed = [metrics.timed_socket() for _ in range(17)]
    assert timed == [True, *[False] * 7, True, *[False] * 7, True]
