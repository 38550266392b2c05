"""What each transport does while its loop drains, in process.

The drain is started directly (``get_connections().drain(...)``); the signal
that starts it in a server is test_shutdown's and test_sigterm's business.
"""

from __future__ import annotations

import asyncio

import pytest
from channels.routing import URLRouter
from channels.testing import ApplicationCommunicator, WebsocketCommunicator
from django.core.asgi import get_asgi_application

from selector_app.fastpath import CometFastPath
from selector_app.routing import websocket_urlpatterns
from selector_app.shutdown import get_connections
from tests.support.asgi import AsgiClient
from tests.support.waiting import frames_after_disconnect, until

pytestmark = pytest.mark.usefixtures("res", "hub")


async def drain(spread: float = 0.0) -> None:
    async with asyncio.timeout(5):
        assert await get_connections().drain(spread=spread, timeout=5)


@pytest.fixture(params=["django", "fast_path"])
def web(request) -> AsgiClient:
    app = get_asgi_application()
    return AsgiClient(app if request.param == "django" else CometFastPath(app))


def assert_retry_later(response) -> None:
    assert response.status_code == 503
    assert response["Retry-After"] == "2"
    assert response["Cache-Control"] == "no-store"
    assert response.content.decode() == (
        "This server process is shutting down; connect again.\n"
    )


async def test_a_held_comet_request_is_answered_503_at_once(web, hub):
    request = asyncio.create_task(web.get("/comet?seq=1"))
    await until(lambda: get_connections().count("comet") == 1)
    await drain()
    assert_retry_later(await request)
    assert hub.waiting_polls == 0 and hub.selector.watchers() == []


async def test_comet_during_the_drain_is_refused_even_when_it_could_be_answered(web):
    await drain()
    assert_retry_later(await web.get("/comet?seq=0"))


def socket(path: str) -> WebsocketCommunicator:
    return WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)


async def close_of(comm: WebsocketCommunicator) -> dict:
    """The next output that is not a frame: the close."""
    while True:
        message = await comm.receive_output(timeout=5)
        if message["type"] != "websocket.send":
            return message


@pytest.mark.parametrize("path", ["/websocket?seq=1", "/bidirectional"])
async def test_open_sockets_are_closed_with_1012_and_nothing_after(
    path, selector_settings
):
    selector_settings(TICK_INTERVAL=0.01)  # ticks race the close
    comms = [socket(path) for _ in range(3)]
    for comm in comms:
        assert (await comm.connect())[0]
    transport = "push" if path.startswith("/websocket") else "bidirectional"
    assert get_connections().count(transport) == 3
    ending = asyncio.create_task(drain(spread=0.05))
    for comm in comms:
        close = await close_of(comm)
        assert close["code"] == 1012
        assert close["reason"] == "This server process is shutting down; connect again."
        await comm.send_input({"type": "websocket.receive", "text": "late"})
        assert await frames_after_disconnect(comm) == []  # no tick, no echo
    await ending
    assert get_connections().count() == 0


async def test_a_handshake_during_the_drain_gets_1012_without_http_responses():
    """Daphne has no ``websocket.http.response``: accept, then close 1012."""
    await drain()
    comm = socket("/websocket")
    assert (await comm.connect())[0]
    assert (await close_of(comm))["code"] == 1012
    assert get_connections().count() == 0
    await comm.disconnect()


async def test_a_handshake_during_the_drain_gets_http_503_where_it_can():
    """Uvicorn offers ``websocket.http.response``: a plain 503 with Retry-After."""
    await drain()
    comm = ApplicationCommunicator(
        URLRouter(websocket_urlpatterns),
        {
            "type": "websocket",
            "path": "/bidirectional",
            "query_string": b"",
            "headers": [],
            "subprotocols": [],
            "extensions": {"websocket.http.response": {}},
        },
    )
    await comm.send_input({"type": "websocket.connect"})
    start = await comm.receive_output(5)
    body = await comm.receive_output(5)
    assert start["type"] == "websocket.http.response.start"
    assert start["status"] == 503
    assert (b"retry-after", b"2") in start["headers"]
    assert body["body"].startswith(b"This server process is shutting down")
    await comm.send_input({"type": "websocket.disconnect", "code": 1006})
    await comm.wait(5)
