"""Many resources in PostgreSQL: what a server process costs per resource.

Two measurements (issue 20), each against today's main in the same run:

- ``idle``: one server process, no client, with 10 and with 100,000
  resources in the table: its CPU and RSS over a window, and the rows the
  database read for it. Today's main re-reads every row every 5 s and holds
  every one; this tree should cost the same with 10 rows as with 100,000.
- ``w6``: 100,000 resources; ``--rate`` publishes a second spread over
  random resources; ``--clients`` push sockets across 2 server processes +
  Redis + PostgreSQL, each watching one random resource. Per process: RSS,
  CPU per delivered frame, rows read per second, and missed (a socket whose
  last version is not its resource's row once publishing stopped and one
  re-read interval passed).

::

    python -m bench.resources idle --resources 10,100000 --window 30
    python -m bench.resources w6 --resources 100000 --rate 1000 --clients 10000

Each run gets a fresh PostgreSQL database (``--postgres``, default the local
server), migrated by the tree it runs and filled with ``COPY``; it is dropped
afterwards. Servers and Redis are pinned to ``--server-core``, clients and
publishers to ``--client-core``; PostgreSQL is not pinned. Results are
printed and written to ``bench/results/resources-<what>-<time>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .stack import Config, Stack, Workspace, rss_bytes, sample

RESULTS = Path(__file__).resolve().parent / "results"
HERE = Path(__file__).resolve().parent
#: The servers' re-read interval (the default): the grace after publishing
#: within which a lost layer message must have arrived.
RESYNC_INTERVAL = 5.0

CONFIGS = {
    name: Config(
        name,
        "uvicorn",
        processes,
        redis=True,
        publisher="self",
        ws="websockets-sansio",
        metrics=True,
        workloads=("w6",),
        checkout=checkout,
        label=label,
    )
    for name, processes, checkout, label in (
        ("uvicorn1-pg", 1, "", "Uvicorn x1 + Redis + PostgreSQL"),
        ("uvicorn1-pg-main", 1, "main", "today's main, Uvicorn x1 + Redis + PG"),
        ("uvicorn2-pg", 2, "", "Uvicorn x2 + Redis + PostgreSQL"),
        ("uvicorn2-pg-main", 2, "main", "today's main, Uvicorn x2 + Redis + PG"),
    )
}


@dataclass
class PostgresWorkspace(Workspace):
    """A workspace whose database is a fresh PostgreSQL one (see :func:`database`)."""

    url: str = ""

    def __post_init__(self) -> None:
        # The database is made per run, by the tree that runs (database()).
        self.database = Path("unused")

    def env(self, **overrides: str) -> dict[str, str]:
        return super().env(**{"DATABASE_URL": self.url, **overrides})


@contextlib.contextmanager
def database(admin: str, root: Path, resources: int, length: int) -> Iterator[str]:
    """A new database next to ``admin``'s, migrated by ``root``'s tree, with
    ``res`` and ``r0`` … ``r{resources-1}`` at sequence 1; dropped afterwards."""
    import psycopg

    name = f"selector_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as db:
        db.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(admin)._replace(path=f"/{name}"))
    try:
        env = PostgresWorkspace(url=url).env(PYTHONPATH=str(root))
        subprocess.run(
            [sys.executable, str(root / "manage.py"), "migrate", "-v0"],
            env=env,
            cwd=root,
            check=True,
            timeout=300,
        )
        now = datetime.now(UTC)
        data = "x" * length
        with psycopg.connect(url) as db:
            # The demo's migration creates ``res`` (what readiness asks for).
            db.execute(
                "INSERT INTO selector_app_resource (name, sequence, data, updated_at)"
                " VALUES ('res', 1, %s, %s) ON CONFLICT (name) DO NOTHING",
                [data, now],
            )
            copy_sql = (
                "COPY selector_app_resource (name, sequence, data, updated_at) "
                "FROM STDIN"
            )
            with db.cursor().copy(copy_sql) as copy:
                for index in range(resources):
                    copy.write_row((f"r{index}", 1, data, now))
            db.execute("ANALYZE selector_app_resource")
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as db:
            db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def rows_fetched(url: str) -> int:
    """Rows PostgreSQL has read from the resource table (all clients)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        db.execute("SELECT pg_stat_clear_snapshot()")
        row = db.execute(
            "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) "
            "FROM pg_stat_user_tables WHERE relname = 'selector_app_resource'"
        ).fetchone()
    return int(row[0])


def sequences(url: str, names: set[str]) -> dict[str, int]:
    import psycopg

    with psycopg.connect(url) as db:
        rows = db.execute(
            "SELECT name, sequence FROM selector_app_resource WHERE name = ANY(%s)",
            [sorted(names)],
        ).fetchall()
    return dict(rows)


METRIC = re.compile(r'^selector_app_(rereads|reread_rows)_total\{\w+="(\w+)"\} (\S+)$')


def scrape(port: int) -> dict[str, float]:
    """The re-read counters of one server's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
        text = r.read().decode()
    found = {}
    for line in text.splitlines():
        if match := METRIC.match(line):
            found[f"{match[1]}:{match[2]}"] = float(match[3])
    return found


def rows_read(before: dict, after: dict, table_rows: int) -> float:
    """Rows one process's re-reads read between two scrapes. A tree without
    the ``reread_rows`` counter (today's main) reads the whole table each time."""
    if "reread_rows:narrow" in after:
        return sum(
            after.get(f"reread_rows:{kind}", 0) - before.get(f"reread_rows:{kind}", 0)
            for kind in ("narrow", "whole")
        )
    return (after.get("rereads:ok", 0) - before.get("rereads:ok", 0)) * table_rows


class ResourceStack(Stack):
    """The servers and Redis of a run; W6 publishes on its own (see ``w6``)."""

    def _wait_published(self, timeout: float = 15.0) -> None:
        pass

    def start(self) -> None:
        super().start()
        if self.scraper is not None:
            self.scraper.stop()  # scraped at the window's edges only
            self.scraper = None


def idle(args: argparse.Namespace) -> list[dict]:
    records = []
    for name in args.configs.split(","):
        config = CONFIGS[name]
        for resources in [int(n) for n in args.resources.split(",")]:
            ws = PostgresWorkspace(main_rev=args.main_rev)
            root = ws.root(config)
            with database(args.postgres, root, resources, args.length) as url:
                ws.url = url
                print(f"== idle {name} resources={resources}", flush=True)
                with ResourceStack(config, ws, args.server_core) as stack:
                    port = stack.servers[0].port
                    time.sleep(args.warmup)
                    pid = stack.server_pids()[0]
                    scrape0, fetched0 = scrape(port), rows_fetched(url)
                    cpu0, _ = sample([pid])
                    time.sleep(args.window)
                    cpu1, rss = sample([pid])
                    scrape1, fetched1 = scrape(port), rows_fetched(url)
            record = {
                "what": "idle",
                "config": name,
                "resources": resources,
                "window": args.window,
                "cpu_percent": 100 * (cpu1 - cpu0) / args.window,
                "rss_mb": rss / 2**20,
                "rows_read_per_s": rows_read(scrape0, scrape1, resources + 1)
                / args.window,
                "db_rows_per_s": (fetched1 - fetched0) / args.window,
            }
            print(json.dumps(record), flush=True)
            records.append(record)
    return records


def _spawn(command: list[str], core: str, env=None, cwd=None) -> subprocess.Popen:
    return subprocess.Popen(
        ["taskset", "-c", core, *command],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd or HERE.parent,
    )


def _line(process: subprocess.Popen, event: str | None = None) -> dict:
    line = process.stdout.readline()
    if not line:
        raise RuntimeError("A client or publisher exited early.")
    message = json.loads(line)
    if event and message.get("event") != event:
        raise RuntimeError(f"Expected {event!r}, got {message!r:.300}")
    return message


def w6(args: argparse.Namespace) -> list[dict]:
    records = []
    resources = int(args.resources)
    for name in args.configs.split(","):
        config = CONFIGS[name]
        ws = PostgresWorkspace(main_rev=args.main_rev)
        root = ws.root(config)
        with database(args.postgres, root, resources, args.length) as url:
            ws.url = url
            print(f"== w6 {name} resources={resources}", flush=True)
            with ResourceStack(config, ws, args.server_core) as stack:
                records.append(_w6_run(args, config, stack, ws, url, resources))
            print(json.dumps(records[-1]), flush=True)
    return records


def _w6_run(args, config, stack, ws, url, resources) -> dict:
    servers = stack.servers
    pids = stack.server_pids()
    rss_idle = [rss_bytes(pid) for pid in pids]
    share = args.clients // len(servers)
    clients = [
        _spawn(
            [
                sys.executable,
                "-m",
                "bench.loadgen",
                "--workload",
                "w6",
                "--targets",
                f"127.0.0.1:{server.port}",
                "--path",
                "/websocket",
                "--count",
                str(share),
                "--resources",
                str(resources),
                "--seed",
                str(index),
                "--max-seconds",
                "900",
            ],
            args.client_core,
        )
        for index, server in enumerate(servers)
    ]
    try:
        connected = [_line(client, "connected") for client in clients]
        time.sleep(args.warmup)
        scrape0 = [scrape(server.port) for server in servers]
        fetched0 = rows_fetched(url)
        for client in clients:
            client.stdin.write("mark\n")
            client.stdin.flush()
        marks0 = [_line(client, "mark") for client in clients]
        publisher_env = ws.env(
            PYTHONPATH=str(stack.root),
            REDIS_URL=stack.redis.url,
            DJANGO_SETTINGS_MODULE=config.settings,
        )
        publishers = [
            _spawn(
                [
                    sys.executable,
                    str(HERE / "publish_many.py"),
                    "--rate",
                    str(args.rate / args.publishers),
                    "--resources",
                    str(resources),
                    "--seconds",
                    str(args.window),
                    "--length",
                    str(args.length),
                    "--seed",
                    str(100 + index),
                ],
                args.client_core,
                env=publisher_env,
                cwd=stack.root,
            )
            for index in range(args.publishers)
        ]
        for publisher in publishers:
            _line(publisher, "ready")
        cpu0 = [sample([pid])[0] for pid in pids]
        t0 = time.time()
        for publisher in publishers:
            publisher.stdin.write("go\n")
            publisher.stdin.flush()
        published = [_line(publisher) for publisher in publishers]
        for publisher in publishers:
            publisher.wait(30)
        t1 = time.time()
        cpu1 = [sample([pid])[0] for pid in pids]
        rss_loaded = [rss_bytes(pid) for pid in pids]
        for client in clients:
            client.stdin.write("mark\n")
            client.stdin.flush()
        marks1 = [_line(client, "mark") for client in clients]
        scrape1 = [scrape(server.port) for server in servers]
        fetched1 = rows_fetched(url)
        # A lost layer message arrives within one re-read interval.
        time.sleep(RESYNC_INTERVAL + 2)
        for client in clients:
            client.stdin.write(f"report {t0} {t1}\n")
            client.stdin.flush()
        reports = [_line(client, "report") for client in clients]
    finally:
        for client in clients:
            with contextlib.suppress(OSError):
                client.stdin.close()
            try:
                client.wait(30)
            except subprocess.TimeoutExpired:
                client.kill()
    window = t1 - t0
    truth = sequences(url, {n for r in reports for n, _ in r["lasts"]})
    processes = []
    for index, report in enumerate(reports):
        frames = marks1[index]["frames"] - marks0[index]["frames"]
        cpu = cpu1[index] - cpu0[index]
        processes.append(
            {
                "sockets": connected[index]["established"],
                "failed": connected[index]["failed"],
                "rss_idle_mb": rss_idle[index] / 2**20,
                "rss_mb": rss_loaded[index] / 2**20,
                "cpu_s": cpu,
                "frames": frames,
                "us_per_frame": 1e6 * cpu / frames if frames else None,
                "rows_read_per_s": rows_read(
                    scrape0[index], scrape1[index], resources + 1
                )
                / window,
                "missed": sum(truth.get(n) != last for n, last in report["lasts"]),
                "order_errors": report["order_errors"],
                "disconnects": report["disconnects"],
            }
        )
    return {
        "what": "w6",
        "config": config.name,
        "label": config.label,
        "resources": resources,
        "clients": args.clients,
        "rate": args.rate,
        "published_per_s": sum(p["published"] for p in published) / window,
        "window": window,
        "db_rows_per_s": (fetched1 - fetched0) / window,
        "processes": processes,
    }


def table(records: list[dict]) -> str:
    lines = []
    for record in records:
        if record["what"] == "idle":
            lines.append(
                f"| {record['config']} | {record['resources']:,} | "
                f"{record['cpu_percent']:.2f} % | {record['rss_mb']:.0f} MB | "
                f"{record['rows_read_per_s']:,.0f} | {record['db_rows_per_s']:,.0f} |"
            )
            continue
        for index, p in enumerate(record["processes"]):
            per_frame = p["us_per_frame"]
            lines.append(
                f"| {record['config']} #{index} | {record['published_per_s']:,.0f} | "
                f"{p['sockets']:,} | {p['rss_idle_mb']:.0f} → {p['rss_mb']:.0f} MB | "
                f"{per_frame:.0f} µs | {p['frames']:,} | "
                f"{p['rows_read_per_s']:,.0f} | {record['db_rows_per_s']:,.0f} | "
                f"{p['missed']} |"
                if per_frame is not None
                else f"| {record['config']} #{index} | no frames |"
            )
    if records and records[0]["what"] == "idle":
        head = (
            "| config | resources | CPU | RSS | rows read/s (process) | "
            "rows read/s (database) |\n|---|---|---|---|---|---|"
        )
    else:
        head = (
            "| process | publishes/s | sockets | RSS idle → loaded | CPU/frame | "
            "frames | rows read/s (process) | rows read/s (database, all) | "
            "missed |\n|---|---|---|---|---|---|---|---|---|"
        )
    return "\n".join([head, *lines])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("what", choices=("idle", "w6"))
    parser.add_argument(
        "--resources", default=None, help="idle: comma-separated; w6: one number"
    )
    parser.add_argument("--configs", default=None)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--publishers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--length", type=int, default=1024)
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--server-core", default="0")
    parser.add_argument("--client-core", default="1")
    parser.add_argument("--main-rev", default="b98cff1")
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "SELECTOR_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"
        ),
        help="a PostgreSQL URL that may create and drop databases",
    )
    args = parser.parse_args(argv)
    if args.what == "idle":
        args.resources = args.resources or "10,100000"
        args.configs = args.configs or "uvicorn1-pg,uvicorn1-pg-main"
    else:
        args.resources = args.resources or "100000"
        args.configs = args.configs or "uvicorn2-pg,uvicorn2-pg-main"
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    records = idle(args) if args.what == "idle" else w6(args)
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = RESULTS / f"resources-{args.what}-{stamp}.json"
    out.write_text(json.dumps({"args": vars(args), "records": records}, indent=1))
    print(table(records))
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
