"""Hostile clients against a real Daphne and a real Uvicorn: ``python -m bench.abuse``.

Each attack of issue 17's "Measured" list (bounded in count and time) runs
against a fresh server process started with the command line of
docs/deployment.md, pings shortened to ``--ping`` seconds so that a dropped
client shows within the run; the server is pinned to core 0, the attacker to
core 1, everything on 127.0.0.1. For each attack it prints the server's RSS
before, at its peak and after, and how the client was stopped. Results and
findings: docs/benchmarks.md, "Hostile clients".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from selector_app.conf import KNOWN_KEYS
from tests.support.server import ServerProcess, documented_command, tcp_state

from .abuse_probes import DatabaseOpens, cpu_seconds, raw_request
from .stack import Workspace, rss_bytes

RESULTS = Path(__file__).resolve().parent / "results"
MB = 1024 * 1024
#: Server log lines that mean something went wrong on the server's side.
TROUBLE = ("ERROR", "Traceback", "never retrieved", "took too long")


@dataclass
class Outcome:
    """How one attack ended, as the attacker saw it."""

    stopped: str  # close code and reason, or what else happened
    seconds: float  # from the attack's start to the end of its client
    detail: str = ""


@dataclass
class Row:
    server: str
    attack: str
    rss_before: float
    rss_peak: float
    rss_after: float
    stopped: str
    seconds: float
    detail: str


def connect(url: str, **options: object) -> websockets.connect:
    """A client of the server's own origin, as the page's script would be
    (today's main refuses a handshake without ``Origin``)."""
    origin = "http://" + url.split("/")[2]
    return websockets.connect(url, origin=origin, open_timeout=60, **options)


async def drain(ws: websockets.ClientConnection, timeout: float = 10) -> str:
    """Read everything the server sent until its close (or ``timeout``)."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    except ConnectionClosed:
        frame = ws.protocol.close_rcvd
        if frame is None:
            return "1006 (connection dropped, no close frame)"
        return f"{frame.code} {frame.reason!r}" if frame.reason else str(frame.code)
    except TimeoutError:
        return "still open"


async def send_without_reading(
    url: str, text: str, *, count: int, seconds: float, yield_every: int = 1
) -> Outcome:
    """Send ``text`` ``count`` times (at most ``seconds``) and never read;
    then read, to learn how the server ended the socket."""
    start, sent = time.monotonic(), 0
    async with connect(url, max_size=None, ping_interval=None) as ws:
        try:
            while sent < count and time.monotonic() - start < seconds:
                await ws.send(text)
                sent += 1
                if sent % yield_every == 0:
                    await asyncio.sleep(0)  # let the client notice a close
        except ConnectionClosed:
            pass
        stopped = await drain(ws)
    return Outcome(stopped, time.monotonic() - start, f"{sent:,} frames sent")


async def big_echo(url: str) -> Outcome:
    """60 KB frames of "ΐ" to /bidirectional (echo 180 KB), never reading."""
    return await send_without_reading(
        url + "/bidirectional", "ΐ" * 30_000, count=1_000, seconds=10
    )


async def echo_within_limit(url: str) -> Outcome:
    """20 KB frames of "ΐ" (60 KB echoes, within the size limit), never reading."""
    return await send_without_reading(
        url + "/bidirectional", "ΐ" * 10_000, count=2_000, seconds=15
    )


async def paced_echo(url: str, seconds: float = 20) -> Outcome:
    """20 KB frames of "ΐ" five a second (100 KB/s, under the rate limit;
    300 KB/s of echoes), never reading, for ``seconds``."""
    start, sent = time.monotonic(), 0
    async with connect(url + "/bidirectional", max_size=None, ping_interval=None) as ws:
        try:
            async with asyncio.timeout(seconds):
                while True:
                    await ws.send("ΐ" * 10_000)  # waits once the server stops reading
                    sent += 1
                    await asyncio.sleep(0.2)
        except (ConnectionClosed, TimeoutError):
            pass
        stopped = await drain(ws)
    return Outcome(stopped, time.monotonic() - start, f"{sent:,} frames sent")


async def tiny_flood(url: str) -> Outcome:
    """1,000,000 one-byte frames to /websocket (which ignores them)."""
    return await send_without_reading(
        url + "/websocket", "x", count=1_000_000, seconds=20, yield_every=1_000
    )


async def push_without_reading(url: str, seconds: float = 30) -> Outcome:
    """A push client that stops reading after its first frame, until the
    server drops it (or ``seconds``)."""
    start = time.monotonic()
    async with connect(url + "/websocket", max_queue=1, ping_interval=None) as ws:
        port = ws.transport.get_extra_info("sockname")[1]
        # Polling the kernel: nothing in the (paused) client announces the drop.
        while time.monotonic() - start < seconds and tcp_state(port) == "ESTABLISHED":  # noqa: ASYNC110
            await asyncio.sleep(0.25)
        dropped = time.monotonic() - start
        stopped = await drain(ws)
    return Outcome(stopped, dropped, "pushed 1 KB/s, read 1-2 frames")


async def sockets_past_limit(url: str, count: int = 550) -> Outcome:
    """``count`` sockets to /bidirectional at once (the bench's limit is 500)."""
    start = time.monotonic()

    async def one() -> websockets.ClientConnection | str:
        try:
            return await connect(url + "/bidirectional")
        except InvalidStatus as error:
            retry = error.response.headers.get("Retry-After")
            return f"HTTP {error.response.status_code}, Retry-After: {retry}"

    results = await asyncio.gather(*(one() for _ in range(count)))
    opened = [ws for ws in results if not isinstance(ws, str)]
    refusals = [str(result) for result in results if isinstance(result, str)]
    await asyncio.sleep(2)  # a refusal by close frame arrives after the accept
    for ws in opened:
        if ws.protocol.close_rcvd is not None:
            refusals.append(f"close {ws.protocol.close_rcvd.code}")
    await asyncio.gather(*(ws.close() for ws in opened))
    kinds = sorted(set(refusals))
    stopped = f"{len(refusals)} refused: {'; '.join(kinds)}" if refusals else "none"
    detail = f"{count - len(refusals)} of {count} served"
    return Outcome(stopped, time.monotonic() - start, detail)


async def read_all(ws: websockets.ClientConnection) -> None:
    """Take every frame (pongs included), as a healthy client does."""
    with contextlib.suppress(ConnectionClosed):
        async for _ in ws:
            pass


async def disconnect_race(url: str, pid: int, count: int = 1_000) -> Outcome:
    """Twice: ``count`` ticking sockets (TICK_INTERVAL 0.1 s) all gone at once,
    half closing, half dropping the TCP connection. Judged by the server's
    log; the RSS after each round shows memory kept for reuse, not leaked."""
    start, after = time.monotonic(), []
    for _ in range(2):
        sockets = await asyncio.gather(
            *(connect(url + "/bidirectional") for _ in range(count))
        )
        await asyncio.gather(*(ws.recv() for ws in sockets))  # each is ticking
        readers = [asyncio.create_task(read_all(ws)) for ws in sockets]
        half = count // 2
        for ws in sockets[half:]:
            ws.transport.abort()
        await asyncio.gather(*(ws.close() for ws in sockets[:half]))
        await asyncio.gather(*readers)
        await asyncio.sleep(3)
        after.append(f"{rss_bytes(pid) / MB:.0f}")
    detail = (
        f"{half} closed, {half} dropped, twice; RSS after each: {' / '.join(after)} MB"
    )
    return Outcome("", time.monotonic() - start, detail)


def http_url(url: str) -> str:
    return "http://" + url.split("://", 1)[1]


async def socket_outcome(url: str) -> str:
    """How a WebSocket handshake to ``url`` ends, read to the server's close."""
    try:
        async with connect(url, max_size=None) as ws:
            return await drain(ws)
    except InvalidStatus as error:
        return f"HTTP {error.response.status_code}"
    except (InvalidHandshake, OSError) as error:
        return f"handshake failed: {type(error).__name__}"


async def get(client: httpx.AsyncClient, path: str) -> str:
    """The status and the start of the body of ``GET path``, or the error."""
    try:
        response = await client.get(path)
    except httpx.HTTPError as error:
        return f"{type(error).__name__}"
    return f"{response.status_code} {response.text[:100].strip()!r}"


async def too_many_fields(url: str) -> Outcome:
    """1,500 query fields on a /websocket handshake, then on GET /comet.
    The query (6 KB) stays under the 8 KB request line of Uvicorn's
    ``websockets-sansio``, which answers a longer one 414 but leaves the
    connection open (the client waits for its ``open_timeout``)."""
    query = "&".join(["f=1"] * 1_500)
    start = time.monotonic()
    stopped = await socket_outcome(f"{url}/websocket?{query}")
    async with httpx.AsyncClient(base_url=http_url(url), timeout=10) as client:
        comet = await get(client, f"/comet?{query}")
    return Outcome(stopped, time.monotonic() - start, f"GET /comet: {comet}")


async def long_paths(
    url: str, count: int = 1_100, size: int = 60_000, seconds: float = 20
) -> Outcome:
    """``count`` distinct /comet/<name> paths of ``size`` bytes, 8 at a time,
    a connection each. Daphne (Twisted) refuses a request line over 16 KB: if
    the first 60 KB path is not answered, the rest use 16,000-byte names."""
    start, results = time.monotonic(), Counter()
    port = int(url.rsplit(":", 1)[1])

    async def one(name: str) -> str:
        return await raw_request(
            "127.0.0.1", port, f"GET /comet/{name} HTTP/1.1".encode()
        )

    first = await one("a" * size)
    detail = f"first {size:,}-byte name: {first}"
    if not first.startswith("HTTP/"):
        size = 16_000
    names = iter(range(count))

    async def worker() -> None:
        for i in names:
            if time.monotonic() - start > seconds:
                return
            answer = await one(f"{i:06d}" + "a" * (size - 6))
            results[" ".join(answer.split()[:2])] += 1

    await asyncio.gather(*(worker() for _ in range(8)))
    answers = "; ".join(f"{what} x{n:,}" for what, n in results.most_common())
    stopped = f"{sum(results.values()):,} paths of {size:,} bytes: {answers}"
    return Outcome(stopped, time.monotonic() - start, detail)


async def unknown_names(
    url: str,
    database: Path,
    pid: int,
    count: int = 5_000,
    seconds: float = 20,
    concurrency: int = 20,
) -> Outcome:
    """``count`` GET /comet/<random name>?seq=0, ``concurrency`` at a time;
    counts the server's database connections during the flood against the
    same time idle, and the server's CPU time per request."""
    opens, results, latencies = DatabaseOpens(database), Counter(), []
    try:
        await asyncio.sleep(5)
        idle = opens.take()
        limits = httpx.Limits(max_connections=concurrency)
        start, sent = time.monotonic(), iter(range(count))
        cpu = cpu_seconds(pid)
        async with httpx.AsyncClient(
            base_url=http_url(url), timeout=10, limits=limits
        ) as client:

            async def worker() -> None:
                for _ in sent:
                    if time.monotonic() - start > seconds:
                        return
                    begin = time.monotonic()
                    answer = await get(client, f"/comet/{os.urandom(8).hex()}?seq=0")
                    latencies.append(time.monotonic() - begin)
                    results[answer.split()[0]] += 1

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed, flood = time.monotonic() - start, opens.take()
        cpu = cpu_seconds(pid) - cpu
    finally:
        opens.close()
    done = len(latencies)
    median = sorted(latencies)[done // 2] * 1000
    answers = "; ".join(f"{what} x{n:,}" for what, n in results.most_common())
    detail = (
        f"{done:,} requests, {concurrency} at a time: {elapsed / done * 1000:.2f} ms "
        f"each, median latency {median:.1f} ms, server CPU {cpu / done * 1000:.2f} "
        f"ms each; database connections: {flood} "
        f"during the flood ({elapsed:.1f} s), {idle} in 5 s idle before"
    )
    return Outcome(f"{done:,} answered: {answers}", elapsed, detail)


async def bad_utf8(url: str) -> Outcome:
    """seq=%FF (not UTF-8 once decoded) on a /websocket handshake and on
    GET /comet, and a raw 0xFF byte in the query of GET /comet."""
    start = time.monotonic()
    stopped = await socket_outcome(f"{url}/websocket?seq=%FF")
    async with httpx.AsyncClient(base_url=http_url(url), timeout=10) as client:
        comet = await get(client, "/comet?seq=%FF")
    port = int(url.rsplit(":", 1)[1])
    raw = await raw_request("127.0.0.1", port, b"GET /comet?seq=\xff HTTP/1.1")
    detail = f"GET /comet?seq=%FF: {comet}; raw byte 0xFF: {raw}"
    return Outcome(stopped, time.monotonic() - start, detail)


Attack = Callable[..., Awaitable[Outcome]]
#: name -> (attack, settings overrides of its server)
ATTACKS: dict[str, tuple[Attack, dict[str, object]]] = {
    "60 KB frames of ΐ to /bidirectional, not reading": (big_echo, {}),
    "20 KB frames of ΐ (60 KB echoes), not reading": (echo_within_limit, {}),
    "20 KB frames of ΐ at 100 KB/s (under the limit), not reading": (paced_echo, {}),
    "1,000,000 tiny frames to /websocket": (tiny_flood, {}),
    "push client that stops reading": (push_without_reading, {}),
    "550 sockets, limit 500": (sockets_past_limit, {"MAX_OPEN_SOCKETS": 500}),
    "1,000 ticking sockets gone at once, twice": (
        disconnect_race,
        {"TICK_INTERVAL": 0.1},
    ),
    "WebSocket handshake with 1,500 query fields": (too_many_fields, {}),
    "1,100 distinct 60 KB /comet/<name> paths": (long_paths, {}),
    "5,000 GET /comet/<unknown name>?seq=0": (unknown_names, {}),
    "seq=%FF (not UTF-8) on /websocket and /comet": (bad_utf8, {}),
}


class PeakRss:
    """Samples a process's RSS every 20 ms in a thread; keeps the peak."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self.running = pid, rss_bytes(pid), True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while self.running:
            try:
                self.peak = max(self.peak, rss_bytes(self.pid))
            except (FileNotFoundError, ProcessLookupError):
                return
            time.sleep(0.02)

    def stop(self) -> float:
        self.running = False
        self.thread.join()
        return self.peak


def start_server(
    kind: str, workspace: Workspace, overrides: dict, ping: int
) -> ServerProcess:
    ping_flag = "--ping" if kind == "daphne" else "--ws-ping"
    command = documented_command(
        kind,
        **{
            f"{ping_flag}-interval 20": f"{ping_flag}-interval {ping}",
            f"{ping_flag}-timeout 20": f"{ping_flag}-timeout {ping}",
        },
    )
    known = {key: value for key, value in overrides.items() if key in KNOWN_KEYS}
    env = workspace.env(
        DJANGO_SETTINGS_MODULE="tests.support.settings_from_env",
        SELECTOR_TEST_OVERRIDES=json.dumps(known),
        SELECTOR_EMBEDDED_UPDATER="1",
    )
    log = workspace.directory / f"{kind}-{time.time():.0f}.log"
    server = ServerProcess(env, log, command=["taskset", "-c", "0", *command])
    return server.start(timeout=60)


async def warm_up(url: str) -> None:
    """One echo and one push frame: the app's modules and hub are loaded."""
    async with connect(url + "/bidirectional") as ws:
        await ws.send("warm")
        while not (await ws.recv()).startswith("you said"):
            pass
    async with connect(url + "/websocket") as ws:
        await ws.recv()


async def run_one(kind: str, name: str, workspace: Workspace, ping: int) -> Row:
    attack, overrides = ATTACKS[name]
    server = start_server(kind, workspace, overrides, ping)
    try:
        url = server.ws_url
        await warm_up(url)
        await asyncio.sleep(1)
        before = rss_bytes(server.process.pid)
        sampler = PeakRss(server.process.pid)
        if attack is disconnect_race:
            outcome = await attack(url, server.process.pid)
        elif attack is unknown_names:
            outcome = await attack(url, workspace.database, server.process.pid)
        else:
            outcome = await attack(url)
        await asyncio.sleep(3)
        peak, after = sampler.stop(), rss_bytes(server.process.pid)
    finally:
        server.stop()
    log = server.log_path.read_text(errors="replace")
    found = {word: log.count(word) for word in TROUBLE if word in log}
    verdict = f"server log: {found}" if found else "clean server log"
    if attack is disconnect_race:
        outcome.stopped = verdict
    else:
        outcome.detail = f"{outcome.detail}; {refused(log)}{verdict}"
    values = (before / MB, peak / MB, after / MB)
    return Row(kind, name, *values, outcome.stopped, outcome.seconds, outcome.detail)


def refused(log: str) -> str:
    """The server's own account of its refusals (``Refused … (code): why``)."""
    counts = Counter(re.findall(r"Refused \S+ for \S+ (\(\d+\): .*)", log))
    return "".join(f"server: {why} (x{n}); " for why, n in counts.items())


def markdown(rows: list[Row]) -> str:
    lines = [
        "| server | attack | RSS before | peak | after | how the client was stopped "
        "| s | |",
        "|---|---|--:|--:|--:|---|--:|---|",
    ]
    lines += [
        f"| {r.server} | {r.attack} | {r.rss_before:.0f} MB | {r.rss_peak:.0f} MB "
        f"| {r.rss_after:.0f} MB | {r.stopped} | {r.seconds:.1f} | {r.detail} |"
        for r in rows
    ]
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", default="daphne,uvicorn")
    parser.add_argument("--attacks", default="", help="substrings of attack names")
    parser.add_argument("--ping", type=int, default=5, help="ping interval/timeout")
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})
    names = [
        name
        for name in ATTACKS
        if not args.attacks or any(part in name for part in args.attacks.split(","))
    ]
    workspace = Workspace()
    rows = []
    for kind in args.servers.split(","):
        for name in names:
            rows.append(await run_one(kind, name, workspace, args.ping))
            print(markdown(rows[-1:]).splitlines()[-1], flush=True)
    table = markdown(rows)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"abuse-{time.strftime('%Y%m%d-%H%M%S')}{args.tag}"
    stem.with_suffix(".json").write_text(json.dumps([asdict(r) for r in rows]))
    stem.with_suffix(".md").write_text(table + "\n")


if __name__ == "__main__":
    asyncio.run(main())
