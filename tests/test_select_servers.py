"""``/select`` over real Daphne and Uvicorn processes with real clients: one
WebSocket, one long-poll and one event stream following several resources,
which the embedded updater publishes ten times a second. Each client gets
JSON messages, strictly increasing per resource, only of what it watches;
a socket changes its set with ``watch`` / ``unwatch`` frames; every bad item
is refused by name."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections import defaultdict

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.support.server import SERVERS, ServerProcess
from tests.test_events_servers import stream

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

GRID = ["a", "b", "c"]
FAST = {
    "EMBEDDED_UPDATER": True,
    "UPDATE_INTERVAL": 0.1,
    "RESOURCE_LENGTH": 32,
    "GRID_RESOURCES": GRID,
    "MAX_SELECT_RESOURCES": 4,
}


async def connect(server: ServerProcess, query: str):
    return await websockets.connect(
        f"{server.ws_url}/select?{query}", open_timeout=30, ping_interval=None
    )


class Follower:
    """What a client checks of every message: it is watched, and it moves
    its resource strictly forward."""

    def __init__(self) -> None:
        self.last: dict[str, int] = {}
        self.counts: dict[str, int] = defaultdict(int)

    def take(self, text: str, watched: set[str]) -> dict:
        message = json.loads(text)
        assert set(message) == {"name", "sequence", "data"}
        name, sequence = message["name"], message["sequence"]
        assert name in watched, message
        assert sequence > self.last.get(name, 0), (message, self.last)
        assert len(message["data"]) == 32
        self.last[name] = sequence
        self.counts[name] += 1
        return message


async def receive(ws) -> str:
    async with asyncio.timeout(10):
        return await ws.recv()


async def closed_with(ws) -> tuple[int, str]:
    async with asyncio.timeout(10):
        with pytest.raises(ConnectionClosed):
            while True:
                await ws.recv()
    return ws.close_code, ws.close_reason


@pytest.mark.parametrize("kind", SERVERS)
async def test_one_socket_follows_several_resources_and_changes_its_set(serve, kind):
    with serve(kind, **FAST) as server:
        follower = Follower()
        async with await connect(server, "r=a&r=b:0") as ws:
            watched = {"a", "b"}
            while min(follower.counts["a"], follower.counts["b"]) < 3:
                follower.take(await receive(ws), watched)
            await ws.send(json.dumps({"watch": {"c": 0}}))
            watched.add("c")
            while follower.counts["c"] < 3:
                follower.take(await receive(ws), watched)
            await ws.send(json.dumps({"unwatch": ["a"]}))
            # Frames are handled in order: once `res` comes, `a` is gone.
            await ws.send(json.dumps({"watch": {"res": 0}}))
            watched.add("res")
            while follower.counts["res"] == 0:
                follower.take(await receive(ws), watched)
            watched.discard("a")
            seen = dict(follower.counts)
            while follower.counts["b"] < seen["b"] + 3:
                follower.take(await receive(ws), watched)
            assert follower.counts["c"] > seen["c"]

        # Resuming from cursors: nothing the client has is sent again.
        resume = "&".join(f"r={name}:{follower.last[name]}" for name in ("b", "c"))
        async with await connect(server, resume) as ws:
            for _ in range(4):
                follower.take(await receive(ws), {"b", "c"})


@pytest.mark.parametrize("kind", SERVERS)
async def test_bad_watch_sets_are_refused_by_name(serve, kind):
    with serve(kind, **FAST) as server:
        async with await connect(server, "r=a&r=b:x") as ws:
            code, reason = await closed_with(ws)
            assert code == 4400 and "'b:x'" in reason
        async with await connect(server, "r=a&r=nope") as ws:
            code, reason = await closed_with(ws)
            assert code == 4404 and "'nope'" in reason
        async with await connect(server, "") as ws:
            assert (await closed_with(ws))[0] == 4400
        async with await connect(server, "r=a&r=b&r=c&r=res&r=x") as ws:
            code, reason = await closed_with(ws)
            assert code == 4400 and "at most 4" in reason
        async with await connect(server, "r=a") as ws:
            await receive(ws)
            await ws.send(json.dumps({"watch": {"b": 0, "c": 0, "res": 0, "d": 0}}))
            code, reason = await closed_with(ws)
            assert code == 4400 and "at most 4" in reason
        async with await connect(server, "r=a") as ws:
            await receive(ws)
            await ws.send(json.dumps({"watch": {"ghost": 0}}))
            code, reason = await closed_with(ws)
            assert code == 4404 and "'ghost'" in reason
        async with await connect(server, "r=a") as ws:
            await receive(ws)
            await ws.send("watch c")
            code, reason = await closed_with(ws)
            assert code == 4400 and "JSON" in reason


@pytest.mark.parametrize("kind", SERVERS)
async def test_a_select_socket_is_closed_1012_on_sigterm(serve, kind):
    with serve(kind, **FAST) as server:
        async with await connect(server, "r=a&r=b") as ws:
            await receive(ws)
            server.process.send_signal(signal.SIGTERM)
            assert (await closed_with(ws))[0] == 1012


def messages(response: httpx.Response) -> list[dict]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    return response.json()


@pytest.mark.parametrize("kind", SERVERS)
async def test_comet_select_answers_every_resource_that_differs(serve, kind):
    with serve(kind, **FAST) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=15) as http:
            first = messages(await http.get("/select?r=a:0&r=b:0"))
            assert sorted(m["name"] for m in first) == ["a", "b"]
            cursors = {m["name"]: m["sequence"] for m in first}
            for _ in range(5):  # held until one moves, then all that differ
                query = "&".join(f"r={n}:{s}" for n, s in cursors.items())
                answer = messages(await http.get(f"/select?{query}"))
                assert answer
                for message in answer:
                    assert message["sequence"] > cursors[message["name"]]
                    cursors[message["name"]] = message["sequence"]
            refused = await http.get("/select?r=a:0&r=b:x")
            assert refused.status_code == 400 and "'b:x'" in refused.text
            assert (await http.get("/select")).status_code == 400
            unknown = await http.get("/select?r=a&r=nope")
            assert unknown.status_code == 404 and "'nope'" in unknown.text
            many = await http.get("/select?r=a&r=b&r=c&r=res&r=x")
            assert many.status_code == 400 and "at most 4" in many.text
    quiet = {**FAST, "UPDATE_INTERVAL": 3600, "LONG_POLL_TIMEOUT": 0.5}
    with serve(kind, **quiet) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=15) as http:
            now = messages(await http.get("/select?r=a&r=b"))
            query = "&".join(f"r={m['name']}:{m['sequence']}" for m in now)
            assert (await http.get(f"/select?{query}")).status_code == 204


@pytest.mark.parametrize("kind", SERVERS)
async def test_an_event_stream_follows_several_resources_and_resumes_them_all(
    serve, kind
):
    with serve(kind, **FAST) as server:
        follower = Follower()
        last_id = ""
        async with stream(server, "/events/select?r=a&r=b") as events:
            assert events.response.status_code == 200
            assert await events.next() == {"retry": ["2000"]}
            while min(follower.counts["a"], follower.counts["b"]) < 3:
                event = await events.next()
                [data] = event["data"]
                message = follower.take(data, {"a", "b"})
                assert event["event"] == [message["name"]]
                [last_id] = event["id"]
                has = {name: follower.last.get(name, 0) for name in ("a", "b")}
                assert last_id == f"a:{has['a']},b:{has['b']}"
        async with stream(server, "/events/select?r=a&r=b", last_event_id=last_id) as e:
            await e.next()  # retry
            for _ in range(4):
                follower.take((await e.next())["data"][0], {"a", "b"})
        async with stream(server, "/events/select?r=a&r=nope") as unknown:
            assert unknown.response.status_code == 404
        async with stream(server, "/events/select?r=a:-1") as refused:
            assert refused.response.status_code == 400


@pytest.mark.parametrize("kind", SERVERS)
async def test_select_sockets_get_the_limits_of_every_socket(serve, kind):
    limits = {
        **FAST,
        "MAX_OPEN_SOCKETS": 2,
        "RECEIVE_FRAMES_PER_SECOND": 1,
        "RECEIVE_FRAME_BURST": 3,
    }
    with serve(kind, **limits) as server:
        # A cross-site page may not open one; a script (no Origin) may.
        with pytest.raises(InvalidStatus) as refused:
            await websockets.connect(
                f"{server.ws_url}/select?r=a", origin="http://evil.example"
            )
        assert refused.value.response.status_code == 403
        async with (
            await connect(server, "r=a") as first,
            await connect(server, "r=b") as second,
        ):
            await receive(first)
            await receive(second)
            reason = "This server process holds its limit of 2 open sockets"
            if kind == "uvicorn":
                with pytest.raises(InvalidStatus) as refused:
                    await connect(server, "r=c")
                assert refused.value.response.status_code == 503
                assert refused.value.response.body.decode().startswith(reason)
            else:  # Daphne answers any refusal 403: accepted, then 1013
                async with await connect(server, "r=c") as third:
                    code, text = await closed_with(third)
                    assert code == 1013 and text.startswith(reason)
            for _ in range(5):  # frames over the rate limit
                with contextlib.suppress(ConnectionClosed):
                    await first.send('{"unwatch": ["zz"]}')
            code, text = await closed_with(first)
            assert code == 1008 and "rate limit" in text


@pytest.mark.parametrize("kind", SERVERS)
async def test_a_held_select_long_poll_is_answered_503_on_sigterm(serve, kind):
    # The updater creates the resources and publishes nothing for an hour.
    with serve(kind, **{**FAST, "UPDATE_INTERVAL": 3600}) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=15) as http:
            now = messages(await http.get("/select?r=a&r=b"))
            query = "&".join(f"r={m['name']}:{m['sequence']}" for m in now)
            held = asyncio.create_task(http.get(f"/select?{query}"))
            await asyncio.sleep(0.5)
            server.process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(10):
                reply = await held
            assert reply.status_code == 503 and reply.headers["Retry-After"] == "2"
