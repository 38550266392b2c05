"""Raw HTTP/1.1 and WebSocket exchanges over TCP, for hostile-client tests.

``httpx`` and ``websockets`` refuse to send what a hostile client sends
(invalid UTF-8 in a request line, a 60 KB path, a malformed ``Host``, an
unmasked or invalid frame), so the fuzz tests against real servers write the
bytes themselves and read back just enough to tell what the server answered.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import struct
from dataclasses import dataclass

#: Every wait on the server is bounded by this many seconds.
TIMEOUT = 10.0


@dataclass(frozen=True)
class HttpReply:
    """The status and body of a raw HTTP exchange; ``status`` is ``None``
    when the server closed the connection without answering."""

    status: int | None
    head: bytes
    body: bytes


@dataclass(frozen=True)
class WsOutcome:
    """What a raw WebSocket led to.

    ``status`` is the handshake's HTTP status (101 when accepted). After an
    accept, ``first`` is what the server said: ``"text"`` (with ``text``),
    ``"close"`` (with ``code`` and ``reason``) or ``"eof"`` (the connection
    dropped without a close frame, what a browser reports as 1006).
    """

    status: int | None
    first: str | None = None
    text: str = ""
    code: int | None = None
    reason: str = ""


Headers = tuple[tuple[bytes, bytes], ...]


def request_bytes(
    target: bytes,
    *,
    method: bytes = b"GET",
    host: bytes | None = b"127.0.0.1",
    headers: Headers = (),
) -> bytes:
    """An HTTP/1.1 request with ``Connection: close``, exactly these bytes."""
    lines = [method + b" " + target + b" HTTP/1.1"]
    if host is not None:
        lines.append(b"Host: " + host)
    lines.extend(name + b": " + value for name, value in headers)
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def http_exchange(port: int, request: bytes) -> HttpReply:
    """Send ``request`` and read the reply until the server closes."""
    async with asyncio.timeout(TIMEOUT):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(request)
            await writer.drain()
            data = await _read_all(reader)
        finally:
            writer.close()
            await _closed(writer)
    head, _, body = data.partition(b"\r\n\r\n")
    return HttpReply(_status(head), head, body)


class RawSocket:
    """A WebSocket client that sends whatever frames it is told to.

    ``async with RawSocket(port, target) as ws``: ``ws.status`` is the
    handshake's status; then :meth:`send` frames and read with :meth:`next`.
    """

    def __init__(self, port: int, target: bytes, headers: Headers = ()) -> None:
        self.port, self.target, self.headers = port, target, headers
        self.status: int | None = None

    async def __aenter__(self) -> RawSocket:
        key = base64.b64encode(os.urandom(16))
        upgrade = (
            (b"Upgrade", b"websocket"),
            (b"Connection", b"Upgrade"),
            (b"Sec-WebSocket-Key", key),
            (b"Sec-WebSocket-Version", b"13"),
            *self.headers,
        )
        lines = [b"GET " + self.target + b" HTTP/1.1", b"Host: 127.0.0.1"]
        lines.extend(name + b": " + value for name, value in upgrade)
        async with asyncio.timeout(TIMEOUT):
            self.reader, self.writer = await asyncio.open_connection(
                "127.0.0.1", self.port
            )
            self.writer.write(b"\r\n".join(lines) + b"\r\n\r\n")
            await self.writer.drain()
            self.status = _status(await _read_head(self.reader))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.writer.close()
        await _closed(self.writer)

    async def send(self, opcode: int, payload: bytes, *, masked: bool = True) -> None:
        self.writer.write(client_frame(opcode, payload, masked=masked))
        await self.writer.drain()

    async def next(self, skip: str | None = None) -> WsOutcome:
        """The next text frame (one not starting with ``skip``), close frame
        or end of the connection; a close frame is answered, as a client must."""
        async with asyncio.timeout(TIMEOUT):
            while True:
                try:
                    opcode, payload = await _read_frame(self.reader)
                except (asyncio.IncompleteReadError, ConnectionResetError):
                    return WsOutcome(self.status, "eof")
                if opcode == 0x1:
                    text = payload.decode()
                    if skip is None or not text.startswith(skip):
                        return WsOutcome(self.status, "text", text=text)
                elif opcode == 0x8:
                    code = struct.unpack("!H", payload[:2])[0] if payload else 1005
                    with contextlib.suppress(OSError):
                        await self.send(0x8, payload[:2])
                    reason = payload[2:].decode()
                    return WsOutcome(self.status, "close", code=code, reason=reason)
                # pings, pongs and binary frames: keep reading


async def ws_exchange(port: int, target: bytes, *, headers: Headers = ()) -> WsOutcome:
    """Open a WebSocket at ``target`` (raw bytes), return the first thing the
    server says after the handshake, and close cleanly."""
    async with RawSocket(port, target, headers) as ws:
        if ws.status != 101:
            return WsOutcome(ws.status)
        outcome = await ws.next()
        if outcome.first == "text":
            with contextlib.suppress(OSError):
                await ws.send(0x8, struct.pack("!H", 1000))
                await ws.next(skip="")  # the server's close frame, or the end
        return outcome


def client_frame(opcode: int, payload: bytes, *, masked: bool = True) -> bytes:
    """One final client frame (RFC 6455 section 5.2); clients must mask."""
    bit = 0x80 if masked else 0
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, bit | length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, bit | 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, bit | 127, length)
    if not masked:
        return header + payload
    mask = os.urandom(4)
    key = (mask * (length // 4 + 1))[:length]
    body = int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")
    return header + mask + body.to_bytes(length, "big")


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    first, second = await reader.readexactly(2)
    length = second & 0x7F
    if length == 126:
        length = struct.unpack("!H", await reader.readexactly(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", await reader.readexactly(8))[0]
    return first & 0x0F, await reader.readexactly(length)


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    try:
        return (await reader.readuntil(b"\r\n\r\n"))[:-4]
    except asyncio.IncompleteReadError as error:
        return error.partial
    except ConnectionResetError:
        return b""


async def _read_all(reader: asyncio.StreamReader) -> bytes:
    chunks = []
    try:
        while chunk := await reader.read(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass  # some servers reset after answering a request they refuse
    return b"".join(chunks)


async def _closed(writer: asyncio.StreamWriter) -> None:
    # A server that reset the connection has closed it either way.
    with contextlib.suppress(OSError):
        await writer.wait_closed()


def _status(head: bytes) -> int | None:
    parts = head.split(b"\r\n", 1)[0].split(b" ", 2)
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit():
        return int(parts[1])
    return None
