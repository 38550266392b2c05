"""The Python ceiling: a raw ``websockets`` broadcast server, no Django.

Every connection is added to a set; once a second one ``"<seq> <data>"``
frame (1024 random printable characters of data, like the demo resource) goes
to all of them with ``websockets.broadcast``. Runs on uvloop. Logs
``Published res #N`` like the app's updater, so the runner reads publish
times the same way. GC tuning follows ``SELECTOR_GC_TUNING`` like the app's.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import random
import signal

import uvloop
from websockets.asyncio.server import ServerConnection, broadcast, serve

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
PRINTABLE = "".join(chr(code) for code in range(0x21, 0x7F))

logger = logging.getLogger("bench.baseline")
clients: set[ServerConnection] = set()


async def handler(connection: ServerConnection) -> None:
    clients.add(connection)
    try:
        await connection.wait_closed()
    finally:
        clients.discard(connection)


async def main(port: int, interval: float, length: int) -> None:
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with serve(handler, "127.0.0.1", port, backlog=2048):
        if os.environ.get("SELECTOR_GC_TUNING", "1") == "1":
            gc.set_threshold(50_000, 20, 100)
            gc.collect()
            gc.freeze()
        sequence = 0
        next_tick = loop.time()
        while not stop.done():
            next_tick += interval
            await asyncio.wait([stop], timeout=max(0.0, next_tick - loop.time()))
            if stop.done():
                break
            sequence += 1
            data = "".join(random.choices(PRINTABLE, k=length))
            # Logged first: broadcast() writes to every socket before it returns.
            logger.debug("Published res #%s.", sequence)
            broadcast(clients, f"{sequence} {data}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--length", type=int, default=1024)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    logger.setLevel(logging.DEBUG)
    uvloop.run(main(args.port, args.interval, args.length))
