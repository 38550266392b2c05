"""What one client may cost a server process: rates and counts.

A :class:`ReceiveLimit` (two token buckets) bounds the frames and bytes each
socket receives; :data:`open_sockets` counts the process's open sockets
against its limit. Nothing here knows Django or the ASGI server: consumers
pass the settings in and turn a refusal into a close code or an HTTP status
(docs/protocol.md, "Limits").
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .protocol import RateLimited


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up.

    :meth:`take` spends tokens if there are enough, so a client may send in
    bursts of up to ``burst`` and ``rate`` a second on average. A rate of 0
    means no limit.
    """

    __slots__ = ("burst", "clock", "rate", "stamp", "tokens")

    def __init__(
        self, rate: float, burst: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.clock = clock
        self.stamp = clock()

    def take(self, amount: float) -> bool:
        """Spend ``amount`` tokens; ``False`` (nothing spent) if there are fewer."""
        if not self.rate:
            return True
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < amount:
            return False
        self.tokens -= amount
        return True


class ReceiveLimit:
    """The rate limit on what one socket receives: frames and bytes a second."""

    __slots__ = ("byte_bucket", "frame_bucket")

    def __init__(
        self,
        *,
        frames_per_second: float,
        frame_burst: int,
        bytes_per_second: float,
        byte_burst: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.frame_bucket = TokenBucket(frames_per_second, frame_burst, clock=clock)
        self.byte_bucket = TokenBucket(bytes_per_second, byte_burst, clock=clock)

    def check(self, size: int, *, waiting: int = 0) -> None:
        """Count one frame of ``size`` bytes; :class:`RateLimited` if over.

        ``waiting`` is how many more frames the server has already received
        but not handed over (Daphne queues them without limit): more than a
        burst of them is over the limit, however fast they are taken.
        """
        bucket = self.frame_bucket
        if not bucket.take(1) or (bucket.rate and waiting > bucket.burst):
            raise RateLimited(
                f"Over the rate limit of {self.frame_bucket.rate:g} frames a second."
            )
        if not self.byte_bucket.take(size):
            raise RateLimited(
                f"Over the rate limit of {self.byte_bucket.rate:g} bytes a second."
            )


class OpenSockets:
    """How many sockets this process has open, against a limit.

    Consumers call :meth:`try_open` before they accept and :meth:`closed`
    once they have ended; every event loop of the process shares the count
    (the limit protects the process: its memory and file descriptors).
    """

    def __init__(self) -> None:
        self.count = 0

    def try_open(self, limit: int) -> bool:
        """Count one more socket unless ``limit`` are open (0: no limit)."""
        if limit and self.count >= limit:
            return False
        self.count += 1
        return True

    def closed(self) -> None:
        """One socket counted by :meth:`try_open` has ended."""
        self.count -= 1


#: This process's open sockets.
open_sockets = OpenSockets()
