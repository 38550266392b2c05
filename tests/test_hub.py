from __future__ import annotations

import asyncio

import pytest
from channels.layers import get_channel_layer

from selector_app import services
from selector_app.hub import Hub, close_hub, get_hub
from selector_app.snapshots import Snapshot
from tests.support.waiting import until

pytestmark = pytest.mark.usefixtures("res")


async def test_one_hub_per_loop_with_one_channel_in_one_group(hub):
    assert get_hub() is hub
    await until(lambda: hub._channel is not None)
    layer = get_channel_layer()
    assert layer.groups["selector_app"].keys() == {hub._channel}


async def test_the_hub_reads_the_rows_when_it_starts(hub):
    async with asyncio.timeout(5):
        await hub.synced.wait()
    assert hub.snapshot("res").sequence == 1


async def test_a_publish_moves_the_snapshot_and_wakes_waiters(hub):
    async with asyncio.timeout(5):
        await hub.synced.wait()
        waiter = asyncio.create_task(hub.next_version("res", 1))
        await asyncio.sleep(0)
        assert not waiter.done()
        await services.aresource_publish(name="res", data="new")
        snapshot = await waiter
    assert (snapshot.sequence, snapshot.data) == (2, "new")
    assert hub.snapshot("res") == snapshot


async def test_snapshots_only_move_forward(hub):
    assert hub.advance(Snapshot("x", 5, "five"))
    assert not hub.advance(Snapshot("x", 4, "four"))
    assert not hub.advance(Snapshot("x", 5, "again"))
    assert hub.snapshot("x").data == "five"
    assert hub.advance(Snapshot("x", 6, "six"))


async def test_a_cursor_ahead_of_the_server_is_answered(hub):
    hub.advance(Snapshot("x", 3, "three"))
    async with asyncio.timeout(1):
        snapshot = await hub.next_version("x", 99)
    assert snapshot.sequence == 3


async def test_a_lost_layer_message_costs_only_the_resync_interval(
    settings, monkeypatch
):
    settings.SELECTOR_APP = {"EMBEDDED_UPDATER": False, "RESYNC_INTERVAL": 0.2}
    hub = get_hub()
    try:
        async with asyncio.timeout(5):
            await hub.synced.wait()
        layer = get_channel_layer()

        async def lost(*args, **kwargs):
            return None  # the doorbell never rings

        monkeypatch.setattr(layer, "group_send", lost)
        waiter = asyncio.create_task(hub.next_version("res", 1))
        await services.aresource_publish(name="res", data="quiet")
        async with asyncio.timeout(3):
            snapshot = await waiter
        assert snapshot.data == "quiet"
    finally:
        await close_hub()


async def test_a_deleted_resource_is_forgotten_at_the_next_read(hub):
    from selector_app.models import Resource

    async with asyncio.timeout(5):
        await hub.synced.wait()
    await Resource.objects.filter(name="res").adelete()
    await hub.resync()
    assert hub.snapshot("res") is None
    assert await hub.aget("res") is None


async def test_aget_reads_a_resource_the_hub_has_not_seen(hub):
    from asgiref.sync import sync_to_async

    await sync_to_async(services.resource_ensure)(name="fresh", length=3)
    snapshot = await hub.aget("fresh")
    assert snapshot.sequence == 1 and len(snapshot.data) == 3


async def test_malformed_messages_are_ignored(hub, caplog):
    hub._receive({"type": "resource.published", "name": "x", "sequence": "1"})
    hub._receive({"type": "something.else"})
    assert hub.snapshot("x") is None
    assert "malformed" in caplog.text and "unexpected" in caplog.text


async def test_closing_the_hub_ends_every_task_and_leaves_the_group():
    hub = get_hub()
    await until(lambda: hub._channel is not None)
    tasks = set(hub._tasks)
    await close_hub()
    assert all(task.done() for task in tasks)
    assert not get_channel_layer().groups.get("selector_app")


async def test_the_listener_retries_when_the_layer_fails(monkeypatch, caplog):
    hub = Hub(get_channel_layer())
    calls = 0
    real = hub.layer.new_channel

    async def flaky():
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("layer down")
        return await real()

    monkeypatch.setattr(hub.layer, "new_channel", flaky)
    monkeypatch.setattr("selector_app.hub.RETRY_DELAYS", (0.01,))
    hub.start()
    try:
        async with asyncio.timeout(5):
            await hub.synced.wait()
        assert calls == 2
        assert "retrying" in caplog.text
    finally:
        await hub.aclose()


async def test_embedded_updater_runs_only_with_the_in_memory_layer(settings):
    settings.SELECTOR_APP = {"EMBEDDED_UPDATER": True, "UPDATE_INTERVAL": 0.05}
    hub = get_hub()
    try:
        assert any("embedded updater" in task.get_name() for task in hub._tasks)
        async with asyncio.timeout(5):
            snapshot = await hub.next_version("res", 1)
            snapshot = await hub.next_version("res", snapshot.sequence)
        assert snapshot.sequence >= 3
    finally:
        await close_hub()
