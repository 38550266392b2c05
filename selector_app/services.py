"""Business logic: creating, publishing and reading resources.

Views, consumers, the admin and the management commands only parse input and
call these functions. Every write goes to the database first (the truth) and
only *after commit* rings the channel layer (the doorbell), so no server
process is ever told about a version that could still roll back.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.db import connections, transaction
from django.db.models import F
from django.utils import timezone

from . import layers, markers
from ._deprecated import moved
from .conf import get_config
from .models import Resource
from .outages import Outage, describe
from .protocol import Snapshot
from .signals import resource_published

logger = logging.getLogger(__name__)

#: Announcements that could not reach the channel layer, in this process.
announcements = Outage(logger, "the channel layer")

#: Printable ASCII without the space (0x21-0x7E), as the protocol specifies.
PRINTABLE = "".join(chr(code) for code in range(0x21, 0x7F))


def random_data(length: int) -> str:
    """``length`` random printable characters (not for secrets)."""
    return "".join(random.choices(PRINTABLE, k=length))


def _write(*, name: str, data: str) -> Snapshot:
    if not isinstance(data, str):
        raise TypeError(f"Resource data must be str, not {type(data).__name__}.")
    # The publish time travels with the version (delivery-latency metric)
    # and is the row's updated_at, so that a re-read tells the same time.
    now = timezone.now()
    with transaction.atomic():
        # F() makes the increment atomic across processes; the read-back sees
        # our own row, which the UPDATE keeps locked until commit.
        updated = Resource.objects.filter(name=name).update(
            sequence=F("sequence") + 1, data=data, updated_at=now
        )
        if not updated:
            raise Resource.DoesNotExist(
                f"There is no resource named {name!r}. Create it first, in the "
                "admin or with selector_app.services.resource_create()."
            )
        sequence = Resource.objects.filter(name=name).values_list(
            "sequence", flat=True
        )[0]
    return Snapshot(name, sequence, data, now.timestamp())


def _announce_failed(snapshot: Snapshot, error: Exception) -> None:
    announcements.failed(
        "Published %s #%s but could not ring the channel layer (%s); server "
        "processes pick it up at their next re-read.",
        snapshot.name,
        snapshot.sequence,
        describe(error),
        error=error,
    )


def _signal_kwargs(snapshot: Snapshot) -> dict[str, object]:
    return {
        "sender": Resource,
        "name": snapshot.name,
        "sequence": snapshot.sequence,
        "data": snapshot.data,
    }


async def _ring(snapshot: Snapshot) -> None:
    """Ring the doorbell, or give up after ``ANNOUNCE_TIMEOUT``.

    Bounded because redis-py waits for ever on a Redis that stops answering
    (``socket_timeout`` is None, so that idle receivers live): without it an
    admin save would hang after its commit. Cancelling the send is safe;
    redis-py drops the connection it was using.
    """
    config = get_config()
    async with asyncio.timeout(config.ANNOUNCE_TIMEOUT):
        await layers.channel_layer().group_send(config.GROUP, snapshot.as_event())


def _announce(snapshot: Snapshot) -> None:
    # A lost doorbell costs latency, not data: the row is committed and every
    # hub re-reads the rows periodically. So a layer failure is logged (once
    # per outage), not raised into code whose transaction has committed.
    try:
        async_to_sync(_ring)(snapshot)
    except Exception as error:
        _announce_failed(snapshot, error)
    else:
        announcements.recovered()
    resource_published.send(**_signal_kwargs(snapshot))


async def _aannounce(snapshot: Snapshot) -> None:
    try:
        await _ring(snapshot)
    except Exception as error:
        _announce_failed(snapshot, error)
    else:
        announcements.recovered()
    await resource_published.asend(**_signal_kwargs(snapshot))


def resource_publish(*, name: str, data: str) -> Snapshot:
    """Store ``data`` as the next version of ``name`` and announce it.

    Inside an outer ``transaction.atomic()`` the announcement waits for the
    outer commit (and never happens if it rolls back).
    """
    snapshot = _write(name=name, data=data)
    transaction.on_commit(partial(_announce, snapshot))
    return snapshot


async def aresource_publish(*, name: str, data: str) -> Snapshot:
    """Async twin of :func:`resource_publish`."""
    # Async code cannot hold a transaction open, so _write's own atomic block
    # is the outermost one and has committed when it returns. The database
    # thread's connection is tidied around it, as a request's would be.
    snapshot = await database_sync_to_async(_write)(name=name, data=data)
    await _aannounce(snapshot)
    return snapshot


def resource_publish_random(*, name: str, length: int | None = None) -> Snapshot:
    """Publish fresh random printable data (the demo's update)."""
    return resource_publish(name=name, data=random_data(_length(length)))


async def aresource_publish_random(*, name: str, length: int | None = None) -> Snapshot:
    """Async twin of :func:`resource_publish_random`."""
    return await aresource_publish(name=name, data=random_data(_length(length)))


def _length(length: int | None) -> int:
    return get_config().RESOURCE_LENGTH if length is None else length


def resource_create(*, name: str, data: str = "") -> Resource:
    """Create a resource at sequence 1 and announce it."""
    resource = Resource(name=name, data=data)
    resource.full_clean()
    resource.save()
    snapshot = _snapshot_of(resource)
    transaction.on_commit(partial(_announce, snapshot))
    return resource


def resource_ensure(*, name: str, length: int | None = None) -> Snapshot:
    """Return ``name``'s current version, creating it with random data if needed
    (and then announcing it, as :func:`resource_create` does)."""
    resource, created = Resource.objects.get_or_create(
        name=name, defaults={"data": random_data(_length(length))}
    )
    snapshot = _snapshot_of(resource)
    if created:
        transaction.on_commit(partial(_announce, snapshot))
    return snapshot


def _snapshot_of(resource: Resource) -> Snapshot:
    return Snapshot(
        resource.name,
        resource.sequence,
        resource.data,
        resource.updated_at.timestamp() if resource.updated_at else None,
    )


FIELDS = ("name", "sequence", "data", "updated_at")
#: Names per ``name IN (...)`` query: under every database's parameter limit.
CHUNK = 500


def _row_snapshot(name: str, sequence: int, data: str, updated_at) -> Snapshot:
    return Snapshot(name, sequence, data, updated_at.timestamp())


def resource_snapshots(*, names: list[str] | None = None) -> list[Snapshot]:
    """The current version of every resource, or of those of ``names`` that
    exist, read from the database."""
    if names is None:
        rows = Resource.objects.values_list(*FIELDS)
        return [_row_snapshot(*row) for row in rows]
    found = []
    for start in range(0, len(names), CHUNK):
        rows = Resource.objects.filter(name__in=names[start : start + CHUNK])
        found += [_row_snapshot(*row) for row in rows.values_list(*FIELDS)]
    return found


@dataclass(frozen=True)
class Reread:
    """What one re-read found (see :func:`resource_reread`)."""

    #: The current rows of the names that need them: changed, reset, or
    #: watched without being held (created again).
    snapshots: list[Snapshot]
    #: Held names whose rows are gone (deleted).
    gone: list[str]
    #: What to pass as ``horizon`` to the next re-read.
    horizon: int | None
    #: Rows read: narrow ones (name, sequence, time) and whole ones (with data).
    narrow: int
    whole: int


def resource_reread(
    *,
    horizon: int | None,
    held: dict[str, tuple[int, float | None]],
    watched: Iterable[str] = (),
) -> Reread:
    """The rows a hub needs after its previous re-read, and only those.

    ``held`` maps each name the hub holds to the (sequence, publish time) it
    has; ``watched`` names the ones clients wait for that it does not hold
    (deleted, or not loaded yet). Two narrow, indexed reads, then one of whole
    rows:

    1. the rows written since ``horizon`` (:mod:`selector_app.markers`): the
       cost of the publishes, whatever the table's size;
    2. the sequence and time of every other held or watched name: a delete
       (the row is gone), a reset whose marker the database had passed (a
       restore), a row created again, are all seen here, however the rows
       came back;
    3. the data of the names whose row differs from what the hub has.

    So a re-read costs what changed plus what is held, never the table.
    """
    connection = connections[Resource.objects.db]
    new_horizon = markers.horizon(connection)
    wanted = set(held).union(watched)
    seen: dict[str, tuple[int, float]] = {}
    narrow = 0
    if horizon is not None and new_horizon is not None and new_horizon >= horizon:
        # A horizon that went back (a restored database) skips this step:
        # the check of every held name below finds what the restore changed.
        for name, sequence, updated_at in Resource.objects.filter(
            change__gte=horizon
        ).values_list("name", "sequence", "updated_at"):
            narrow += 1
            if name in wanted:
                seen[name] = (sequence, updated_at.timestamp())
    rest = sorted(wanted.difference(seen))
    for start in range(0, len(rest), CHUNK):
        for name, sequence, updated_at in Resource.objects.filter(
            name__in=rest[start : start + CHUNK]
        ).values_list("name", "sequence", "updated_at"):
            narrow += 1
            seen[name] = (sequence, updated_at.timestamp())
    fetch = sorted(name for name, row in seen.items() if held.get(name) != row)
    snapshots = resource_snapshots(names=fetch) if fetch else []
    return Reread(
        snapshots=snapshots,
        gone=sorted(set(held).difference(seen)),
        horizon=new_horizon,
        narrow=narrow,
        whole=len(snapshots),
    )


def resource_snapshot(*, name: str) -> Snapshot | None:
    """``name``'s current version from the database, or ``None``."""
    row = Resource.objects.filter(name=name).values_list(*FIELDS).first()
    return None if row is None else _row_snapshot(*row)


__getattr__ = moved(__name__, {"channel_layer": "selector_app.layers.channel_layer"})
