"""Measuring tools for the malformed-request attacks of ``bench/abuse.py``.

Kept apart from the attacks: a raw HTTP exchange (for bytes ``httpx`` will
not send and request lines a server refuses) and a counter of the times the
server process opens its SQLite database, which with ``conn_max_age=0`` is
once per database call: the cheap way to see whether a request costs a query.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import struct
from pathlib import Path

#: inotify's "file was opened" event (linux/inotify.h).
IN_OPEN = 0x20
EVENT = struct.Struct("iIII")


class DatabaseOpens:
    """Counts opens of one file with inotify (Linux), from any process.

    Every database call of the server opens its SQLite file afresh (the demo's
    settings use ``conn_max_age=0``), so the count is the number of database
    connections the server made, the embedded updater's and re-reads'
    included."""

    def __init__(self, path: Path) -> None:
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed.")
        if self.libc.inotify_add_watch(self.fd, str(path).encode(), IN_OPEN) < 0:
            raise OSError(ctypes.get_errno(), f"Cannot watch {path}.")

    def take(self) -> int:
        """The opens since the last call."""
        count = 0
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return count
            offset = 0
            while offset < len(data):
                *_, length = EVENT.unpack_from(data, offset)
                offset += EVENT.size + length
                count += 1

    def close(self) -> None:
        os.close(self.fd)


async def raw_request(host: str, port: int, head: bytes, timeout: float = 10) -> str:
    """Send ``head`` (a request line and headers, without the blank line) and
    return the response's status line, or what happened instead."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        async with asyncio.timeout(timeout):
            writer.write(head + b"\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            await writer.drain()
            response = await reader.read()
    except (ConnectionError, TimeoutError) as error:
        return f"{type(error).__name__}"
    finally:
        writer.close()
    if not response:
        return "connection closed, no response"
    status, _, rest = response.partition(b"\r\n")
    body = rest.partition(b"\r\n\r\n")[2].strip()
    text = body[:80].decode(errors="replace")
    return f"{status.decode(errors='replace')} {text!r} ({len(body):,} bytes)"


def cpu_seconds(pid: int) -> float:
    """The user and system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
