"""The demo's ASGI application with transports taken away, as a proxy or a
site without them would: ``SELECTOR_TEST_BLOCK=websocket`` refuses every
WebSocket handshake (403, as a router without the WebSocket routes does),
``websocket,sse`` also answers ``/events`` with an HTML 404 page (a site
or proxy without the endpoint). client.js must fall back to what is left.
"""

import os

from realtime_site.asgi import application as demo

BLOCKED = set(filter(None, os.environ.get("SELECTOR_TEST_BLOCK", "").split(",")))

NOT_FOUND = b"<!doctype html><title>Not Found</title><h1>Not Found</h1>"


async def application(scope, receive, send):
    if scope["type"] == "websocket" and "websocket" in BLOCKED:
        await receive()  # websocket.connect
        await send({"type": "websocket.close"})  # the handshake gets 403
        return
    if scope["type"] == "http" and "sse" in BLOCKED and "/events" in scope["path"]:
        await send(
            {
                "type": "http.response.start",
                "status": 404,
                "headers": [(b"content-type", b"text/html; charset=utf-8")],
            }
        )
        await send({"type": "http.response.body", "body": NOT_FOUND})
        return
    await demo(scope, receive, send)
