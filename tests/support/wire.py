"""Raw HTTP/1.1 and WebSocket exchanges over TCP, for hostile-client tests.

``httpx`` and ``websockets`` refuse to send what a hostile client sends
(invalid UTF-8 in a request line, a 60 KB path, a malformed ``Host``), so the
fuzz tests against real servers write the bytes themselves and read back just
enough to tell what the server answered.
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
    """The status line and body of a raw HTTP exchange; ``status`` is
    ``None`` when the server closed the connection without answering."""

    status: int | None
    head: bytes
    body: bytes


@dataclass(frozen=True)
class WsOutcome:
    """What a raw WebSocket handshake led to.

    ``status`` is the handshake's HTTP status (101 when accepted). After an
    accept, ``first`` is the first thing the server said: ``"text"`` (with
    ``text``), ``"close"`` (with ``code`` and ``reason``) or ``"eof"`` (the
    connection dropped without a close frame, what a client sees as 1006).
    """

    status: int | None
    first: str | None = None
    text: str = ""
    code: int | None = None
    reason: str = ""


def request_bytes(
    target: bytes,
    *,
    method: bytes = b"GET",
    host: bytes | None = b"127.0.0.1",
    headers: tuple[tuple[bytes, bytes], ...] = (),
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


async def ws_exchange(
    port: int,
    target: bytes,
    *,
    headers: tuple[tuple[bytes, bytes], ...] = (),
) -> WsOutcome:
    """Open a WebSocket at ``target`` (raw bytes), return the first thing the
    server says after the handshake, and close cleanly."""
    key = base64.b64encode(os.urandom(16))
    upgrade = (
        (b"Upgrade", b"websocket"),
        (b"Connection", b"Upgrade"),
        (b"Sec-WebSocket-Key", key),
        (b"Sec-WebSocket-Version", b"13"),
        *headers,
    )
    lines = [b"GET " + target + b" HTTP/1.1", b"Host: 127.0.0.1"]
    lines.extend(name + b": " + value for name, value in upgrade)
    async with asyncio.timeout(TIMEOUT):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"\r\n".join(lines) + b"\r\n\r\n")
            await writer.drain()
            head = await _read_head(reader)
            status = _status(head)
            if status != 101:
                return WsOutcome(status)
            return await _first_frame(reader, writer)
        finally:
            writer.close()
            await _closed(writer)


async def _first_frame(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> WsOutcome:
    while True:
        try:
            opcode, payload = await _read_frame(reader)
        except asyncio.IncompleteReadError:
            return WsOutcome(101, "eof")
        if opcode == 0x1:
            writer.write(client_frame(0x8, struct.pack("!H", 1000)))
            return WsOutcome(101, "text", text=payload.decode())
        if opcode == 0x8:
            code = struct.unpack("!H", payload[:2])[0] if payload else 1005
            writer.write(client_frame(0x8, payload[:2]))
            return WsOutcome(101, "close", code=code, reason=payload[2:].decode())
        # pings, pongs and binary frames: keep reading


def client_frame(opcode: int, payload: bytes) -> bytes:
    """One final, masked client frame (RFC 6455 section 5.2)."""
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return header + mask + masked


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
