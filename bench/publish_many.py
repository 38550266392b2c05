"""W6's publisher: ``--rate`` publishes a second, each to a random resource.

Run as a script (``python bench/publish_many.py``), not as ``bench.…``: it
imports only Django and the ``selector_app`` of its ``PYTHONPATH``, so the
same file publishes through this tree or through a ``git archive`` of
today's main. Once Django is set up it prints a ``ready`` line and waits
for a line on stdin; then it publishes with ``selector_app.services.resource_publish``
(a transaction, then the layer message), for ``--seconds``, and prints one
JSON line: how many it published and in how long.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time


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
    from selector_app.services import random_data, resource_publish

    # Ready once Django is set up; the runner's window starts at "go".
    print(json.dumps({"event": "ready"}), flush=True)
    sys.stdin.readline()
    pick = random.Random(args.seed)
    body = random_data(args.length)
    interval = 1.0 / args.rate
    started = due = time.monotonic()
    deadline = started + args.seconds
    published = 0
    while (now := time.monotonic()) < deadline:
        if now < due:
            time.sleep(due - now)
        # Each version's data differs (its first characters), as a real one's.
        stamp = f"{published:09d}"
        resource_publish(
            name=f"r{pick.randrange(args.resources)}",
            data=stamp + body[len(stamp) :],
        )
        published += 1
        due += interval
    elapsed = time.monotonic() - started
    print(json.dumps({"published": published, "seconds": elapsed}), flush=True)


if __name__ == "__main__":
    main()
