"""GET /events over real Daphne and Uvicorn processes (the documented commands)
with a real HTTP client: the framing, ids and resuming with ``Last-Event-ID``,
keep-alive comments, nothing left behind by clients that go, the drain on
SIGTERM, and a client that stops reading."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.server import SERVERS, ServerProcess, tail

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

METRICS = {"METRICS": True, "METRICS_NETWORKS": ["127.0.0.0/8"]}
FAST = {"EMBEDDED_UPDATER": True, "UPDATE_INTERVAL": 0.1, **METRICS}


class Events:
    """The events of one stream as a client parses them: each a dict of its
    fields (a field's lines in order), comments under ``":"``."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()

    async def next(self) -> dict[str, list[str]]:
        fields: dict[str, list[str]] = {}
        async with asyncio.timeout(10):
            async for line in self.lines:
                if line == "":
                    if fields:
                        return fields
                    continue
                name, _, value = line.partition(":")
                fields.setdefault(name, []).append(value.removeprefix(" "))
        raise EOFError(f"The stream ended: {fields}")


@contextlib.asynccontextmanager
async def stream(
    server: ServerProcess, path: str = "/events", **headers: str
) -> AsyncIterator[Events]:
    headers = {key.replace("_", "-"): value for key, value in headers.items()}
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=10) as http,
        http.stream("GET", path, headers=headers) as response,
    ):
        yield Events(response)


async def scrape(server: ServerProcess) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        text = (await http.get("/metrics")).text
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            label = sample.labels.get("transport")
            samples[sample.name + (f"[{label}]" if label else "")] = sample.value
    return samples


@pytest.mark.parametrize("kind", SERVERS)
async def test_events_follow_the_resource_and_resume_after_the_last_id(serve, kind):
    with serve(kind, **FAST) as server:
        async with stream(server) as events:
            response = events.response
            assert response.status_code == 200
            assert (
                response.headers["content-type"] == "text/event-stream; charset=utf-8"
            )
            assert response.headers["cache-control"] == "no-store"
            assert response.headers["x-accel-buffering"] == "no"
            assert await events.next() == {"retry": ["2000"]}
            seen = []
            for _ in range(4):
                event = await events.next()
                [data] = event["data"]
                sequence, text = data.split(" ", 1)
                assert event["id"] == [sequence] and len(text) == 1024
                seen.append(int(sequence))
        # A reader that keeps up gets every version, in order.
        assert seen == list(range(seen[0], seen[0] + 4))
        async with stream(server, last_event_id=str(seen[-1])) as events:
            assert await events.next() == {"retry": ["2000"]}
            resumed = int((await events.next())["id"][0])
        assert resumed > seen[-1]  # nothing repeated
        async with stream(server, "/events?seq=x") as refused:
            assert refused.response.status_code == 400
        async with stream(server, "/events/nope") as unknown:
            assert unknown.response.status_code == 404


@pytest.mark.parametrize("kind", SERVERS)
async def test_a_quiet_stream_gets_keep_alive_comments(serve, kind):
    with serve(kind, EMBEDDED_UPDATER=False, KEEP_ALIVE_INTERVAL=0.3) as server:
        async with stream(server) as events:
            await events.next()  # retry
            current = int((await events.next())["id"][0])
        async with stream(server, f"/events?seq={current}") as events:
            assert await events.next() == {"retry": ["2000"]}
            assert await events.next() == {"": ["keep-alive"]}
            assert await events.next() == {"": ["keep-alive"]}


async def settled(server: ServerProcess, **expected: float) -> dict[str, float]:
    """Scrape until the gauges have the ``expected`` values (the server's
    tasks end a moment after the client has gone); the last scrape."""
    async with asyncio.timeout(10):
        while True:
            samples = await scrape(server)
            if all(samples[name] == value for name, value in expected.items()):
                return samples
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("kind", SERVERS)
async def test_clients_that_go_leave_no_watcher_and_no_task(serve, kind):
    with serve(kind, **FAST) as server:
        async with stream(server) as events:  # the runtime starts
            await events.next()
        before = await settled(server, **{"selector_app_open_connections[events]": 0})
        async with contextlib.AsyncExitStack() as stack:
            # Kept: a stream's line iterator closes its response when collected.
            opened = [
                await stack.enter_async_context(stream(server)) for _ in range(20)
            ]
            for events in opened:
                await events.next()
                await events.next()
            during = await scrape(server)
            assert during["selector_app_open_connections[events]"] == 20
            assert (
                during["selector_app_watchers"] == before["selector_app_watchers"] + 20
            )
            # At most the server's one task per connection: none of the app's.
            assert (
                during["selector_app_loop_tasks"]
                <= before["selector_app_loop_tasks"] + 20
            )
        after = await settled(
            server,
            **{
                "selector_app_open_connections[events]": 0,
                "selector_app_watchers": before["selector_app_watchers"],
                "selector_app_loop_tasks": before["selector_app_loop_tasks"],
            },
        )
        assert after["selector_app_sent_total[events]"] >= 20


@pytest.mark.parametrize("kind", SERVERS)
async def test_sigterm_ends_the_streams(serve, kind):
    with serve(kind, **FAST) as server:
        async with stream(server) as events:
            await events.next()
            await events.next()
            server.process.send_signal(signal.SIGTERM)
            with pytest.raises(EOFError):
                while True:  # the stream ends within the drain window
                    await events.next()
        async with asyncio.timeout(10):
            while server.process.poll() is None:  # noqa: ASYNC110 (a process)
                await asyncio.sleep(0.05)
        assert "Drained in" in tail(server.log_path, 200)


async def test_daphne_drops_a_client_that_stops_reading(serve):
    """Daphne writes every chunk without waiting for the client: past what
    the kernel buffers, the stream measures what is left and drops it."""
    settings = dict(
        EMBEDDED_UPDATER=True,
        UPDATE_INTERVAL=0.01,
        RESOURCE_LENGTH=64_000,
        MAX_UNSENT_BYTES=256 * 1024,
    )
    with serve("daphne", **settings) as server:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        try:
            async with asyncio.timeout(30):
                while "Dropped /events" not in tail(server.log_path, 200):  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
        finally:
            sock.close()
        assert "The client left over 262144 bytes unread." in tail(server.log_path)
        async with stream(server) as events:  # the server serves on
            await events.next()
            assert (await events.next())["id"]


async def test_uvicorn_holds_a_stalled_stream_to_the_latest_version(serve):
    """Uvicorn holds a stream's sends back while its client does not read:
    when it reads again it gets what the buffers held, then the latest
    version, never the backlog of everything published meanwhile."""
    settings = dict(EMBEDDED_UPDATER=True, UPDATE_INTERVAL=0.01, RESOURCE_LENGTH=64_000)
    with serve("uvicorn", **settings) as server:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.port))
        sock.setblocking(False)
        reader, writer = await asyncio.open_connection(sock=sock)
        writer.write(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:

            async def latest() -> int:
                reply = await http.get("/comet", params={"seq": "0"})
                return int(reply.text.split(" ", 1)[0])

            first = await latest()
            async with asyncio.timeout(60):  # not reading while 300 are published
                while await latest() < first + 300:  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
            target = await latest()
        received = b""
        async with asyncio.timeout(30):
            while not [
                s for s in re.findall(rb"id: (\d+)\n", received) if int(s) >= target
            ]:
                received += await reader.read(1 << 20)
        writer.close()
        seen = [int(s) for s in re.findall(rb"id: (\d+)\n", received)]
    assert seen == sorted(set(seen))
    assert len(seen) < (seen[-1] - seen[0]) / 2, seen  # most versions skipped


@pytest.mark.parametrize("kind", SERVERS)
async def test_past_the_limit_a_stream_gets_503_and_a_place_frees(serve, kind):
    with serve(kind, MAX_OPEN_SOCKETS=2) as server:
        async with stream(server) as one, stream(server) as two:
            for events in (one, two):
                await events.next()
            async with stream(server) as refused:
                response = refused.response
                assert response.status_code == 503
                assert response.headers["retry-after"] == "2"
                await response.aread()
                assert response.text == (
                    "This server process holds its limit of 2 open sockets and "
                    "event streams; try again later.\n"
                )
        # Both closed: their places are free once their handlers have ended.
        async with asyncio.timeout(10):
            while True:
                async with stream(server) as again:
                    if again.response.status_code == 200:
                        break
                await asyncio.sleep(0.05)
