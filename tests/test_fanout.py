"""The hub's fan-out: one pass per version, slow sockets on their own."""

from __future__ import annotations

import asyncio
import gc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from selector_app.hub import Hub
from selector_app.protocol import Snapshot
from selector_app.tasks import eagerly
from tests.support.recorder import Recorder


def new_hub(sequence: int = 1) -> Hub:
    async def load(name):
        return None

    hub = Hub(load=load, max_waiting_polls=10)
    hub.reload([Snapshot("res", sequence, str(sequence))])
    return hub


def publish(hub: Hub, sequence: int) -> None:
    hub.advance(Snapshot("res", sequence, str(sequence)))


async def settle() -> None:
    """Let every ready task run to its next wait."""
    for _ in range(20):
        await asyncio.sleep(0)


# eagerly() -------------------------------------------------------------------


async def test_eagerly_runs_a_coroutine_that_does_not_suspend_at_once():
    ran = []

    async def send():
        ran.append(1)

    assert eagerly(send()) is None
    assert ran == [1]


async def test_eagerly_raises_what_the_coroutine_raises_before_suspending():
    async def send():
        raise ConnectionResetError("gone")

    with pytest.raises(ConnectionResetError):
        eagerly(send())


async def test_eagerly_hands_back_the_rest_of_a_suspended_coroutine():
    room = asyncio.get_running_loop().create_future()
    steps = []

    async def send():
        steps.append("start")
        steps.append(await room)
        await asyncio.sleep(0)  # a bare yield too
        steps.append("end")

    rest = eagerly(send())
    assert rest is not None and steps == ["start"]
    room.set_result("room")
    async with asyncio.timeout(1):
        await rest
    assert steps == ["start", "room", "end"]


async def test_the_rest_raises_the_futures_exception_inside_the_coroutine():
    room = asyncio.get_running_loop().create_future()
    seen = []

    async def send():
        try:
            await room
        except OSError as error:
            seen.append(error)
            raise

    rest = eagerly(send())
    room.set_exception(OSError("reset"))
    with pytest.raises(OSError, match="reset"):
        await rest
    assert len(seen) == 1


async def test_cancelling_the_task_that_finishes_it_reaches_the_coroutine():
    room = asyncio.get_running_loop().create_future()
    cleaned = []

    async def send():
        try:
            await room
        finally:
            cleaned.append(True)

    task = asyncio.create_task(_await(eagerly(send())))
    await settle()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == [True] and room.cancelled()


async def test_a_rest_never_awaited_is_dropped_without_a_warning():
    """A socket that closes while its send is held never finishes it; that
    must not warn ("coroutine was never awaited": an error in this suite)."""
    room = asyncio.get_running_loop().create_future()

    async def send():
        await room

    rest = eagerly(send())
    del rest
    gc.collect()


async def _await(awaitable):
    await awaitable


# Delivery ----------------------------------------------------------------------


async def test_every_socket_gets_each_version_in_the_publishs_own_pass():
    hub = new_hub()
    sockets = [Recorder() for _ in range(50)]
    for socket in sockets:
        await socket.deliver(hub, "res", 0)
    publish(hub, 2)
    # No await between the publish and this check: nothing ran in a task.
    assert all(socket.sent == [1, 2] for socket in sockets)


async def test_a_held_send_is_followed_by_the_latest_version_only():
    hub = new_hub()
    slow, fast = Recorder(), Recorder()
    await slow.deliver(hub, "res", 1)
    await fast.deliver(hub, "res", 1)
    slow.open.clear()
    publish(hub, 2)  # slow's send of 2 is held
    for sequence in range(3, 8):
        publish(hub, sequence)
    assert fast.sent == [2, 3, 4, 5, 6, 7]  # the slow one never held it up
    assert slow.sent == [2]
    slow.open.set()
    await settle()
    assert slow.sent == [2, 7]  # latest-wins, no backlog
    publish(hub, 8)
    assert slow.sent == [2, 7, 8]  # back in the pass, nothing repeated


async def test_a_held_send_with_nothing_newer_sends_nothing_more():
    hub = new_hub()
    socket = Recorder()
    await socket.deliver(hub, "res", 1)
    socket.open.clear()
    publish(hub, 2)
    socket.open.set()
    await settle()
    assert socket.sent == [2] and list(socket.tasks) == []


async def test_a_failing_send_stops_its_own_delivery_only():
    hub = new_hub()
    good = Recorder()
    await good.deliver(hub, "res", 1)
    bad = Recorder()
    failures = 0

    def broken(snapshot):
        nonlocal failures
        failures += 1
        raise ConnectionResetError("client gone")

    bad.send = broken
    await bad.deliver(hub, "res", 1)
    publish(hub, 2)
    publish(hub, 3)
    assert good.sent == [2, 3]
    assert failures == 1 and [type(e) for e in bad.errors] == [ConnectionResetError]
    assert len(hub.selector.watchers()) == 1  # the good one's


async def test_a_send_that_fails_after_being_held_is_reported_once():
    hub = new_hub()
    socket = Recorder()
    room = asyncio.get_running_loop().create_future()

    async def held(snapshot):
        await room

    socket.send = lambda snapshot: eagerly(held(snapshot))
    await socket.deliver(hub, "res", 1)
    publish(hub, 2)
    room.set_exception(BrokenPipeError())
    await settle()
    assert [type(e) for e in socket.errors] == [BrokenPipeError]
    assert hub.selector.watchers() == [] and list(socket.tasks) == []


async def test_closing_during_a_held_send_leaves_no_watcher_and_no_task():
    hub = new_hub()
    socket = Recorder()
    delivery = await socket.deliver(hub, "res", 1)
    socket.open.clear()
    publish(hub, 2)
    assert len(list(socket.tasks)) == 1
    delivery.close()
    await socket.tasks.aclose()
    publish(hub, 3)
    socket.open.set()
    await settle()
    assert socket.sent == [2]
    assert hub.selector.watchers() == [] and list(socket.tasks) == []


async def test_a_reset_reaches_a_socket_once_then_it_moves_on_from_there():
    hub = new_hub(7)
    socket = Recorder()
    await socket.deliver(hub, "res", 7)
    hub.reload([Snapshot("res", 2, "restored")])
    publish(hub, 3)
    assert socket.sent == [2, 3]


# Any interleaving ----------------------------------------------------------------

operations = st.lists(
    st.one_of(
        st.just(("publish",)),
        st.tuples(st.just("hold"), st.integers(0, 3)),
        st.tuples(st.just("release"), st.integers(0, 3)),
        st.tuples(st.just("close"), st.integers(0, 3)),
        st.just(("run",)),
    ),
    max_size=40,
)


@given(operations)
def test_any_interleaving_keeps_every_push_guarantee(ops):
    """Publishes, held and released sends, closes and loop turns in any order:
    each socket's versions strictly increase, none twice, nothing after its
    close, and every open socket ends with the latest version."""

    async def scenario():
        hub = new_hub()
        sockets = [Recorder() for _ in range(4)]
        deliveries = [await s.deliver(hub, "res", 0) for s in sockets]
        closed: dict[int, int] = {}
        latest = 1
        for op in ops:
            if op[0] == "publish":
                latest += 1
                publish(hub, latest)
            elif op[0] == "hold":
                sockets[op[1]].open.clear()
            elif op[0] == "release":
                sockets[op[1]].open.set()
            elif op[0] == "close" and op[1] not in closed:
                deliveries[op[1]].close()
                await sockets[op[1]].tasks.aclose()
                closed[op[1]] = len(sockets[op[1]].sent)
            else:
                await asyncio.sleep(0)
        for socket in sockets:
            socket.open.set()
        await settle()
        for index, socket in enumerate(sockets):
            assert socket.sent == sorted(set(socket.sent)), socket.sent
            if index in closed:
                assert len(socket.sent) == closed[index]
            else:
                assert socket.sent[-1] == latest
            await socket.tasks.aclose()
        assert len(hub.selector.watchers()) == 4 - len(closed)

    asyncio.run(scenario())
