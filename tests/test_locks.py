"""The updater lock against a real redis-server."""

from __future__ import annotations

import asyncio
import logging

import pytest
from django.core.exceptions import ImproperlyConfigured
from redis import asyncio as aioredis

from selector_app import locks
from selector_app.layers import redis_channel_layer
from selector_app.locks import LockKeeper, RedisLock
from tests.support.waiting import until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(30)]


@pytest.fixture
async def clients(redis_server):
    """Two independent clients, as two runupdater processes would have."""
    made = [aioredis.Redis.from_url(redis_server.url) for _ in range(2)]
    yield made
    for client in made:
        await client.aclose()


@pytest.fixture
async def keeper_task():
    """Runs keepers as tasks and cancels and awaits them afterwards."""
    tasks: list[asyncio.Task[None]] = []

    def start(keeper: LockKeeper) -> asyncio.Task[None]:
        tasks.append(asyncio.create_task(keeper.run()))
        return tasks[-1]

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_one_holder_at_a_time_and_release_hands_over(clients):
    first = RedisLock(clients[0], "k", ttl=2)
    second = RedisLock(clients[1], "k", ttl=2)
    assert await first.acquire()
    assert first.remaining() > 1.9
    assert not await second.acquire()
    assert second.remaining() == 0
    await first.release()
    assert first.remaining() == 0
    assert await second.acquire()


async def test_only_the_holder_can_renew_or_release(clients):
    first = RedisLock(clients[0], "k", ttl=2)
    other = RedisLock(clients[1], "k", ttl=2)
    assert await first.acquire()
    assert not await other.renew()
    await other.release()  # not its lease: nothing happens
    assert await clients[0].get("k") == first.token.encode()
    assert await first.renew()
    assert 1900 < await clients[0].pttl("k") <= 2000


async def test_an_unrenewed_lease_expires_and_the_standby_takes_over(
    clients, keeper_task, caplog
):
    caplog.set_level(logging.INFO, logger="selector_app.locks")
    dead = RedisLock(clients[0], "k", ttl=0.6)  # a holder that was SIGKILLed
    assert await dead.acquire()
    standby = LockKeeper(RedisLock(clients[1], "k", ttl=0.6), what="'res'")
    keeper_task(standby)
    await until(lambda: "standby: waiting for the lock on 'res'" in caplog.text)
    assert not standby.held()
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with asyncio.timeout(3):
        await standby.wait_held()
    assert loop.time() - started < 0.6 + standby.retry_every + 0.2
    assert "acquired the lock on 'res'" in caplog.text


async def test_a_holder_keeps_renewing(clients, keeper_task):
    holder = LockKeeper(RedisLock(clients[0], "k", ttl=0.4), what="'res'")
    keeper_task(holder)
    async with asyncio.timeout(3):
        await holder.wait_held()
    other = RedisLock(clients[1], "k", ttl=0.4)
    for _ in range(4):  # well past one TTL
        await asyncio.sleep(0.2)  # time passing is the point
        assert holder.held()
        assert not await other.acquire()


async def test_the_holder_stops_before_its_lease_could_expire_when_redis_is_gone(
    redis_server, keeper_task, caplog
):
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        holder = LockKeeper(RedisLock(client, "k", ttl=1.0), what="'res'")
        keeper_task(holder)
        async with asyncio.timeout(3):
            await holder.wait_held()
        loop = asyncio.get_running_loop()
        proven_until = loop.time() + holder.lock.remaining()
        redis_server.stop()
        await until(lambda: not holder.held(), timeout=3)
        assert loop.time() < proven_until  # stopped while the lease still lived
        await until(lambda: "Lost the lock on 'res'" in caplog.text, timeout=3)
        assert "Stopped publishing" in caplog.text
        redis_server.start()  # same port, empty: the keeper takes it again
        async with asyncio.timeout(5):
            await holder.wait_held()
    finally:
        await client.aclose()


async def test_after_a_blip_the_holder_renews_its_own_key_without_waiting(
    clients, keeper_task, caplog
):
    holder = LockKeeper(RedisLock(clients[0], "k", ttl=2.0), what="'res'")
    keeper_task(holder)
    async with asyncio.timeout(3):
        await holder.wait_held()
    await clients[1].client_kill_filter(_type="normal", skipme=True)
    await until(lambda: not holder.held(), timeout=2)  # the error ends the proof
    loop = asyncio.get_running_loop()
    lost_at = loop.time()
    async with asyncio.timeout(3):
        await holder.wait_held()
    assert loop.time() - lost_at < 1.5  # well before the key could expire
    assert "Lost the lock on 'res'" in caplog.text


def test_without_redis_the_lock_says_what_to_configure(settings):
    with pytest.raises(ImproperlyConfigured, match="LOCK_REDIS_URL"):
        locks.lock_client()


async def test_the_lock_uses_the_layers_first_host_or_lock_redis_url(
    settings, selector_settings, redis_server
):
    settings.CHANNEL_LAYERS = {"default": redis_channel_layer(redis_server.url)}
    client = locks.lock_client()
    try:
        assert await client.ping()
    finally:
        await client.aclose(close_connection_pool=True)
    selector_settings(LOCK_REDIS_URL=redis_server.url)
    settings.CHANNEL_LAYERS = {}
    client = locks.lock_client()
    try:
        assert await client.ping()
    finally:
        await client.aclose()
