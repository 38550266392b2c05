"""Comet's wire contract, through Django's handler and through CometFastPath.

Every test runs against both ASGI applications a site can serve Comet with:
``django`` (the view behind Django's handler and the full middleware stack)
and ``fast_path`` (``CometFastPath`` in front of it).
"""

from __future__ import annotations

import asyncio
import re

import pytest
from django.core.asgi import get_asgi_application

from selector_app import services
from selector_app.fastpath import CometFastPath
from tests.support.asgi import AsgiClient
from tests.support.waiting import until

pytestmark = pytest.mark.usefixtures("res", "hub")


@pytest.fixture(params=["django", "fast_path"])
def web(request) -> AsgiClient:
    app = get_asgi_application()
    return AsgiClient(app if request.param == "django" else CometFastPath(app))


def held(hub) -> bool:
    return hub.waiting_polls == 1 and len(hub.selector.watchers()) == 1


async def test_seq_zero_is_answered_at_once_with_sequence_and_data(web, res):
    response = await web.get("/comet", {"seq": "0"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Cache-Control"] == "no-store"
    assert response.content.decode() == f"1 {res.data}"
    assert response["Content-Length"] == str(len(response.content))


async def test_missing_or_empty_seq_means_zero(web, res):
    for query in ("", "?seq="):
        response = await web.get(f"/comet{query}")
        assert response.content.decode().startswith("1 ")


async def test_a_newer_or_ahead_sequence_is_answered_at_once(web):
    await services.aresource_publish(name="res", data="two")
    assert (await web.get("/comet?seq=1")).content == b"2 two"
    # The client is ahead (the database was reset): answered, not held.
    assert (await web.get("/comet?seq=7")).content == b"2 two"


async def test_the_current_sequence_is_held_until_the_next_publish(web, hub):
    request = asyncio.create_task(web.get("/comet?seq=1"))
    await until(lambda: held(hub))
    assert not request.done()
    await services.aresource_publish(name="res", data="fresh")
    async with asyncio.timeout(5):
        response = await request
    assert (response.status_code, response.content) == (200, b"2 fresh")
    assert hub.selector.watchers() == [] and hub.waiting_polls == 0


async def test_a_held_request_times_out_with_204(web, hub, selector_settings):
    selector_settings(LONG_POLL_TIMEOUT=0.1)
    async with asyncio.timeout(5):
        response = await web.get("/comet?seq=1")
    assert response.status_code == 204
    assert response.content == b""
    assert hub.selector.watchers() == []


@pytest.mark.parametrize(
    "seq",
    ["-1", "abc", "1.5", "0x10", " 1", "1 ", "1234567890123456789", "\u0661", "\u00b2"],
)
async def test_a_bad_seq_is_400_with_a_reason(web, seq):
    response = await web.get("/comet", {"seq": seq})
    assert response.status_code == 400
    assert b"seq must be 1 to 18 decimal digits" in response.content


async def test_eighteen_digits_are_accepted(web):
    response = await web.get("/comet?seq=999999999999999999")
    assert response.status_code == 200


async def test_named_resources_and_unknown_ones(web):
    from asgiref.sync import sync_to_async

    await sync_to_async(services.resource_create)(name="other", data="o")
    assert (await web.get("/comet/other?seq=0")).content == b"1 o"
    response = await web.get("/comet/missing?seq=0")
    assert response.status_code == 404
    assert b"no resource named 'missing'" in response.content


async def test_head_works_and_other_methods_are_405(web):
    assert (await web.head("/comet?seq=0")).status_code == 200
    for method in ("POST", "PUT", "DELETE"):  # CSRF is enforced, as browsers get
        response = await web.request(method, "/comet?seq=0")
        assert response.status_code == 405


async def test_the_page_answers_other_methods_405_not_csrf_403(web):
    for method in ("POST", "PUT", "DELETE"):
        assert (await web.request(method, "/")).status_code == 405


async def test_past_the_held_limit_new_waiters_get_503_with_retry_after(web, hub):
    hub.max_waiting_polls = 1  # MAX_HELD_REQUESTS; see test_runtime
    first = asyncio.create_task(web.get("/comet?seq=1"))
    await until(lambda: held(hub))
    response = await web.get("/comet?seq=1")
    assert response.status_code == 503
    assert response["Retry-After"] == "2"
    assert b"already holds 1 long-poll requests. Retry later." in response.content
    # An immediate answer is never refused: it holds nothing.
    assert (await web.get("/comet?seq=0")).status_code == 200
    await services.aresource_publish(name="res", data="x")
    async with asyncio.timeout(5):
        assert (await first).status_code == 200


async def test_a_client_that_disconnects_while_held_leaves_no_watcher(web, hub):
    exchange, request = web.start("GET", "/comet?seq=1")
    await until(lambda: held(hub))
    exchange.disconnect()
    async with asyncio.timeout(5):
        await request
    assert hub.selector.watchers() == []
    assert hub.waiting_polls == 0
    assert exchange.sent == []  # nothing was answered to a client that left


def test_the_page_has_three_panels_and_no_remote_assets(client):
    response = client.get("/")
    page = response.content.decode()
    assert response.status_code == 200
    for marker in (
        'data-live="comet"',
        'data-live="websocket"',
        'data-live="bidirectional"',
    ):
        assert marker in page
    assert 'data-url="/comet"' in page
    assert 'data-path="/websocket"' in page and 'data-path="/bidirectional"' in page
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing from another host
    assert "/static/selector_app/live.js" in page
