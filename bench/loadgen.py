"""One load-generator process: many WebSocket, long-poll or event-stream
clients on uvloop.

The clients are plain :class:`asyncio.Protocol` objects with a minimal
WebSocket framing (and httptools for HTTP), so that one client core can
drive tens of thousands of sockets without becoming the bottleneck. Each
process opens its share of connections, then obeys one-line commands on
stdin and answers with JSON lines on stdout:

- ``mark``: the counters now (frames, ticks, replies), for the runner's window;
- ``report T0 T1``: the per-version receipts, tick gaps and errors, then exit.

It also exits by itself after ``--max-seconds`` or when stdin closes, so a
dead runner never leaves load running.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import sys
import time
from collections import Counter

import httptools
import uvloop

# -- WebSocket framing (client side: masked frames out, unmasked frames in) -----


def ws_frame(opcode: int, payload: bytes) -> bytes:
    """A single masked client frame."""
    size = len(payload)
    if size < 126:
        header = bytes((0x80 | opcode, 0x80 | size))
    elif size < 65536:
        header = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + size.to_bytes(8, "big")
    mask = random.randbytes(4)
    if size:
        key = (mask * (size // 4 + 1))[:size]
        payload = (
            int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")
        ).to_bytes(size, "big")
    return header + mask + payload


class Stats:
    """Everything one process records, aggregated as it goes."""

    def __init__(self) -> None:
        #: sequence -> [receipts, first receipt, last receipt] (time.time()).
        self.versions: dict[int, list] = {}
        self.frames = 0  # resource frames or 200 replies
        self.ticks = 0
        self.echoes = 0
        self.order_errors = 0
        #: (time, versions skipped) for each jump in a client's sequence.
        self.gaps: list[tuple[float, int]] = []
        self.tick_gaps: list[tuple[float, float]] = []
        self.echo_rtts: list[tuple[float, float]] = []
        self.disconnects: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()

    def receipt(self, sequence: int, now: float) -> None:
        entry = self.versions.get(sequence)
        if entry is None:
            self.versions[sequence] = [1, now, now]
        else:
            entry[0] += 1
            entry[2] = now
        self.frames += 1


class WebSocketClient(asyncio.Protocol):
    """A minimal WebSocket client: handshake, ping/pong, close, text frames."""

    def __init__(self, stats: Stats, host: str, path: str) -> None:
        self.stats = stats
        self.host = host
        self.path = path
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.upgraded = False
        self.closing = False
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16)).decode()
        self.transport.write(
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: http://{self.host}\r\n\r\n".encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("closed before it opened"))
        elif not self.closing:
            self.stats.disconnects.append(time.time())
        self.closing = True

    def data_received(self, data: bytes) -> None:
        now = time.time()
        if self.buffer:
            data = self.buffer + data
            self.buffer = b""
        pos = 0
        if not self.upgraded:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = data
                return
            if not data.startswith(b"HTTP/1.1 101"):
                status = data[9:12].decode(errors="replace")
                self.opened.set_exception(ConnectionError(f"HTTP {status}"))
                self.closing = True
                self.transport.close()
                return
            self.upgraded = True
            self.opened.set_result(None)
            pos = end + 4
        size = len(data)
        while size - pos >= 2:
            second = data[pos + 1]
            length = second & 0x7F
            start = pos + 2
            if length == 126:
                if size - pos < 4:
                    break
                length = (data[pos + 2] << 8) | data[pos + 3]
                start = pos + 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                start = pos + 10
            end = start + length
            if end > size:
                break
            opcode = data[pos] & 0x0F
            pos = end
            if opcode == 1:
                self.on_text(data, start, end, now)
            elif opcode == 9:
                self.transport.write(ws_frame(0xA, data[start:end]))
            elif opcode == 8:
                if not self.closing:
                    self.stats.disconnects.append(now)
                    self.closing = True
                    self.transport.write(ws_frame(0x8, data[start : start + 2]))
                self.transport.close()
                return
        if pos < size:
            self.buffer = data[pos:]

    def on_text(self, data: bytes, start: int, end: int, now: float) -> None:
        raise NotImplementedError

    def send_text(self, text: bytes) -> None:
        if not self.closing:
            self.transport.write(ws_frame(0x1, text))

    def close(self) -> None:
        if self.transport is not None and not self.closing:
            self.closing = True
            self.transport.write(ws_frame(0x8, (1000).to_bytes(2, "big")))
            self.transport.close()


class PushClient(WebSocketClient):
    """W1: records each ``"<seq> <data>"`` frame; checks strictly increasing."""

    last = 0

    def on_text(self, data: bytes, start: int, end: int, now: float) -> None:
        sequence = int(data[start : data.find(b" ", start, end)])
        last = self.last
        if sequence <= last:
            self.stats.order_errors += 1
            return
        if last and sequence != last + 1:
            self.stats.gaps.append((now, sequence - last - 1))
        self.last = sequence
        self.stats.receipt(sequence, now)


class BidirectionalClient(WebSocketClient):
    """W3: records tick gaps; sends ``echo N`` once a second, records the RTT."""

    last_tick = 0.0
    echo_number = 0
    echo_sent = 0.0

    def start_echoes(self) -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(random.random(), self.echo)

    def echo(self) -> None:
        if self.closing:
            return
        self.echo_number += 1
        self.echo_sent = time.time()
        self.send_text(b"echo %d" % self.echo_number)
        asyncio.get_running_loop().call_later(1.0, self.echo)

    def on_text(self, data: bytes, start: int, end: int, now: float) -> None:
        stats = self.stats
        if data.startswith(b"server tick #", start):
            if self.last_tick:
                stats.tick_gaps.append((now, now - self.last_tick))
            self.last_tick = now
            stats.ticks += 1
        elif data.startswith(b"you said: ECHO ", start):
            if int(data[start + 15 : end]) == self.echo_number:
                stats.echo_rtts.append((now, now - self.echo_sent))
            stats.echoes += 1
        else:
            stats.errors["unexpected frame"] += 1


class CometClient(asyncio.Protocol):
    """W2: ``GET /comet?seq=N`` on one keep-alive connection, again and again."""

    def __init__(self, stats: Stats, host: str, path: str) -> None:
        self.stats = stats
        self.host = host.encode()
        self.path = path.encode()
        self.cursor = 0
        self.body: list[bytes] = []
        self.closing = False
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.request()

    def request(self) -> None:
        if self.closing:
            return
        self.body = []
        self.transport.write(
            b"GET %s?seq=%d HTTP/1.1\r\nHost: %s\r\n\r\n"
            % (self.path, self.cursor, self.host)
        )

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self.stats.errors[f"parser: {error}"] += 1
            self.close()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        now = time.time()
        status = self.parser.get_status_code()
        stats = self.stats
        stats.statuses[status] += 1
        if status == 200:
            body = b"".join(self.body)
            sequence = int(body[: body.find(b" ")])
            if sequence <= self.cursor:
                stats.order_errors += 1
            else:
                if self.cursor and sequence != self.cursor + 1:
                    stats.gaps.append((now, sequence - self.cursor - 1))
                stats.receipt(sequence, now)
            self.cursor = sequence
            if not self.opened.done():
                self.opened.set_result(None)
        elif status == 503:
            asyncio.get_running_loop().call_later(2.0, self.request)
            return
        elif status != 204:
            stats.errors[f"HTTP {status}"] += 1
        self.request()

    connection_lost = WebSocketClient.connection_lost  # same attributes, same rule

    def close(self) -> None:
        if self.transport is not None and not self.closing:
            self.closing = True
            self.transport.close()


class EventStreamClient(asyncio.Protocol):
    """W4: ``GET /events`` once; records each event's ``id:``, checks strictly
    increasing (the data line carries the same sequence)."""

    def __init__(self, stats: Stats, host: str, path: str) -> None:
        self.stats = stats
        self.host = host.encode()
        self.path = path.encode()
        self.last = 0
        self.pending = b""
        self.closing = False
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(
            b"GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (self.path, self.host)
        )

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self.stats.errors[f"parser: {error}"] += 1
            self.close()

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        self.stats.statuses[status] += 1
        if status != 200:
            self.opened.set_exception(ConnectionError(f"HTTP {status}"))
            self.close()
        else:
            self.opened.set_result(None)

    def on_body(self, body: bytes) -> None:
        now = time.time()
        data = self.pending + body if self.pending else body
        start = 0
        while (end := data.find(b"\n\n", start)) >= 0:
            if data.startswith(b"id: ", start):
                self.on_event(int(data[start + 4 : data.find(b"\n", start)]), now)
            start = end + 2
        self.pending = data[start:]

    def on_event(self, sequence: int, now: float) -> None:
        last = self.last
        if sequence <= last:
            self.stats.order_errors += 1
            return
        if last and sequence != last + 1:
            self.stats.gaps.append((now, sequence - last - 1))
        self.last = sequence
        self.stats.receipt(sequence, now)

    def on_message_complete(self) -> None:
        if not self.closing:  # the server ended the stream
            self.stats.disconnects.append(time.time())
            self.close()

    connection_lost = WebSocketClient.connection_lost  # same attributes, same rule

    def close(self) -> None:
        if self.transport is not None and not self.closing:
            self.closing = True
            self.transport.close()


KINDS = {
    "w1": PushClient,
    "w2": CometClient,
    "w3": BidirectionalClient,
    "w6": PushClient,  # one random resource of --resources per socket
    "w4": EventStreamClient,
}


async def open_one(
    kind: type, stats: Stats, host: str, port: int, path: str, timeout: float
) -> asyncio.Protocol | None:
    loop = asyncio.get_running_loop()
    for attempt in range(3):
        protocol = kind(stats, f"{host}:{port}", path)
        try:
            async with asyncio.timeout(timeout):
                await loop.create_connection(lambda p=protocol: p, host, port)
                await protocol.opened
            return protocol
        except (OSError, TimeoutError) as error:
            stats.errors[f"connect: {type(error).__name__}: {error}"[:120]] += 1
            if protocol.transport is not None:
                protocol.closing = True
                protocol.transport.abort()
            await asyncio.sleep(0.5 * (attempt + 1))
    return None


async def open_all(args: argparse.Namespace, stats: Stats) -> list:
    kind = KINDS[args.workload]
    targets = [target.rsplit(":", 1) for target in args.targets.split(",")]
    gate = asyncio.Semaphore(args.concurrency)

    pick = random.Random(args.seed)
    paths = [
        f"{args.path}/r{pick.randrange(args.resources)}"
        if args.resources
        else args.path
        for _ in range(args.count)
    ]

    async def one(index: int):
        host, port = targets[index % len(targets)]
        async with gate:
            return await open_one(
                kind, stats, host, int(port), paths[index], args.connect_timeout
            )

    opened = await asyncio.gather(*(one(i) for i in range(args.count)))
    return [client for client in opened if client is not None]


def in_window(pairs: list[tuple[float, float]], t0: float, t1: float) -> list[float]:
    return [value for when, value in pairs if t0 <= when <= t1]


def report(stats: Stats, clients: list, t0: float, t1: float) -> dict:
    return {
        "event": "report",
        "versions": {
            str(seq): entry
            for seq, entry in stats.versions.items()
            if entry[2] >= t0 - 5
        },
        "order_errors": stats.order_errors,
        "gaps_in_window": sum(int(v) for v in in_window(stats.gaps, t0, t1)),
        "disconnects_in_window": sum(t0 <= t <= t1 for t in stats.disconnects),
        "disconnects": len(stats.disconnects),
        "open": sum(not client.closing for client in clients),
        "tick_gaps": in_window(stats.tick_gaps, t0, t1),
        "echo_rtts": in_window(stats.echo_rtts, t0, t1),
        "statuses": {str(k): v for k, v in stats.statuses.items()},
        "errors": dict(stats.errors),
        # W6: each socket's resource and the last sequence it got.
        "lasts": [
            [client.path.rsplit("/", 1)[1], client.last]
            for client in clients
            if isinstance(client, PushClient) and client.path.count("/") > 1
        ],
    }


def emit(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def main(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.max_seconds
    stats = Stats()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    started = time.time()
    if args.poll_interval:
        # Poll the sockets every poll_interval instead of blocking in epoll,
        # like a NIC's interrupt coalescing: otherwise every frame the server
        # writes on loopback must wake this process's idle core, and that
        # wake-up (expensive in a VM) is charged to the server's send().
        def nap() -> None:
            time.sleep(args.poll_interval)
            loop.call_soon(nap)

        loop.call_soon(nap)
    clients = await open_all(args, stats)
    if args.workload == "w3":
        for client in clients:
            client.start_echoes()
    emit(
        {
            "event": "connected",
            "established": len(clients),
            "failed": args.count - len(clients),
            "seconds": time.time() - started,
            "errors": dict(stats.errors),
        }
    )
    t0, t1 = 0.0, time.time()
    try:
        while True:
            try:
                async with asyncio.timeout(max(0.0, deadline - loop.time())):
                    line = await reader.readline()
            except TimeoutError:
                break
            words = line.decode().split()
            if not words:
                break  # stdin closed: the runner is gone
            if words[0] == "mark":
                emit(
                    {
                        "event": "mark",
                        "time": time.time(),
                        "frames": stats.frames,
                        "ticks": stats.ticks,
                        "echoes": stats.echoes,
                    }
                )
            elif words[0] == "report":
                t0, t1 = float(words[1]), float(words[2])
                break
    finally:
        emit(report(stats, clients, t0, t1))
        for client in clients:
            client.close()
        await asyncio.sleep(0.2)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workload", choices=sorted(KINDS), required=True)
    parser.add_argument("--targets", required=True, help="host:port[,host:port]")
    parser.add_argument("--path", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument(
        "--resources",
        type=int,
        default=0,
        help="W6: each socket watches --path/r<K>, K random below this",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--connect-timeout", type=float, default=30.0)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=0.0,
        help="seconds between socket polls; 0 blocks in epoll (wakes per frame)",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    uvloop.run(main(parse_args()))
