"""The feed against a real Redis that drops connections, restarts or goes silent."""

from __future__ import annotations

import asyncio
import logging

import pytest
from channels.layers import get_channel_layer
from redis import asyncio as aioredis

from selector_app import services
from selector_app.layers import redis_channel_layer
from tests.support.waiting import until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(30), pytest.mark.usefixtures("res")]


@pytest.fixture
def redis_layer(settings, redis_server, caplog):
    caplog.set_level(logging.INFO, logger="selector_app")
    settings.CHANNEL_LAYERS = {"default": redis_channel_layer(redis_server.url)}
    return get_channel_layer()


async def next_version(hub, cursor: int):
    async with asyncio.timeout(3):
        return (await hub.wait({"res": cursor}))["res"]


async def _publish_quietly(monkeypatch, data: str) -> None:
    """Publish with the doorbell lost: only the database knows."""

    async def lost(*args, **kwargs):
        return None

    with monkeypatch.context() as patch:
        patch.setattr(get_channel_layer(), "group_send", lost)
        await services.aresource_publish(name="res", data=data)


async def test_dropped_connections_are_noticed_and_the_rows_re_read(
    start_feed, redis_layer, redis_server, monkeypatch, caplog
):
    feed = await start_feed(resync_interval=0.5)
    admin = aioredis.Redis.from_url(redis_server.url)
    try:
        await admin.client_kill_filter(_type="normal", skipme=True)
    finally:
        await admin.aclose()
    await _publish_quietly(monkeypatch, "while away")
    assert (await next_version(feed.hub, 1)).data == "while away"
    await until(lambda: "The channel layer answers again" in caplog.text, timeout=3)


async def test_a_redis_restart_needs_no_new_feed(
    start_feed, redis_layer, redis_server, caplog
):
    feed = await start_feed(resync_interval=0.5)
    redis_server.stop()
    redis_server.start()  # same port, nothing remembered: no group, no channel
    await until(lambda: "The channel layer answers again" in caplog.text, timeout=5)
    # The first command on a stale pooled connection may fail, losing that
    # doorbell; the feed's re-read delivers the version anyway.
    sequence = 1
    for data in ("after restart", "and again"):
        await services.aresource_publish(name="res", data=data)
        snapshot = await next_version(feed.hub, sequence)
        assert snapshot.data == data
        sequence = snapshot.sequence


async def test_a_silent_subscription_is_replaced(
    start_feed, redis_layer, monkeypatch, caplog
):
    real_receive = redis_layer.receive
    calls = 0

    async def half_open_once(channel):
        nonlocal calls
        calls += 1
        if calls == 1:  # BZPOPMIN on a connection whose peer vanished silently
            await asyncio.Event().wait()
        return await real_receive(channel)

    monkeypatch.setattr(redis_layer, "receive", half_open_once)
    feed = await start_feed(resync_interval=0.3, read_timeout=0.3)
    await until(lambda: "not even the feed's own ping" in caplog.text, timeout=5)
    # Turn the re-read off: only the replaced subscription can deliver.
    monkeypatch.setattr(feed, "resync", _nothing)
    await services.aresource_publish(name="res", data="heard")
    assert (await next_version(feed.hub, 1)).data == "heard"


async def _nothing() -> None:
    return None
