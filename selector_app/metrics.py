"""What one server process counts, cheaply enough for the hot path.

Every frame a socket sends and every Comet reply is counted here by adding 1
to an entry of a plain :class:`collections.Counter`: no lock, no label
lookup, no call into a metrics library. ``prometheus_client`` reads these
counters only when it is scraped (:mod:`selector_app.exposition`), so the
cost of a frame with metrics on is one dictionary increment, plus, on one
socket in :data:`LATENCY_SAMPLE`, a histogram observation (a clock read and
a bisection) when the frame delivers a publish. Everything is per process,
like the hub: Prometheus scrapes each process on its own port.

The transports count only when ``SELECTOR_APP["METRICS"]`` is on; what
counts rarely (re-reads, resubscriptions) is counted always. No Django
import: the hub's layer may use it.
"""

from __future__ import annotations

import itertools
import time
from bisect import bisect_left
from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .protocol import Snapshot

#: Versions sent, by transport: frames on sockets, events on event streams,
#: 200 replies for Comet.
sent: Counter[str] = Counter()
#: Comet replies by HTTP status.
comet_replies: Counter[int] = Counter()
#: Refused requests and sockets, by refusal (``RateLimited``, ``Forbidden``...).
refusals: Counter[str] = Counter()
#: Socket closes by (who closed: ``server`` or ``client``, close code).
closes: Counter[tuple[str, int]] = Counter()
#: New versions this process's hub took, by (resource, how: ``layer`` or
#: ``reread``).
publishes_seen: Counter[tuple[str, str]] = Counter()
#: Re-reads of the rows by outcome (``ok`` or ``failed``).
rereads: Counter[str] = Counter()
#: Rows the re-reads read: ``narrow`` (name, sequence, time: the rows written
#: since the previous re-read and the held names' rows) and ``whole`` (with
#: the data: the rows that changed for this process).
reread_rows: Counter[str] = Counter()
#: Times the feed lost its channel-layer subscription and subscribed again.
resubscribes: Counter[str] = Counter()

#: Upper bounds (seconds) of the publish-to-delivery histogram's buckets: a
#: publish normally reaches clients in milliseconds; a lost layer message
#: takes up to a re-read interval (5 s by default).
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
#: Upper bounds (seconds) of the re-read duration histogram's buckets.
REREAD_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)


class Histogram:
    """Observations counted into fixed buckets: a list increment each.

    ``counts[i]`` counts observations at most ``bounds[i]`` and above the
    bound before it (not cumulative); the last entry counts those above every
    bound. Reading takes a copy (:meth:`state`).
    """

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def state(self) -> tuple[list[int], float]:
        """A copy of the bucket counts and the sum of the observations."""
        return list(self.counts), self.total


def quantile(bounds: tuple[float, ...], counts: list[int], q: float) -> float | None:
    """The ``q`` quantile of bucketed observations, interpolated within its
    bucket (as Prometheus' ``histogram_quantile`` does); ``None`` without
    any. Past the last bound the answer is that bound."""
    total = sum(counts)
    if not total:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            if index == len(bounds):
                return bounds[-1]
            lower = bounds[index - 1] if index else 0.0
            return lower + (bounds[index] - lower) * (rank - seen) / count
        seen += count
    return bounds[-1]


#: Publish-to-delivery latency by transport (``push``, ``comet``, ``events``,
#: and ``select`` for ``WS /select``).
delivery: dict[str, Histogram] = {
    "push": Histogram(LATENCY_BUCKETS),
    "comet": Histogram(LATENCY_BUCKETS),
    "events": Histogram(LATENCY_BUCKETS),
    "select": Histogram(LATENCY_BUCKETS),
}
#: How long each re-read of the rows took.
reread_duration = Histogram(REREAD_BUCKETS)


def delivered(transport: str, snapshot: Snapshot, since: float) -> None:
    """Observe how long ``snapshot`` took from its publish to this delivery.

    Only a delivery the client was waiting for counts: a version published
    after ``since`` (``time.time()`` when the socket opened or the request
    arrived). A client that connects and is sent the current version at once
    would otherwise count the age of that version, not the delivery's delay.
    The publish time is the publisher's clock: across hosts, keep clocks in
    sync (NTP); a negative difference counts as 0.
    """
    published = snapshot.published_at
    if published is not None and published >= since:
        latency = time.time() - published
        delivery[transport].observe(latency if latency > 0 else 0.0)


#: One socket in this many has its deliveries timed: thousands of sockets
#: receive each version, so a sample gives the same quantiles for an eighth
#: of the cost (a clock read and a bisection per frame). The first socket
#: of a process is always timed. Comet replies are all timed: each costs a
#: hundred times more than its timing.
LATENCY_SAMPLE = 8
_opened = itertools.count()


def timed_socket() -> bool:
    """Whether the socket opening now is one whose deliveries are timed."""
    return next(_opened) % LATENCY_SAMPLE == 0


def reset() -> None:
    """Zero everything (tests); the next socket is timed."""
    global _opened
    _opened = itertools.count()
    for counter in (
        sent,
        comet_replies,
        refusals,
        closes,
        publishes_seen,
        rereads,
        resubscribes,
    ):
        counter.clear()
    for histogram in (*delivery.values(), reread_duration):
        histogram.counts = [0] * len(histogram.counts)
        histogram.total = 0.0
