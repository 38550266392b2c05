"""The open-connection registry and the drain, with stand-in members.

No Django, no server: members record when the drain ended them, in loop
time, and leave when told to.
"""

from __future__ import annotations

import asyncio

import pytest

from selector_app.connections import Connections
from selector_app.protocol import ShuttingDown

#: Members in the order the drain ended them.
ENDED: list[Socket] = []


@pytest.fixture(autouse=True)
def _forget_ended():
    ENDED.clear()


class Socket:
    """A stand-in connection: ended in turn, gone once ended (or never)."""

    ends_at_once = False

    def __init__(self, connections: Connections, transport: str = "push") -> None:
        self.connections = connections
        self.transport = transport
        self.leaves = True
        self.ended_at: float | None = None
        connections.track(transport, self)

    def end(self) -> None:
        self.ended_at = asyncio.get_running_loop().time()
        ENDED.append(self)
        if self.leaves:
            self.connections.untrack(self.transport, self)


class Request(Socket):
    ends_at_once = True


async def test_counts_by_transport_follow_track_and_untrack():
    connections = Connections()
    push = [Socket(connections) for _ in range(3)]
    Socket(connections, "bidirectional")
    assert connections.count("push") == 3
    assert connections.count("bidirectional") == 1
    assert connections.count("comet") == 0
    assert connections.count() == 4
    connections.untrack("push", push[0])
    connections.untrack("push", push[0])  # twice: ignored
    assert connections.counts() == {"push": 2, "bidirectional": 1}


async def test_held_requests_end_first_then_sockets_one_by_one_over_the_spread():
    connections = Connections()
    loop = asyncio.get_running_loop()
    sockets = [Socket(connections) for _ in range(4)]
    requests = [Request(connections, "comet") for _ in range(3)]
    started = loop.time()
    async with asyncio.timeout(5):
        assert await connections.drain(spread=0.3, timeout=2) is True
    assert set(ENDED[:3]) == set(requests)  # every held request first...
    assert set(ENDED[3:]) == set(sockets)
    ends = [socket.ended_at for socket in ENDED[3:]]
    assert ends[0] < ends[-1]  # ...then the sockets one after another...
    assert ends[-1] - started < 0.3  # ...within the spread
    assert connections.count() == 0


async def test_a_drain_with_nothing_open_returns_at_once():
    connections = Connections()
    assert await connections.drain(spread=10, timeout=10) is True
    assert connections.draining


async def test_a_member_that_never_leaves_ends_the_drain_at_its_timeout(caplog):
    connections = Connections()
    stuck = Socket(connections)
    stuck.leaves = False
    async with asyncio.timeout(5):
        assert await connections.drain(spread=0, timeout=0.05) is False
    assert stuck.ended_at is not None
    assert "Drain timed out" in caplog.text and "'push': 1" in caplog.text


async def test_a_member_gone_before_its_turn_is_not_ended():
    connections = Connections()
    first, second = Socket(connections), Socket(connections)
    drain = asyncio.create_task(connections.drain(spread=10, timeout=10))
    await asyncio.sleep(0)  # the drain ended the first and waits for its turn
    gone = second if first.ended_at is not None else first
    connections.untrack("push", gone)  # its client left meanwhile
    async with asyncio.timeout(5):
        assert await drain is True
    assert gone.ended_at is None


async def test_a_member_tracked_during_the_drain_is_ended_at_once():
    connections = Connections()
    Socket(connections).leaves = False  # keeps the drain waiting
    drain = asyncio.create_task(connections.drain(spread=0, timeout=10))
    await asyncio.sleep(0)
    late = Socket(connections)  # accepted just as the drain started
    async with asyncio.timeout(5):
        while late.ended_at is None:  # noqa: ASYNC110 (ended by call_soon)
            await asyncio.sleep(0)
    drain.cancel()
    with pytest.raises(asyncio.CancelledError):
        await drain


async def test_a_member_that_fails_to_end_does_not_stop_the_others(caplog):
    connections = Connections()

    class Broken(Request):
        def end(self) -> None:
            raise RuntimeError("boom")

    broken = Broken(connections, "comet")
    other = Request(connections, "comet")
    assert await connections.drain(spread=0, timeout=0.05) is False
    assert other.ended_at is not None
    assert "Could not end" in caplog.text
    connections.untrack("comet", broken)


# Hold: a request that waits -----------------------------------------------------


async def test_a_held_wait_is_interrupted_with_shutting_down():
    connections = Connections()
    waiting = asyncio.Event()

    async def request() -> None:
        async with connections.hold("comet"):
            waiting.set()
            await asyncio.Event().wait()  # a long-poll on a quiet resource

    task = asyncio.create_task(request())
    await waiting.wait()
    assert connections.count("comet") == 1
    async with asyncio.timeout(5):
        assert await connections.drain(spread=0, timeout=5) is True
        with pytest.raises(ShuttingDown) as refused:
            await task
    assert refused.value.status == 503 and refused.value.retry_later
    assert connections.count("comet") == 0


async def test_a_request_during_the_drain_is_refused_on_entry():
    connections = Connections()
    await connections.drain(spread=0, timeout=1)
    with pytest.raises(ShuttingDown):
        async with connections.hold("comet"):
            pytest.fail("entered during the drain")
    assert connections.count() == 0


async def test_a_client_leaving_is_a_cancellation_not_a_refusal():
    connections = Connections()
    waiting = asyncio.Event()

    async def request() -> None:
        async with connections.hold("comet"):
            waiting.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(request())
    await waiting.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert connections.count() == 0
