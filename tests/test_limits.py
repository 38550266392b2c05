"""The token bucket, the receive limit and the count of open sockets."""

from __future__ import annotations

import pytest

from selector_app.limits import OpenSockets, ReceiveLimit, TokenBucket
from selector_app.protocol import RateLimited


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_at_once_then_refuses():
    bucket = TokenBucket(10, 5, clock=Clock())
    assert [bucket.take(1) for _ in range(6)] == [True] * 5 + [False]


def test_a_bucket_refills_at_its_rate_up_to_its_burst():
    clock = Clock()
    bucket = TokenBucket(10, 5, clock=clock)
    assert bucket.take(5)
    clock.now += 0.2  # two tokens
    assert bucket.take(2) and not bucket.take(1)
    clock.now += 60  # a long pause saves up only the burst
    assert bucket.take(5) and not bucket.take(1)


def test_a_refused_take_spends_nothing():
    clock = Clock()
    bucket = TokenBucket(10, 5, clock=clock)
    assert not bucket.take(6)
    assert bucket.take(5)


def test_a_rate_of_zero_is_no_limit():
    bucket = TokenBucket(0, 0, clock=Clock())
    assert all(bucket.take(10**9) for _ in range(100))


def limit(clock: Clock, **overrides: float) -> ReceiveLimit:
    values = dict(
        frames_per_second=10, frame_burst=3, bytes_per_second=100, byte_burst=250
    )
    return ReceiveLimit(**{**values, **overrides}, clock=clock)


def test_too_many_frames_are_refused_with_a_reason():
    receive = limit(Clock())
    for _ in range(3):
        receive.check(1)
    with pytest.raises(
        RateLimited, match=r"^Over the rate limit of 10 frames a second\."
    ):
        receive.check(1)


def test_too_many_bytes_are_refused_with_a_reason():
    clock = Clock()
    receive = limit(clock)
    receive.check(200)
    clock.now += 0.1  # one frame and 10 bytes back
    with pytest.raises(
        RateLimited, match=r"^Over the rate limit of 100 bytes a second\."
    ):
        receive.check(61)


def test_more_than_a_burst_of_frames_waiting_is_over_the_limit():
    receive = limit(Clock())
    receive.check(1, waiting=3)  # the burst
    with pytest.raises(RateLimited, match="frames a second"):
        receive.check(1, waiting=4)


def test_frames_waiting_do_not_count_without_a_frame_limit():
    receive = limit(Clock(), frames_per_second=0)
    receive.check(1, waiting=10**6)


def test_a_client_within_the_rates_is_never_refused():
    clock = Clock()
    receive = limit(clock)
    for _ in range(1000):  # 10 frames of 10 bytes a second, for 100 s
        receive.check(10)
        clock.now += 0.1


def test_the_refusal_is_a_1008_close():
    assert (RateLimited.close_code, RateLimited.status) == (1008, 429)


def test_open_sockets_are_counted_against_the_limit():
    sockets = OpenSockets()
    assert [sockets.try_open(2) for _ in range(3)] == [True, True, False]
    assert sockets.count == 2
    sockets.closed()
    assert sockets.try_open(2) and sockets.count == 2


def test_a_socket_limit_of_zero_is_no_limit():
    sockets = OpenSockets()
    assert all(sockets.try_open(0) for _ in range(100))
