"""What one Prometheus scrape costs a loaded server.

``python -m bench.scrape_cost [--configs uvicorn1-sansio-metrics,daphne1-metrics]
[--n 5000]``

Whole-run W1 pairs (metrics off, then on) cannot resolve a cost of one or
two per cent: a single generation-0 collection of the garbage collector
pauses a server with 5,000 sockets for 50-180 ms, and whether it falls
inside a 20 s window moves the run by ±5-10%. So this measures the two
parts of what metrics cost separately, each against itself:

- a scrape: the server's CPU over stretches in which ``/metrics`` is fetched
  ``--scrapes`` times, minus the CPU of equally long stretches without
  scrapes, alternated ``--rounds`` times (the push traffic of the stack runs
  throughout, so it cancels out);
- counting (``python -m bench.overhead --micro``): the counter increments
  per frame.

The cost of metrics at a scrape interval is then ``scrape CPU / interval``
against the server's CPU per second for its traffic (printed too).
"""

from __future__ import annotations

import argparse
import statistics
import time
import urllib.request

from .run import LoadGenerators
from .stack import CONFIGS, Stack, Workspace, cpu_seconds


def scrape(url: str) -> None:
    with urllib.request.urlopen(url, timeout=10) as response:
        response.read()
        if response.status != 200:
            raise RuntimeError(f"{url} answered {response.status}")


def stretch(pid: int, seconds: float, scrapes: int, url: str) -> float:
    """The server's CPU seconds over ``seconds``, fetching ``url`` ``scrapes``
    times spread evenly over it (0: none)."""
    started, cpu = time.monotonic(), cpu_seconds(pid)
    for index in range(scrapes):
        time.sleep(max(0.0, started + index * seconds / scrapes - time.monotonic()))
        scrape(url)
    time.sleep(max(0.0, started + seconds - time.monotonic()))
    return cpu_seconds(pid) - cpu


def measure(config_name: str, args: argparse.Namespace, ws: Workspace) -> dict:
    config = CONFIGS[config_name]
    if not config.metrics or config.processes != 1:
        raise SystemExit(f"{config_name}: use a one-process '-metrics' configuration")
    with Stack(config, ws, args.server_core) as stack:
        if stack.scraper is not None:  # this script does the scraping
            stack.scraper.stop()
        server = stack.servers[0]
        url = f"http://127.0.0.1:{server.port}/metrics"
        clients = LoadGenerators(
            "w1", [f"127.0.0.1:{server.port}"], args.n, args.client_core, 0.001
        )
        try:
            connected = sum(m["established"] for m in clients.read_all("connected"))
            scrape(url)  # the first scrape registers the collector
            time.sleep(args.warmup)
            quiet, scraped = [], []
            for _ in range(args.rounds):
                quiet.append(stretch(server.pid, args.seconds, 0, url))
                scraped.append(stretch(server.pid, args.seconds, args.scrapes, url))
        finally:
            clients.close()
    per_scrape = [
        (s - q) / args.scrapes * 1000 for q, s in zip(quiet, scraped, strict=True)
    ]
    return {
        "config": config_name,
        "connected": connected,
        "cpu_per_second_ms": statistics.median(quiet) / args.seconds * 1000,
        "per_scrape_ms": per_scrape,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--configs", default="uvicorn1-sansio-metrics,daphne1-metrics")
    parser.add_argument("--n", type=int, default=5000, help="push sockets")
    parser.add_argument("--scrapes", type=int, default=40, help="per stretch")
    parser.add_argument("--seconds", type=float, default=10.0, help="per stretch")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--server-core", default="0")
    parser.add_argument("--client-core", default="1")
    args = parser.parse_args()
    ws = Workspace()
    print(
        "| config | sockets | server CPU, no scrapes (ms/s) | CPU per scrape (ms), "
        "round by round | median | share at 15 s | share at 5 s |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in args.configs.split(","):
        result = measure(name, args, ws)
        cost = statistics.median(result["per_scrape_ms"])
        base = result["cpu_per_second_ms"]
        rounds = ", ".join(f"{value:.1f}" for value in result["per_scrape_ms"])
        print(
            f"| {name} | {result['connected']:,} | {base:.0f} | {rounds} | "
            f"{cost:.1f} | {cost / 15 / base:.1%} | {cost / 5 / base:.1%} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
