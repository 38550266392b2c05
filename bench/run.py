"""The benchmark runner: ``python -m bench.run w1 --n 1000,5000 --configs all``.

For each configuration and each N it starts the servers (pinned to one core),
opens N clients from load-generator processes (pinned to the other core),
warms up, measures a window, and writes every run as JSON under
``bench/results/`` plus a markdown table. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

from . import metrics
from .stack import (
    CONFIGS,
    DEFAULT_CONFIGS,
    Config,
    Stack,
    Workspace,
    machine_busy_seconds,
    sample,
)
from .tables import markdown

RESULTS = Path(__file__).resolve().parent / "results"
PATHS = {"w1": "/websocket", "w2": "/comet", "w3": "/bidirectional", "w4": "/events"}
#: Connections per load-generator process (one process holds < 20,000 fds).
PER_PROCESS = {"w1": 10_000, "w2": 5_000, "w3": 5_000, "w4": 10_000}
#: W4 (event streams) is measured against push sockets in the same run: after
#: each W4 run, the same configuration and N over W1.
COMPARED_WITH = {"w4": "w1"}


class LoadGenerators:
    """The client processes of one run, driven through stdin/stdout."""

    def __init__(
        self,
        workload: str,
        targets: list[str],
        n: int,
        core: str,
        poll_interval: float,
    ) -> None:
        count = math.ceil(n / PER_PROCESS[workload])
        shares = [n // count + (i < n % count) for i in range(count)]
        self.processes = [
            subprocess.Popen(
                [
                    "taskset",
                    "-c",
                    core,
                    sys.executable,
                    "-m",
                    "bench.loadgen",
                    "--workload",
                    workload,
                    "--targets",
                    ",".join(targets),
                    "--path",
                    PATHS[workload],
                    "--count",
                    str(share),
                    "--max-seconds",
                    "900",
                    "--poll-interval",
                    str(poll_interval),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                cwd=Path(__file__).resolve().parents[1],
            )
            for share in shares
        ]

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def read_all(self, event: str) -> list[dict]:
        messages = []
        for process in self.processes:
            line = process.stdout.readline()
            if not line:
                raise RuntimeError("A load generator exited early.")
            message = json.loads(line)
            if message.get("event") != event:
                raise RuntimeError(f"Expected {event!r}, got {message!r:.300}")
            messages.append(message)
        return messages

    def command(self, line: str) -> None:
        for process in self.processes:
            process.stdin.write(line + "\n")
            process.stdin.flush()

    def close(self) -> None:
        for process in self.processes:
            try:
                process.stdin.close()
                process.wait(30)
            except (OSError, subprocess.TimeoutExpired):
                process.kill()
                process.wait()


def load_average() -> list[float]:
    return [float(value) for value in Path("/proc/loadavg").read_text().split()[:3]]


def busiest(count: int = 5) -> list[str]:
    result = subprocess.run(
        ["ps", "-eo", "pcpu,pid,comm", "--sort=-pcpu"],
        capture_output=True,
        text=True,
    )
    return result.stdout.splitlines()[1 : count + 1]


def _window_edge(stack, clients: LoadGenerators) -> tuple:
    """One end of the measurement window: its time, the CPU seconds of each
    part, the servers' RSS and the clients' counters."""
    clients.command("mark")
    at = time.time()
    server, rss = sample(stack.server_pids())
    cpu = {
        "server": server,
        "infra": sample(stack.infra_pids())[0],
        "client": sample(clients.pids)[0],
        "machine": machine_busy_seconds(),
    }
    return at, cpu, rss, clients.read_all("mark")


def run_one(
    workload: str, config: Config, n: int, args: argparse.Namespace, ws: Workspace
) -> dict:
    """One configuration at one N; returns the run's record."""
    record: dict = {
        "workload": workload,
        "config": config.name,
        "label": config.label,
        "server": config.server,
        "floor": config.floor,
        "main": config.main,
        "n": n,
        "window": args.window,
        "warmup": args.warmup,
        "load_average": load_average(),
        "busiest": busiest(),
        "started": time.time(),
        "profiled": args.profile,
        "poll_interval": args.poll_interval,
    }
    with Stack(config, ws, args.server_core) as stack:
        record["stack"] = stack.describe()
        _, rss_idle = sample(stack.server_pids())
        targets = [f"127.0.0.1:{server.port}" for server in stack.servers]
        clients = LoadGenerators(
            workload, targets, n, args.client_core, args.poll_interval
        )
        try:
            connected = clients.read_all("connected")
            time.sleep(args.warmup)
            t0, cpu0, _, marks0 = _window_edge(stack, clients)
            profilers = _profile(stack, args) if args.profile else []
            time.sleep(args.window)
            for profiler in profilers:
                try:
                    profiler.wait(args.window + 60)
                except subprocess.TimeoutExpired:
                    profiler.kill()
                    profiler.wait()
            t1, cpu1, rss_loaded, marks1 = _window_edge(stack, clients)
            time.sleep(args.grace)
            clients.command(f"report {t0} {t1}")
            reports = clients.read_all("report")
        finally:
            clients.close()
        publish_times = stack.publish_times()
        if stack.scraper is not None:
            record["scrapes"] = stack.scraper.scrapes
            record["scrape_failures"] = stack.scraper.failures
    record.update(
        metrics.summarize(
            workload=workload,
            n=n,
            t0=t0,
            t1=t1,
            connected=connected,
            marks=(marks0, marks1),
            reports=reports,
            publish_times=publish_times,
            cpu={part: cpu1[part] - cpu0[part] for part in cpu0},
            rss=(rss_idle, rss_loaded),
            client_limit=args.client_limit,
        )
    )
    return record


def _profile(stack: Stack, args: argparse.Namespace) -> list[subprocess.Popen]:
    """py-spy on each server process for the window (on the client core).

    Only the thread holding the GIL is sampled (idle executor threads would
    otherwise dominate). py-spy pauses the process for each sample (torn
    stacks otherwise), so a profiled run's numbers are not measurements.
    """
    py_spy = Path(sys.executable).with_name("py-spy")
    return [
        subprocess.Popen(
            [
                "taskset",
                "-c",
                args.client_core,
                str(py_spy),
                "record",
                "--gil",
                "--format",
                "raw",
                "--rate",
                "100",
                "--duration",
                str(int(args.window)),
                "--pid",
                str(pid),
                "--output",
                str(stack.logs / f"profile-{pid}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in stack.server_pids()
    ]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("workload", choices=sorted(PATHS))
    parser.add_argument("--n", default="1000", help="comma-separated client counts")
    parser.add_argument(
        "--configs",
        default="all",
        help=f"comma-separated, of {', '.join(CONFIGS)}; 'all' = "
        f"{','.join(DEFAULT_CONFIGS)} (those that run the workload)",
    )
    parser.add_argument("--window", type=float, default=30.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--grace", type=float, default=2.5)
    parser.add_argument("--server-core", default="0")
    parser.add_argument("--client-core", default="1")
    parser.add_argument(
        "--client-limit",
        type=float,
        default=0.85,
        help="a run whose clients used more of their core is invalid",
    )
    parser.add_argument(
        "--max-per-process",
        type=int,
        default=19_000,
        help="skip N above this per server process (the fd limit is 20,000)",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=0.0,
        help="load generators poll their sockets every this many seconds "
        "instead of blocking in epoll (0, the default: block)",
    )
    parser.add_argument("--tag", default="", help="added to the result file name")
    parser.add_argument(
        "--main-rev",
        default="e9da150",
        help="the revision the '-main' configurations run (today's main), "
        "extracted with git archive into the run's temporary directory",
    )
    parser.add_argument(
        "--plan",
        action="store_true",
        help="run the documented matrix of configurations and N for the "
        "workload (see PLANS) instead of --n/--configs",
    )
    parser.add_argument("--dry-run", action="store_true", help="list the runs")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="5 s windows after 2 s warm-ups: check that every run works",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="record a py-spy profile of each server in the window (collapsed "
        "stacks in the run's log directory; analyse with bench.profile)",
    )
    return parser.parse_args(argv)


#: W1's side-by-side comparison (issue 19): each server's floor, the app on
#: it, and today's main on it (``--main-rev``), plus the raw websockets one.
COMPARED = (
    "floor-uvicorn",
    "uvicorn1-sansio",
    "uvicorn1-main",
    "floor-daphne",
    "floor-daphne-stock",
    "daphne1",
    "daphne1-runserver",
    "daphne1-main",
    "baseline",
)

#: Load generators that poll every millisecond (see loadgen --poll-interval).
POLLED = {"window": 20, "poll_interval": 0.001}

#: The documented runs (docs/benchmarks.md): ``--plan`` runs these, in order.
#: Each step: configurations, client counts, and settings that differ from
#: the command line's (window, poll_interval).
PLANS: dict[str, list[tuple[tuple[str, ...], tuple[int, ...], dict]]] = {
    "w1": [
        # Issue 19: the app, today's main and the one-loop floors, side by side.
        (COMPARED, (5000,), {"window": 20}),
        (COMPARED, (10000,), {"window": 20}),
        (
            ("daphne1-asyncio", "daphne1-eager-logs", "daphne1-buffered-writes"),
            (5000,),
            {"window": 20},
        ),
        (("uvicorn2-sansio", "uvicorn2-main"), (20000,), {"window": 20}),
        (("daphne1", "uvicorn1"), (1000,), {}),
        (("daphne2", "uvicorn2"), (5000, 20000), {}),
        (("daphne1-nogc", "uvicorn1-nogc"), (10000,), {"window": 20}),
        (("stock-uvicorn1",), (1000,), {"window": 20}),
        (("daphne1", "uvicorn1", "baseline"), (10000,), POLLED),
        (("uvicorn2", "uvicorn2-sansio"), (20000,), POLLED),
    ],
    "w2": [
        (("daphne1", "daphne1-main", "uvicorn1", "uvicorn1-main"), (500, 2000), {}),
        (("daphne2", "uvicorn2"), (500, 2000), {}),
        (("daphne1", "uvicorn1"), (5000,), {"window": 20}),
        (("daphne1-django", "uvicorn1-django"), (500,), {"window": 20}),
        (("uvicorn1-django-nomw",), (500,), {"window": 20}),
    ],
    "w4": [
        # Issue 15: event streams against push sockets, 1 publish a second.
        (("daphne1", "uvicorn1"), (1000,), {"window": 20}),
        (("daphne1", "uvicorn1"), (5000,), {"window": 20}),
    ],
    "w3": [
        (("daphne1", "daphne1-main", "uvicorn1-sansio", "uvicorn1-main"), (1000,), {}),
        (("uvicorn1", "daphne2", "uvicorn2"), (1000,), {}),
        (("uvicorn1",), (2000,), {}),
    ],
}


def steps(args: argparse.Namespace) -> list[tuple[Config, int, argparse.Namespace]]:
    """(configuration, N, effective arguments) of every run to do."""
    if args.plan:
        plan = PLANS[args.workload]
    else:
        names = DEFAULT_CONFIGS if args.configs == "all" else args.configs.split(",")
        sizes = tuple(int(value) for value in args.n.split(","))
        plan = [(tuple(names), sizes, {})]
    runs = []
    for names, sizes, overrides in plan:
        for name in names:
            config = CONFIGS[name]
            if args.workload not in config.workloads:
                continue
            for n in sizes:
                if n > args.max_per_process * config.processes:
                    continue
                effective = argparse.Namespace(**{**vars(args), **overrides})
                if args.smoke:
                    effective.window, effective.warmup = 5.0, 2.0
                runs.append((config, n, effective))
    return runs


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    runs = steps(args)
    if args.dry_run:
        for config, n, effective in runs:
            print(config.name, n, effective.window, effective.poll_interval)
        return
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    tag = f"-{args.tag}" if args.tag else ""
    out = RESULTS / f"{args.workload}-{stamp}{tag}.json"
    ws = Workspace(main_rev=args.main_rev)
    records = []
    for config, n, effective in runs:
        print(f"== {args.workload} {config.name} N={n}", flush=True)
        try:
            record = run_one(args.workload, config, n, effective, ws)
        except Exception as error:  # keep going: one failure is a result too
            record = {
                "workload": args.workload,
                "config": config.name,
                "label": config.label,
                "n": n,
                "poll_interval": effective.poll_interval,
                "error": f"{type(error).__name__}: {error}"[:2000],
            }
        records.append(record)
        print(json.dumps(metrics.headline(record)), flush=True)
        other = COMPARED_WITH.get(args.workload)
        if other and "error" not in record:
            print(f"== {other} {config.name} N={n} (compared)", flush=True)
            try:
                compared = run_one(other, config, n, effective, ws)
            except Exception as error:
                compared = {"error": f"{type(error).__name__}: {error}"[:2000]}
            record["compared"] = compared
            cost, theirs = record.get("us_per_message"), compared.get("us_per_message")
            record["ratio_to_compared"] = cost / theirs if cost and theirs else None
            print(
                json.dumps({"ratio_to_push": record["ratio_to_compared"]}), flush=True
            )
        out.write_text(
            json.dumps({"machine": metrics.machine(), "runs": records}, indent=1)
        )
    table = markdown(records)
    out.with_suffix(".md").write_text(table)
    print(table)
    print(f"Results: {out}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
