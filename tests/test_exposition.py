"""GET /metrics: the Prometheus text format, off unless turned on, and only
for the networks and users the settings let in."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.asgi import get_asgi_application
from prometheus_client.parser import text_string_to_metric_families

from realtime_site.asgi import application
from selector_app import metrics
from selector_app.fastpath import CometFastPath
from selector_app.services import aresource_publish
from selector_app.shutdown import get_connections
from tests.support.asgi import AsgiClient
from tests.support.waiting import until

pytestmark = pytest.mark.usefixtures("res", "hub")


@pytest.fixture(autouse=True)
def _metrics_on(selector_settings):
    metrics.reset()
    selector_settings(METRICS=True, METRICS_NETWORKS=["127.0.0.0/8"])
    yield
    metrics.reset()


def client() -> AsgiClient:
    return AsgiClient(CometFastPath(get_asgi_application()))


async def scrape() -> dict[tuple[str, tuple], float]:
    reply = await client().get("/metrics")
    assert reply.status_code == 200, reply.content
    assert reply["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(reply.content.decode())
        for sample in family.samples
    }


async def test_off_unless_a_setting_turns_it_on(selector_settings):
    selector_settings(METRICS=False)
    assert (await client().get("/metrics")).status_code == 404


async def test_other_networks_are_refused(selector_settings):
    selector_settings(METRICS=True, METRICS_NETWORKS=["10.0.0.0/8"])
    reply = await client().get("/metrics")
    assert reply.status_code == 403 and b"METRICS_NETWORKS" in reply.content


async def test_a_user_with_the_permission_is_let_in(
    selector_settings, admin_user, client
):
    selector_settings(
        METRICS=True,
        METRICS_NETWORKS=[],
        METRICS_PERMISSION="selector_app.view_resource",
    )
    anonymous = await sync_to_async(client.get)("/metrics")
    assert anonymous.status_code == 403
    await sync_to_async(client.force_login)(admin_user)
    reply = await sync_to_async(client.get)("/metrics")
    assert reply.status_code == 200 and b"selector_app_sent_total" in reply.content


async def test_a_scrape_skips_the_middleware_stack(settings):
    """Prometheus' scrapes are served on the event loop, like Comet: Django's
    path would cost each scrape a third of its CPU."""
    settings.MIDDLEWARE = [
        "tests.support.middleware.MarkingMiddleware",
        *settings.MIDDLEWARE,
    ]
    fast = await client().get("/metrics")
    assert fast.status_code == 200 and "x-middleware" not in fast.headers
    plain = await AsgiClient(get_asgi_application()).get("/metrics")
    assert plain.status_code == 200 and plain["X-Middleware"] == "seen"


async def test_on_the_fast_path_a_user_is_known_by_the_session_cookie(
    selector_settings, admin_user, client
):
    selector_settings(
        METRICS=True,
        METRICS_NETWORKS=[],
        METRICS_PERMISSION="selector_app.view_resource",
    )
    fast = CometFastPath(get_asgi_application())
    anonymous = await AsgiClient(fast).get("/metrics")
    assert anonymous.status_code == 403
    await sync_to_async(client.force_login)(admin_user)
    session = client.cookies["sessionid"].value
    cookie = [(b"host", b"testserver"), (b"cookie", f"sessionid={session}".encode())]
    reply = await AsgiClient(fast).get("/metrics", headers=cookie)
    assert reply.status_code == 200 and b"selector_app_sent_total" in reply.content
    forged = [(b"host", b"testserver"), (b"cookie", b"sessionid=forged")]
    assert (await AsgiClient(fast).get("/metrics", headers=forged)).status_code == 403


async def test_counters_move_with_connections_and_publishes():
    before = await scrape()
    assert before["selector_app_open_connections", (("transport", "push"),)] == 0
    socket = WebsocketCommunicator(application, "/websocket?seq=1")
    connected, _ = await socket.connect()
    assert connected
    try:
        during = await scrape()
        assert during["selector_app_open_connections", (("transport", "push"),)] == 1
        await aresource_publish(name="res", data="news")
        assert (await socket.receive_from(timeout=5)).startswith("2 ")
        after = await scrape()
    finally:
        await socket.disconnect()
    assert after["selector_app_sent_total", (("transport", "push"),)] == 1
    seen = (
        "selector_app_publishes_seen_total",
        (("resource", "res"), ("via", "layer")),
    )
    assert after[seen] == 1
    latency = ("selector_app_delivery_latency_seconds_count", (("transport", "push"),))
    assert after[latency] == 1
    assert after["selector_app_layer_up", ()] == 1
    assert after["selector_app_resource_sequence", (("resource", "res"),)] == 2
    closed = await scrape()
    assert (
        closed["selector_app_closes_total", (("by", "client"), ("code", "1000"))] == 1
    )


async def test_comet_replies_and_refusals_are_counted():
    await client().get("/comet?seq=0")
    await client().get("/comet?seq=x")
    samples = await scrape()
    assert samples["selector_app_comet_replies_total", (("status", "200"),)] == 1
    assert samples["selector_app_comet_replies_total", (("status", "400"),)] == 1
    assert samples["selector_app_refusals_total", (("reason", "InvalidCursor"),)] == 1
    assert samples["selector_app_sent_total", (("transport", "comet"),)] == 1


async def test_event_streams_are_counted_and_leave_no_watcher():
    before = await scrape()
    assert before["selector_app_open_connections", (("transport", "events"),)] == 0
    exchange, task = client().start("GET", "/events?seq=1")
    await until(lambda: get_connections().count("events") == 1)
    during = await scrape()
    assert during["selector_app_open_connections", (("transport", "events"),)] == 1
    assert (
        during["selector_app_watchers", ()] == before["selector_app_watchers", ()] + 1
    )
    await aresource_publish(name="res", data="news")
    await until(lambda: any(b"id: 2\n" in m.get("body", b"") for m in exchange.sent))
    exchange.disconnect()
    await task
    after = await scrape()
    assert after["selector_app_sent_total", (("transport", "events"),)] == 1
    latency = (
        "selector_app_delivery_latency_seconds_count",
        (("transport", "events"),),
    )
    assert after[latency] == 1
    assert after["selector_app_open_connections", (("transport", "events"),)] == 0
    assert after["selector_app_watchers", ()] == before["selector_app_watchers", ()]
