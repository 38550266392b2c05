"""The process's metrics in the Prometheus text format, through ``prometheus_client``.

The transports count into plain counters (:mod:`selector_app.metrics`); this
module is a ``prometheus_client`` *custom collector* that turns them into
metric families when Prometheus scrapes, and reads the gauges (open
connections, held polls, layer up, versions) from the live objects at that
moment. So the library does the exposition and nothing on the hot path
takes its locks.

One process, one scrape target: each Daphne or Uvicorn process listens on
its own port (docs/deployment.md), and Prometheus scrapes each port and
labels the series with its ``instance``. ``prometheus_client``'s
multi-process mode is not used: it shares files between the workers of one
port, which this layout does not have, and it cannot serve gauges read from
live objects. Uvicorn's ``--workers`` (several processes on one port) would
answer each scrape from whichever worker took it: run one process per port.

Imported only when metrics are served: ``prometheus_client`` is an optional
dependency (``pip install django-selector-app[metrics]``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from . import metrics
from .connections import process_counts
from .runtime import runtimes

PREFIX = "selector_app"
#: The exposition's content type (the text format, with its version).
CONTENT_TYPE = CONTENT_TYPE_LATEST
#: Transports always reported, even at 0, so that alerts and graphs have a
#: series from the first scrape on.
TRANSPORTS = ("push", "comet", "bidirectional", "events", "select")


class SelectorCollector(Collector):
    """Reads :mod:`selector_app.metrics` and the live runtimes at scrape time."""

    def collect(self) -> Iterator[Metric]:
        yield from self._gauges()
        yield from self._counters()
        yield from self._histograms()

    def _gauges(self) -> Iterator[Metric]:
        counts = {transport: 0 for transport in TRANSPORTS}
        counts.update(process_counts())
        counts.pop("comet", None)  # a held poll is counted below
        open_ = GaugeMetricFamily(
            f"{PREFIX}_open_connections",
            "Open sockets and event streams of this process, by transport.",
            labels=["transport"],
        )
        for transport, count in sorted(counts.items()):
            open_.add_metric([transport], count)
        yield open_
        live = runtimes()
        yield GaugeMetricFamily(
            f"{PREFIX}_held_polls",
            "Comet long-polls this process holds, waiting for a publish.",
            value=sum(runtime.hub.waiting_polls for runtime in live),
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_watchers",
            "Watchers on this process's hubs: held polls, push sockets and event "
            "streams (each should leave none behind when its client goes).",
            value=sum(len(runtime.hub.selector.watchers()) for runtime in live),
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_loop_tasks",
            "Tasks on the event loop serving this scrape: the server's one per "
            "connection, plus what the app runs (none per open stream or socket).",
            value=_loop_tasks(),
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_layer_up",
            "1 while the hub's channel-layer subscription is alive (its own "
            "ping came back within the silence limit), else 0.",
            value=int(bool(live) and all(r.feed.layer_alive() for r in live)),
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_hub_synced",
            "1 once the hub has read the resource rows, else 0.",
            value=int(bool(live) and all(r.hub.synced.is_set() for r in live)),
        )
        versions = GaugeMetricFamily(
            f"{PREFIX}_resource_sequence",
            "The latest sequence of each resource this process has.",
            labels=["resource"],
        )
        for runtime in live[:1]:
            for name, sequence in sorted(runtime.hub.sequences().items()):
                versions.add_metric([name], sequence)
        yield versions

    def _counters(self) -> Iterator[Metric]:
        yield _counter(
            "sent",
            "Versions sent: frames on sockets, events on streams, 200 replies "
            "for Comet.",
            ["transport"],
            {(t,): metrics.sent.get(t, 0) for t in {*TRANSPORTS, *metrics.sent}},
        )
        yield _counter(
            "comet_replies",
            "Comet replies by HTTP status.",
            ["status"],
            {(str(status),): n for status, n in metrics.comet_replies.items()},
        )
        yield _counter(
            "refusals",
            "Requests and sockets refused, by refusal.",
            ["reason"],
            {(reason,): n for reason, n in metrics.refusals.items()},
        )
        yield _counter(
            "closes",
            "Socket closes by who closed (server or client) and close code.",
            ["by", "code"],
            {(by, str(code)): n for (by, code), n in metrics.closes.items()},
        )
        yield _counter(
            "publishes_seen",
            "New versions this process's hub took, by resource and by how "
            "(layer message or re-read).",
            ["resource", "via"],
            dict(metrics.publishes_seen),
        )
        yield _counter(
            "reread_rows",
            "Rows the re-reads read: narrow (name, sequence, time) or whole "
            "(with the data).",
            ["kind"],
            {(kind,): metrics.reread_rows.get(kind, 0) for kind in ("narrow", "whole")},
        )
        yield _counter(
            "rereads",
            "Re-reads of the resource rows, by outcome.",
            ["outcome"],
            {
                (outcome,): metrics.rereads.get(outcome, 0)
                for outcome in ("ok", "failed")
            },
        )
        yield _counter(
            "layer_resubscribes",
            "Times the channel-layer subscription was lost and made again.",
            [],
            {(): metrics.resubscribes.get("layer", 0)},
        )

    def _histograms(self) -> Iterator[Metric]:
        latency = HistogramMetricFamily(
            f"{PREFIX}_delivery_latency_seconds",
            "From a publish to its delivery to a client that was waiting for "
            "it (publisher's clock to this process's clock).",
            labels=["transport"],
        )
        for transport, histogram in sorted(metrics.delivery.items()):
            buckets, total = _buckets(histogram)
            latency.add_metric([transport], buckets, total)
        yield latency
        rereads = HistogramMetricFamily(
            f"{PREFIX}_reread_duration_seconds",
            "How long each successful re-read of the resource rows took.",
        )
        buckets, total = _buckets(metrics.reread_duration)
        rereads.add_metric([], buckets, total)
        yield rereads


def _loop_tasks() -> int:
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:  # scraped outside an event loop (a sync caller)
        return 0


def _counter(
    name: str, documentation: str, labels: list[str], values: dict
) -> CounterMetricFamily:
    family = CounterMetricFamily(f"{PREFIX}_{name}", documentation, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


def _buckets(histogram: metrics.Histogram) -> tuple[list[tuple[str, float]], float]:
    """Cumulative ``(le, count)`` pairs, ending with ``+Inf``, and the sum."""
    counts, total = histogram.state()
    buckets, running = [], 0
    for bound, count in zip(histogram.bounds, counts, strict=False):
        running += count
        buckets.append((repr(float(bound)), running))
    buckets.append(("+Inf", running + counts[-1]))
    return buckets, total


_collector = SelectorCollector()
_lock = threading.Lock()
_registered = False


def registry() -> CollectorRegistry:
    """The default registry with the app's collector in it (once): a site's
    own ``prometheus_client`` metrics are served alongside, as are the
    library's process and garbage-collector metrics."""
    global _registered
    with _lock:
        if not _registered:
            REGISTRY.register(_collector)
            _registered = True
    return REGISTRY


def render() -> bytes:
    """Everything the registry collects, in the Prometheus text format."""
    return generate_latest(registry())
