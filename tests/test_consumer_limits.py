"""The consumers' limits, in process: rate limits, echo size, open sockets,
unread output, and sends that race a disconnect."""

from __future__ import annotations

import asyncio

import pytest
from autobahn.exception import Disconnected
from channels.consumer import AsyncConsumer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from uvicorn.protocols.utils import ClientDisconnected

from selector_app import consumers
from selector_app.consumers import BidirectionalConsumer, echo_reply
from selector_app.limits import open_sockets
from selector_app.routing import websocket_urlpatterns
from tests.support.waiting import frames_after_disconnect, until

DENIAL = {"websocket.http.response": {}}


@pytest.fixture(autouse=True)
def _no_socket_left_counted():
    yield
    assert open_sockets.count == 0, "a consumer ended without freeing its socket"


def communicator(path: str, extensions: dict | None = None) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
    if extensions is not None:
        comm.scope["extensions"] = extensions
    return comm


async def closed_with(comm: WebsocketCommunicator) -> tuple[int, str]:
    """The close the consumer sent, skipping the frames before it."""
    async with asyncio.timeout(5):
        while True:
            message = await comm.receive_output()
            if message["type"] == "websocket.close":
                return message["code"], message.get("reason", "")


@pytest.fixture
def limits(selector_settings):
    """Small limits; no ticks unless a test asks for them."""

    def configure(**overrides: object) -> None:
        selector_settings(**{"TICK_INTERVAL": 3600, **overrides})

    return configure


@pytest.mark.usefixtures("res", "hub")
async def test_a_flood_of_tiny_frames_to_the_push_socket_closes_1008(limits):
    limits(RECEIVE_FRAMES_PER_SECOND=1, RECEIVE_FRAME_BURST=20)
    comm = communicator("/websocket")
    await comm.connect()
    for _ in range(25):
        await comm.send_to(text_data="x")
    code, reason = await closed_with(comm)
    assert (code, reason) == (1008, "Over the rate limit of 1 frames a second.")
    await comm.disconnect()


async def test_a_bidirectional_client_over_the_byte_rate_is_closed_1008(limits):
    limits(RECEIVE_BYTES_PER_SECOND=10, RECEIVE_BYTE_BURST=100)
    comm = communicator("/bidirectional")
    await comm.connect()
    await comm.send_to(text_data="é" * 40)  # 80 bytes: echoed
    assert await comm.receive_from(timeout=5) == "you said: " + "É" * 40
    await comm.send_to(text_data="é" * 40)  # 160 bytes in the burst of 100
    assert await closed_with(comm) == (
        1008,
        "Over the rate limit of 10 bytes a second.",
    )
    await comm.disconnect()


async def test_frames_behind_the_close_are_ignored(limits):
    limits(RECEIVE_FRAMES_PER_SECOND=1, RECEIVE_FRAME_BURST=2)
    comm = communicator("/bidirectional")
    await comm.connect()
    for number in range(10):
        await comm.send_to(text_data=f"f{number}")
    frames = [await comm.receive_from(timeout=5) for _ in range(2)]
    assert frames == ["you said: F0", "you said: F1"]
    assert (await closed_with(comm))[0] == 1008
    assert await frames_after_disconnect(comm) == []  # no echo, no second close


async def test_an_echo_over_the_size_limit_closes_1009_and_no_tick_follows(limits):
    limits(MAX_MESSAGE_SIZE=12, TICK_INTERVAL=0.01)
    comm = communicator("/bidirectional")
    await comm.connect()
    assert await comm.receive_from(timeout=5) == "server tick #1"
    await comm.send_to(text_data="ΐΐ")  # 4 bytes, upper-cased 12: at the limit
    while (frame := await comm.receive_from(timeout=5)).startswith("server tick"):
        pass
    assert frame == echo_reply("ΐΐ") and len(frame.encode()) == 10 + 12
    await comm.send_to(text_data="ΐΐΐ")  # 6 bytes, upper-cased 18
    code, reason = await closed_with(comm)
    assert code == 1009
    assert reason == "The upper-cased echo of this frame would be over 12 bytes."
    assert await frames_after_disconnect(comm) == []


async def test_an_oversize_frame_still_closes_1009_with_its_reason(limits):
    limits(MAX_MESSAGE_SIZE=8)
    comm = communicator("/bidirectional")
    await comm.connect()
    await comm.send_to(text_data="a" * 9)
    assert await closed_with(comm) == (1009, "Text frames are limited to 8 bytes.")
    await comm.disconnect()


async def test_past_the_socket_limit_a_server_with_denial_responses_answers_503(
    limits, caplog
):
    limits(MAX_OPEN_SOCKETS=1, RETRY_AFTER=7)
    first = communicator("/bidirectional")
    assert (await first.connect())[0]
    second = communicator("/bidirectional", DENIAL)
    await second.send_input({"type": "websocket.connect"})
    start = await second.receive_output(timeout=5)
    body = await second.receive_output(timeout=5)
    assert start["type"] == "websocket.http.response.start"
    assert start["status"] == 503
    assert (b"retry-after", b"7") in start["headers"]
    assert body["body"] == (
        b"This server process holds its limit of 1 open sockets; try again later.\n"
    )
    await second.send_input({"type": "websocket.disconnect", "code": 1006})
    await second.wait(timeout=5)
    await first.disconnect()
    [refusal] = [r.getMessage() for r in caplog.records if "Refused" in r.msg]
    assert refusal.startswith("Refused /bidirectional for ")
    assert refusal.endswith(
        "(503): This server process holds its limit of 1 open sockets; try again later."
    )


async def test_past_the_socket_limit_other_servers_get_accept_and_1013(limits):
    limits(MAX_OPEN_SOCKETS=1)
    first = communicator("/bidirectional")
    await first.connect()
    second = communicator("/websocket")
    assert (await second.connect())[0]  # Daphne would answer a refusal 403
    code, reason = await closed_with(second)
    assert code == 1013 and reason.endswith("try again later.")
    await second.disconnect()
    await first.disconnect()


async def test_a_closed_socket_frees_its_place(limits):
    limits(MAX_OPEN_SOCKETS=1)
    for _ in range(3):
        comm = communicator("/bidirectional")
        assert (await comm.connect())[0]
        await comm.send_to(text_data="hi")
        assert await comm.receive_from(timeout=5) == "you said: HI"
        await comm.disconnect()
    assert open_sockets.count == 0


class Unread:
    """A Daphne socket whose client has read nothing."""

    def __init__(self) -> None:
        self.unsent = 0
        self.waiting = 0
        self.reading = True

    def unsent_bytes(self) -> int:
        return self.unsent

    def waiting_frames(self) -> int:
        return self.waiting

    def stop_reading(self) -> None:
        self.reading = False

    def close(self, code: int, reason: str) -> bool:
        return False  # let the ASGI close through, for the communicator


async def test_a_client_that_leaves_too_much_unread_is_closed_1008(limits, monkeypatch):
    limits(MAX_UNSENT_BYTES=1000, TICK_INTERVAL=0.01)
    socket = Unread()
    monkeypatch.setattr(consumers, "daphne_socket", lambda send: socket)
    comm = communicator("/bidirectional")
    await comm.connect()
    assert await comm.receive_from(timeout=5) == "server tick #1"
    socket.unsent = 1001
    code, reason = await closed_with(comm)
    assert (code, reason) == (1008, "The client left over 1000 bytes unread.")
    assert not socket.reading  # what it still sends is not read any more
    assert await frames_after_disconnect(comm) == []


async def test_frames_the_server_holds_back_count_against_the_rate_limit(
    limits, monkeypatch
):
    """Daphne queues what it reads without limit: a flood shows as a backlog."""
    limits(RECEIVE_FRAME_BURST=100)
    socket = Unread()
    monkeypatch.setattr(consumers, "daphne_socket", lambda send: socket)
    comm = communicator("/bidirectional")
    await comm.connect()
    await comm.send_to(text_data="one")
    assert await comm.receive_from(timeout=5) == "you said: ONE"
    socket.waiting = 101
    await comm.send_to(text_data="two")
    code, reason = await closed_with(comm)
    assert (code, reason) == (1008, "Over the rate limit of 20 frames a second.")
    assert not socket.reading


@pytest.mark.parametrize(
    "gone",
    [
        Disconnected("Attempt to send on a closed protocol"),
        ClientDisconnected(),
    ],
    ids=["daphne", "uvicorn"],
)
async def test_a_tick_that_races_the_disconnect_ends_quietly(
    limits, monkeypatch, caplog, gone
):
    limits(TICK_INTERVAL=0.01)

    async def send(self, *args, **kwargs):
        raise gone

    monkeypatch.setattr(BidirectionalConsumer, "send", send)
    comm = communicator("/bidirectional")
    await comm.connect()
    await until(
        lambda: (
            not [
                t for t in asyncio.all_tasks() if t.get_name() == "selector_app ticker"
            ]
        )
    )
    assert await frames_after_disconnect(comm) == []  # and no close frame either
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


async def test_a_close_that_races_the_disconnect_is_not_an_error(
    limits, monkeypatch, caplog
):
    limits(MAX_MESSAGE_SIZE=4)
    real_send = AsyncConsumer.send

    async def base_send(self, message):
        if message["type"] == "websocket.close":
            raise Disconnected("Attempt to send on a closed protocol")
        await real_send(self, message)

    monkeypatch.setattr(AsyncConsumer, "send", base_send)
    comm = communicator("/bidirectional")
    await comm.connect()
    await comm.send_to(text_data="too long")
    await comm.disconnect()
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
