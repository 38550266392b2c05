"""GET /health: what a load balancer routes on, served on the event loop."""

from __future__ import annotations

import json

import pytest
from django.core.asgi import get_asgi_application

from selector_app import runtime
from selector_app.fastpath import CometFastPath
from selector_app.shutdown import get_connections
from tests.support.asgi import AsgiClient

pytestmark = pytest.mark.usefixtures("res")


def fast() -> AsgiClient:
    return AsgiClient(CometFastPath(get_asgi_application()))


async def test_healthy_once_synced_with_the_layer_alive(hub):
    reply = await fast().get("/health")
    assert reply.status_code == 200, reply.content
    assert reply["Cache-Control"] == "no-store"
    body = json.loads(reply.content)
    assert body["status"] == "ok" and body["synced"] and body["layer"] == "up"


async def test_the_first_check_starts_the_process_and_says_why_not_yet(
    transactional_db,
):
    try:
        reply = await fast().get("/health")
        assert reply.status_code == 503
        assert json.loads(reply.content)["reason"].startswith("The hub has not read")
    finally:
        await runtime.close_hub()


async def test_a_dead_subscription_is_503(hub):
    feed = runtime.get_runtime().feed
    feed.subscribed = False
    reply = await fast().get("/health")
    assert reply.status_code == 503
    body = json.loads(reply.content)
    assert body["layer"] == "down" and "channel-layer" in body["reason"]
    feed.subscribed = True
    # Silent for longer than the silence limit: dead too.
    feed.last_heard -= feed.silence_limit + 1
    assert (await fast().get("/health")).status_code == 503


async def test_draining_is_503_so_that_balancers_move_clients_first(hub):
    get_connections().draining = True
    reply = await fast().get("/health")
    assert reply.status_code == 503
    assert json.loads(reply.content)["reason"].startswith(
        "This server process is draining"
    )


async def test_served_past_the_middleware_and_through_django_alike(hub, settings):
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE,
        "tests.support.middleware.MarkingMiddleware",
    ]
    reply = await fast().get("/health")
    assert reply.status_code == 200 and "x-middleware" not in reply.headers
    plain = await AsgiClient(get_asgi_application()).get("/health")
    assert plain.status_code == 200 and json.loads(plain.content)["status"] == "ok"
    assert (await fast().request("POST", "/health")).status_code == 405
