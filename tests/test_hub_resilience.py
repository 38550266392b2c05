"""The hub against a real Redis that drops connections, restarts or goes silent."""

from __future__ import annotations

import asyncio
import logging

import pytest
from channels.layers import get_channel_layer
from redis import asyncio as aioredis

from selector_app import services
from selector_app.hub import close_hub, get_hub
from selector_app.layers import redis_channel_layer
from tests.support.waiting import until

pytestmark = [pytest.mark.timeout(30), pytest.mark.usefixtures("res")]


@pytest.fixture
async def redis_hub(settings, redis_server, caplog):
    """A hub on a channels_redis layer with a short resync interval."""
    caplog.set_level(logging.INFO, logger="selector_app")
    settings.CHANNEL_LAYERS = {"default": redis_channel_layer(redis_server.url)}
    settings.SELECTOR_APP = {"EMBEDDED_UPDATER": False, "RESYNC_INTERVAL": 0.5}
    hub = get_hub()
    async with asyncio.timeout(5):
        await hub.synced.wait()
    try:
        yield hub
    finally:
        await close_hub()


async def _publish_quietly(monkeypatch, data: str) -> None:
    """Publish with the doorbell lost: only the database knows."""
    layer = get_channel_layer()

    async def lost(*args, **kwargs):
        return None

    with monkeypatch.context() as patch:
        patch.setattr(layer, "group_send", lost)
        await services.aresource_publish(name="res", data=data)


async def test_dropped_connections_are_noticed_and_the_rows_re_read(
    redis_hub, redis_server, monkeypatch, caplog
):
    admin = aioredis.Redis.from_url(redis_server.url)
    try:
        await admin.client_kill_filter(_type="normal", skipme=True)
    finally:
        await admin.aclose()
    await _publish_quietly(monkeypatch, "while away")
    async with asyncio.timeout(3):
        snapshot = await redis_hub.next_version("res", 1)
    assert snapshot.data == "while away"
    await until(lambda: "reachable again" in caplog.text, timeout=3)


async def test_a_redis_restart_needs_no_new_hub(redis_hub, redis_server, caplog):
    redis_server.stop()
    redis_server.start()  # same port, nothing remembered: no group, no channel
    await until(lambda: "reachable again" in caplog.text, timeout=5)
    # The first command on a stale pooled connection may fail, losing that
    # doorbell; the hub's re-read delivers the version anyway.
    sequence = 1
    for data in ("after restart", "and again"):
        await services.aresource_publish(name="res", data=data)
        async with asyncio.timeout(3):
            snapshot = await redis_hub.next_version("res", sequence)
        assert snapshot.data == data
        sequence = snapshot.sequence


async def test_a_silent_subscription_is_replaced(
    settings, redis_server, monkeypatch, caplog
):
    settings.CHANNEL_LAYERS = {"default": redis_channel_layer(redis_server.url)}
    settings.SELECTOR_APP = {"EMBEDDED_UPDATER": False, "RESYNC_INTERVAL": 0.3}
    layer = get_channel_layer()
    real_receive = layer.receive
    calls = 0

    async def half_open_once(channel):
        nonlocal calls
        calls += 1
        if calls == 1:  # BZPOPMIN on a connection whose peer vanished silently
            await asyncio.Event().wait()
        return await real_receive(channel)

    monkeypatch.setattr(layer, "receive", half_open_once)
    hub = get_hub()
    try:
        await until(lambda: "not even the hub's own ping" in caplog.text, timeout=5)
        # Turn the re-read off: only the replaced subscription can deliver.
        monkeypatch.setattr(hub, "resync", _nothing)
        await services.aresource_publish(name="res", data="heard")
        async with asyncio.timeout(3):
            snapshot = await hub.next_version("res", 1)
        assert snapshot.data == "heard"
    finally:
        await close_hub()


async def _nothing() -> None:
    return None
