"""How long ``./scripts/demo`` takes from a fresh clone to its first HTTP 200.

    python3 bench/first_start.py             # warm pip cache (primes it first)
    python3 bench/first_start.py --cold      # empty pip and uv caches for each run
    python3 bench/first_start.py --runs 3 --repo /path/to/checkout

Each run clones the repository (its committed HEAD) into a temporary
directory, starts ``./scripts/demo 127.0.0.1:<free port>`` there and asks
``GET /`` every 0.1 s until it answers 200. The clock starts when the clone
is done (cloning is the network's, not the demo's) and stops at the 200; the
time each phase took (venv and pip, migrate, server start) comes from the
script's own stderr lines. Standard library only, so any Python 3.11 runs it.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: A first start that takes longer than this is a failure, not a number.
LIMIT = 600.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answered(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return reply.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def one_run(repo: Path, *, pip_cache: Path | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="first-start-") as tmp:
        clone = Path(tmp) / "clone"
        started = time.monotonic()
        subprocess.run(["git", "clone", "--quiet", str(repo), str(clone)], check=True)
        cloned = time.monotonic()
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("DJANGO_", "SELECTOR_", "VIRTUAL_ENV"))
            and key not in ("DATABASE_URL", "REDIS_URL")
        }
        if pip_cache is not None:  # pip's and uv's (scripts/_bootstrap.sh)
            env["PIP_CACHE_DIR"] = str(pip_cache / "pip")
            env["UV_CACHE_DIR"] = str(pip_cache / "uv")
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        log = (Path(tmp) / "demo.log").open("w+")
        demo = subprocess.Popen(
            ["./scripts/demo", f"127.0.0.1:{port}"],
            cwd=clone,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            while not answered(url):
                if demo.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"./scripts/demo exited:\n{log.read()}")
                if time.monotonic() - cloned > LIMIT:
                    raise RuntimeError(f"no 200 from {url} within {LIMIT} s")
                time.sleep(0.1)
            answered_at = time.monotonic()
        finally:
            os.killpg(demo.pid, signal.SIGTERM)
            try:
                demo.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(demo.pid, signal.SIGKILL)
                demo.wait(timeout=10)
            log.close()
        venv = clone / ".venv"
        size = sum(f.stat().st_size for f in venv.rglob("*") if f.is_file())
        return {
            "clone_s": cloned - started,
            "first_200_s": answered_at - cloned,
            "venv_mb": size / 1e6,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=ROOT)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--cold", action="store_true", help="empty pip and uv caches for every run"
    )
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="first-start-cache-") as caches:
        if not args.cold:
            one_run(args.repo, pip_cache=None)  # primes the cache; not counted
        for index in range(args.runs):
            cache = Path(caches) / str(index) if args.cold else None
            result = one_run(args.repo, pip_cache=cache)
            results.append(result)
            print(
                f"run {index + 1}: first 200 after {result['first_200_s']:.1f} s "
                f"(clone {result['clone_s']:.1f} s; .venv {result['venv_mb']:.0f} MB)",
                flush=True,
            )
    times = [result["first_200_s"] for result in results]
    kind = "cold" if args.cold else "warm"
    print(
        f"{kind} pip cache, {len(times)} runs: "
        f"median {statistics.median(times):.1f} s, "
        f"min {min(times):.1f} s, max {max(times):.1f} s"
    )
    sys.exit(0)


if __name__ == "__main__":
    main()
