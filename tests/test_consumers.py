from __future__ import annotations

import asyncio

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from realtime_site.asgi import application
from selector_app import services
from selector_app.consumers import PushConsumer
from selector_app.routing import websocket_urlpatterns
from tests.support.waiting import frames_after_disconnect, until

pytestmark = pytest.mark.usefixtures("res", "hub")

ORIGIN = [(b"origin", b"http://localhost")]


def communicator(path: str) -> WebsocketCommunicator:
    return WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)


async def receive(comm: WebsocketCommunicator) -> str:
    return await comm.receive_from(timeout=5)


async def test_first_frame_at_once_then_one_per_publish(res):
    comm = communicator("/websocket")
    connected, _ = await comm.connect()
    assert connected
    assert await receive(comm) == f"1 {res.data}"
    await services.aresource_publish(name="res", data="two")
    assert await receive(comm) == "2 two"
    await services.aresource_publish(name="res", data="three")
    assert await receive(comm) == "3 three"
    await comm.disconnect()


async def test_seq_equal_to_the_current_sequence_waits_for_the_next_publish(hub):
    comm = communicator("/websocket?seq=1")
    await comm.connect()
    await until(lambda: len(hub.selector.watchers()) == 1)
    await services.aresource_publish(name="res", data="next")
    assert await receive(comm) == "2 next"  # the first frame: "1 ..." never went
    assert await frames_after_disconnect(comm) == []


async def test_a_client_ahead_of_the_server_gets_the_current_state(res):
    comm = communicator("/websocket?seq=50")
    await comm.connect()
    assert await receive(comm) == f"1 {res.data}"
    await comm.disconnect()


async def test_a_slow_reader_gets_the_latest_version_not_a_backlog(monkeypatch):
    """The transport blocks (a slow client) while five versions are published."""
    unblock = asyncio.Event()
    blocked = asyncio.Event()
    real_push = PushConsumer.push

    def slow_push(self, snapshot):
        if snapshot.sequence != 2:
            return real_push(self, snapshot)
        blocked.set()

        async def when_unblocked():
            await unblock.wait()
            await (real_push(self, snapshot) or asyncio.sleep(0))

        return when_unblocked()

    monkeypatch.setattr(PushConsumer, "push", slow_push)
    comm = communicator("/websocket?seq=1")
    await comm.connect()
    await services.aresource_publish(name="res", data="v2")
    async with asyncio.timeout(5):
        await blocked.wait()
    for version in range(3, 8):
        await services.aresource_publish(name="res", data=f"v{version}")
    unblock.set()
    assert await receive(comm) == "2 v2"
    assert await receive(comm) == "7 v7"
    await services.aresource_publish(name="res", data="v8")
    assert await receive(comm) == "8 v8"  # nothing repeated in between
    assert await frames_after_disconnect(comm) == []


async def test_sequences_on_a_socket_strictly_increase_under_rapid_publishes():
    comm = communicator("/websocket")
    await comm.connect()
    seen = [int((await receive(comm)).split(" ", 1)[0])]
    for index in range(30):
        await services.aresource_publish(name="res", data=str(index))
        if index % 7 == 0:
            await asyncio.sleep(0)
    while seen[-1] < 31:
        seen.append(int((await receive(comm)).split(" ", 1)[0]))
    assert seen == sorted(set(seen))
    assert seen[-1] == 31
    await comm.disconnect()


async def test_named_resource_and_frames_from_the_client_are_ignored():
    from asgiref.sync import sync_to_async

    await sync_to_async(services.resource_create)(name="other", data="o")
    comm = communicator("/websocket/other")
    await comm.connect()
    assert await receive(comm) == "1 o"
    await comm.send_to(text_data="ignored")
    await comm.send_to(bytes_data=b"ignored")
    assert await frames_after_disconnect(comm) == []


async def test_unknown_resource_closes_with_4404():
    comm = communicator("/websocket/missing")
    connected, _ = await comm.connect()
    assert connected
    closed = await comm.receive_output(timeout=5)
    assert closed["type"] == "websocket.close" and closed["code"] == 4404
    assert "missing" in closed["reason"]


@pytest.mark.parametrize("seq", ["abc", "-1", "1234567890123456789"])
async def test_bad_seq_closes_with_4400(seq):
    comm = communicator(f"/websocket?seq={seq}")
    await comm.connect()
    closed = await comm.receive_output(timeout=5)
    assert closed["code"] == 4400
    assert "seq must be" in closed["reason"]


async def test_a_push_socket_holds_a_watcher_but_no_task_and_leaves_nothing(hub):
    """The hub's fan-out sends to it: an idle push socket costs one watcher."""
    comm = communicator("/websocket?seq=1")
    await comm.connect()
    await until(lambda: len(hub.selector.watchers()) == 1)
    ours = [t for t in asyncio.all_tasks() if t.get_name().startswith("selector_app")]
    assert [t.get_name() for t in ours if "feed" not in t.get_name()] == []
    await comm.disconnect()
    assert hub.selector.watchers() == []


async def test_handshakes_from_other_origins_are_refused():
    comm = WebsocketCommunicator(
        application, "/websocket", headers=[(b"origin", b"http://evil.example")]
    )
    connected, _ = await comm.connect()
    assert not connected
    comm = WebsocketCommunicator(application, "/websocket", headers=ORIGIN)
    connected, _ = await comm.connect()
    assert connected
    await comm.disconnect()


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("&".join(["seq=1"] * 1001), "A query string may have at most 1000 fields."),
        ("seq=%FF", "The query string is not valid UTF-8 once percent-decoded."),
        ("seq=%zz", "The query string has a % that is not followed by two hex digits."),
    ],
)
async def test_a_malformed_query_is_closed_4400_with_a_reason(hub, query, reason):
    comm = communicator(f"/websocket?{query}")
    connected, _ = await comm.connect()
    assert connected
    assert await comm.receive_output(timeout=5) == {
        "type": "websocket.close",
        "code": 4400,
        "reason": reason,
    }
    await comm.wait(timeout=5)
    assert hub.selector.watchers() == []


@pytest.mark.parametrize("path", ["/websocket/%FF", "/websocket/res/x", "/nowhere"])
async def test_a_path_no_route_matches_is_closed_4404(path):
    comm = WebsocketCommunicator(application, path, headers=ORIGIN)
    connected, _ = await comm.connect()
    assert connected
    assert await comm.receive_output(timeout=5) == {
        "type": "websocket.close",
        "code": 4404,
        "reason": "There is no WebSocket endpoint at this path.",
    }
    await comm.wait(timeout=5)
