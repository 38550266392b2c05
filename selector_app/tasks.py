"""Tasks that belong to an owner and never outlive it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Coroutine, Generator
from typing import Any

logger = logging.getLogger(__name__)


class OwnedTasks:
    """The tasks one owner (a feed, a runtime, a connection) has started.

    :meth:`aclose` cancels them and waits until each has finished, so that
    nothing the owner started still runs once it has closed. A task that ends
    with an exception is logged, since nobody else awaits its result.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def __iter__(self):
        return iter(set(self._tasks))

    def start(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "%s stopped unexpectedly.", task.get_name(), exc_info=task.exception()
            )

    async def aclose(self) -> None:
        # A task that closes its own owner (a consumer refusing a client from
        # its ticker) is left to finish by itself: it cannot wait for itself.
        tasks = [task for task in self._tasks if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        # gather() with return_exceptions never raises the children's
        # CancelledError; a cancellation of *this* task still propagates.
        await asyncio.gather(*tasks, return_exceptions=True)


def eagerly(coro: Coroutine[Any, Any, Any]) -> Awaitable[None] | None:
    """Run ``coro`` at once, up to its first suspension.

    Returns ``None`` when it finished without suspending (an ASGI ``send`` to
    a socket whose buffer has room: the common case), else an awaitable that
    finishes it. This is what lets one pass hand a frame to thousands of
    sockets without a task each (Python 3.12's eager tasks do the same; 3.11
    has none). An exception it raises before suspending propagates here.
    """
    try:
        suspended_on = coro.send(None)
    except StopIteration:
        return None
    if suspended_on is not None:
        # Taken over, as a task's step does: the future marks itself
        # "blocking" when yielded, and refuses to be awaited again until that
        # mark is cleared.
        suspended_on._asyncio_future_blocking = False
    return _Suspended(coro, suspended_on)


class _Suspended:
    """A coroutine stopped at its first suspension; awaiting this finishes it.

    Not a coroutine itself, so one that is never awaited (its socket closed
    first) is simply dropped, with no "never awaited" warning.
    """

    __slots__ = ("_coro", "_on")

    def __init__(self, coro: Coroutine[Any, Any, Any], suspended_on: Any) -> None:
        self._coro = coro
        self._on = suspended_on  # the future it waits for, or None (a bare yield)

    def __await__(self) -> Generator[Any, None, None]:
        # What a task's step does: wait for the future, then resume the
        # coroutine, which reads the future's result or exception itself. A
        # cancellation of the awaiting task cancels that future (which the
        # coroutine then sees), or is thrown into the coroutine.
        coro, on = self._coro, self._on
        while True:
            try:
                if on is None:
                    yield
                else:
                    yield from on.__await__()
            except asyncio.CancelledError:
                if on is None or not on.cancelled():
                    try:
                        on = coro.throw(asyncio.CancelledError())
                    except StopIteration:
                        return
                    if on is not None:
                        on._asyncio_future_blocking = False
                    continue
            except BaseException:
                pass  # the future failed: resuming lets the coroutine read it
            try:
                on = coro.send(None)
            except StopIteration:
                return
            if on is not None:
                on._asyncio_future_blocking = False
