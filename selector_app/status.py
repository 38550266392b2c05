"""The deployment's live state: the processes' heartbeats and the resources.

Every server process and every ``runupdater`` writes a
:class:`~selector_app.models.Heartbeat` row every ``RESYNC_INTERVAL``
(:mod:`selector_app.heartbeat`); this module writes and reads them. The store
is the database, not Django's cache: every process already reaches the
database (the hubs re-read the rows through it), a listing is one query
(a cache cannot list its keys), and it needs no shared cache backend, which
the default ``LocMemCache`` is not. A row counts as live until its
``expires_at``, set at each beat to :data:`EXPIRES_AFTER` intervals later, so
a process that dies without a word drops off the list within that long.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone

from .models import Heartbeat, Resource

#: Intervals after its last beat that a process still counts as live. Above 1
#: so that a beat written late (a slow database) does not make a live process
#: flicker; at most 3, so that a dead one is gone within 3 intervals.
EXPIRES_AFTER = 2.5
#: Resources listed at most: those updaters publish, then the first by name.
RESOURCES_SHOWN = 100
#: Expired rows older than this are deleted by the next beat of any process.
FORGET_AFTER = timedelta(hours=1)


def heartbeat_save(
    *,
    id: str,
    role: str,
    host: str,
    pid: int,
    software: str,
    started_at: datetime,
    every: float,
    resource: str = "",
    state: str = "",
    state_since: datetime | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Write one process's beat: it is live for ``EXPIRES_AFTER * every`` s."""
    now = timezone.now()
    Heartbeat.objects.update_or_create(
        id=id,
        defaults={
            "role": role,
            "host": host,
            "pid": pid,
            "software": software,
            "started_at": started_at,
            "beat_at": now,
            "expires_at": now + timedelta(seconds=EXPIRES_AFTER * every),
            "resource": resource,
            "state": state,
            "state_since": state_since,
            "details": details or {},
        },
    )
    Heartbeat.objects.filter(expires_at__lt=now - FORGET_AFTER).delete()


def heartbeat_delete(*, id: str) -> None:
    """Remove a process that stops cleanly from the list at once."""
    Heartbeat.objects.filter(id=id).delete()


def deployment_status() -> dict[str, Any]:
    """Every live process and every resource with its lease holders, as
    JSON-ready data (the admin page and ``selector_status --json``)."""
    now = timezone.now()
    live = list(Heartbeat.objects.filter(expires_at__gt=now))
    servers = [beat for beat in live if beat.role == Heartbeat.SERVER]
    updaters = [beat for beat in live if beat.role == Heartbeat.UPDATER]
    fields = ("name", "sequence", "updated_at")
    # A site may have millions of resources: the ones an updater publishes
    # (a lease holder, or none left), then the first by name.
    published = {beat.resource for beat in updaters if beat.resource}
    published |= {
        name
        for beat in servers
        if (name := (beat.details or {}).get("embedded_updater"))
    }
    resources = list(Resource.objects.filter(name__in=published).only(*fields))
    resources += Resource.objects.exclude(name__in=published).only(*fields)[
        : max(0, RESOURCES_SHOWN - len(resources))
    ]
    return {
        "now": now.isoformat(),
        "processes": [_server(beat, now) for beat in servers],
        "resources": [_resource(resource, updaters, servers) for resource in resources],
        "resource_count": Resource.objects.count(),
    }


def _identity(beat: Heartbeat, now: datetime) -> dict[str, Any]:
    return {
        "host": beat.host,
        "pid": beat.pid,
        "software": beat.software,
        "started_at": beat.started_at.isoformat(),
        "uptime_seconds": round((now - beat.started_at).total_seconds(), 1),
        "beat_at": beat.beat_at.isoformat(),
    }


def _server(beat: Heartbeat, now: datetime) -> dict[str, Any]:
    details = beat.details or {}
    return {
        **_identity(beat, now),
        "connections": details.get("connections", {}),
        "held_polls": details.get("held_polls", 0),
        "versions": details.get("versions", {}),
        "held": details.get("held", len(details.get("versions", {}))),
        "lag_p50_seconds": details.get("lag_p50"),
        "lag_p99_seconds": details.get("lag_p99"),
        "deliveries": details.get("deliveries", 0),
    }


def _updater(beat: Heartbeat, now: datetime) -> dict[str, Any]:
    return {
        **_identity(beat, now),
        "state": beat.state,
        "since": beat.state_since.isoformat() if beat.state_since else None,
    }


def _embedded(resource: Resource, servers: list[Heartbeat]) -> dict[str, Any] | None:
    """A server that runs the updater of ``resource`` itself (the in-memory
    layer's single process): it needs no lease, and is its only publisher."""
    for beat in servers:
        if (beat.details or {}).get("embedded_updater") == resource.name:
            return {
                **_identity(beat, timezone.now()),
                "state": "embedded",
                "since": beat.started_at.isoformat(),
            }
    return None


def _resource(
    resource: Resource, updaters: list[Heartbeat], servers: list[Heartbeat]
) -> dict[str, Any]:
    mine = [beat for beat in updaters if beat.resource == resource.name]
    holding = sorted(
        (beat for beat in mine if beat.state == "holding"),
        key=lambda beat: beat.state_since or beat.started_at,
    )
    # Two rows say "holding" only for the moments after a holder died and a
    # standby took over: the dead one's row has not expired yet. The lease
    # has one holder, the one that took it last.
    holder = holding[-1] if holding else None
    now = timezone.now()
    return {
        "name": resource.name,
        "sequence": resource.sequence,
        "published_at": resource.updated_at.isoformat(),
        "holder": _updater(holder, now) if holder else _embedded(resource, servers),
        "standbys": [_updater(beat, now) for beat in mine if beat is not holder],
    }


# As a person reads it: the admin page and selector_status's table --------------

PROCESS_COLUMNS = (
    "host",
    "pid",
    "server",
    "uptime",
    "connections",
    "held polls",
    "versions seen",
    "lag p50",
    "lag p99",
)
RESOURCE_COLUMNS = ("resource", "sequence", "last publish", "lease holder", "standby")


def process_rows(state: dict[str, Any]) -> list[list[str]]:
    """One row of text per live server process."""
    return [
        [
            process["host"],
            str(process["pid"]),
            process["software"],
            _duration(process["uptime_seconds"]),
            ", ".join(f"{n} {t}" for t, n in sorted(process["connections"].items()))
            or "none",
            str(process["held_polls"]),
            _versions(process),
            _lag(process["lag_p50_seconds"]),
            _lag(process["lag_p99_seconds"]),
        ]
        for process in state["processes"]
    ]


def resource_rows(state: dict[str, Any]) -> list[list[str]]:
    """One row of text per resource."""
    return [
        [
            resource["name"],
            str(resource["sequence"]),
            format_time(resource["published_at"]),
            _updater_text(resource["holder"]) if resource["holder"] else "none",
            "; ".join(_updater_text(u) for u in resource["standbys"]) or "none",
        ]
        for resource in state["resources"]
    ]


def _versions(process: dict[str, Any]) -> str:
    shown = ", ".join(f"{name} #{seq}" for name, seq in process["versions"].items())
    more = process["held"] - len(process["versions"])
    if more > 0:
        shown += f", and {more} more"
    return shown or "none yet"


def _updater_text(updater: dict[str, Any]) -> str:
    since = f" since {format_time(updater['since'])}" if updater["since"] else ""
    state = {"holding": "", "embedded": " (embedded updater)"}.get(
        updater["state"], f" ({updater['state']})"
    )
    return f"{updater['host']}:{updater['pid']}{state}{since}"


def format_time(iso: str) -> str:
    """An ISO time as ``YYYY-MM-DD HH:MM:SS`` UTC."""
    moment = datetime.fromisoformat(iso).astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _lag(seconds: float | None) -> str:
    if seconds is None:
        return "-"  # nothing delivered since the last beat
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"
