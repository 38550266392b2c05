"""What metrics cost: ``python -m bench.overhead bench/results/w1-*-metrics*.json``.

Pairs each ``<config>-metrics`` run with the ``<config>`` run of the same
result file (same session, run back to back), and prints per workload and
configuration the server CPU per message with metrics off and on, each
pair's difference, and the median and spread of the differences. On a busy
machine single runs vary by more than the cost measured: look at the spread.
"""

from __future__ import annotations

import argparse
import json
import statistics
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results", nargs="+", type=Path)
    args = parser.parse_args(argv)
    print(table(pairs(args.results)))


if __name__ == "__main__":
    main()
