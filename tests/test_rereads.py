"""Re-reads cost what changed and what is watched, never the table: the rows
a re-read reads, counted, on SQLite and (with SELECTOR_TEST_POSTGRES_URL) on
PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from selector_app import markers, metrics, services
from selector_app.models import Resource
from tests.support.recorder import Recorder
from tests.support.waiting import until

pytestmark = pytest.mark.usefixtures("res")


def make(count: int) -> None:
    Resource.objects.bulk_create(
        Resource(name=f"r{index}", data="x" * 100) for index in range(count)
    )


def rows_read(before: dict[str, int]) -> dict[str, int]:
    return {
        kind: metrics.reread_rows[kind] - before.get(kind, 0)
        for kind in ("narrow", "whole")
    }


async def test_a_re_read_without_changes_reads_no_row(start_feed):
    await sync_to_async(make)(1000)
    feed = await start_feed()
    await feed.resync()  # the first re-read only takes the horizon
    before = dict(metrics.reread_rows)
    await feed.resync()
    assert rows_read(before) == {"narrow": 0, "whole": 0}
    assert feed.hub.sequences() == {}  # 1001 rows, none held


async def test_a_re_read_reads_what_changed_and_the_held_names(start_feed):
    await sync_to_async(make)(1000)
    feed = await start_feed()
    await feed.resync()
    socket = Recorder()
    delivery = await socket.deliver(feed.hub, "r7", 0)
    assert (await socket.next()).sequence == 1
    before = dict(metrics.reread_rows)
    await feed.resync()
    assert rows_read(before) == {"narrow": 1, "whole": 0}  # r7 checked
    for name in ("r1", "r2", "r7"):  # published without ringing the layer
        await sync_to_async(services._write)(name=name, data="new")
    before = dict(metrics.reread_rows)
    await feed.resync()
    # The 3 written rows (r7 among them, so not checked again), r7's data.
    assert rows_read(before) == {"narrow": 3, "whole": 1}
    assert (await socket.next()).message == "2 new"
    assert feed.hub.sequences() == {"r7": 2}
    delivery.close()


def test_every_write_gets_a_marker_at_or_past_the_horizon(transactional_db):
    horizon = markers.horizon(connection)
    created = services.resource_create(name="marked", data="a")
    first = Resource.objects.get(name="marked").change
    services.resource_publish(name="marked", data="b")
    second = Resource.objects.get(name="marked").change
    created.data = "c"
    created.save()  # an admin save
    third = Resource.objects.get(name="marked").change
    assert horizon <= first < second < third
    assert markers.horizon(connection) > third


def restore(name: str, sequence: int, data: str) -> None:
    """What a restore does: the row as it was, with the marker it had then
    (the database has passed it), written without the trigger."""
    triggers = {
        "postgresql": (
            f"ALTER TABLE {markers.TABLE} DISABLE TRIGGER {markers.TABLE}_change",
            f"ALTER TABLE {markers.TABLE} ENABLE TRIGGER {markers.TABLE}_change",
        ),
        # SQLite's trigger does not fire on an UPDATE of the marker alone.
        "sqlite": ("SELECT 1", "SELECT 1"),
    }[connection.vendor]
    Resource.objects.filter(name=name).update(sequence=sequence, data=data)
    with connection.cursor() as cursor:
        cursor.execute(triggers[0])
        cursor.execute(f"UPDATE {markers.TABLE} SET change = 1 WHERE name = %s", [name])
        cursor.execute(triggers[1])


async def test_a_restored_row_with_an_old_marker_is_adopted_at_the_next_read(
    start_feed,
):
    feed = await start_feed()
    await feed.resync()
    socket = Recorder()
    delivery = await socket.deliver(feed.hub, "res", 0)
    for _ in range(5):
        await services.aresource_publish(name="res", data="later")
    await until(lambda: socket.sent[-1:] == [6])
    socket.pending()
    await sync_to_async(restore)("res", 3, "restored")
    await feed.resync()
    assert (await socket.next()).message == "3 restored"
    assert feed.hub.get("res").sequence == 3
    delivery.close()


async def test_a_deleted_held_resource_is_forgotten_and_a_recreated_one_found(
    start_feed,
):
    feed = await start_feed()
    await feed.resync()
    assert (await feed.hub.aget("res")).sequence == 1
    await Resource.objects.filter(name="res").adelete()
    await feed.resync()
    assert feed.hub.get("res") is None
    # A client that waits for it (hub.wait) finds it when it is created again,
    # without an announcement, at the next re-read.
    task = asyncio.create_task(feed.hub.wait({"res": 0}))
    # Once it waits (it looked the name up and found no row), the row comes.
    await until(lambda: feed.hub.selector.watched("res"))
    await Resource.objects.acreate(name="res", data="again")
    await feed.resync()
    async with asyncio.timeout(5):
        assert (await task)["res"].message == "1 again"
