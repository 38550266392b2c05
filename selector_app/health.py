"""Whether this server process should be sent clients: what ``GET health`` says.

A process is healthy when it can serve what it promises: its hub has read
the rows once (the database answers it) and its channel-layer subscription
is alive (its own ping came back within the silence limit, so publishes
reach it at once, not only at the next re-read). While it drains for a
restart it says it is not, so that a load balancer stops sending it new
clients before it closes the ones it has. Everything here is read from
memory: no database query, no layer call, cheap enough for every balancer
to ask every second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .runtime import get_runtime
from .shutdown import get_connections

DRAINING = "This server process is draining before it exits."
NOT_SYNCED = "The hub has not read the resources from the database yet."
LAYER_DOWN = (
    "The channel-layer subscription is down: publishes reach this process "
    "only through its re-reads of the rows."
)


@dataclass(frozen=True)
class Health:
    """The answer: healthy or not, why not, and a few numbers for a human."""

    healthy: bool
    reason: str = ""
    body: dict[str, Any] = field(default_factory=dict)


def process_health() -> Health:
    """This process's health; starts its runtime if nothing has yet (a
    balancer's first check is often a new process's first request), except
    during the drain, which closes it."""
    connections = get_connections()
    if connections.draining:
        return _unhealthy(DRAINING, {"draining": True})
    runtime = get_runtime()
    synced = runtime.hub.synced.is_set()
    layer = runtime.feed.layer_alive()
    body: dict[str, Any] = {
        "synced": synced,
        "layer": "up" if layer else "down",
        "draining": False,
        "connections": connections.counts(),
    }
    if not synced:
        return _unhealthy(NOT_SYNCED, body)
    if not layer:
        return _unhealthy(LAYER_DOWN, body)
    return Health(True, "", {"status": "ok", **body})


def _unhealthy(reason: str, body: dict[str, Any]) -> Health:
    return Health(False, reason, {"status": "unavailable", "reason": reason, **body})
