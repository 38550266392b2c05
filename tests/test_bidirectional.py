from __future__ import annotations

import asyncio

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from selector_app.consumers import BidirectionalConsumer, echo_reply
from selector_app.routing import websocket_urlpatterns
from tests.support.waiting import frames_after_disconnect


@pytest.fixture
def fast_ticks(selector_settings):
    selector_settings(TICK_INTERVAL=0.05)


@pytest.fixture
def no_ticks(selector_settings):
    """A tick interval no test outlives: every frame is an echo."""
    selector_settings(TICK_INTERVAL=3600)


def communicator() -> WebsocketCommunicator:
    return WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/bidirectional")


def ticker_tasks() -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "selector_app ticker"]


async def frames_until(comm, predicate, limit: int = 50) -> list[str]:
    frames = []
    while not frames or not predicate(frames[-1]):
        frames.append(await comm.receive_from(timeout=5))
        assert len(frames) <= limit, frames
    return frames


@pytest.mark.usefixtures("fast_ticks")
async def test_ticks_are_numbered_from_one_for_each_connection():
    for _ in range(2):
        comm = communicator()
        assert (await comm.connect())[0]
        frames = [await comm.receive_from(timeout=5) for _ in range(3)]
        assert frames == ["server tick #1", "server tick #2", "server tick #3"]
        await comm.disconnect()


@pytest.mark.usefixtures("fast_ticks")
async def test_an_echo_arrives_while_ticks_keep_coming():
    comm = communicator()
    await comm.connect()
    assert await comm.receive_from(timeout=5) == "server tick #1"
    await comm.send_to(text_data="hello")
    frames = await frames_until(comm, lambda f: f == "you said: HELLO")
    after = await frames_until(comm, lambda f: f.startswith("server tick"))
    ticks = [int(f.rsplit("#", 1)[1]) for f in frames + after if f.startswith("server")]
    assert ticks == list(range(2, 2 + len(ticks)))  # no tick lost or repeated
    await comm.disconnect()


@pytest.mark.usefixtures("no_ticks")
async def test_echoes_never_wait_for_the_tickers_first_interval():
    comm = communicator()
    await comm.connect()
    await comm.send_to(text_data="quick")
    assert await comm.receive_from(timeout=5) == "you said: QUICK"
    # The ticker sleeps first: no tick went out at connect time.
    assert await frames_after_disconnect(comm) == []


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        ("hello", "you said: HELLO"),
        ("straße", "you said: STRASSE"),
        ("ﬁx ǆ", "you said: FIX Ǆ"),
        ("", "you said: "),
        ("   ", "you said:    "),
    ],
)
def test_echo_upper_cases_with_full_unicode_rules(text, reply):
    assert echo_reply(text) == reply


@pytest.mark.usefixtures("fast_ticks")
async def test_unicode_and_empty_text_on_the_wire():
    comm = communicator()
    await comm.connect()
    await comm.send_to(text_data="straße")
    await frames_until(comm, lambda f: f == "you said: STRASSE")
    # The communicator refuses empty text; send the ASGI event it would send.
    await comm.send_input({"type": "websocket.receive", "text": ""})
    await frames_until(comm, lambda f: f == "you said: ")
    await comm.disconnect()


@pytest.mark.usefixtures("no_ticks")
async def test_binary_frames_are_ignored():
    comm = communicator()
    await comm.connect()
    await comm.send_to(bytes_data=b"\x00\xffbinary")
    await comm.send_to(text_data="still here")
    assert await comm.receive_from(timeout=5) == "you said: STILL HERE"
    assert await frames_after_disconnect(comm) == []


async def test_oversize_text_closes_with_1009_and_the_limit_is_exact(
    selector_settings,
):
    selector_settings(TICK_INTERVAL=3600, MAX_MESSAGE_SIZE=8)
    comm = communicator()
    await comm.connect()
    await comm.send_to(text_data="éééé")  # 8 bytes in UTF-8: allowed
    assert await comm.receive_from(timeout=5) == "you said: ÉÉÉÉ"
    await comm.send_to(text_data="ééééa")  # 9 bytes
    closed = await comm.receive_output(timeout=5)
    assert closed["type"] == "websocket.close" and closed["code"] == 1009
    assert ticker_tasks() == []
    await comm.disconnect()


async def test_the_default_limit_is_64_kib():
    comm = communicator()
    await comm.connect()
    await comm.send_to(text_data="a" * 65536)
    assert (await comm.receive_from(timeout=5)).endswith("A" * 10)
    await comm.send_to(text_data="a" * 65537)
    closed = await comm.receive_output(timeout=5)
    assert closed["code"] == 1009
    await comm.disconnect()


@pytest.mark.usefixtures("fast_ticks")
async def test_after_disconnect_no_task_of_the_consumer_is_left():
    comm = communicator()
    await comm.connect()
    await comm.receive_from(timeout=5)
    assert len(ticker_tasks()) == 1
    await comm.disconnect()
    assert ticker_tasks() == []


async def test_a_send_that_races_the_disconnect_is_not_an_error(
    monkeypatch, selector_settings, caplog
):
    selector_settings(TICK_INTERVAL=0.01)

    async def gone(self, *args, **kwargs):
        raise ConnectionResetError("client went away")  # an OSError, as uvicorn's

    monkeypatch.setattr(BidirectionalConsumer, "send", gone)
    comm = communicator()
    await comm.connect()
    [ticker] = ticker_tasks()
    async with asyncio.timeout(5):
        await ticker  # it hits the failing send and ends quietly
    await comm.disconnect()
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


async def test_an_unexpected_ticker_failure_is_logged_and_closes_4500(
    monkeypatch, selector_settings, caplog
):
    """Not 1011: Daphne cannot send it (docs/protocol.md)."""
    selector_settings(TICK_INTERVAL=0.01)
    real_send = BidirectionalConsumer.send

    async def broken(self, text_data=None, bytes_data=None, close=False):
        if text_data and text_data.startswith("server tick"):
            raise RuntimeError("bug")
        await real_send(self, text_data, bytes_data, close)

    monkeypatch.setattr(BidirectionalConsumer, "send", broken)
    comm = communicator()
    await comm.connect()
    closed = await comm.receive_output(timeout=5)
    assert closed["code"] == 4500
    assert closed["reason"] == "Internal server error."
    assert "failed; closing" in caplog.text
    await comm.disconnect()


def refusing_protocol_codes(app):
    """``app`` behind a server that, like Daphne (autobahn), raises for a
    server close code other than 1000 and 3000-4999."""

    async def served(scope, receive, send):
        async def checked_send(message):
            code = message.get("code", 1000)
            if message["type"] == "websocket.close" and 1000 < code < 3000:
                raise Exception(f"invalid close code {code} (must be 1000 or ...)")
            await send(message)

        await app(scope, receive, checked_send)

    return served


async def test_a_server_that_refuses_1009_gets_4009_with_the_reason(
    selector_settings,
):
    selector_settings(TICK_INTERVAL=3600, MAX_MESSAGE_SIZE=8)
    app = refusing_protocol_codes(URLRouter(websocket_urlpatterns))
    comm = WebsocketCommunicator(app, "/bidirectional")
    await comm.connect()
    await comm.send_to(text_data="a" * 9)
    assert await comm.receive_output(timeout=5) == {
        "type": "websocket.close",
        "code": 4009,
        "reason": "Text frames are limited to 8 bytes.",
    }
    await comm.wait(timeout=5)
