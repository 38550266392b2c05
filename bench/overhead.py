"""What metrics cost: ``python -m bench.overhead bench/results/w1-*-metrics*.json``.

Pairs each ``<config>-metrics`` run with the ``<config>`` run of the same
result file (same session, run back to back), and prints per workload and
configuration the server CPU per message with metrics off and on, each
pair's difference, and the median and spread of the differences. On a busy
machine single runs vary by more than the cost measured: look at the spread.
``--micro`` times the instrumentation itself (``taskset -c 1`` to pin it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict
from pathlib import Path

SUFFIX = "-metrics"


def pairs(paths: list[Path]) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """(workload, config) -> [(µs off, µs on)], one pair per result file."""
    found: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for path in paths:
        runs = json.loads(path.read_text())["runs"]
        cost = {
            run["config"]: run["us_per_message"]
            for run in runs
            if "error" not in run and run.get("us_per_message")
        }
        for config, on in cost.items():
            base = config.removesuffix(SUFFIX)
            if config.endswith(SUFFIX) and base in cost:
                workload = runs[0]["workload"]
                found[workload, base].append((cost[base], on))
    return found


def table(found: dict[tuple[str, str], list[tuple[float, float]]]) -> str:
    lines = [
        "| workload | config | pairs | µs/msg off (median) | µs/msg on (median) "
        "| difference per pair | median difference |",
        "|---|---|---|---|---|---|---|",
    ]
    for (workload, config), values in sorted(found.items()):
        offs = [off for off, _ in values]
        ons = [on for _, on in values]
        diffs = [100 * (on - off) / off for off, on in values]
        lines.append(
            f"| {workload.upper()} | {config} | {len(values)} "
            f"| {statistics.median(offs):.1f} | {statistics.median(ons):.1f} "
            f"| {', '.join(f'{d:+.0f}%' for d in diffs)} "
            f"| {statistics.median(diffs):+.1f}% |"
        )
    return "\n".join(lines)


def micro() -> str:
    """The instrumentation's own cost per call, best of 7 (ns): what a
    pushed frame and a Comet reply pay with metrics on."""
    import timeit

    from selector_app import metrics
    from selector_app.protocol import Snapshot

    names = {
        "metrics": metrics,
        "snapshot": Snapshot("res", 2, "x", time.time()),
        "since": time.time() - 10,
        "on": True,
    }

    def best(statement: str, number: int = 200_000) -> float:
        runs = timeit.repeat(statement, globals=names, number=number, repeat=7)
        return min(runs) / number * 1e9

    empty = best("pass")
    count = best("if on: metrics.sent['push'] += 1") - empty
    timed = best("if on: metrics.delivered('push', snapshot, since)") - empty
    metrics.reset()
    return (
        f"count a frame: {count:.0f} ns; time a delivery: {timed:.0f} ns; "
        f"per pushed frame (one socket in {metrics.LATENCY_SAMPLE} timed): "
        f"{count + timed / metrics.LATENCY_SAMPLE:.0f} ns; "
        f"per Comet reply (every one timed): {2 * count + timed:.0f} ns"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results", nargs="*", type=Path)
    parser.add_argument(
        "--micro", action="store_true", help="also time the instrumentation itself"
    )
    args = parser.parse_args(argv)
    if args.results:
        print(table(pairs(args.results)))
    if args.micro:
        print(micro())


if __name__ == "__main__":
    main()
