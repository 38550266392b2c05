"""A minimal HTTP client that drives an ASGI application in process.

Django's test client only ever goes through Django's own handler; this one
calls whatever ASGI application it is given (Django's, or ``CometFastPath``
in front of it), and can disconnect while a request is held.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from urllib.parse import urlencode


@dataclass
class Reply:
    status_code: int
    headers: dict[str, str]
    content: bytes

    def __getitem__(self, name: str) -> str:
        return self.headers[name.lower()]


@dataclass
class Exchange:
    """One request in flight: its messages both ways."""

    incoming: asyncio.Queue[dict] = field(default_factory=asyncio.Queue)
    sent: list[dict] = field(default_factory=list)

    async def send(self, message: dict) -> None:
        self.sent.append(message)

    def disconnect(self) -> None:
        self.incoming.put_nowait({"type": "http.disconnect"})

    def reply(self) -> Reply:
        start, *bodies = self.sent
        return Reply(
            status_code=start["status"],
            headers={
                name.decode("latin1").lower(): value.decode("latin1")
                for name, value in start["headers"]
            },
            content=b"".join(body.get("body", b"") for body in bodies),
        )


def http_scope(
    method: str, path: str, query: str = "", host: str = "testserver", **extra
) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", host.encode())],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
        **extra,
    }


class AsgiClient:
    """``await client.get("/comet", {"seq": "1"})`` against ``app``."""

    def __init__(self, app) -> None:
        self.app = app

    def start(self, method: str, target: str, params=None, **scope) -> tuple:
        """Begin a request; returns the exchange and the task running it.

        ``scope`` overrides the ASGI scope's keys: ``path=`` gives exactly the
        path a server would pass on, a ``?`` (percent-decoded) included.
        """
        path, _, query = target.partition("?")
        path = scope.pop("path", path)
        if params:
            query = urlencode(params)
        exchange = Exchange()
        exchange.incoming.put_nowait(
            {"type": "http.request", "body": b"", "more_body": False}
        )
        task = asyncio.ensure_future(
            self.app(
                http_scope(method, path, query, **scope),
                exchange.incoming.get,
                exchange.send,
            )
        )
        return exchange, task

    async def request(self, method: str, target: str, params=None, **scope) -> Reply:
        exchange, task = self.start(method, target, params, **scope)
        try:
            async with asyncio.timeout(10):
                await task
        finally:
            exchange.disconnect()
        return exchange.reply()

    async def get(self, path: str, params=None, **scope) -> Reply:
        return await self.request("GET", path, params, **scope)

    async def head(self, path: str, params=None, **scope) -> Reply:
        return await self.request("HEAD", path, params, **scope)
