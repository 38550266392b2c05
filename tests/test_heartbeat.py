"""Heartbeats: a server process's row appears when its runtime starts, says
what the process holds, and goes when it stops."""

from __future__ import annotations

import asyncio
import os
import time

import pytest
from asgiref.sync import sync_to_async

from selector_app import metrics, runtime
from selector_app.heartbeat import LagWindow, server_software
from selector_app.models import Heartbeat
from selector_app.protocol import Snapshot
from tests.support.waiting import until


async def rows() -> list[Heartbeat]:
    return await sync_to_async(list)(Heartbeat.objects.all())


async def test_a_runtime_beats_and_removes_its_row_on_close(res, selector_settings):
    selector_settings(HEARTBEATS=True, RESYNC_INTERVAL=0.2)
    hub = runtime.get_hub()
    try:
        async with asyncio.timeout(5):
            await hub.synced.wait()
        await hub.aget("res")  # what a client asks for is what the hub holds
        found: list[Heartbeat] = []

        async def versions_reported() -> bool:
            found[:] = await rows()
            return bool(found) and found[0].details.get("versions") == {"res": 1}

        async with asyncio.timeout(5):
            while not await versions_reported():  # noqa: ASYNC110 (a database row)
                await asyncio.sleep(0.05)
        [row] = found
        assert (row.role, row.pid) == ("server", os.getpid())
        assert row.software == server_software()
        assert (row.expires_at - row.beat_at).total_seconds() == pytest.approx(0.5)
    finally:
        await runtime.close_hub()
    assert await rows() == []


async def test_no_heartbeat_when_turned_off(res, selector_settings):
    selector_settings(HEARTBEATS=False)
    assert runtime.get_runtime().heartbeat is None
    await runtime.close_hub()


def test_the_lag_window_reports_what_was_delivered_since_the_last_look():
    metrics.reset()
    window = LagWindow()
    assert window.take() == {"deliveries": 0, "lag_p50": None, "lag_p99": None}
    since = time.time() - 1
    for _ in range(100):
        metrics.delivered("push", Snapshot("res", 2, "", time.time()), since)
    taken = window.take()
    assert taken["deliveries"] == 100 and 0 < taken["lag_p50"] <= 0.001
    assert window.take()["deliveries"] == 0
    metrics.reset()


async def test_a_failing_write_is_logged_once_at_info(monkeypatch, caplog):
    from selector_app import heartbeat, status

    def broken(**fields):
        raise OSError("database gone")

    monkeypatch.setattr(status, "heartbeat_save", broken)
    beat = heartbeat.Heartbeat(
        role="server", software="test", describe=dict, interval=1, timeout=1
    )
    with caplog.at_level("DEBUG", logger="selector_app.heartbeat"):
        for _ in range(3):
            await beat._call(beat._save, {})
            # The thread marks itself idle just after it answers.
            await until(lambda: beat._worker.busy_since is None)
        monkeypatch.setattr(status, "heartbeat_save", lambda **fields: None)
        await beat._call(beat._save, {})
    beat._worker.shutdown(wait=False)
    levels = [(r.levelname, r.getMessage()[:36]) for r in caplog.records]
    assert levels == [
        ("INFO", "Could not write this process's heart"),
        ("DEBUG", "Could not write this process's heart"),
        ("DEBUG", "Could not write this process's heart"),
        ("INFO", "Heartbeats are written again."),
    ]
