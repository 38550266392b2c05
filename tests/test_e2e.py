"""The demo end to end: a real Daphne process, real HTTP and WebSocket clients."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]


def parse(message: str) -> tuple[int, str]:
    sequence, data = message.split(" ", 1)
    return int(sequence), data


async def test_comet_answers_at_once_then_holds_until_the_next_update(demo_server):
    async with httpx.AsyncClient(base_url=demo_server.url, timeout=10) as http:
        first = await http.get("/comet", params={"seq": "0"})
        assert first.status_code == 200
        assert first.headers["content-type"] == "text/plain; charset=utf-8"
        sequence, data = parse(first.text)
        assert len(data) == 1024 and " " not in data
        async with asyncio.timeout(5):  # the updater publishes every second
            held = await http.get("/comet", params={"seq": str(sequence)})
        assert held.status_code == 200
        assert parse(held.text)[0] == sequence + 1
        assert (await http.get("/comet", params={"seq": "x"})).status_code == 400
        assert (await http.get("/comet/nope")).status_code == 404
        assert (await http.post("/comet")).status_code == 405


async def test_websocket_pushes_every_update_in_order(demo_server):
    async with connect(
        f"{demo_server.ws_url}/websocket", origin=demo_server.origin
    ) as ws:
        async with asyncio.timeout(10):
            sequences = [parse(await ws.recv())[0] for _ in range(3)]
    assert sequences == list(range(sequences[0], sequences[0] + 3))


async def test_comet_and_websocket_agree_on_the_resource(demo_server):
    async with connect(
        f"{demo_server.ws_url}/websocket", origin=demo_server.origin
    ) as ws:
        async with asyncio.timeout(10):
            pushed = parse(await ws.recv())
            async with httpx.AsyncClient(base_url=demo_server.url) as http:
                polled = parse((await http.get(f"/comet?seq={pushed[0] - 1}")).text)
                if polled[0] != pushed[0]:  # an update landed in between
                    pushed = parse(await ws.recv())
    assert polled == pushed


async def test_bidirectional_ticks_and_echoes_on_a_real_server(demo_server):
    url = f"{demo_server.ws_url}/bidirectional"
    async with connect(url, origin=demo_server.origin) as ws:
        opened = time.monotonic()
        async with asyncio.timeout(10):
            first = await ws.recv()
            first_after = time.monotonic() - opened
            await ws.send("hello")
            frames = [await ws.recv() for _ in range(2)]
            while frames[-1] != "server tick #2" and len(frames) < 5:
                frames.append(await ws.recv())
    assert first == "server tick #1"
    # The ticker sleeps first: tick #1 no sooner than one second after accept
    # (no upper bound: a busy machine may deliver it late).
    assert first_after >= 0.9
    assert "you said: HELLO" in frames and "server tick #2" in frames


async def test_handshakes_from_another_origin_get_403(demo_server):
    with pytest.raises(InvalidStatus) as error:
        async with connect(
            f"{demo_server.ws_url}/websocket", origin="http://evil.example"
        ):
            pass
    assert error.value.response.status_code == 403


async def test_the_page_and_its_script_are_served(demo_server):
    async with httpx.AsyncClient(base_url=demo_server.url) as http:
        page = await http.get("/")
        script = await http.get("/static/selector_app/live.js")
    assert page.status_code == 200 and 'data-live="bidirectional"' in page.text
    assert script.status_code == 200 and "RECONNECT_BACKOFF" in script.text
