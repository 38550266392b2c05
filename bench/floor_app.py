"""The floor of an ASGI server: a minimal broadcast app, no Django, no Channels.

It keeps the ``send`` of every open WebSocket in a set and, once a second,
builds one ``"<seq> <data>"`` frame (1024 random printable characters, like
the demo resource) and sends it to every socket in one loop. Whatever a
configuration of the real app costs above this app under the same server is
the app's own cost (bench/tables.py shows the ratio). Any HTTP request gets
``200 ok`` (the runner's readiness check).

Like ``bench.baseline_server`` it logs ``Published res #N`` and follows
``SELECTOR_GC_TUNING`` (thresholds and ``gc.freeze()`` at the first
connection, as the app's hub does); under Daphne it makes autobahn's debug-log
arguments lazy as the app does, unless ``SELECTOR_LAZY_AUTOBAHN_LOGS=0``.
Run it with any ASGI server: ``uvicorn bench.floor_app:application``,
``python -m selector_app.daphne bench.floor_app:application``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import random
import sys

PRINTABLE = "".join(chr(code) for code in range(0x21, 0x7F))
INTERVAL = 1.0
LENGTH = 1024

logger = logging.getLogger("bench.floor")
sends: set = set()
_broadcaster: asyncio.Task | None = None


def _configure() -> None:
    """Once per process, at the first connection (the server is up)."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.info("Serving on %s.", type(asyncio.get_running_loop()).__module__)
    if os.environ.get("SELECTOR_GC_TUNING", "1") == "1":
        gc.set_threshold(50_000, 20, 100)
        gc.collect()
        gc.freeze()
    if (
        "autobahn.websocket.protocol" in sys.modules
        and os.environ.get("SELECTOR_LAZY_AUTOBAHN_LOGS", "1") == "1"
    ):
        from selector_app import autobahn_logs

        logger.info(
            "autobahn's debug-log arguments made lazy in %s", autobahn_logs.install()
        )


async def broadcast() -> None:
    sequence = 0
    loop = asyncio.get_running_loop()
    next_tick = loop.time()
    while True:
        next_tick += INTERVAL
        await asyncio.sleep(max(0.0, next_tick - loop.time()))
        sequence += 1
        message = {
            "type": "websocket.send",
            "text": f"{sequence} {''.join(random.choices(PRINTABLE, k=LENGTH))}",
        }
        logger.debug("Published res #%s.", sequence)
        for send in list(sends):
            # A socket gone since the loop started is the server's to drop.
            with contextlib.suppress(Exception):
                await send(message)


async def application(scope, receive, send) -> None:
    global _broadcaster
    if _broadcaster is None:
        _configure()
        _broadcaster = asyncio.get_running_loop().create_task(broadcast())
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    if scope["type"] != "websocket":
        return
    if (await receive())["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    sends.add(send)
    try:
        while (await receive())["type"] != "websocket.disconnect":
            pass
    finally:
        sends.discard(send)
