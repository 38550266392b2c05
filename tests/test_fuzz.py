"""Fuzzing every endpoint in process: hostile queries, paths, methods,
headers and client frames never get a 500 or a 1011, get the answer the
protocol documents, and leave no watcher or task behind.

The table of allowed answers is ``tests.support.fuzzing.ALLOWED``. Examples
are derandomized (the ``ci`` Hypothesis profile in conftest.py), so a run is
the same run every time; ``--hypothesis-profile=deep`` explores further.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from channels.testing import WebsocketCommunicator
from django.core.asgi import get_asgi_application
from hypothesis import assume, given
from hypothesis import strategies as st

from realtime_site.asgi import application
from selector_app import services
from selector_app.consumers import echo_reply
from selector_app.fastpath import CometFastPath
from tests.support.asgi import AsgiClient
from tests.support.fuzzing import (
    ALLOWED,
    DATA,
    HELD,
    METHODS,
    RAW_QUERIES,
    SEGMENTS,
    TEXT,
    expected_cursor,
    nothing_left_behind,
    queries,
    selector_tasks,
)
from tests.support.waiting import until

pytestmark = pytest.mark.usefixtures("res")

ORIGIN = (b"origin", b"http://localhost")
#: The demo's routes, which "elsewhere" paths must not hit.
ROUTED = (
    "/admin",
    "/static",
    "/comet",
    "/websocket",
    "/bidirectional",
    "/health",
    "/metrics",
)


@pytest.fixture
async def quick(selector_settings, hub):
    """Held polls time out at once; ticks are rare (frames are echoes); and
    the tasks the runtime itself runs, which may stay."""
    selector_settings(LONG_POLL_TIMEOUT=0.01, TICK_INTERVAL=3600, MAX_MESSAGE_SIZE=64)
    return selector_tasks()


@pytest.fixture(params=["django", "fast_path"])
def web(request) -> AsgiClient:
    app = get_asgi_application()
    return AsgiClient(app if request.param == "django" else CometFastPath(app))


def current(hub) -> int:
    return hub.get("res").sequence


async def ws_outcome(hub, path: bytes, query: bytes = b"") -> int | str:
    """Connect to the demo's WebSocket application; the handshake's status
    if refused, else the first thing the server says (or ``HELD``)."""
    comm = WebsocketCommunicator(application, "/", headers=[ORIGIN])
    comm.scope.update(path=path.decode(), raw_path=path, query_string=query)
    connected, _ = await comm.connect(timeout=5)
    if not connected:
        return 403
    try:
        await until(lambda: not comm.output_queue.empty() or hub.selector.watchers())
        if comm.output_queue.empty():
            return HELD
        message = comm.output_queue.get_nowait()
        return DATA if message["type"] == "websocket.send" else message["code"]
    finally:
        await comm.disconnect(timeout=5)


async def get_path(web: AsgiClient, path: str, query: bytes = b""):
    """GET exactly ``path`` (a ``?`` in it is part of the path, as a server
    hands a percent-encoded one to the application)."""
    raw = quote(path).encode()
    return await web.request("GET", "/", path=path, raw_path=raw, query_string=query)


def one_line(content: bytes) -> bool:
    text = content.decode()
    return text.endswith("\n") and "\n" not in text[:-1] and len(text) < 200


# Comet ------------------------------------------------------------------------


@given(query=queries())
async def test_comet_answers_every_query_as_documented(web, hub, quick, query):
    raw, seq = query
    reply = await web.get("/comet?" + raw.decode())
    assert reply.status_code in ALLOWED["/comet"]
    cursor = expected_cursor(seq)
    if cursor is None:
        assert reply.status_code == 400 and one_line(reply.content)
    else:
        assert reply.status_code == (204 if cursor == current(hub) else 200)
    await nothing_left_behind(hub, quick)


@given(raw=RAW_QUERIES)
async def test_comet_refuses_malformed_queries_with_400(web, hub, quick, raw):
    reply = await web.request("GET", "/comet", query_string=raw)
    assert reply.status_code in ALLOWED["/comet"] and reply.status_code < 500
    assert reply.status_code in (200, 204, 400)
    await nothing_left_behind(hub, quick)


@given(segment=SEGMENTS)
async def test_comet_names_are_a_version_or_404(web, hub, quick, segment):
    reply = await get_path(web, "/comet/" + segment, b"seq=0")
    assert reply.status_code in ALLOWED["/comet/<name>"]
    assert reply.status_code == (200 if segment == "res" else 404)
    await nothing_left_behind(hub, quick)


@given(method=st.sampled_from(METHODS), path=st.sampled_from(["/", "/comet/res"]))
async def test_unsafe_methods_are_405(web, hub, quick, method, path):
    reply = await web.request(method, path + "?seq=0")
    endpoint = "/" if path == "/" else "/comet/<name>"
    assert reply.status_code in ALLOWED[endpoint]
    assert reply.status_code == (200 if method in ("GET", "HEAD") else 405)
    await nothing_left_behind(hub, quick)


@given(
    host=st.one_of(
        st.sampled_from([b"localhost", b"127.0.0.1:8000", b"", b"[::1]", b"a" * 300]),
        st.binary(max_size=40),
    ),
    path=st.sampled_from(["/", "/comet", "/nowhere"]),
)
async def test_a_bad_host_is_400_everywhere(web, hub, quick, host, path):
    reply = await web.request("GET", path, headers=[(b"host", host)])
    allowed = ALLOWED[{"/": "/", "/comet": "/comet"}.get(path, "http elsewhere")]
    assert reply.status_code in allowed and reply.status_code != 405
    await nothing_left_behind(hub, quick)


@given(path=st.text(TEXT, max_size=60))
async def test_other_paths_are_404(web, hub, quick, path):
    path = "/" + path
    assume(path != "/" and not path.startswith(ROUTED))
    reply = await get_path(web, path)
    assert reply.status_code in ALLOWED["http elsewhere"]
    await nothing_left_behind(hub, quick)


@given(
    path=st.sampled_from(["/health", "/metrics"]),
    method=st.sampled_from(METHODS),
    query=st.one_of(queries().map(lambda q: q[0]), RAW_QUERIES),
)
async def test_health_and_metrics_answer_any_request_as_documented(
    web, hub, quick, path, method, query
):
    reply = await web.request(method, path, query_string=query)
    assert reply.status_code in ALLOWED[path]
    if method not in ("GET", "HEAD"):
        # 400: a query Django cannot decode is refused before the method.
        assert reply.status_code in (400, 405)
    await nothing_left_behind(hub, quick)


@given(query=st.one_of(queries().map(lambda q: q[0]), RAW_QUERIES))
async def test_the_page_ignores_its_query(web, hub, quick, query):
    reply = await web.request("GET", "/", query_string=query)
    assert reply.status_code in {200, 400} & ALLOWED["/"]
    await nothing_left_behind(hub, quick)


# WebSocket push ------------------------------------------------------------------


@given(query=st.one_of(queries(), RAW_QUERIES.map(lambda raw: (raw, ...))))
async def test_push_answers_every_query_as_documented(hub, quick, query):
    raw, seq = query
    outcome = await ws_outcome(hub, b"/websocket", raw)
    assert outcome in ALLOWED["/websocket"]
    if seq is not ...:  # a well-encoded query: the answer is known
        cursor = expected_cursor(seq)
        if cursor is None:
            assert outcome == 4400
        else:
            assert outcome == (HELD if cursor == current(hub) else DATA)
    else:
        assert outcome in (DATA, HELD, 4400)
    await nothing_left_behind(hub, quick)


@given(segment=SEGMENTS)
async def test_push_names_are_a_version_or_4404(hub, quick, segment):
    outcome = await ws_outcome(hub, b"/websocket/" + segment.encode())
    assert outcome in ALLOWED["/websocket/<name>"]
    assert outcome == (DATA if segment == "res" else 4404)
    await nothing_left_behind(hub, quick)


@given(path=st.text(TEXT, max_size=60))
async def test_other_websocket_paths_are_closed_4404(hub, quick, path):
    path = "/" + path
    assume(not path.startswith(ROUTED[2:]))
    outcome = await ws_outcome(hub, path.encode())
    assert outcome in ALLOWED["ws elsewhere"]
    assert outcome == 4404
    await nothing_left_behind(hub, quick)


#: Client frames as the server hands them to the application.
FRAMES = st.lists(
    st.one_of(
        st.text(TEXT, max_size=100).map(lambda text: {"text": text}),
        st.binary(max_size=100).map(lambda data: {"bytes": data}),
    ),
    max_size=8,
)


@given(frames=FRAMES)
async def test_push_ignores_whatever_the_client_sends(hub, quick, frames):
    comm = WebsocketCommunicator(application, "/websocket", headers=[ORIGIN])
    assert (await comm.connect(timeout=5))[0]
    assert (await comm.receive_from(timeout=5)).startswith(f"{current(hub)} ")
    for frame in frames:
        await comm.send_input({"type": "websocket.receive", **frame})
    await services.aresource_publish(name="res", data="next")
    assert await comm.receive_from(timeout=5) == f"{current(hub)} next"
    await comm.disconnect(timeout=5)
    await nothing_left_behind(hub, quick)


# Bidirectional ---------------------------------------------------------------------


@given(frames=FRAMES)
async def test_bidirectional_echoes_text_ignores_bytes_and_closes_1009(
    hub, quick, frames
):
    comm = WebsocketCommunicator(application, "/bidirectional", headers=[ORIGIN])
    assert (await comm.connect(timeout=5))[0]
    closed = None
    for frame in frames:
        await comm.send_input({"type": "websocket.receive", **frame})
        text = frame.get("text")
        if text is None:
            continue
        message = await comm.receive_output(timeout=5)
        closed = message.get("code") if message["type"] == "websocket.close" else None
        assert (closed or DATA) in ALLOWED["/bidirectional"]
        if len(text.encode()) > 64:
            assert closed == 1009
        elif len(echo_reply(text).encode()) > 64 and closed:
            assert closed == 1009  # the reply would be over the limit
        else:
            assert message == {"type": "websocket.send", "text": echo_reply(text)}
        if closed:
            break
    await comm.disconnect(timeout=5)
    await nothing_left_behind(hub, quick)


@pytest.fixture
async def ticking(selector_settings, hub):
    """Ticks at once: the first thing a bidirectional socket says."""
    selector_settings(TICK_INTERVAL=0.001)
    return selector_tasks()


@given(query=RAW_QUERIES, segment=st.sampled_from(["", "/", "/x"]))
async def test_bidirectional_ignores_its_query(hub, ticking, query, segment):
    outcome = await ws_outcome(hub, b"/bidirectional" + segment.encode(), query)
    endpoint = "/bidirectional" if not segment else "ws elsewhere"
    assert outcome in ALLOWED[endpoint]
    assert outcome == (DATA if not segment else 4404)
    await nothing_left_behind(hub, ticking)
