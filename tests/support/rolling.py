"""A rolling restart of two server processes under load, as the clients see it.

Two servers (Daphne or Uvicorn) share one Redis and one database; a
``runupdater`` publishes. Push and Comet clients are spread over both; each
resumes with its cursor (``?seq=``) on the *other* process when its own
refuses it or closes its socket (503, 1012, connection refused), as clients
behind a load balancer that skips a draining process would. Then each
process in turn gets SIGTERM, exits, and is started again on its port.

:func:`rolling_restart` returns what was measured; tests/test_rolling_restart.py
asserts on it with modest numbers and bench/rolling_restart.py prints it for
larger ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import ssl
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from .cluster import UpdaterProcess
from .redis import RedisServer
from .server import ServerProcess, free_port, manage, project_env

#: What makes a client go to the other process: the drain's refusals, and a
#: port nobody listens on (the process has exited).
MOVE_ON = {"1012", "503", "refused"}


@dataclass
class Client:
    """One simulated page panel (``push`` or ``comet``) and what it saw."""

    kind: str
    ports: tuple[int, int]
    port: int
    cursor: int = 0
    #: Whether its current server has served it (socket open, or a Comet
    #: answer) since it last moved.
    served: bool = False
    received: int = 0
    skipped: int = 0  # versions between two it received: missed
    #: Of those, the ones skipped by the first version after a move: missed
    #: because of the restart, rather than because the client (or the load
    #: generator) was slower than the publisher, as latest-wins allows.
    skipped_on_move: int = 0
    gaps: list[tuple[int, int]] = field(default_factory=list)
    _moved: bool = False
    regressions: int = 0  # a sequence not above the previous one
    #: Held requests closed without an answer, sockets closed without 1012.
    dropped: int = 0
    endings: Counter[str] = field(default_factory=Counter)
    #: Seconds from being sent away to being served by the other process
    #: (push: the new socket is open; Comet: its next answer, a new version).
    moves: list[float] = field(default_factory=list)
    _sent_away: float | None = None

    def receive(self, message: str) -> None:
        sequence = int(message.split(" ", 1)[0])
        if self.cursor and sequence <= self.cursor:
            self.regressions += 1
        elif self.cursor and sequence > self.cursor + 1:
            self.skipped += sequence - self.cursor - 1
            if self._moved:
                self.skipped_on_move += sequence - self.cursor - 1
            self.gaps.append((self.cursor, sequence))
        self.cursor = max(self.cursor, sequence)
        self.received += 1
        self._moved = False

    def served_now(self) -> None:
        self.served = True
        if self._sent_away is not None:
            self.moves.append(time.monotonic() - self._sent_away)
            self._sent_away = None

    def move_on(self, ending: str) -> None:
        """Its process refused it or went away: next time, the other one."""
        self.endings[ending] += 1
        if ending not in MOVE_ON:
            self.dropped += 1
        if self._sent_away is None:
            self._sent_away = time.monotonic()
        self.served = False
        self._moved = True
        self.port = self.ports[1] if self.port == self.ports[0] else self.ports[0]


async def run_push(client: Client) -> None:
    while True:
        url = f"ws://127.0.0.1:{client.port}/websocket?seq={client.cursor}"
        try:
            async with connect(
                url, origin=f"http://127.0.0.1:{client.port}", open_timeout=10
            ) as socket:
                client.served_now()
                async for message in socket:
                    client.receive(message)
            ending = str(socket.close_code)
        except ConnectionClosed as error:
            ending = str(error.rcvd.code) if error.rcvd else "1006"
        except InvalidStatus as error:
            ending = str(error.response.status_code)
        except (OSError, TimeoutError):
            ending = "refused"
        client.move_on(ending)
        if ending == "refused":
            await asyncio.sleep(0.2)  # the other one may be starting


async def run_comet(client: Client) -> None:
    # A client of its own, as each browser has: one shared pool would scan
    # every pooled connection per request (httpcore), and with hundreds of
    # held requests the load generator would be the bottleneck. One TLS
    # context for all: building one takes ~50 ms, and a hundred of them would
    # stall the loop long enough for servers to drop idle keep-alives.
    async with httpx.AsyncClient(timeout=60, verify=_tls()) as http:
        await _poll(client, http)


@functools.cache
def _tls() -> ssl.SSLContext:
    return ssl.create_default_context()


async def _poll(client: Client, http: httpx.AsyncClient) -> None:
    while True:
        url = f"http://127.0.0.1:{client.port}/comet?seq={client.cursor}"
        try:
            answer = await http.get(url)
        except httpx.ConnectError:
            ending = "refused"
        except httpx.TransportError as error:
            # The connection closed without a response.
            ending = f"unanswered ({type(error).__name__})"
        else:
            if answer.status_code in (200, 204):
                if answer.status_code == 200:
                    client.receive(answer.text)
                client.served_now()
                continue
            ending = str(answer.status_code)
        client.move_on(ending)
        if ending == "refused":
            await asyncio.sleep(0.2)


@dataclass
class Drain:
    """One process's SIGTERM, as measured."""

    server: str
    exit_seconds: float
    exit_code: int | None
    moved: int  # clients that had to move
    on_survivor: int  # clients served by the other process afterwards
    clients: int


@dataclass
class Report:
    server: str
    clients: list[Client]
    drains: list[Drain]
    published: int
    final: int
    #: How late the load generator's own loop ran a 0.1 s sleep, in seconds:
    #: when it lags, every latency above includes its queueing.
    lag: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        moves = [m for c in self.clients for m in c.moves]
        push = [m for c in self.clients if c.kind == "push" for m in c.moves]
        comet = [m for c in self.clients if c.kind == "comet" for m in c.moves]
        endings: Counter[str] = Counter()
        for client in self.clients:
            endings.update(client.endings)
        return {
            "server": self.server,
            "clients": len(self.clients),
            "published": self.published,
            "exit_s": [round(d.exit_seconds, 2) for d in self.drains],
            "on_survivor": [f"{d.on_survivor}/{d.clients}" for d in self.drains],
            "endings": dict(endings),
            "dropped": sum(c.dropped for c in self.clients),
            # Versions a client never got, from its first to the last published.
            "missed": sum(c.skipped + self.final - c.cursor for c in self.clients),
            "missed_on_move": sum(c.skipped_on_move for c in self.clients),
            "regressions": sum(c.regressions for c in self.clients),
            "moves": len(moves),
            "push_reconnect_s": _spread(push),
            "comet_next_version_s": _spread(comet),
            "load_generator_lag_s": _spread(self.lag),
        }


def _spread(values: list[float]) -> str:
    if not values:
        return "-"
    values = sorted(values)
    p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
    return (
        f"median {statistics.median(values):.3f}, p99 {p99:.3f}, max {values[-1]:.3f}"
    )


async def until_all(predicate, clients: list[Client], timeout: float) -> None:
    """Wait (polling: clients announce nothing) until ``predicate`` holds for
    every client; raise with a count of those it does not."""
    try:
        async with asyncio.timeout(timeout):
            while not all(predicate(c) for c in clients):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    except TimeoutError:
        left = [c for c in clients if not predicate(c)]
        raise TimeoutError(
            f"{len(left)} of {len(clients)} clients not there, e.g. {left[0]}"
        ) from None


async def rolling_restart(
    kind: str,
    directory: Path,
    *,
    push: int,
    comet: int,
    drain_timeout: float,
    interval: float = 1.0,
) -> Report:
    """Start the pair, spread the clients, restart each process in turn."""
    with contextlib.ExitStack() as stack:
        redis = stack.enter_context(RedisServer(directory))
        env = project_env(
            DATABASE_URL=f"sqlite:///{directory / 'db.sqlite3'}",
            REDIS_URL=redis.url,
            SELECTOR_EMBEDDED_UPDATER="0",
            SELECTOR_DRAIN_TIMEOUT=str(drain_timeout),
            SELECTOR_LOG_LEVEL="WARNING",
        )
        manage("migrate", "-v0", env=env)
        updater = UpdaterProcess(
            env, directory / "updater.log", "--interval", str(interval)
        )
        stack.callback(updater.stop)
        await updater.start().wait_for_log("acquired the lock on 'res'")
        ports = (free_port(), free_port())
        servers = []
        for n, port in enumerate(ports):
            server = ServerProcess.documented(env, directory / f"{n}-a.log", kind, port)
            stack.callback(server.stop)
            servers.append(server.start())
        clients = [
            Client(kinds, ports, ports[n % 2])
            for n, kinds in enumerate(["push"] * push + ["comet"] * comet)
        ]
        lag: list[float] = []
        async with _running(clients), _sampling_lag(lag):
            drains = []
            for n, port in enumerate(ports):
                drains.append(await _restart(servers, n, clients, kind, drain_timeout))
                server = ServerProcess.documented(
                    env, directory / f"{n}-b.log", kind, port
                )
                stack.callback(server.stop)
                # In a thread: the clients keep reading meanwhile.
                servers[n] = await asyncio.to_thread(server.start)
            await asyncio.sleep(2 * interval)  # more versions on the new pair
            await asyncio.to_thread(updater.stop)
            final = updater.published()[-1]
            await until_all(lambda c: c.cursor >= final, clients, 10 + interval)
        return Report(kind, clients, drains, len(updater.published()), final, lag)


@contextlib.asynccontextmanager
async def _sampling_lag(lag: list[float]):
    """Record how late this loop wakes from 0.1 s sleeps while the body runs."""

    async def sample() -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time() + 0.1
            await asyncio.sleep(0.1)
            lag.append(loop.time() - asked)

    sampler = asyncio.create_task(sample())
    try:
        yield
    finally:
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)


#: Clients started at a time, each batch once the previous one is served: the
#: reconnect wave to measure is the drain's, not the start-up's.
BATCH = 100


@contextlib.asynccontextmanager
async def _running(clients: list[Client]):
    """Run every client (started in batches); cancel them all on the way out."""
    tasks: list[asyncio.Task[None]] = []
    try:
        for start in range(0, len(clients), BATCH):
            batch = clients[start : start + BATCH]
            tasks.extend(
                asyncio.create_task(run_push(c) if c.kind == "push" else run_comet(c))
                for c in batch
            )
            await until_all(lambda c: c.served and c.received, batch, 60)
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _restart(
    servers: list[ServerProcess],
    n: int,
    clients: list[Client],
    kind: str,
    drain_timeout: float,
) -> Drain:
    """SIGTERM server ``n``, wait for it to exit, and for its clients to be
    served by the other one."""
    server = servers[n]
    leaving = [c for c in clients if c.port == server.port]
    signalled = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    try:
        code = await asyncio.to_thread(server.process.wait, drain_timeout + 10)
    except Exception:
        code = None
    exited = time.monotonic() - signalled
    survivor = servers[1 - n].port
    with contextlib.suppress(TimeoutError):
        await until_all(lambda c: c.port == survivor and c.served, clients, 10)
    on_survivor = sum(c.port == survivor and c.served for c in clients)
    return Drain(kind, exited, code, len(leaving), on_survivor, len(clients))
