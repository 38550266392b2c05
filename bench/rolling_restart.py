"""A rolling restart of two server processes under load: what clients see.

Starts Redis, a ``runupdater`` and two server processes (Daphne or Uvicorn),
spreads push and Comet clients over both, then sends each process SIGTERM in
turn and starts it again on its port. Prints, per server: each process's exit
time after SIGTERM, how many clients ended up on the surviving process, how
the clients were sent away (close codes, HTTP statuses), requests or sockets
dropped without an answer, versions missed, and how long clients took to be
served again. tests/test_rolling_restart.py runs the same with 200 clients.

    .venv/bin/python -m bench.rolling_restart [--push 1000] [--comet 1000]
        [--drain-timeout 5] [--interval 1] [--server daphne --server uvicorn]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from tests.support.rolling import rolling_restart
from tests.support.server import SERVERS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--push", type=int, default=1000)
    parser.add_argument("--comet", type=int, default=1000)
    parser.add_argument("--drain-timeout", type=float, default=5.0)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--server", choices=SERVERS, action="append")
    args = parser.parse_args()
    for kind in args.server or SERVERS:
        with tempfile.TemporaryDirectory() as directory:
            report = asyncio.run(
                rolling_restart(
                    kind,
                    Path(directory),
                    push=args.push,
                    comet=args.comet,
                    drain_timeout=args.drain_timeout,
                    interval=args.interval,
                )
            )
        print(
            f"--- {kind}: {args.push} push + {args.comet} Comet clients, "
            f"DRAIN_TIMEOUT {args.drain_timeout} s, a version every "
            f"{args.interval} s"
        )
        for key, value in report.summary().items():
            print(f"{key:>22}: {value}")


if __name__ == "__main__":
    main()
