"""Several resources to one socket: the hub's multi-resource wait and
:class:`~selector_app.selection.Selection`, with a loader standing in for the
store (no database, no server)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from selector_app.hub import Hub
from selector_app.protocol import Snapshot, TooManyWaiters, UnknownResource
from selector_app.tasks import OwnedTasks, eagerly

NAMES = ["a", "b", "c", "d"]


class Store:
    """The rows; a load can be held (``gate`` cleared) to publish meanwhile."""

    def __init__(self, *names: str) -> None:
        self.rows = {name: Snapshot(name, 1, f"{name}1") for name in names}
        self.reads: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def load(self, name: str) -> Snapshot | None:
        self.reads.append(name)
        await self.gate.wait()
        return self.rows.get(name)


def new_hub(store: Store, *, cache: int = 1000) -> Hub:
    return Hub(load=store.load, max_waiting_polls=2, cache=cache)


def publish(hub: Hub, store: Store, name: str) -> int:
    """A new version, in the store and announced to the hub."""
    sequence = store.rows[name].sequence + 1
    store.rows[name] = Snapshot(name, sequence, f"{name}{sequence}")
    hub.advance(store.rows[name])
    return sequence


class Socket:
    """Records ``(name, sequence)`` per send, and what was watched then."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int]] = []
        self.strays: list[tuple[str, int]] = []
        self.errors: list[Exception] = []
        self.tasks = OwnedTasks()
        self.open = asyncio.Event()
        self.open.set()
        self.selection = None

    def send(self, snapshot: Snapshot):
        if self.selection is not None and snapshot.name not in self.selection.cursors:
            self.strays.append((snapshot.name, snapshot.sequence))
        self.sent.append((snapshot.name, snapshot.sequence))
        return None if self.open.is_set() else eagerly(self.open.wait())

    async def select(self, hub: Hub, cursors: dict[str, int]):
        self.selection = await hub.select(
            cursors, self.send, start=self.tasks.start, on_error=self.errors.append
        )
        return self.selection

    def of(self, name: str) -> list[int]:
        return [sequence for sent, sequence in self.sent if sent == name]


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_the_current_versions_go_out_at_once_then_each_new_one():
    store = Store("a", "b", "c")
    hub = new_hub(store)
    socket = Socket()
    await socket.select(hub, {"a": 0, "b": 1, "c": 0})
    assert sorted(socket.sent) == [("a", 1), ("c", 1)]  # b: the client has it
    publish(hub, store, "b")
    publish(hub, store, "a")
    assert socket.sent[2:] == [("b", 2), ("a", 2)]
    # One watcher for the socket, whatever the number of resources.
    assert len(hub.selector.watchers()) == 1


async def test_watch_and_unwatch_re_arm_the_one_watcher():
    store = Store("a", "b", "c")
    hub = new_hub(store)
    socket = Socket()
    selection = await socket.select(hub, {"a": 1})
    await hub.extend(selection, {"b": 0})
    assert socket.sent == [("b", 1)]
    selection.unwatch(["a"])
    publish(hub, store, "a")
    publish(hub, store, "b")
    assert socket.sent == [("b", 1), ("b", 2)]
    assert [w.resources() for w in hub.selector.watchers()] == [["b"]]
    # Watching a name it already has keeps the socket's own cursor.
    await hub.extend(selection, {"b": 0})
    assert socket.sent == [("b", 1), ("b", 2)]
    selection.unwatch(["b"])
    assert hub.selector.watchers() == []
    await hub.extend(selection, {"c": 0})
    assert socket.sent[-1] == ("c", 1)


async def test_nothing_published_while_a_watch_loads_is_lost():
    store = Store("a", "b")
    hub = new_hub(store)
    socket = Socket()
    selection = await socket.select(hub, {"a": 1})
    store.gate.clear()  # the load of b waits
    extending = asyncio.create_task(hub.extend(selection, {"b": 1}))
    await settle()
    assert publish(hub, store, "a") == 2  # the old watcher still sends it
    assert publish(hub, store, "b") == 2  # announced during b's load
    store.gate.set()
    async with asyncio.timeout(1):
        await extending
    assert socket.sent == [("a", 2), ("b", 2)]


async def test_a_held_send_then_only_the_latest_of_each_resource():
    store = Store("a", "b")
    hub = new_hub(store)
    socket = Socket()
    await socket.select(hub, {"a": 1, "b": 1})
    socket.open.clear()
    publish(hub, store, "a")  # held
    for _ in range(3):
        publish(hub, store, "a")
        publish(hub, store, "b")
    assert socket.sent == [("a", 2)]
    socket.open.set()
    await settle()
    assert sorted(socket.sent[1:]) == [("a", 5), ("b", 4)]
    await socket.tasks.aclose()


async def test_an_unknown_resource_is_named_and_nothing_is_watched():
    store = Store("a")
    hub = new_hub(store)
    with pytest.raises(UnknownResource, match="'x', 'y'"):
        await Socket().select(hub, {"a": 0, "x": 0, "y": 0})
    assert hub.selector.watchers() == []


async def test_resources_are_loaded_once_on_watch_and_let_go_after_unwatch():
    store = Store("a", "b")
    hub = new_hub(store, cache=0)
    one, two = Socket(), Socket()
    store.gate.clear()
    both = asyncio.gather(one.select(hub, {"a": 0}), two.select(hub, {"a": 0}))
    await settle()
    store.gate.set()
    async with asyncio.timeout(1):
        first, second = await both
    assert store.reads == ["a"]  # coalesced
    first.close()
    second.unwatch(["a"])
    hub.sweep()
    assert hub.get("a") is None and hub.sequences() == {}


async def test_a_resource_dropped_while_another_loads_is_held_again():
    store = Store("a", "b")
    hub = new_hub(store, cache=0)
    await hub.aget("a")  # held, watched by nobody
    store.gate.clear()
    socket = Socket()
    selecting = asyncio.create_task(socket.select(hub, {"a": 0, "b": 0}))
    await settle()
    hub.sweep()  # a re-read meanwhile: nobody watches `a`, and the cache is 0
    assert hub.get("a") is None
    store.gate.set()
    async with asyncio.timeout(1):
        await selecting
    assert sorted(socket.sent) == [("a", 1), ("b", 1)]
    assert hub.get("a") is not None and hub.get("b") is not None
    assert publish(hub, store, "a") == 2 and socket.sent[-1] == ("a", 2)


async def test_a_long_poll_answers_all_that_differ_at_once_or_when_one_moves():
    store = Store("a", "b", "c")
    hub = new_hub(store)
    ready = await hub.poll_many({"a": 0, "b": 1, "c": 0})
    assert [s.name for s in ready] == ["a", "c"]
    polling = asyncio.create_task(hub.poll_many({"a": 1, "b": 1}, timeout=5))
    await settle()
    assert hub.waiting_polls == 1 and len(hub.selector.watchers()) == 1
    publish(hub, store, "b")
    async with asyncio.timeout(1):
        assert [(s.name, s.sequence) for s in await polling] == [("b", 2)]
    assert await hub.poll_many({"a": 1}, timeout=0.01) is None
    assert hub.selector.watchers() == []


async def test_held_long_polls_count_once_each_against_the_limit():
    store = Store("a", "b")
    hub = new_hub(store)
    polls = [
        asyncio.create_task(hub.poll_many({"a": 1, "b": 1}, timeout=5))
        for _ in range(2)
    ]
    await settle()
    with pytest.raises(TooManyWaiters):
        await hub.poll_many({"a": 1, "b": 1})
    for poll in polls:
        poll.cancel()
    await asyncio.gather(*polls, return_exceptions=True)


# Any interleaving ----------------------------------------------------------------

operations = st.lists(
    st.one_of(
        st.tuples(st.just("publish"), st.sampled_from(NAMES)),
        st.tuples(st.just("watch"), st.sampled_from(NAMES)),
        st.tuples(st.just("unwatch"), st.sampled_from(NAMES)),
        st.just(("hold",)),
        st.just(("release",)),
        st.just(("run",)),
    ),
    max_size=60,
)


@given(st.sets(st.sampled_from(NAMES), min_size=1), operations)
def test_any_interleaving_keeps_every_guarantee_per_resource(first, ops):
    """Publishes, watch and unwatch frames, held sends and loop turns in any
    order: a socket never sends a resource it does not watch, never goes
    backwards or repeats a version of one, and ends with the latest version
    of every resource it watches."""

    async def scenario():
        store = Store(*NAMES)
        hub = new_hub(store)
        socket = Socket()
        selection = await socket.select(hub, dict.fromkeys(sorted(first), 0))
        for op in ops:
            if op[0] == "publish":
                publish(hub, store, op[1])
            elif op[0] == "watch":
                # As a client does: the cursor is the last version it got.
                had = socket.of(op[1])
                await hub.extend(selection, {op[1]: had[-1] if had else 0})
            elif op[0] == "unwatch":
                selection.unwatch([op[1]])
            elif op[0] == "hold":
                socket.open.clear()
            elif op[0] == "release":
                socket.open.set()
            else:
                await asyncio.sleep(0)
        socket.open.set()
        await settle()
        assert socket.strays == []
        for name in NAMES:
            sent = socket.of(name)
            assert sent == sorted(set(sent)), (name, sent)
        for name in selection.cursors:
            assert socket.of(name)[-1] == store.rows[name].sequence
        assert socket.errors == []
        assert len(hub.selector.watchers()) == (1 if selection.cursors else 0)
        selection.close()
        await socket.tasks.aclose()

    asyncio.run(scenario())
