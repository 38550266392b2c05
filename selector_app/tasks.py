"""Tasks that belong to an owner and never outlive it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
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
