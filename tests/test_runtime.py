"""The runtime: one hub and feed per loop, the embedded updater, GC tuning."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from selector_app import runtime
from selector_app.runtime import close_hub, get_hub, get_runtime, tune_gc


@pytest.fixture
def pristine_gc(monkeypatch) -> Iterator[None]:
    """An untuned process; the collector's state is restored afterwards."""
    thresholds = gc.get_threshold()
    monkeypatch.setattr(runtime, "_tuned_in", None)
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


async def test_one_hub_per_loop_built_from_the_settings(selector_settings, hub):
    assert get_hub() is hub
    assert hub.max_waiting_polls == 10_000
    assert hub.cache == 1000  # SNAPSHOT_CACHE
    assert not get_runtime().embedded_updater


async def test_the_snapshot_cache_setting_bounds_what_the_hub_keeps(
    selector_settings, transactional_db
):
    from selector_app.models import Resource

    selector_settings(SNAPSHOT_CACHE=3, RESYNC_INTERVAL=3600)
    await Resource.objects.abulk_create(
        Resource(name=f"r{index}", data="x") for index in range(10)
    )
    hub = get_hub()
    try:
        async with asyncio.timeout(5):
            await hub.synced.wait()
            for index in range(10):  # ten plain GETs: nobody keeps watching
                assert (await hub.aget(f"r{index}")).sequence == 1
        assert sorted(hub.sequences()) == ["r7", "r8", "r9"]
    finally:
        await close_hub()


async def test_closing_ends_the_feed_and_the_updater(
    selector_settings, transactional_db
):
    selector_settings(EMBEDDED_UPDATER=True, UPDATE_INTERVAL=60)
    started = get_runtime()
    await asyncio.wait([started.resource_made])  # then the feed starts
    tasks = [*started.tasks, *started.feed.tasks]
    assert len(tasks) == 3
    await close_hub()
    assert all(task.done() for task in tasks)
    assert not runtime._runtimes


async def test_the_embedded_updater_publishes_with_the_in_memory_layer(
    selector_settings, transactional_db
):
    selector_settings(EMBEDDED_UPDATER=True, UPDATE_INTERVAL=0.05)
    hub = get_hub()
    try:
        assert get_runtime().embedded_updater
        async with asyncio.timeout(5):
            first = (await hub.wait({"res": 0}))["res"]
            later = (await hub.wait({"res": first.sequence}))["res"]
        assert later.sequence > first.sequence
    finally:
        await close_hub()


async def test_the_embedded_updaters_resource_is_there_for_the_first_request(
    selector_settings, transactional_db
):
    """A new site has no row yet: its first lookup waits for the updater's
    resource to be created instead of answering 404, and the feed's first
    read (after it) keeps it."""
    selector_settings(EMBEDDED_UPDATER=True, UPDATE_INTERVAL=60, UPDATER_RESOURCE="new")
    hub = get_hub()
    try:
        async with asyncio.timeout(5):
            assert (await hub.aget("new")).sequence == 1
            await hub.synced.wait()
        assert hub.get("new").sequence == 1
    finally:
        await close_hub()


async def test_no_embedded_updater_with_a_layer_other_processes_share(
    selector_settings, settings, transactional_db
):
    """Several processes on Redis: runupdater publishes, never every server."""
    from selector_app.layers import redis_channel_layer

    # Building the layer connects to nothing; the runtime is never started.
    settings.CHANNEL_LAYERS = {"default": redis_channel_layer("redis://127.0.0.1:9")}
    selector_settings(EMBEDDED_UPDATER=True)
    assert not runtime.Runtime().embedded_updater


def test_tuning_sets_the_thresholds_and_freezes_once(selector_settings, pristine_gc):
    selector_settings(GC_THRESHOLDS=(40_000, 15, 50))
    assert tune_gc() is True
    assert gc.get_threshold() == (40_000, 15, 50)
    assert gc.get_freeze_count() > 0
    assert tune_gc() is False  # idempotent


def test_tuning_is_on_by_default_with_the_documented_thresholds(settings, pristine_gc):
    settings.SELECTOR_APP = {}
    assert tune_gc() is True
    assert gc.get_threshold() == (50_000, 20, 100)


def test_tuning_off_leaves_the_collector_alone(selector_settings, pristine_gc):
    selector_settings(GC_TUNING=False)
    before = gc.get_threshold()
    assert tune_gc() is False
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


async def test_the_runtime_tunes_the_process_when_it_starts(
    selector_settings, pristine_gc, transactional_db
):
    selector_settings(GC_THRESHOLDS=(30_000, 9, 9))
    get_hub()
    try:
        assert gc.get_threshold() == (30_000, 9, 9)
        assert gc.get_freeze_count() > 0
    finally:
        await close_hub()


async def test_the_echo_socket_tunes_the_process_too(selector_settings, pristine_gc):
    """/bidirectional never starts the runtime, yet may hold thousands of sockets."""
    from channels.testing import WebsocketCommunicator

    from selector_app.consumers import BidirectionalConsumer

    selector_settings(TICK_INTERVAL=60, GC_THRESHOLDS=(30_000, 8, 8))
    socket = WebsocketCommunicator(BidirectionalConsumer.as_asgi(), "/bidirectional")
    connected, _ = await socket.connect(timeout=5)
    try:
        assert connected
        assert gc.get_threshold() == (30_000, 8, 8)
        assert gc.get_freeze_count() > 0
        assert not runtime._runtimes
    finally:
        await socket.disconnect()
