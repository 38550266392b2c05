"""GC tuning: applied once per process, and only when the setting is on."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from selector_app import gc_tuning


@pytest.fixture
def pristine_gc(monkeypatch) -> Iterator[None]:
    """An untuned process; the collector's state is restored afterwards."""
    thresholds = gc.get_threshold()
    monkeypatch.setattr(gc_tuning, "_tuned_in", None)
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_tuning_sets_the_thresholds_and_freezes_once(settings, pristine_gc):
    settings.SELECTOR_APP = {"GC_THRESHOLDS": (40_000, 15, 50)}
    assert gc_tuning.tune_gc() is True
    assert gc.get_threshold() == (40_000, 15, 50)
    assert gc.get_freeze_count() > 0
    assert gc_tuning.tune_gc() is False  # idempotent


def test_tuning_is_on_by_default_with_the_documented_thresholds(settings, pristine_gc):
    settings.SELECTOR_APP = {}
    assert gc_tuning.tune_gc() is True
    assert gc.get_threshold() == (50_000, 20, 100)


def test_tuning_off_leaves_the_collector_alone(settings, pristine_gc):
    settings.SELECTOR_APP = {"GC_TUNING": False}
    before = gc.get_threshold()
    assert gc_tuning.tune_gc() is False
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


async def test_the_hub_tunes_the_process_when_it_starts(settings, pristine_gc):
    from selector_app.hub import close_hub, get_hub

    settings.SELECTOR_APP = {"EMBEDDED_UPDATER": False, "GC_THRESHOLDS": (30_000, 9, 9)}
    get_hub()
    try:
        assert gc.get_threshold() == (30_000, 9, 9)
        assert gc.get_freeze_count() > 0
    finally:
        await close_hub()


@pytest.mark.django_db  # Channels' disconnect handler tidies DB connections
async def test_the_echo_socket_tunes_the_process_too(settings, pristine_gc):
    """/bidirectional never starts the hub, yet may hold thousands of sockets."""
    from channels.testing import WebsocketCommunicator

    from selector_app.consumers import BidirectionalConsumer

    settings.SELECTOR_APP = {"TICK_INTERVAL": 60, "GC_THRESHOLDS": (30_000, 8, 8)}
    socket = WebsocketCommunicator(BidirectionalConsumer.as_asgi(), "/bidirectional")
    connected, _ = await socket.connect(timeout=5)
    try:
        assert connected
        assert gc.get_threshold() == (30_000, 8, 8)
        assert gc.get_freeze_count() > 0
    finally:
        await socket.disconnect()
