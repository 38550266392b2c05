"""The hub on its own: no database, no layer; a loader stands in for the store."""

from __future__ import annotations

import asyncio

import pytest

from selector_app.hub import Hub
from selector_app.protocol import Snapshot, TooManyWaiters, UnknownResource


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
    assert hub.advance(Snapshot("x", 5, "five"))
    assert not hub.advance(Snapshot("x", 4, "four"))
    assert not hub.advance(Snapshot("x", 5, "again"))
    assert hub.get("x").data == "five"
    assert hub.advance(Snapshot("x", 6, "six"))


def test_a_reload_forgets_resources_the_store_no_longer_has(hub):
    hub.advance(Snapshot("gone", 2, "x"))
    hub.reload([Snapshot("res", 1, "one")])
    assert hub.get("gone") is None
    assert not hub.selector.registered("gone")


async def test_aget_loads_a_miss_once_and_never_an_unknown_name_into_the_hub(
    hub, store
):
    store.rows["fresh"] = Snapshot("fresh", 4, "new")
    assert (await hub.aget("fresh")).sequence == 4
    assert (await hub.aget("fresh")).sequence == 4
    assert store.reads == 1
    assert await hub.aget("missing") is None
    assert hub.get("missing") is None


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
    versions = await hub.follow("res", 3)
    hub.advance(Snapshot("res", 4, "four"))
    assert (await anext(versions)).sequence == 4


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


async def test_unknown_resources_are_refused_by_poll_and_follow(hub):
    with pytest.raises(UnknownResource, match="'nope'"):
        await hub.poll("nope", 0)
    with pytest.raises(UnknownResource):
        await hub.follow("nope", 0)


async def test_follow_yields_the_current_version_then_only_newer_ones(hub):
    versions = await hub.follow("res", 0)
    async with asyncio.timeout(1):
        assert (await anext(versions)).sequence == 1
        for sequence in (2, 3, 4):  # published while nobody was reading
            hub.advance(Snapshot("res", sequence, str(sequence)))
        assert (await anext(versions)).message == "4 4"  # latest, no backlog
    following = await waiting(anext(versions))
    hub.advance(Snapshot("res", 5, "5"))
    async with asyncio.timeout(1):
        assert (await following).sequence == 5
    await versions.aclose()
    assert hub.selector.watchers() == []


async def test_wait_answers_for_any_of_several_resources(hub):
    hub.advance(Snapshot("b", 7, "b7"))
    async with asyncio.timeout(1):
        assert list(await hub.wait({"res": 1, "b": 6})) == ["b"]
    both = await waiting(hub.wait({"res": 1, "b": 7}))
    hub.advance(Snapshot("res", 2, "r2"))
    async with asyncio.timeout(1):
        assert {name: s.sequence for name, s in (await both).items()} == {"res": 2}
