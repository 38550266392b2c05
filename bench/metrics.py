"""Turning the load generators' reports and /proc samples into a run's numbers.

Definitions (also in docs/benchmarks.md):

- a version is *in the window* if its publish time is in [t0, t1 - 1 s];
- *missed* (W1) or *skipped* (W2): for versions in the window, the clients
  open at the end of the run minus the receipts of that version;
- *spread*: last minus first receipt of one version across all clients;
- *latency*: first (and last) receipt minus the publish time, which is the
  timestamp of the publisher's ``Published res #N`` log line, written once
  the version is committed and the channel layer has accepted it (the
  baseline logs it just before ``broadcast()``);
- *CPU per message*: CPU seconds of the server processes in the window
  divided by the frames (W1), replies (W2) or ticks (W3) the clients
  received in it; Redis and the publisher are reported separately.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile; ``None`` for no values."""
    if not values:
        return None
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def distribution(values: list[float]) -> dict[str, float | None]:
    return {
        "p50": percentile(values, 0.50),
        "p99": percentile(values, 0.99),
        "max": max(values) if values else None,
        "count": len(values),
    }


def merge_versions(reports: list[dict]) -> dict[int, list]:
    merged: dict[int, list] = {}
    for report in reports:
        for key, (count, first, last) in report["versions"].items():
            entry = merged.setdefault(int(key), [0, first, last])
            entry[0] += count
            entry[1] = min(entry[1], first)
            entry[2] = max(entry[2], last)
    return merged


def summarize(
    *,
    workload: str,
    n: int,
    t0: float,
    t1: float,
    connected: list[dict],
    marks: tuple[list[dict], list[dict]],
    reports: list[dict],
    publish_times: dict[int, float],
    cpu: dict[str, float],
    rss: tuple[int, int],
    client_limit: float,
) -> dict:
    window = t1 - t0
    established = sum(message["established"] for message in connected)
    still_open = sum(report["open"] for report in reports)
    counter = "ticks" if workload == "w3" else "frames"
    delivered = sum(m1[counter] - m0[counter] for m0, m1 in zip(*marks, strict=True))
    echoes = sum(m1["echoes"] - m0["echoes"] for m0, m1 in zip(*marks, strict=True))
    client_share = cpu["client"] / window
    result: dict = {
        "established": established,
        "connect_seconds": max(message["seconds"] for message in connected),
        "connect_errors": _merge_counts(message["errors"] for message in connected),
        "open_at_end": still_open,
        "t0": t0,
        "t1": t1,
        "delivered": delivered,
        "delivered_per_second": delivered / window,
        "echoes": echoes,
        "server_cpu_seconds": cpu["server"],
        "server_cpu_share": cpu["server"] / window,
        "infra_cpu_seconds": cpu["infra"],
        "client_cpu_share": client_share,
        # Everything else the machine did in the window (other processes,
        # kernel work not charged to ours), in cores: a disturbed run shows.
        "other_cpu_share": (
            cpu["machine"] - cpu["server"] - cpu["infra"] - cpu["client"]
        )
        / window,
        "us_per_message": 1e6 * cpu["server"] / delivered if delivered else None,
        "cpu_s_per_1000": 1e3 * cpu["server"] / delivered if delivered else None,
        "infra_us_per_message": 1e6 * cpu["infra"] / delivered if delivered else None,
        "rss_idle_mb": rss[0] / 2**20,
        "rss_loaded_mb": rss[1] / 2**20,
        "rss_kb_per_connection": (rss[1] - rss[0]) / 1024 / established
        if established
        else None,
        "order_errors": sum(report["order_errors"] for report in reports),
        "gaps_in_window": sum(report["gaps_in_window"] for report in reports),
        "disconnects": sum(report["disconnects"] for report in reports),
        "errors": _merge_counts(report["errors"] for report in reports),
        "statuses": _merge_counts(report["statuses"] for report in reports),
    }
    if workload in ("w1", "w2", "w4"):
        result.update(_versions(reports, publish_times, t0, t1, still_open))
    if workload == "w3":
        gaps = [gap for report in reports for gap in report["tick_gaps"]]
        rtts = [rtt for report in reports for rtt in report["echo_rtts"]]
        result["tick_gap"] = distribution(gaps)
        result["echo_rtt"] = distribution(rtts)
    problems = []
    if client_share > client_limit:
        problems.append(f"client used {client_share:.0%} of its core")
    if result["other_cpu_share"] > 0.25:
        problems.append(f"{result['other_cpu_share']:.2f} cores used by others")
    if established < n:
        problems.append(f"only {established} of {n} connected")
    result["valid"] = not problems
    result["problems"] = problems
    return result


def _versions(
    reports: list[dict],
    publish_times: dict[int, float],
    t0: float,
    t1: float,
    expected: int,
) -> dict:
    merged = merge_versions(reports)
    in_window = sorted(
        sequence for sequence, when in publish_times.items() if t0 <= when <= t1 - 1
    )
    spreads, first, last, missing = [], [], [], 0
    for sequence in in_window:
        count, earliest, latest = merged.get(sequence, (0, None, None))
        missing += max(0, expected - count)
        if count:
            spreads.append(latest - earliest)
            first.append(earliest - publish_times[sequence])
            last.append(latest - publish_times[sequence])
    return {
        "versions_in_window": len(in_window),
        "missed": missing,
        "spread": distribution(spreads),
        "latency_first": distribution(first),
        "latency_last": distribution(last),
    }


def _merge_counts(dicts) -> dict[str, int]:
    total: dict[str, int] = {}
    for counts in dicts:
        for key, value in counts.items():
            total[key] = total.get(key, 0) + value
    return total


def headline(record: dict) -> dict:
    """The few numbers printed as each run finishes."""
    if "error" in record:
        return {key: record[key] for key in ("config", "n", "error")}
    keys = (
        "config",
        "n",
        "established",
        "delivered_per_second",
        "us_per_message",
        "server_cpu_share",
        "infra_us_per_message",
        "client_cpu_share",
        "other_cpu_share",
        "missed",
        "spread",
        "latency_last",
        "tick_gap",
        "rss_kb_per_connection",
        "valid",
        "problems",
    )
    return {key: record[key] for key in keys if key in record}


def _command(*args: str) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True).stdout
    except OSError:
        return ""


def machine() -> dict:
    """What the numbers were measured on."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in _command("lscpu").splitlines()
            if line.startswith("Model name")
        ),
        platform.processor(),
    )
    with open("/proc/meminfo") as meminfo:
        memory = next(
            line.split(":", 1)[1].strip()
            for line in meminfo
            if line.startswith("MemTotal")
        )
    packages = {}
    for name in (
        "django",
        "channels",
        "channels-redis",
        "daphne",
        "twisted",
        "autobahn",
        "uvicorn",
        "uvloop",
        "httptools",
        "websockets",
        "redis",
    ):
        try:
            packages[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            packages[name] = None
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory": memory,
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "redis_server": _command("redis-server", "--version").strip(),
        "packages": packages,
    }
