"""W6's publisher: ``--rate`` publishes a second, each to a random resource.

Run as a script (``python bench/publish_many.py``), not as ``bench.…``: it
imports only Django and the ``selector_app`` of its ``PYTHONPATH``, so the
same file publishes through this tree or through a ``git archive`` of
today's main. Once Django is set up it prints a ``ready`` line and waits
for a line on stdin; then it publishes, from one event loop, with
``selector_app.services.aresource_publish`` (a transaction, then the layer
message), for ``--seconds``, and prints one JSON line: how many it
published and in how long.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time

#: Publishes in flight at once (each one a database write, then the layer).
IN_FLIGHT = 16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--resources", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--length", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connections

    # The demo's settings open a connection per database call
    # (conn_max_age=0); a publisher doing hundreds a second keeps its one.
    connections["default"].settings_dict["CONN_MAX_AGE"] = None
    asyncio.run(publish(args))


async def publish(args: argparse.Namespace) -> None:
    """Publish at the rate, at most IN_FLIGHT at a time, in one event loop:
    one Redis connection for every announcement (``resource_publish`` from
    sync code runs each in a new loop, with a new connection)."""
    from selector_app.services import aresource_publish, random_data

    # Ready once Django is set up; the runner's window starts at "go".
    print(json.dumps({"event": "ready"}), flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    pick = random.Random(args.seed)
    body = random_data(args.length)
    gate = asyncio.Semaphore(IN_FLIGHT)
    tasks = set()

    async def one(number: int) -> None:
        # Each version's data differs (its first characters), as a real one's.
        stamp = f"{number:09d}"
        try:
            await aresource_publish(
                name=f"r{pick.randrange(args.resources)}",
                data=stamp + body[len(stamp) :],
            )
        finally:
            gate.release()

    interval = 1.0 / args.rate
    started = due = time.monotonic()
    deadline = started + args.seconds
    published = 0
    while (now := time.monotonic()) < deadline:
        if now < due:
            await asyncio.sleep(due - now)
        await gate.acquire()
        task = asyncio.create_task(one(published))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        published += 1
        due += interval
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - started
    print(json.dumps({"published": published, "seconds": elapsed}), flush=True)


if __name__ == "__main__":
    main()
