"""GET /events in process, through CometFastPath: the wire format, the cursor,
refusals, keep-alive, the drain, and nothing left behind by a client that goes.

The same contract over real Daphne and Uvicorn processes is
test_events_servers's.
"""

from __future__ import annotations

import asyncio

import pytest
from django.core.asgi import get_asgi_application

from selector_app import sse
from selector_app.fastpath import CometFastPath
from selector_app.limits import open_sockets
from selector_app.protocol import Snapshot
from selector_app.services import aresource_publish
from selector_app.shutdown import get_connections
from tests.support.asgi import AsgiClient, Exchange
from tests.support.waiting import until

pytestmark = pytest.mark.usefixtures("res", "hub")


def fast() -> AsgiClient:
    return AsgiClient(CometFastPath(get_asgi_application()))


def body(exchange: Exchange) -> str:
    return b"".join(m.get("body", b"") for m in exchange.sent[1:]).decode()


def parsed(text: str) -> list[dict[str, list[str]]]:
    """The events (and comments) of a stream, each field's lines in order."""
    blocks = []
    for block in text.split("\n\n"):
        if not block:
            continue
        fields: dict[str, list[str]] = {}
        for line in block.split("\n"):
            name, _, value = line.partition(": ")
            fields.setdefault(name, []).append(value)
        blocks.append(fields)
    return blocks


async def stream_until(exchange: Exchange, predicate, timeout: float = 5) -> str:
    await until(lambda: predicate(body(exchange)), timeout=timeout)
    return body(exchange)


async def ended(exchange: Exchange, task: asyncio.Task) -> None:
    """Disconnect and wait until the handler has returned."""
    exchange.disconnect()
    async with asyncio.timeout(5):
        await task


def test_an_event_is_id_then_one_data_line_per_line():
    snapshot = Snapshot("res", 7, "one\ntwo\r\nthree\rfour")
    assert sse.encode_event(snapshot) == (
        b"id: 7\ndata: 7 one\ndata: two\ndata: three\ndata: four\n\n"
    )
    assert sse.event_bytes(snapshot) is sse.event_bytes(snapshot)


async def test_the_stream_starts_with_retry_then_the_current_version(hub):
    exchange, task = fast().start("GET", "/events")
    text = await stream_until(exchange, lambda text: "id: 1\n" in text)
    start = exchange.sent[0]
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    assert start["status"] == 200
    assert headers["content-type"] == "text/event-stream; charset=utf-8"
    assert headers["cache-control"] == "no-store"
    assert headers["x-accel-buffering"] == "no"
    assert "content-length" not in headers
    assert text.startswith("retry: 2000\n\n")
    first = parsed(text)[1]
    assert first["id"] == ["1"] and first["data"][0].startswith("1 ")
    await aresource_publish(name="res", data="news")
    text = await stream_until(exchange, lambda text: "id: 2\n" in text)
    assert parsed(text)[2] == {"id": ["2"], "data": ["2 news"]}
    await ended(exchange, task)


async def test_last_event_id_wins_over_seq_and_resumes_after_it(hub):
    await aresource_publish(name="res", data="two")
    exchange, task = fast().start(
        "GET",
        "/events?seq=0",
        headers=[(b"host", b"testserver"), (b"last-event-id", b"2")],
    )
    await until(lambda: get_connections().count("events") == 1)
    await asyncio.sleep(0.05)  # the current version (2) must not come
    assert parsed(body(exchange)) == [{"retry": ["2000"]}]
    await aresource_publish(name="res", data="three")
    text = await stream_until(exchange, lambda text: "id: 3\n" in text)
    assert [block.get("id") for block in parsed(text)] == [None, ["3"]]
    await ended(exchange, task)


async def test_seq_is_the_cursor_without_last_event_id(hub):
    exchange, task = fast().start("GET", "/events?seq=1")
    await until(lambda: get_connections().count("events") == 1)
    await aresource_publish(name="res", data="line one\nline two")
    text = await stream_until(exchange, lambda text: "id: 2\n" in text)
    assert parsed(text)[1] == {"id": ["2"], "data": ["2 line one", "line two"]}
    await ended(exchange, task)


@pytest.mark.parametrize(
    ("target", "headers", "status", "reason"),
    [
        ("/events?seq=x", [], 400, "seq must be 1 to 18 decimal digits, got 'x'."),
        (
            "/events",
            [(b"last-event-id", b"abc")],
            400,
            "Last-Event-ID must be 1 to 18 decimal digits, got 'abc'.",
        ),
        ("/events?seq=%FF", [], 400, "not valid UTF-8"),
        ("/events/nope", [], 404, "There is no resource named 'nope'."),
    ],
)
async def test_refusals_are_comets(target, headers, status, reason):
    reply = await fast().get(target, headers=[(b"host", b"testserver"), *headers])
    assert reply.status_code == status
    assert reply["Content-Type"] == "text/plain; charset=utf-8"
    assert reason in reply.content.decode()


async def test_past_the_open_socket_limit_a_stream_gets_503(selector_settings):
    selector_settings(MAX_OPEN_SOCKETS=1)
    exchange, task = fast().start("GET", "/events")
    await until(lambda: get_connections().count("events") == 1)
    refused = await fast().get("/events")
    assert refused.status_code == 503 and refused["Retry-After"] == "2"
    assert "open sockets and event streams" in refused.content.decode()
    await ended(exchange, task)
    assert open_sockets.count == 0
    again, task = fast().start("GET", "/events")
    await until(lambda: get_connections().count("events") == 1)
    await ended(again, task)


async def test_the_authorize_hook_refuses_403_before_the_lookup(selector_settings):
    # Anonymous clients may read only "res": an unknown name is refused like
    # a known one, so the refusal does not tell whether it exists.
    selector_settings(AUTHORIZE="tests.test_access.can_read")
    for name in ("nope", "secret"):
        reply = await fast().get(f"/events/{name}")
        assert reply.status_code == 403
        assert reply.content.decode() == "You are not allowed to read this resource.\n"
    exchange, task = fast().start("GET", "/events/res")
    await stream_until(exchange, lambda text: "id: 1\n" in text)
    await ended(exchange, task)


async def test_a_client_that_goes_leaves_no_watcher_task_or_count(hub):
    before_tasks = len(asyncio.all_tasks())
    clients = [fast().start("GET", "/events") for _ in range(20)]
    await until(lambda: get_connections().count("events") == 20)
    assert len(hub.selector.watchers()) == 20
    # The request tasks themselves (the server's) and nothing per stream.
    assert len(asyncio.all_tasks()) == before_tasks + 20
    for exchange, task in clients:
        await ended(exchange, task)
    assert hub.selector.watchers() == []
    assert get_connections().count("events") == 0
    assert open_sockets.count == 0
    assert len(asyncio.all_tasks()) == before_tasks


async def test_silence_is_broken_by_a_keep_alive_comment(selector_settings, hub):
    selector_settings(KEEP_ALIVE_INTERVAL=0.05)
    exchange, task = fast().start("GET", "/events?seq=1")
    text = await stream_until(exchange, lambda text: text.count(": keep-alive") >= 2)
    assert text.startswith("retry: 2000\n\n: keep-alive\n\n")
    await ended(exchange, task)
    assert hub.selector.watchers() == []


async def test_the_drain_ends_the_stream_and_refuses_new_ones(hub):
    exchange, task = fast().start("GET", "/events")
    await until(lambda: get_connections().count("events") == 1)
    async with asyncio.timeout(5):
        drained = asyncio.create_task(get_connections().drain(spread=0, timeout=5))
        # The handler sees the end of its response as the server reports it.
        await until(
            lambda: exchange.sent[-1] == {"type": "http.response.body", "body": b""}
        )
        exchange.disconnect()
        await task
        assert await drained
    assert hub.selector.watchers() == []
    # Not a 503, after which EventSource would give up: an empty stream.
    late = await fast().get("/events")
    assert late.status_code == 200 and late.content == b"retry: 2000\n\n"
    assert late["Content-Type"] == "text/event-stream; charset=utf-8"


async def test_head_answers_the_headers_and_no_stream(hub):
    reply = await fast().head("/events")
    assert reply.status_code == 200 and reply.content == b""
    assert reply["Content-Type"] == "text/event-stream; charset=utf-8"
    assert hub.selector.watchers() == []


async def test_without_the_fast_path_django_serves_the_same_stream(hub):
    django = AsgiClient(get_asgi_application())
    exchange, task = django.start("GET", "/events?seq=1")
    await until(lambda: get_connections().count("events") == 1)
    await aresource_publish(name="res", data="a\nb")
    text = await stream_until(exchange, lambda text: "id: 2\n" in text)
    assert parsed(text) == [{"retry": ["2000"]}, {"id": ["2"], "data": ["2 a", "b"]}]
    headers = {k.decode().lower(): v.decode() for k, v in exchange.sent[0]["headers"]}
    assert headers["content-type"] == "text/event-stream; charset=utf-8"
    assert headers["x-accel-buffering"] == "no"
    await ended(exchange, task)
    assert hub.selector.watchers() == []
    assert get_connections().count("events") == 0 and open_sockets.count == 0
    assert (await django.get("/events/nope")).status_code == 404


async def test_without_the_fast_path_the_drain_ends_the_stream(hub):
    exchange, task = AsgiClient(get_asgi_application()).start("GET", "/events")
    await stream_until(exchange, lambda text: "id: 1\n" in text)
    async with asyncio.timeout(5):
        assert await get_connections().drain(spread=0, timeout=5)
        await task  # the response ended: Django's handler returns
    assert hub.selector.watchers() == [] and open_sockets.count == 0
