"""The hub on its own: no database, no layer; a loader stands in for the store."""

from __future__ import annotations

import asyncio

import pytest

from selector_app.hub import Hub
from selector_app.protocol import Snapshot, TooManyWaiters, UnknownResource
from tests.support.recorder import Recorder


class Store:
    """What the hub's loader reads: a dict, and a count of the reads."""

    def __init__(self, *snapshots: Snapshot) -> None:
        self.rows = {snapshot.name: snapshot for snapshot in snapshots}
        self.reads = 0

    async def load(self, name: str) -> Snapshot | None:
        self.reads += 1
        return self.rows.get(name)


@pytest.fixture
def store() -> Store:
    return Store(Snapshot("res", 1, "one"))


@pytest.fixture
def hub(store) -> Hub:
    """A hub that has read the store (overrides the suite's runtime hub)."""
    hub = Hub(load=store.load, max_waiting_polls=10)
    hub.reload(store.rows.values())
    return hub


async def waiting(coro) -> asyncio.Task:
    """Start ``coro`` and return once it waits on the hub's selector."""
    task = asyncio.create_task(coro)
    for _ in range(10):
        await asyncio.sleep(0)
    assert not task.done()
    return task


def test_reload_stores_every_row_and_marks_the_hub_synced(store):
    hub = Hub(load=store.load, max_waiting_polls=10)
    assert not hub.synced.is_set()
    hub.reload([Snapshot("a", 3, "x"), Snapshot("b", 1, "y")])
    assert hub.synced.is_set()
    assert (hub.get("a").sequence, hub.get("b").data) == (3, "y")


def test_snapshots_only_move_forward(hub):
    assert not hub.advance(Snapshot("x", 5, "five"))  # nobody watches it here
    assert hub.get("x") is None
    hub.adopt([Snapshot("x", 1, "one")])
    assert hub.advance(Snapshot("x", 5, "five"))
    assert not hub.advance(Snapshot("x", 4, "four"))
    assert not hub.advance(Snapshot("x", 5, "again"))
    assert hub.get("x").data == "five"
    assert hub.advance(Snapshot("x", 6, "six"))


def test_a_reload_forgets_resources_the_store_no_longer_has(hub):
    hub.adopt([Snapshot("gone", 2, "x")])
    hub.reload([Snapshot("res", 1, "one")])
    assert hub.get("gone") is None
    assert not hub.selector.registered("gone")


async def test_a_reload_adopts_a_row_whose_sequence_went_down(hub):
    """The database was reset (restored, or the row deleted and created
    again): the hub adopts it, and a follower past it gets it once."""
    assert hub.advance(Snapshot("res", 7, "old"))
    socket = Recorder()
    delivery = await socket.deliver(hub, "res", 7)
    assert not hub.advance(Snapshot("res", 2, "after reset"))  # a layer message
    hub.reload([Snapshot("res", 2, "after reset")])
    async with asyncio.timeout(1):
        assert (await hub.poll("res", 0)).message == "2 after reset"
        assert (await hub.poll("res", 7)).message == "2 after reset"
    assert (await socket.next()).message == "2 after reset"
    hub.advance(Snapshot("res", 3, "next"))  # forward from there
    assert (await socket.next()).message == "3 next"
    assert socket.sent == [2, 3]
    delivery.close()


def test_a_reload_adopts_new_data_at_the_same_sequence(hub):
    hub.reload([Snapshot("res", 1, "rewritten")])
    assert hub.get("res").data == "rewritten"


async def test_a_reload_leaves_alone_what_arrived_while_it_read(hub):
    """What the layer stored after the marker is newer than the read: the
    read neither removes it nor rolls it back."""
    await waiting(hub.wait({"born": 0}))  # a client waits for it to exist
    since = hub.marker()
    read = [Snapshot("res", 1, "one")]  # read before these arrived
    hub.advance(Snapshot("born", 1, "new"))
    hub.advance(Snapshot("res", 2, "two"))
    hub.reload(read, since=since)
    assert hub.get("born").message == "1 new"
    assert hub.get("res").message == "2 two"
    hub.reload([Snapshot("res", 2, "two")], since=hub.marker())
    assert hub.get("born") is None  # a later read without it does remove it


async def test_a_deleted_and_recreated_resource_works_like_a_new_one(hub):
    hub.adopt([Snapshot("x", 9, "old")])
    hub.reload([Snapshot("res", 1, "one")])
    assert hub.get("x") is None
    waiter = await waiting(hub.wait({"x": 0}))
    hub.advance(Snapshot("x", 1, "new"))  # the layer announces its creation
    async with asyncio.timeout(1):
        assert (await waiter)["x"].message == "1 new"


async def test_an_unknown_name_costs_one_read_until_the_next_re_read(hub, store):
    """The hub no longer knows every name: a miss asks the store, once; the
    answer is remembered until the next re-read."""
    names = [f"random-{index}" for index in range(100)]
    for _ in range(3):
        assert [await hub.aget(name) for name in names] == [None] * 100
    for name in names[:10]:
        with pytest.raises(UnknownResource):
            await hub.poll(name, 0)
    assert store.reads == 100
    assert hub.get("random-1") is None and hub.sequences() == {"res": 1}
    hub.adopt([])  # a re-read: a row may have been created meanwhile
    assert await hub.aget("random-1") is None
    assert store.reads == 101


async def test_a_new_name_is_found_after_its_layer_message(hub, store):
    assert await hub.aget("fresh") is None  # not created yet
    store.rows["fresh"] = Snapshot("fresh", 1, "new")
    assert await hub.aget("fresh") is None  # created, not announced yet
    assert not hub.advance(store.rows["fresh"])  # resource_create's message
    assert hub.get("fresh") is None  # nobody watches it: not kept...
    assert (await hub.aget("fresh")).message == "1 new"  # ...but no longer absent
    assert store.reads == 2


async def test_a_read_that_missed_a_new_name_does_not_forget_it(hub):
    await waiting(hub.wait({"fresh": 0}))
    since = hub.marker()
    hub.advance(Snapshot("fresh", 1, "new"))  # arrives while the read runs
    hub.reload([Snapshot("res", 1, "one")], since=since)  # read before it existed
    assert hub.get("fresh").sequence == 1
    hub.reload([Snapshot("res", 1, "one")], since=hub.marker())  # deleted since
    assert hub.get("fresh") is None


async def test_before_the_first_read_a_miss_is_loaded_and_an_unknown_name_not_kept(
    store,
):
    hub = Hub(load=store.load, max_waiting_polls=10)
    store.rows["fresh"] = Snapshot("fresh", 4, "new")
    assert (await hub.aget("fresh")).sequence == 4
    assert (await hub.aget("fresh")).sequence == 4
    assert store.reads == 1
    assert await hub.aget("missing") is None
    assert hub.get("missing") is None


class GatedStore(Store):
    """A store whose reads wait until the test opens the gate."""

    def __init__(self, *snapshots: Snapshot) -> None:
        super().__init__(*snapshots)
        self.gate = asyncio.Event()
        self.fail: Exception | None = None

    async def load(self, name: str) -> Snapshot | None:
        self.reads += 1
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return self.rows.get(name)


@pytest.fixture
def gated() -> GatedStore:
    return GatedStore(Snapshot("res", 1, "one"))


async def test_before_the_first_read_concurrent_misses_share_one_load(gated):
    hub = Hub(load=gated.load, max_waiting_polls=10)
    callers = [await waiting(hub.aget(name)) for name in ["res"] * 50 + ["x"] * 50]
    gated.gate.set()
    async with asyncio.timeout(1):
        answers = await asyncio.gather(*callers)
    assert gated.reads == 2  # one per name
    assert [a and a.sequence for a in answers] == [1] * 50 + [None] * 50
    assert hub._loading == {}


async def test_a_shared_load_survives_the_caller_that_started_it_leaving(gated):
    hub = Hub(load=gated.load, max_waiting_polls=10)
    first = await waiting(hub.aget("res"))
    second = await waiting(hub.aget("res"))
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    gated.gate.set()
    async with asyncio.timeout(1):
        assert (await second).sequence == 1
    assert gated.reads == 2  # the second caller loaded it itself
    # A waiting caller that is cancelled itself is cancelled, not retried.
    gated.gate.clear()
    hub = Hub(load=gated.load, max_waiting_polls=10)
    first = await waiting(hub.aget("res"))
    second = await waiting(hub.aget("res"))
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    gated.gate.set()
    async with asyncio.timeout(1):
        assert (await first).sequence == 1


async def test_a_failed_shared_load_fails_every_caller_and_is_not_kept(gated):
    hub = Hub(load=gated.load, max_waiting_polls=10)
    callers = [await waiting(hub.aget("res")) for _ in range(3)]
    gated.fail = OSError("database down")
    gated.gate.set()
    async with asyncio.timeout(1):
        results = await asyncio.gather(*callers, return_exceptions=True)
    assert [type(result) for result in results] == [OSError] * 3
    assert gated.reads == 1 and hub._loading == {}
    gated.fail = None
    assert (await hub.aget("res")).sequence == 1


async def test_poll_answers_at_once_when_the_cursor_differs(hub):
    async with asyncio.timeout(1):
        assert (await hub.poll("res", 0)).message == "1 one"
        # A client ahead of the server (a reset database) is answered too.
        assert (await hub.poll("res", 99)).message == "1 one"
    assert hub.waiting_polls == 0


async def test_a_cursor_ahead_of_the_hub_is_checked_against_the_store(hub, store):
    """A client that moved here from a process that heard of version 2 first
    is held for 3, not sent 1: the store has 2, this hub was behind."""
    store.rows["res"] = Snapshot("res", 2, "two")
    held = await waiting(hub.poll("res", 2))
    assert hub.get("res").sequence == 2
    hub.advance(Snapshot("res", 3, "three"))
    assert (await held).sequence == 3
    socket = Recorder()
    delivery = await socket.deliver(hub, "res", 3)
    hub.advance(Snapshot("res", 4, "four"))
    assert socket.sent == [4]
    delivery.close()


async def test_a_cursor_ahead_of_the_store_too_is_answered_at_once(hub, store):
    """The store was reset: the client gets its current version."""
    assert (await hub.poll("res", 7)).data == "one"
    assert store.reads == 1


async def test_poll_waits_for_the_next_version_and_counts_while_waiting(hub):
    poll = await waiting(hub.poll("res", 1))
    assert hub.waiting_polls == 1
    hub.advance(Snapshot("res", 2, "two"))
    async with asyncio.timeout(1):
        assert (await poll).message == "2 two"
    assert hub.waiting_polls == 0
    assert hub.selector.watchers() == []


async def test_poll_times_out_with_none_and_leaves_nothing(hub):
    async with asyncio.timeout(1):
        assert await hub.poll("res", 1, timeout=0.01) is None
    assert hub.waiting_polls == 0 and hub.selector.watchers() == []


async def test_a_cancelled_poll_leaves_nothing(hub):
    poll = await waiting(hub.poll("res", 1))
    poll.cancel()
    with pytest.raises(asyncio.CancelledError):
        await poll
    assert hub.waiting_polls == 0 and hub.selector.watchers() == []


async def test_past_the_limit_only_polls_that_would_wait_are_refused(hub):
    hub.max_waiting_polls = 1
    first = await waiting(hub.poll("res", 1))
    with pytest.raises(TooManyWaiters, match="already holds 1"):
        await hub.poll("res", 1)
    async with asyncio.timeout(1):
        assert (await hub.poll("res", 0)).sequence == 1  # holds nothing
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)


async def test_unknown_resources_are_refused_by_poll_and_deliver(hub):
    with pytest.raises(UnknownResource, match="'nope'"):
        await hub.poll("nope", 0)
    with pytest.raises(UnknownResource):
        await Recorder().deliver(hub, "nope", 0)
    assert hub.selector.watchers() == []


async def test_deliver_sends_the_current_version_then_each_newer_one(hub):
    socket = Recorder()
    delivery = await socket.deliver(hub, "res", 0)
    assert socket.sent == [1]  # at once, from inside deliver()
    for sequence in (2, 3, 4):
        hub.advance(Snapshot("res", sequence, str(sequence)))
    assert socket.sent == [1, 2, 3, 4]  # each in the publish's own pass
    delivery.close()
    hub.advance(Snapshot("res", 5, "5"))
    assert socket.sent == [1, 2, 3, 4]
    assert hub.selector.watchers() == []


async def test_follow_yields_the_current_version_then_only_newer_ones(hub):
    versions = await hub.follow("res", 0)
    async with asyncio.timeout(1):
        assert (await anext(versions)).sequence == 1
        for sequence in (2, 3, 4):  # published while nobody was reading
            hub.advance(Snapshot("res", sequence, str(sequence)))
        assert (await anext(versions)).message == "4 4"  # latest, no backlog
    await versions.aclose()
    assert hub.selector.watchers() == []
    with pytest.raises(UnknownResource):
        await hub.follow("nope", 0)


async def test_deliver_sends_nothing_for_the_version_the_client_has(hub):
    socket = Recorder()
    delivery = await socket.deliver(hub, "res", 1)
    assert socket.sent == []
    hub.advance(Snapshot("res", 2, "2"))
    assert socket.sent == [2]
    delivery.close()


async def test_wait_answers_for_any_of_several_resources(hub):
    hub.adopt([Snapshot("b", 7, "b7")])
    async with asyncio.timeout(1):
        assert list(await hub.wait({"res": 1, "b": 6})) == ["b"]
    both = await waiting(hub.wait({"res": 1, "b": 7}))
    hub.advance(Snapshot("res", 2, "r2"))
    async with asyncio.timeout(1):
        assert {name: s.sequence for name, s in (await both).items()} == {"res": 2}


async def test_an_unknown_name_is_not_echoed_whole(hub):
    """A 60 KB made-up name must not come back as a 60 KB 404 body."""
    with pytest.raises(UnknownResource) as refused:
        await hub.poll("x" * 60_000, 0)
    assert len(str(refused.value)) < 200


# Memory follows the watchers ---------------------------------------------------


@pytest.fixture
def many() -> Store:
    return Store(*(Snapshot(f"r{index}", 1, f"data {index}") for index in range(100)))


async def test_the_hub_holds_only_what_is_watched_plus_its_cache(many):
    hub = Hub(load=many.load, max_waiting_polls=10, cache=2)
    hub.adopt([])  # the first re-read reads no row the hub does not hold
    assert hub.sequences() == {}
    sockets = [Recorder() for _ in range(5)]
    deliveries = [
        await socket.deliver(hub, f"r{index}", 0)
        for index, socket in enumerate(sockets)
    ]
    assert sorted(hub.sequences()) == ["r0", "r1", "r2", "r3", "r4"]
    assert many.reads == 5
    for delivery in deliveries[:3]:
        delivery.close()
    hub.sweep()
    assert len(hub.sequences()) == 4  # 2 watched, the 2 most recently unwatched
    assert {"r3", "r4"} <= set(hub.sequences())
    for delivery in deliveries[3:]:
        delivery.close()
    hub.sweep()
    assert len(hub.sequences()) == 2
    assert hub.selector.resources() == list(hub.sequences())  # providers too


async def test_a_layer_message_about_an_unwatched_resource_is_dropped(many):
    hub = Hub(load=many.load, max_waiting_polls=10, cache=0)
    socket = Recorder()
    delivery = await socket.deliver(hub, "r1", 0)
    assert not hub.advance(Snapshot("r2", 2, "nobody watches"))
    assert hub.advance(Snapshot("r1", 2, "watched"))
    assert hub.sequences() == {"r1": 2}
    assert (await socket.next()).sequence == 1 and (await socket.next()).sequence == 2
    delivery.close()


async def test_many_first_watchers_of_a_resource_share_one_load():
    gated = GatedStore(Snapshot("res", 3, "three"))
    hub = Hub(load=gated.load, max_waiting_polls=10)
    hub.adopt([])
    sockets = [Recorder() for _ in range(100)]
    starting = [await waiting(socket.deliver(hub, "res", 0)) for socket in sockets]
    gated.gate.set()
    async with asyncio.timeout(1):
        await asyncio.gather(*starting)
    assert gated.reads == 1
    assert [(await socket.next()).sequence for socket in sockets] == [3] * 100


async def test_a_version_announced_while_its_row_is_read_is_not_lost():
    gated = GatedStore(Snapshot("res", 3, "three"))
    hub = Hub(load=gated.load, max_waiting_polls=10)
    hub.adopt([])
    socket = Recorder()
    starting = await waiting(socket.deliver(hub, "res", 0))
    assert not hub.advance(Snapshot("res", 4, "four"))  # the read has 3
    gated.gate.set()
    async with asyncio.timeout(1):
        await starting
    assert (await socket.next()).message == "4 four"
    assert hub.get("res").sequence == 4
