"""The hub's database reads: in a thread of their own, each one bounded.

A database can stop answering without refusing connections (a hung server,
a partition that drops packets, a full disk). A query then blocks its thread
for as long as the TCP connection lives, which can be for ever: PostgreSQL's
``statement_timeout`` is enforced by the server that no longer answers, and
keepalives are answered by its kernel. The only bound that always holds is
one kept by the client, so the :class:`RowReader` runs the hub's reads in a
single thread of its own (never Django's shared database thread, where one
hung query would block every other database call of the process) and gives
up on a read after ``READ_TIMEOUT``. A read that hangs keeps its thread busy
until the connection fails; while it does, further reads fail at once, so an
outage costs one thread, not one per attempt.

A connection can also hang for ever while the database is fine: a persistent
connection (``CONN_MAX_AGE``) or one opened without ``connect_timeout``,
behind a firewall or load balancer that silently dropped its state. So a read
hung for ``ABANDON_AFTER`` read timeouts is abandoned with its thread, and
the next read runs in a fresh thread, through a fresh connection. Each
abandonment in a row doubles the wait before the next, so a long outage
costs a thread per doubling (about a dozen a day), never one per attempt.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

from channels.db import database_sync_to_async
from django.db import connections

from . import services
from .outages import Outage, describe
from .protocol import Snapshot, Unavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: What a client asking for a resource the process has not seen is told.
UNAVAILABLE = "The database did not answer in time; try again in a few seconds."

#: Read timeouts after which a read that still hangs is abandoned with its
#: thread. Long enough for a slow database to answer (the demo bounds each
#: connect and statement by 5 s; the default READ_TIMEOUT gives 25 s).
ABANDON_AFTER = 5


class RowReader:
    """Reads resource rows in its own thread, each read bounded by ``timeout``."""

    def __init__(self, *, timeout: float) -> None:
        self.timeout = timeout
        #: Logs a database outage once, and once when it is over.
        self.outage = Outage(logger, "the database")
        # One worker: a read queued behind a hung one is cancelled by its
        # timeout before it ever starts, so threads never pile up.
        self._worker = DaemonWorker(WORKER_NAME)
        #: How long the current worker's read may hang before it is abandoned.
        self._abandon_after = timeout * ABANDON_AFTER
        #: Workers abandoned with a hung read: each ends once its read returns.
        self._abandoned: list[DaemonWorker] = []
        self._closed = False
        #: Names asked for (:meth:`row`) and not read yet, with their callers,
        #: and the task that reads them.
        self._wanted: dict[str, list[asyncio.Future[Snapshot | None]]] = {}
        self._batches: asyncio.Task[None] | None = None

    async def rows(self) -> list[Snapshot]:
        """Every resource's current version (a full read of the table)."""
        return await self._read(services.resource_snapshots)

    async def reread(
        self,
        *,
        horizon: int | None,
        held: dict[str, tuple[int, float | None]],
        watched: list[str],
    ) -> services.Reread:
        """What changed for a hub since its last re-read
        (:func:`~selector_app.services.resource_reread`)."""
        return await self._read(
            services.resource_reread, horizon=horizon, held=held, watched=watched
        )

    async def row(self, name: str) -> Snapshot | None:
        """One resource's current version, or None (the hub's loader).

        The names asked for while a read runs are read together by the next
        one (``name IN (...)``): a thousand clients arriving at once for a
        thousand resources cost a few queries, not a thousand queued behind
        each other in the reader's one thread.

        While the database is known to be down, refused at once: a client
        gets its 503 without waiting, and only the re-reads probe for the
        database's return (they end the outage).
        """
        if self.outage.down:
            raise Unavailable(UNAVAILABLE)
        if self._closed:
            raise Unavailable("This server process is shutting down.")
        answer: asyncio.Future[Snapshot | None] = (
            asyncio.get_running_loop().create_future()
        )
        self._wanted.setdefault(name, []).append(answer)
        if self._batches is None or self._batches.done():
            self._batches = asyncio.create_task(
                self._read_batches(), name="selector_app reader: lookups"
            )
        return await answer

    async def _read_batches(self) -> None:
        """Read what is wanted, in batches, until nothing is."""
        while self._wanted:
            wanted, self._wanted = self._wanted, {}
            try:
                rows = await self._read(services.resource_snapshots, names=list(wanted))
            except BaseException as error:
                for answers in wanted.values():
                    for answer in answers:
                        if not answer.done():
                            answer.set_exception(
                                error
                                if isinstance(error, Exception)
                                else Unavailable(UNAVAILABLE)
                            )
                if not isinstance(error, Exception):
                    raise
                continue
            found = {snapshot.name: snapshot for snapshot in rows}
            for name, answers in wanted.items():
                for answer in answers:
                    if not answer.done():
                        answer.set_result(found.get(name))

    async def aclose(self) -> None:
        """Close the thread's connection and stop the thread; a read that
        still hangs is abandoned to it."""
        if self._closed:
            return
        self._closed = True
        if self._batches is not None and not self._batches.done():
            self._batches.cancel()
            await asyncio.wait({self._batches}, timeout=self.timeout)
        if self._worker.started and self._worker.busy_since is None:
            closing = asyncio.wrap_future(self._worker.submit(connections.close_all))
            await asyncio.wait({closing}, timeout=self.timeout)
        self._worker.shutdown(wait=False, cancel_futures=True)

    @property
    def abandoned(self) -> int:
        """Threads abandoned with a read that has not returned yet."""
        self._abandoned = [worker for worker in self._abandoned if worker.alive]
        return len(self._abandoned)

    async def _read(self, func: Callable[..., T], **kwargs: Any) -> T:
        self._refuse_if_stuck()
        call = asyncio.ensure_future(
            database_sync_to_async(func, thread_sensitive=False, executor=self._worker)(
                **kwargs
            )
        )
        try:
            async with asyncio.timeout(self.timeout):
                # Shielded: our timeout abandons the read (below) rather than
                # interrupting the thread, which cannot be interrupted.
                result = await asyncio.shield(call)
        except asyncio.CancelledError:
            # The owner is closing: let a read already running finish first
            # (bounded), so nothing of ours touches the database afterwards
            # (a test's teardown flushing the tables would meet a lock).
            await asyncio.wait({call}, timeout=self.timeout)
            call.cancel()
            raise
        except Exception as error:
            call.cancel()  # a read still queued never starts
            raise self._failed(error) from error
        self._abandon_after = self.timeout * ABANDON_AFTER
        self.outage.recovered()
        return result

    def _refuse_if_stuck(self) -> None:
        if self._closed:
            raise Unavailable("This server process is shutting down.")
        busy_since = self._worker.busy_since
        if busy_since is None:
            return
        waited = time.monotonic() - busy_since
        if waited >= self._abandon_after:
            self._abandon(waited)
        elif waited > self.timeout:
            raise self._failed(
                TimeoutError(f"the previous read has hung for {waited:.0f} s")
            )

    def _abandon(self, waited: float) -> None:
        """Leave the hung read to its thread and read in a fresh one.

        The old thread closes its connection and ends if the read ever
        returns; until then it is one daemon thread and one socket.
        """
        hung = self._worker
        hung.submit(connections.close_all)
        hung.shutdown(wait=False)
        self._abandoned.append(hung)
        self._worker = DaemonWorker(WORKER_NAME)
        self._abandon_after *= 2
        still = self.abandoned
        logger.warning(
            "A database read has hung for %.0f s: abandoning its thread and "
            "connection, and reading through new ones (%s abandoned thread%s "
            "still waiting for an answer; a read that hangs again is abandoned "
            "after %.0f s).",
            waited,
            still,
            "" if still == 1 else "s",
            self._abandon_after,
        )

    def _failed(self, error: Exception) -> Unavailable:
        if isinstance(error, TimeoutError) and not str(error):
            error = TimeoutError(f"no answer within {self.timeout} s")
        self.outage.failed(
            "Cannot read the resources from the database (%s): clients keep the "
            "versions they have, and new clients of resources this process has "
            "not seen get 503.",
            describe(error),
            error=error,
        )
        return Unavailable(UNAVAILABLE)


#: The reader's threads, as a thread dump names them.
WORKER_NAME = "selector_app reader"


class DaemonWorker(Executor):
    """An executor with one daemon thread, started on first use.

    Not a ``ThreadPoolExecutor``: Python joins those threads at exit, so one
    read hung on a database that never answers would keep a server process
    from exiting after SIGTERM. A daemon thread is abandoned instead.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._queue: queue.SimpleQueue[tuple[Future, Callable[[], Any]] | None] = (
            queue.SimpleQueue()
        )
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._shutdown = False
        self._busy_since: float | None = None

    @property
    def started(self) -> bool:
        return self._thread is not None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def busy_since(self) -> float | None:
        """``time.monotonic()`` when the running call started, or None."""
        return self._busy_since

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        with self._lock:
            if self._shutdown:
                raise RuntimeError(f"{self.name} is shut down.")
            future: Future[T] = Future()
            self._queue.put((future, functools.partial(fn, *args, **kwargs)))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._work, name=self.name, daemon=True
                )
                self._thread.start()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                while True:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is not None:
                        item[0].cancel()
            self._queue.put(None)  # the worker's signal to end
        if wait and self._thread is not None:
            self._thread.join()

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            future, call = item
            if not future.set_running_or_notify_cancel():
                continue  # cancelled while queued
            self._busy_since = time.monotonic()
            try:
                result = call()
            except BaseException as error:
                future.set_exception(error)
            else:
                future.set_result(result)
            finally:
                self._busy_since = None
