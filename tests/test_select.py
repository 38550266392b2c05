"""``/select`` in process: the wire format of its three transports, the
authorization hook per resource, Django's path for the event stream, the
drain, the rate limit, and nothing left behind by a client that goes. Over
real Daphne and Uvicorn processes: test_select_servers."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.core.asgi import get_asgi_application
from hypothesis import given, settings
from hypothesis import strategies as st

from selector_app import services
from selector_app.fastpath import CometFastPath
from selector_app.limits import open_sockets
from selector_app.protocol import InvalidCursor, MalformedQuery, Snapshot, parse_query
from selector_app.routing import websocket_urlpatterns
from selector_app.select_wire import (
    answer,
    event_id,
    last_event_cursors,
    parse_control,
    query_cursors,
)
from selector_app.services import aresource_publish
from selector_app.shutdown import get_connections
from tests.support.asgi import AsgiClient
from tests.support.waiting import until
from tests.test_access import REASON, asked
from tests.test_events import body, ended, parsed, stream_until

# The wire -----------------------------------------------------------------------


def test_a_watch_set_is_repeated_name_and_optional_cursor_items():
    query = parse_query("r=a:3&r=b&r=c:0&seq=9")
    assert query_cursors(query, limit=3) == {"a": 3, "b": 0, "c": 0}
    assert last_event_cursors("a:4,b:7", limit=2) == {"a": 4, "b": 7}
    assert event_id({"a": 4, "b": 7}) == "a:4,b:7"


@pytest.mark.parametrize(
    ("query", "error", "named"),
    [
        ("r=a:3&r=b:x", InvalidCursor, "'b:x'"),
        ("r=a&r=b:", InvalidCursor, "'b:'"),
        ("r=a%20b", MalformedQuery, "'a b'"),
        ("r=", MalformedQuery, "''"),
        ("seq=1", MalformedQuery, "names no resource"),
        ("r=a&r=b&r=c&r=d", MalformedQuery, "at most 3"),
    ],
)
def test_every_bad_item_is_named(query, error, named):
    with pytest.raises(error, match=named.replace(" ", ".")) as raised:
        query_cursors(parse_query(query), limit=3)
    assert named in str(raised.value)


def test_control_frames():
    assert parse_control('{"watch": {"c": 0, "d": 5}}').watch == {"c": 0, "d": 5}
    assert parse_control('{"unwatch": ["a"]}').unwatch == ["a"]
    for bad in (
        "watch c",
        "[]",
        '{"watch": {}}',
        '{"unwatch": "a"}',
        '{"watch": {"c": -1}}',
        '{"watch": {"c": true}}',
        '{"watch": {"c": "1"}}',
        '{"watch": {"a b": 0}}',
        '{"watch": {"c": 0}, "unwatch": ["a"]}',
        None,
    ):
        with pytest.raises((MalformedQuery, InvalidCursor)):
            parse_control(bad)


def test_a_comet_answer_is_a_json_array_of_messages():
    text = answer([Snapshot("a", 3, 'x "y"\n'), Snapshot("b", 1, "é")])
    assert json.loads(text) == [
        {"name": "a", "sequence": 3, "data": 'x "y"\n'},
        {"name": "b", "sequence": 1, "data": "é"},
    ]


# In process ---------------------------------------------------------------------


@pytest.fixture
async def grid(res):
    for name in ("a", "b"):
        await sync_to_async(services.resource_create)(name=name, data=f"{name}1")


def fast() -> AsgiClient:
    return AsgiClient(CometFastPath(get_asgi_application()))


def socket(path: str) -> WebsocketCommunicator:
    return WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)


async def frames(comm: WebsocketCommunicator, count: int) -> list[dict]:
    return [json.loads(await comm.receive_from(timeout=5)) for _ in range(count)]


@pytest.mark.usefixtures("grid")
async def test_comet_select_holds_until_one_moves(hub):
    first = await fast().get("/select?r=a:0&r=b:1&r=res:1")
    assert first.status_code == 200 and first["Content-Type"] == "application/json"
    assert first["Cache-Control"] == "no-store"
    assert json.loads(first.content) == [{"name": "a", "sequence": 1, "data": "a1"}]
    held = asyncio.create_task(fast().get("/select?r=a:1&r=b:1"))
    await until(lambda: hub.waiting_polls == 1)
    assert len(hub.selector.watchers()) == 1
    await aresource_publish(name="b", data="b2")
    async with asyncio.timeout(5):
        reply = await held
    assert json.loads(reply.content) == [{"name": "b", "sequence": 2, "data": "b2"}]
    assert hub.selector.watchers() == []
    # Django's handler, for sites without the fast path, answers the same.
    django = await AsgiClient(get_asgi_application()).get("/select?r=a:1&r=b:1")
    assert django.status_code == 200 and django["Content-Type"] == "application/json"
    assert json.loads(django.content) == [{"name": "b", "sequence": 2, "data": "b2"}]
    bad = await AsgiClient(get_asgi_application()).get("/select?r=a:1&r=b:x")
    assert bad.status_code == 400 and "'b:x'" in bad.content.decode()


@pytest.mark.usefixtures("grid")
async def test_the_hook_is_asked_for_every_resource(selector_settings, hub):
    selector_settings(AUTHORIZE="tests.test_access.can_read")
    asked.clear()
    reply = await fast().get("/select?r=res&r=a")
    assert reply.status_code == 403 and reply.content.decode() == REASON + "\n"
    assert [name for _, name in asked] == ["res", "a"]
    comm = socket("/select?r=res&r=nope")
    assert (await comm.connect())[0]
    closed = await comm.receive_output(timeout=5)
    assert (closed["code"], closed["reason"]) == (4403, REASON)
    comm = socket("/select?r=res")
    await comm.connect()
    await frames(comm, 1)
    await comm.send_to(text_data=json.dumps({"watch": {"a": 0}}))
    closed = await comm.receive_output(timeout=5)
    assert closed["code"] == 4403
    await comm.disconnect()


@pytest.mark.usefixtures("grid")
async def test_a_socket_changes_its_set_and_leaves_nothing_behind(hub):
    comm = socket("/select?r=a&r=b:1")
    await comm.connect()
    assert await frames(comm, 1) == [{"name": "a", "sequence": 1, "data": "a1"}]
    await comm.send_to(text_data='{"watch": {"res": 0}, "x": 1}')
    closed = await comm.receive_output(timeout=5)
    assert closed["code"] == 4400 and "JSON" not in closed["reason"]
    await comm.disconnect()
    assert hub.selector.watchers() == []

    comm = socket("/select?r=a:1")
    await comm.connect()
    await comm.send_to(text_data=json.dumps({"watch": {"b": 1}}))
    await comm.send_to(text_data=json.dumps({"unwatch": ["a"]}))
    await until(lambda: [w.resources() for w in hub.selector.watchers()] == [["b"]])
    await aresource_publish(name="a", data="a2")
    await aresource_publish(name="b", data="b2")
    assert await frames(comm, 1) == [{"name": "b", "sequence": 2, "data": "b2"}]
    await comm.disconnect()
    assert hub.selector.watchers() == [] and open_sockets.count == 0


@pytest.mark.usefixtures("grid")
async def test_frames_count_against_the_rate_limit(selector_settings, hub):
    selector_settings(RECEIVE_FRAMES_PER_SECOND=1, RECEIVE_FRAME_BURST=2)
    comm = socket("/select?r=a")
    await comm.connect()
    await frames(comm, 1)
    for _ in range(3):
        await comm.send_to(text_data='{"unwatch": ["b"]}')
    closed = await comm.receive_output(timeout=5)
    assert closed["code"] == 1008
    await comm.disconnect()


@pytest.mark.usefixtures("grid")
@pytest.mark.parametrize("path", ["fast", "django"])
async def test_an_event_stream_carries_the_cursor_set(hub, path):
    client = fast() if path == "fast" else AsgiClient(get_asgi_application())
    exchange, task = client.start(
        "GET",
        "/events/select?r=a&r=b",
        headers=[(b"host", b"testserver"), (b"last-event-id", b"a:1,b:0")],
    )
    await stream_until(exchange, lambda text: "event: b" in text)
    await aresource_publish(name="a", data="a2")
    text = await stream_until(exchange, lambda text: "a:2,b:1" in text)
    assert parsed(text) == [
        {"retry": ["2000"]},
        {
            "event": ["b"],
            "id": ["a:1,b:1"],
            "data": ['{"name":"b","sequence":1,"data":"b1"}'],
        },
        {
            "event": ["a"],
            "id": ["a:2,b:1"],
            "data": ['{"name":"a","sequence":2,"data":"a2"}'],
        },
    ]
    await ended(exchange, task)
    assert hub.selector.watchers() == []
    assert get_connections().count("events") == 0 and open_sockets.count == 0
    assert (await client.get("/events/select?r=a&r=zz")).status_code == 404
    assert (await client.get("/events/select?r=a:x")).status_code == 400
    assert body(exchange)  # the stream was read


@pytest.mark.usefixtures("grid")
async def test_the_drain_ends_select_streams_and_sockets(hub):
    exchange, task = fast().start("GET", "/events/select?r=a")
    comm = socket("/select?r=a")
    await comm.connect()
    await frames(comm, 1)
    await until(lambda: get_connections().count("events") == 1)
    async with asyncio.timeout(5):
        drained = asyncio.create_task(get_connections().drain(spread=0, timeout=5))
        closed = await comm.receive_output(timeout=5)
        assert closed["code"] == 1012
        await until(
            lambda: exchange.sent[-1] == {"type": "http.response.body", "body": b""}
        )
        exchange.disconnect()
        await task
        await comm.disconnect()
        assert await drained
    assert hub.selector.watchers() == []


async def test_the_page_has_a_grid_panel_of_the_grid_resources(selector_settings):
    selector_settings(GRID_RESOURCES=["a", "b-2"])
    page = (await fast().get("/")).content.decode()
    assert 'data-live="grid" data-names="a b-2"' in page
    assert (
        'data-websocket="/select" data-sse="/events/select" data-comet="/select"'
        in (page)
    )
    assert page.count("data-cell=") == 2
    selector_settings(GRID_RESOURCES=[])
    assert 'data-live="grid"' not in (await fast().get("/")).content.decode()


# Any interleaving, through the consumer ------------------------------------------

GRID = ["a", "b", "c"]
steps = st.lists(
    st.tuples(st.sampled_from(["publish", "watch", "unwatch"]), st.sampled_from(GRID)),
    max_size=25,
)


@pytest.mark.usefixtures("grid")
@settings(max_examples=15)
@given(steps=steps)
async def test_any_interleaving_of_frames_and_publishes_on_a_socket(hub, steps):
    """Publishes and watch / unwatch frames in any order, on a real consumer:
    the socket never sends a resource once the server has read its
    ``unwatch``, never goes backwards or repeats a version, and ends with the
    latest version of every resource it watches."""
    await sync_to_async(services.resource_ensure)(name="c")
    comm = socket("/select?r=a")
    await comm.connect()
    watched = {"a"}
    got: dict[str, list[int]] = {name: [] for name in GRID}

    def take(frame: str) -> None:
        message = json.loads(frame)
        assert message["name"] in watched, message
        got[message["name"]].append(message["sequence"])

    async def drain() -> None:
        while not comm.output_queue.empty():
            take((await comm.receive_output(timeout=1))["text"])

    def watching() -> set[str]:
        return {name for w in hub.selector.watchers() for name in w.resources()}

    for action, name in steps:
        if action == "publish":
            await aresource_publish(name=name, data=f"{name}-{len(got[name])}")
        elif action == "watch" and name not in watched:
            cursor = got[name][-1] if got[name] else 0
            await comm.send_to(text_data=json.dumps({"watch": {name: cursor}}))
            watched.add(name)
            await until(lambda name=name: name in watching())
        elif action == "unwatch" and name in watched and len(watched) > 1:
            await comm.send_to(text_data=json.dumps({"unwatch": [name]}))
            await until(lambda name=name: name not in watching())
            await drain()  # sent before the server read the frame
            watched.discard(name)
        await drain()
    latest = {
        s.name: s.sequence for s in await sync_to_async(services.resource_snapshots)()
    }
    async with asyncio.timeout(5):
        while any(not got[n] or got[n][-1] != latest[n] for n in watched):
            take(await comm.receive_from(timeout=5))
    for name in GRID:
        assert got[name] == sorted(set(got[name])), (name, got[name])
    await comm.disconnect()
    assert hub.selector.watchers() == []
