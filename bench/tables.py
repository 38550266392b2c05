"""Markdown tables of benchmark records, and the plot for docs/benchmarks.md.

``python -m bench.tables bench/results/w1-*.json ...`` prints the tables of
those result files; ``--plot docs/benchmarks.png`` also draws the figure.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{1000 * value:.0f}"


def _spread(dist: dict | None) -> str:
    if not dist or dist.get("p50") is None:
        return "-"
    return f"{_ms(dist['p50'])} / {_ms(dist['p99'])} / {_ms(dist['max'])}"


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _valid(record: dict) -> str:
    return "yes" if record["valid"] else "**no**: " + "; ".join(record["problems"])


HEADERS = {
    "w1": (
        "| config | N | connected | frames/s | server CPU | µs/frame | "
        "/ floor | / main | Redis+pub µs/frame | client CPU | missed | "
        "spread p50/p99/max ms | "
        "latency (last) p50/p99 ms | RSS KiB/conn | valid |"
    ),
    "w2": (
        "| config | N | connected | replies/s | server CPU | µs/reply | "
        "Redis+pub µs/reply | client CPU | skipped | spread p50/p99/max ms | "
        "latency (last) p50/p99 ms | RSS KiB/conn | valid |"
    ),
    "w4": (
        "| config | N | connected | events/s | server CPU | µs/event | "
        "push µs/frame | / push | Redis+pub µs/event | client CPU | missed | "
        "spread p50/p99/max ms | "
        "latency (last) p50/p99 ms | RSS KiB/conn | valid |"
    ),
    "w3": (
        "| config | N | connected | ticks/s | server CPU | µs/tick | "
        "client CPU | tick gap p50/p99/max ms | echo RTT p50/p99 ms | "
        "RSS KiB/conn | valid |"
    ),
}


def _ratio(record: dict, other: str, costs: dict) -> str:
    """``record``'s µs per frame over that of configuration ``other`` at the
    same N with the same clients, in the same set of results."""
    key = (other, record["n"], record.get("poll_interval"))
    mine, theirs = record.get("us_per_message"), costs.get(key)
    if not other or not mine or not theirs:
        return "-"
    return f"{mine / theirs:.2f}"


def costs_by_run(records: list[dict]) -> dict[tuple, float]:
    """µs per message of each (configuration, N, poll interval) measured."""
    return {
        (record["config"], record["n"], record.get("poll_interval")): cost
        for record in records
        if "error" not in record and (cost := record.get("us_per_message"))
    }


def row(record: dict, costs: dict | None = None) -> str:
    workload = record["workload"]
    costs = costs or {}
    polled = " (polling client)" if record.get("poll_interval") else ""
    name = f"{record['config']}{polled} | {record['n']:,}"
    if "error" in record:
        columns = HEADERS[workload].count("|") - 3
        return (
            f"| {name} | "
            + " | ".join(["-"] * columns)
            + f" | **{record['error'][:80]}** |"
        )
    common = [
        name,
        _num(record["established"]),
        _num(record["delivered_per_second"]),
        _pct(record["server_cpu_share"]),
        _num(record["us_per_message"]),
    ]
    if workload == "w3":
        rtt = record["echo_rtt"]
        cells = [
            *common,
            _pct(record["client_cpu_share"]),
            _spread(record["tick_gap"]),
            f"{_ms(rtt['p50'])} / {_ms(rtt['p99'])}",
        ]
    else:
        latency = record["latency_last"]
        if workload == "w1":
            common += [
                _ratio(record, record.get("floor", ""), costs),
                _ratio(record, record.get("main", ""), costs),
            ]
        elif workload == "w4":
            ratio = record.get("ratio_to_compared")
            common += [
                _num(record.get("compared", {}).get("us_per_message")),
                "-" if ratio is None else f"{ratio:.2f}",
            ]
        cells = [
            *common,
            _num(record["infra_us_per_message"]),
            _pct(record["client_cpu_share"]),
            _num(record["missed"]),
            _spread(record["spread"]),
            f"{_ms(latency['p50'])} / {_ms(latency['p99'])}",
        ]
    cells += [_num(record["rss_kb_per_connection"], 1), _valid(record)]
    return "| " + " | ".join(cells) + " |"


def markdown(records: list[dict]) -> str:
    out = []
    for workload in ("w1", "w2", "w3", "w4"):
        rows = [record for record in records if record["workload"] == workload]
        if not rows:
            continue
        header = HEADERS[workload]
        out += [header, "|" + "---|" * (header.count("|") - 1)]
        costs = costs_by_run(rows)
        out += [row(record, costs) for record in rows]
        out.append("")
    return "\n".join(out)


def plot(records: list[dict], path: Path) -> None:
    """Spread p99 and µs per frame against N, one line per configuration (W1).

    Only runs with the default (blocking) load generators are drawn.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4), dpi=100)
    by_config: dict[str, list[dict]] = {}
    for record in records:
        if (
            record["workload"] == "w1"
            and "error" not in record
            and not record.get("poll_interval")
        ):
            by_config.setdefault(record["config"], []).append(record)
    for config, runs in sorted(by_config.items()):
        runs.sort(key=lambda record: record["n"])
        ns = [record["n"] for record in runs]
        spread = [1000 * (record["spread"]["p99"] or 0) for record in runs]
        cost = [record["us_per_message"] or 0 for record in runs]
        left.plot(ns, spread, marker="o", label=config)
        right.plot(ns, cost, marker="o", label=config)
    left.set(xlabel="push sockets (N)", ylabel="p99 spread (ms)", title="W1 spread")
    right.set(xlabel="push sockets (N)", ylabel="server CPU µs / frame", title="W1 CPU")
    for axis in (left, right):
        axis.grid(alpha=0.3)
        axis.set_xscale("log")
    right.set_yscale("log")
    right.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path)


def load(paths: list[str]) -> list[dict]:
    records = []
    for path in paths:
        records += json.loads(Path(path).read_text())["runs"]
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results", nargs="+")
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    records = load(args.results)
    print(markdown(records))
    if args.plot:
        plot(records, args.plot)


if __name__ == "__main__":
    main()
