"""The feed keeps a hub current from the channel layer and the database."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import OperationalError, transaction

from selector_app import feed as feed_module
from selector_app import metrics, services
from selector_app.feed import Feed
from selector_app.hub import Hub
from selector_app.models import Resource
from selector_app.reader import RowReader
from tests.support.recorder import Recorder
from tests.support.waiting import until

pytestmark = pytest.mark.usefixtures("res")


async def next_version(hub: Hub, cursor: int, name: str = "res"):
    async with asyncio.timeout(5):
        return (await hub.wait({name: cursor}))[name]


async def test_one_channel_in_the_group_and_the_rows_read_at_start(start_feed):
    feed = await start_feed()
    assert get_channel_layer().groups["selector_app"].keys() == {feed.channel}
    assert feed.hub.sequences() == {}  # nothing read that nobody asked for
    assert (await feed.hub.aget("res")).sequence == 1


async def test_a_publish_reaches_the_hub_through_the_layer(start_feed):
    feed = await start_feed()
    await services.aresource_publish(name="res", data="new")
    snapshot = await next_version(feed.hub, 1)
    assert (snapshot.sequence, snapshot.data) == (2, "new")


async def test_a_lost_layer_message_costs_only_the_resync_interval(
    start_feed, monkeypatch
):
    feed = await start_feed(resync_interval=0.2)

    async def lost(*args, **kwargs):
        return None  # the doorbell never rings

    monkeypatch.setattr(get_channel_layer(), "group_send", lost)
    await services.aresource_publish(name="res", data="quiet")
    assert (await next_version(feed.hub, 1)).data == "quiet"


async def test_a_deleted_resource_is_forgotten_at_the_next_read(start_feed):
    feed = await start_feed()
    await Resource.objects.filter(name="res").adelete()
    await feed.resync()
    assert feed.hub.get("res") is None
    assert await feed.hub.aget("res") is None


async def test_a_resource_created_after_the_first_read_arrives_by_layer_message(
    start_feed,
):
    """The updater's resource_ensure announces what it creates, like
    resource_create: no process has to look the new name up."""
    from channels.db import database_sync_to_async

    feed = await start_feed()
    assert await feed.hub.aget("fresh") is None  # remembered as absent
    await database_sync_to_async(services.resource_ensure)(name="fresh", length=3)
    await until(lambda: "fresh" not in feed.hub._absent)  # its layer message
    snapshot = await feed.hub.aget("fresh")
    assert snapshot.sequence == 1 and len(snapshot.data) == 3


async def test_a_resource_created_without_an_announcement_arrives_by_re_read(
    start_feed,
):
    feed = await start_feed(resync_interval=0.05)
    assert await feed.hub.aget("quiet") is None  # remembered as absent
    await Resource.objects.acreate(name="quiet", data="q")
    reads = metrics.rereads["ok"]
    await until(lambda: metrics.rereads["ok"] > reads)
    assert (await feed.hub.aget("quiet")).message == "1 q"


async def test_a_resource_watched_before_it_exists_arrives_by_re_read(start_feed):
    feed = await start_feed(resync_interval=0.05)
    waiting = asyncio.create_task(next_version(feed.hub, 0, name="quiet"))
    await until(lambda: feed.hub.selector.watched("quiet"))
    await Resource.objects.acreate(name="quiet", data="q")  # no announcement
    assert (await waiting).message == "1 q"


async def test_malformed_and_unexpected_messages_are_ignored(start_feed, caplog):
    feed = await start_feed()
    layer = get_channel_layer()
    waiting = asyncio.create_task(next_version(feed.hub, 0, name="x"))
    await until(lambda: feed.hub.selector.watched("x"))  # so it is decoded
    await layer.send(
        feed.channel, {"type": "resource.published", "name": "x", "sequence": "1"}
    )
    await layer.send(feed.channel, {"type": "something.else"})
    await until(lambda: "unexpected" in caplog.text)
    assert "malformed" in caplog.text
    assert feed.hub.get("x") is None
    waiting.cancel()


async def test_a_message_about_an_unwatched_resource_is_not_even_decoded(
    start_feed, caplog, monkeypatch
):
    feed = await start_feed()
    decoded = []
    monkeypatch.setattr(
        feed_module.Snapshot,
        "from_event",
        classmethod(lambda cls, e: decoded.append(e)),
    )
    layer = get_channel_layer()
    await layer.send(
        feed.channel, {"type": "resource.published", "name": "y", "sequence": "1"}
    )
    await layer.send(feed.channel, {"type": "something.else"})
    await until(lambda: "unexpected" in caplog.text)
    assert decoded == [] and "malformed" not in caplog.text
    assert feed.hub.sequences() == {}


async def test_closing_ends_every_task_and_leaves_the_group(start_feed):
    feed = await start_feed()
    tasks = list(feed.tasks)
    assert len(tasks) == 2
    await feed.aclose()
    assert all(task.done() for task in tasks)
    assert not get_channel_layer().groups.get("selector_app")


async def test_the_listener_retries_when_the_layer_fails(
    start_feed, monkeypatch, caplog
):
    layer = get_channel_layer()
    real = layer.new_channel
    calls = 0

    async def flaky():
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("layer down")
        return await real()

    monkeypatch.setattr(layer, "new_channel", flaky)
    monkeypatch.setattr(feed_module, "RETRY_DELAYS", (0.01,))
    await start_feed()
    assert calls == 2
    assert "subscribing again" in caplog.text
    assert "The channel layer answers again" in caplog.text


async def test_a_reset_row_is_adopted_at_the_next_read(start_feed):
    """Deleted and created again at a lower sequence (a restore does the
    same): layer messages are ignored, but the next read adopts the row."""
    feed = await start_feed()
    for n in range(6):
        await services.aresource_publish(name="res", data=f"old {n}")
    assert (await next_version(feed.hub, 6)).sequence == 7
    socket = Recorder()
    delivery = await socket.deliver(feed.hub, "res", 7)

    def reset():
        with transaction.atomic():
            Resource.objects.filter(name="res").delete()
            services.resource_create(name="res", data="fresh")
            services.resource_publish(name="res", data="after reset")

    await database_sync_to_async(reset)()
    await until(lambda: feed.hub.marker() > 0)  # let the layer messages land
    assert feed.hub.get("res").message.startswith("7 old")  # ignored: older
    await feed.resync()
    assert feed.hub.get("res").message == "2 after reset"
    assert (await socket.next()).message == "2 after reset"  # once
    await services.aresource_publish(name="res", data="next")
    assert (await socket.next()).message == "3 next"  # on from there
    assert socket.sent == [2, 3]
    delivery.close()


async def test_a_resource_created_during_a_read_is_kept(start_feed, monkeypatch):
    """The layer announces it while an older read is in flight: the read
    must not remove it (its waiters would stall until the next read)."""
    feed = await start_feed()
    entered, release = threading.Event(), threading.Event()
    real = services.resource_reread

    def slow_read(**kwargs):
        rows = real(**kwargs)  # read before the resource exists
        entered.set()
        release.wait(5)
        return rows

    monkeypatch.setattr(services, "resource_reread", slow_read)
    born = asyncio.create_task(next_version(feed.hub, 0, name="born"))
    await until(lambda: feed.hub.selector.watched("born"))  # a client waits for it
    reading = asyncio.create_task(feed.resync())
    await asyncio.to_thread(entered.wait, 5)
    await database_sync_to_async(services.resource_create)(name="born", data="new")
    await born  # announced by the layer
    release.set()
    async with asyncio.timeout(5):
        await reading
    assert feed.hub.get("born").message == "1 new"
    waiting = asyncio.create_task(next_version(feed.hub, 1, name="born"))
    await services.aresource_publish(name="born", data="two")
    assert (await waiting).message == "2 two"


async def test_a_cancelled_read_waits_for_its_database_thread(monkeypatch):
    """Closing a feed (or a test) must not leave a query running in a thread:
    a teardown flushing the tables would meet "database table is locked"."""
    entered, release = threading.Event(), threading.Event()

    def slow_read(**kwargs):
        entered.set()
        release.wait(5)
        return services.Reread([], [], None, 0, 0)

    monkeypatch.setattr(services, "resource_reread", slow_read)
    reader = RowReader(timeout=10)
    feed = Feed(
        Hub(load=reader.row, max_waiting_polls=1),
        get_channel_layer(),
        group="selector_app",
        resync_interval=5,
        reader=reader,
    )
    reading = asyncio.create_task(feed.resync())
    async with asyncio.timeout(5):
        await asyncio.to_thread(entered.wait, 5)
    reading.cancel()
    for _ in range(20):
        await asyncio.sleep(0)
    assert not reading.done()  # still waiting for the thread
    release.set()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(5):
            await reading
    await feed.aclose()


async def test_a_database_outage_is_logged_once_and_its_end_once(
    start_feed, monkeypatch, caplog
):
    feed = await start_feed(resync_interval=0.05)
    real = services.resource_reread
    failing = threading.Event()
    failing.set()

    def unreachable(**kwargs):
        if failing.is_set():
            raise OperationalError("connection refused")
        return real(**kwargs)

    caplog.set_level(logging.DEBUG, "selector_app")
    monkeypatch.setattr(services, "resource_reread", unreachable)
    await until(lambda: feed.reader.outage.failures >= 3)
    failing.clear()
    await services.aresource_publish(name="res", data="late")
    await until(lambda: not feed.reader.outage.down)
    logged = [(r.levelname, r.getMessage()) for r in caplog.records]
    warnings = [text for level, text in logged if level == "WARNING"]
    infos = [text for level, text in logged if level == "INFO"]
    assert len(warnings) == 1 and "connection refused" in warnings[0]
    assert len(infos) == 1 and "The database answers again" in infos[0]
