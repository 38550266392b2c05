"""The hub's reads: a thread of their own, each bounded; a hang blocks nothing else."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.core.asgi import get_asgi_application

from selector_app import services
from selector_app.fastpath import CometFastPath
from selector_app.protocol import Unavailable
from selector_app.reader import RowReader
from selector_app.routing import websocket_urlpatterns
from tests.support.asgi import AsgiClient
from tests.support.waiting import until

pytestmark = pytest.mark.usefixtures("res")


class Hang:
    """Stands in for a database that accepts a query and never answers."""

    def __init__(self, monkeypatch, name: str, *, times: int | None = None) -> None:
        self.entered = threading.Event()
        self.released = threading.Event()
        self.calls = 0
        real = getattr(services, name)

        def hung(**kwargs):
            self.calls += 1
            if times is None or self.calls <= times:
                self.entered.set()
                self.released.wait(30)
            return real(**kwargs)

        monkeypatch.setattr(services, name, hung)

    async def started(self) -> None:
        async with asyncio.timeout(5):
            await asyncio.to_thread(self.entered.wait, 5)


@pytest.fixture
async def reader():
    reader = RowReader(timeout=0.2)
    try:
        yield reader
    finally:
        await reader.aclose()


async def test_a_hung_read_is_abandoned_and_blocks_no_other_database_call(
    reader, monkeypatch, caplog
):
    hang = Hang(monkeypatch, "resource_snapshots")
    try:
        with pytest.raises(Unavailable, match="did not answer in time"):
            await reader.rows()
        await hang.started()
        # Django's shared database thread is free: requests still work.
        async with asyncio.timeout(5):
            assert await database_sync_to_async(services.resource_snapshot)(name="res")
        # While the first read still hangs, the next one does not queue a
        # thread behind it, and a lookup is refused at once (503, no wait).
        with pytest.raises(Unavailable):
            await reader.rows()
        with pytest.raises(Unavailable):
            await reader.row("res")  # its query would work: it was not sent
        assert hang.calls == 1
    finally:
        hang.released.set()
    await until(lambda: reader._worker.busy_since is None)  # the hung read returned
    assert [row.name for row in await reader.rows()] == ["res"]  # ends the outage
    assert (await reader.row("res")).sequence == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "no answer within 0.2 s" in warnings[0].getMessage()
    assert "The database answers again" in caplog.text


async def test_a_read_that_never_returns_is_abandoned_for_a_fresh_thread(
    reader, monkeypatch, caplog
):
    """A connection can hang for ever while the database answers new ones
    (a persistent connection behind a firewall that dropped its state): after
    ABANDON_AFTER read timeouts the reader leaves that read to its thread and
    reads in a new one, so the outage ends instead of lasting for ever."""
    hang = Hang(monkeypatch, "resource_snapshots", times=1)
    try:
        with pytest.raises(Unavailable):
            await reader.rows()
        await hang.started()
        rows, refused = await rows_once_answered(reader)
        assert [row.name for row in rows] == ["res"]
        assert refused > 0  # refused at once meanwhile: no thread per attempt
        assert reader.abandoned == 1
    finally:
        hang.released.set()
    await until(lambda: reader.abandoned == 0)  # its read returned: it ended
    assert hang.calls == 2
    abandoned = [r.getMessage() for r in caplog.records if "abandoning" in r.msg]
    assert len(abandoned) == 1, abandoned
    assert "read that hangs again is abandoned after 2 s" in abandoned[0]
    assert "The database answers again" in caplog.text


async def rows_once_answered(reader: RowReader) -> tuple[list, int]:
    """Re-read as the feed does, round after round, until a read answers;
    the rows and how many rounds were refused."""
    refused = 0
    async with asyncio.timeout(5):
        while True:
            try:
                return await reader.rows(), refused
            except Unavailable:
                refused += 1
                await asyncio.sleep(0.05)  # the feed's RESYNC_INTERVAL


async def test_a_failing_database_is_unavailable_not_a_crash(reader, monkeypatch):
    from django.db import OperationalError

    def refused(**kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(services, "resource_snapshots", refused)
    with pytest.raises(Unavailable) as raised:
        await reader.row("res")
    assert isinstance(raised.value.__cause__, OperationalError)
    assert (raised.value.status, raised.value.close_code) == (503, 4503)


async def test_a_closed_reader_refuses(reader):
    await reader.aclose()
    with pytest.raises(Unavailable, match="shutting down"):
        await reader.rows()


@pytest.mark.parametrize("fast_path", [False, True])
async def test_comet_gets_503_while_the_database_hangs_for_a_resource_not_held(
    selector_settings, monkeypatch, fast_path
):
    """A process asks the database about every name it does not hold; while
    that hangs, clients get 503 with Retry-After, never a hang."""
    from selector_app.runtime import close_hub, get_hub

    selector_settings(READ_TIMEOUT=0.2)
    hangs = [
        Hang(monkeypatch, "resource_reread"),
        Hang(monkeypatch, "resource_snapshots"),
    ]
    app = get_asgi_application()
    web = AsgiClient(CometFastPath(app) if fast_path else app)
    hub = get_hub()
    try:
        async with asyncio.timeout(5):
            reply = await web.get("/comet/elsewhere?seq=0")
    finally:
        for hang in hangs:
            hang.released.set()
        await close_hub()
    assert not hub.synced.is_set()
    assert reply.status_code == 503
    assert reply["Retry-After"] == "2"
    assert b"try again" in reply.content


async def test_a_push_socket_gets_4503_while_the_database_hangs_for_a_resource_not_held(
    selector_settings, monkeypatch
):
    from selector_app.runtime import close_hub, get_hub

    selector_settings(READ_TIMEOUT=0.2)
    hangs = [
        Hang(monkeypatch, "resource_reread"),
        Hang(monkeypatch, "resource_snapshots"),
    ]
    get_hub()
    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/websocket/res")
    try:
        connected, _ = await comm.connect(timeout=5)
        assert connected
        closed = await comm.receive_output(timeout=5)
    finally:
        for hang in hangs:
            hang.released.set()
        await comm.disconnect()
        await close_hub()
    assert closed["type"] == "websocket.close" and closed["code"] == 4503


async def test_once_synced_a_held_resource_is_served_and_others_get_503(
    res, selector_settings, monkeypatch
):
    """The hub no longer knows every name: while the database hangs, what it
    holds is served from memory, and a name it does not hold is 503 (it may
    exist), not 404."""
    from selector_app.runtime import close_hub, get_hub

    selector_settings(READ_TIMEOUT=0.2, RESYNC_INTERVAL=3600)
    web = AsgiClient(CometFastPath(get_asgi_application()))
    hub = get_hub()
    try:
        async with asyncio.timeout(5):
            await hub.synced.wait()
            assert (await web.get("/comet/res?seq=0")).status_code == 200  # held
            hang = Hang(monkeypatch, "resource_snapshots")
            held = await web.get("/comet/res?seq=0")
            other = await web.get("/comet/elsewhere?seq=0")
    finally:
        hang.released.set()
        await close_hub()
    assert held.status_code == 200 and held.content.startswith(b"1 ")
    assert other.status_code == 503 and other["Retry-After"] == "2"


async def test_lookups_asked_for_together_are_read_together(reader, monkeypatch):
    """A thousand clients arriving at once for different resources cost a
    few queries, not one each queued in the reader's one thread."""
    from selector_app.models import Resource

    await Resource.objects.abulk_create(
        Resource(name=f"r{index}", data=str(index)) for index in range(300)
    )
    reads = []
    real = services.resource_snapshots

    def counted(**kwargs):
        reads.append(len(kwargs["names"]))
        return real(**kwargs)

    monkeypatch.setattr(services, "resource_snapshots", counted)
    names = [f"r{index}" for index in range(300)] + ["missing"]
    async with asyncio.timeout(5):
        found = await asyncio.gather(*(reader.row(name) for name in names))
    assert [s and s.data for s in found] == [str(i) for i in range(300)] + [None]
    assert len(reads) <= 2 and sum(reads) == 301
