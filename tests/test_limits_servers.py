"""Hostile clients against a real Daphne and a real Uvicorn, each started with
the command line of docs/deployment.md: every limit closes the client with
its documented code and reason, and the server keeps serving."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from selector_app.consumers import echo_reply
from tests.support.server import (
    ServerProcess,
    tcp_state,
)
from tests.support.waiting import until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
SERVERS = ["daphne", "uvicorn"]


def connect(server: ServerProcess, path: str, **options) -> websockets.connect:
    # The page's own origin: today's origin validator refuses a handshake
    # without one (another part of issue 17 changes that).
    return websockets.connect(
        server.ws_url + path, origin=server.origin, open_timeout=30, **options
    )


async def close_after(ws, sends: list[str], *, pause_every: int = 1) -> tuple:
    """Send ``sends`` without reading (until the server closes), then read
    what it sent: its close code and reason (1006 if it dropped us)."""
    try:
        async with asyncio.timeout(60):
            for number, text in enumerate(sends, 1):
                await ws.send(text)
                if number % pause_every == 0:
                    await asyncio.sleep(0)  # let the client see a close frame
    except ConnectionClosed:
        pass
    try:
        async with asyncio.timeout(30):
            while True:
                await ws.recv()
    except ConnectionClosed:
        return ws.close_code, ws.close_reason


async def echoes(server: ServerProcess) -> str:
    """The server is still serving: a new socket gets its echo."""
    async with connect(server, "/bidirectional") as ws:
        await ws.send("still there?")
        while (frame := await ws.recv()).startswith("server tick"):
            pass
        return frame


def refusals(server: ServerProcess, code: int) -> list[str]:
    return [
        line
        for line in server.log_path.read_text().splitlines()
        if f"({code}): " in line and "Refused" in line
    ]


@pytest.mark.parametrize("kind", SERVERS)
async def test_an_echo_over_the_size_limit_closes_1009(serve, kind):
    with serve(kind) as server:
        async with connect(server, "/bidirectional", max_size=None) as ws:
            # 60,000 bytes in; upper-cased, 180,000 bytes out.
            closed = await close_after(ws, ["ΐ" * 30_000])
        reason = "The upper-cased echo of this frame would be over 65536 bytes."
        assert closed == (1009, reason)
        async with connect(server, "/bidirectional") as ws:
            assert await close_after(ws, ["a" * 65_537]) == (
                1009,
                "Text frames are limited to 65536 bytes.",
            )
        assert await echoes(server) == echo_reply("still there?")


@pytest.mark.parametrize("kind", SERVERS)
async def test_big_frames_from_a_client_that_never_reads_are_stopped(serve, kind):
    with serve(kind) as server:
        async with connect(server, "/bidirectional", max_size=None) as ws:
            await close_after(ws, ["ΐ" * 30_000] * 200)  # the attack
        async with connect(server, "/bidirectional", max_size=None) as ws:
            # Echoes of 60 KB, within the size limit: the rate limit stops it.
            code, _ = await close_after(ws, ["ΐ" * 10_000] * 2_000)
        assert code in (1008, 1006)  # 1006: dropped behind replies it never read
        assert len(refusals(server, 1008)) == 1
        assert await echoes(server) == echo_reply("still there?")


async def test_daphne_closes_a_client_that_leaves_too_much_unread(serve):
    """Daphne sends without waiting for the client: past what the kernel
    buffers, the app measures what is left in Daphne's buffer."""
    rates_off = dict(RECEIVE_FRAMES_PER_SECOND=0, RECEIVE_BYTES_PER_SECOND=0)
    with serve("daphne", MAX_UNSENT_BYTES=65_536, **rates_off) as server:
        async with connect(server, "/bidirectional", max_size=None) as ws:
            await close_after(ws, ["ΐ" * 10_000] * 2_000)  # 60 KB echoes, unread
        [refusal] = refusals(server, 1008)
        assert refusal.endswith("The client left over 65536 bytes unread.")
        assert await echoes(server) == echo_reply("still there?")


@pytest.mark.parametrize("kind", SERVERS)
async def test_a_flood_of_tiny_frames_to_the_push_socket_closes_1008(serve, kind):
    with serve(kind) as server:
        async with connect(server, "/websocket") as ws:
            closed = await close_after(ws, ["x"] * 1_000_000, pause_every=1_000)
        # 1006 when a busy client did not read the close frame before the
        # server dropped the unanswered closing handshake; the log says why.
        assert closed in (
            (1008, "Over the rate limit of 20 frames a second."),
            (1006, ""),
        )
        [refusal] = refusals(server, 1008)
        assert refusal.endswith("Over the rate limit of 20 frames a second.")
        assert await echoes(server) == echo_reply("still there?")


@pytest.mark.parametrize("kind", SERVERS)
async def test_past_the_socket_limit_the_handshake_is_refused(serve, kind):
    with serve(kind, MAX_OPEN_SOCKETS=3) as server:
        opened = [await connect(server, "/bidirectional") for _ in range(3)]
        reason = (
            "This server process holds its limit of 3 open sockets; try again later."
        )
        if kind == "uvicorn":  # the ASGI denial response: a real 503
            with pytest.raises(InvalidStatus) as refused:
                await connect(server, "/bidirectional")
            response = refused.value.response
            assert (response.status_code, response.headers["Retry-After"]) == (503, "2")
            assert response.body.decode() == reason + "\n"
        else:  # Daphne answers any refusal 403: accepted, then 1013
            async with connect(server, "/bidirectional") as ws:
                assert await close_after(ws, []) == (1013, reason)
        await opened.pop().close()

        async def served() -> bool:
            try:
                return await echoes(server) == echo_reply("still there?")
            except (InvalidStatus, ConnectionClosed):
                return False  # the closed socket's place is not free yet

        async with asyncio.timeout(10):
            while not await served():  # noqa: ASYNC110 (no event to await)
                await asyncio.sleep(0.05)
        for ws in opened:
            await ws.close()


@pytest.mark.parametrize("kind", SERVERS)
async def test_clients_that_stop_reading_are_dropped_by_the_ping(serve, kind):
    """A push client, and ticking clients (a tick every 10 ms races the
    server's own close): each is dropped, and the log stays clean."""
    flag = "--ping" if kind == "daphne" else "--ws-ping"
    shorter = {f"{flag}-interval 20": f"{flag}-interval 2"}
    shorter[f"{flag}-timeout 20"] = f"{flag}-timeout 2"
    with serve(kind, replace=shorter, TICK_INTERVAL=0.01) as server:
        # Each reads a frame or two, then nothing: not even the server's pings.
        quiet = dict(max_queue=1, ping_interval=None)
        clients = [await connect(server, "/websocket", **quiet)]
        clients += [await connect(server, "/bidirectional", **quiet) for _ in range(20)]
        ports = [ws.transport.get_extra_info("sockname")[1] for ws in clients]
        try:
            await until(
                lambda: all(tcp_state(port) != "ESTABLISHED" for port in ports),
                timeout=60,
            )
        finally:
            for ws in clients:  # a client that reads nothing cannot close
                ws.transport.abort()
        assert await echoes(server) == echo_reply("still there?")


async def read_all(ws) -> None:
    """Take every frame, so that the socket stays healthy (pongs included)."""
    with contextlib.suppress(ConnectionClosed):
        async for _ in ws:
            pass


async def open_all(server: ServerProcess, count: int) -> list:
    """``count`` ticking sockets that keep reading, at most 100 handshakes at
    a time; one that is refused (its place is not free yet) or times out is
    tried again."""
    handshakes = asyncio.Semaphore(100)

    async def one():
        while True:
            try:
                async with handshakes:
                    ws = await connect(server, "/bidirectional")
                await ws.recv()  # a tick: not refused
                ws.reader = asyncio.create_task(read_all(ws))
                return ws
            except (InvalidHandshake, ConnectionClosed, OSError, TimeoutError):
                await asyncio.sleep(0.1)

    async with asyncio.timeout(150):
        return await asyncio.gather(*(one() for _ in range(count)))


async def all_gone_at_once(sockets: list) -> None:
    """Half close, half drop their TCP connection, all at the same moment."""
    half = len(sockets) // 2
    for ws in sockets[half:]:
        ws.transport.abort()
    await asyncio.gather(*(ws.close() for ws in sockets[:half]))
    async with asyncio.timeout(30):
        await asyncio.gather(*(ws.reader for ws in sockets))


@pytest.mark.parametrize("kind", SERVERS)
async def test_ticks_racing_a_thousand_disconnects_leave_a_clean_log(serve, kind):
    with serve(kind, TICK_INTERVAL=0.2, MAX_OPEN_SOCKETS=1_000) as server:
        await all_gone_at_once(await open_all(server, 1_000))
        # Every place is free again only once every consumer has ended.
        await all_gone_at_once(await open_all(server, 1_000))
        assert await echoes(server) == echo_reply("still there?")
