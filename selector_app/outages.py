"""Logging an outage twice, not once per attempt.

While Redis or the database is unreachable, the app retries on its own
(every re-read, every publish, every subscription attempt). Logging each
failed attempt as a warning would bury the one line an operator needs, so an
:class:`Outage` logs the first failure as a warning (with its traceback), the
following ones at DEBUG, and one INFO line when the dependency answers again.
"""

from __future__ import annotations

import logging
import threading
import time


def describe(error: BaseException) -> str:
    """``error`` in one line: its type, and its message if it has one."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class Outage:
    """Whether one dependency is down, and since when.

    Thread-safe: announcements run in whichever thread published.
    """

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self.logger = logger
        #: The dependency, as it reads in a sentence ("the channel layer").
        self.what = what
        #: ``time.monotonic()`` of the outage's first failure, or None.
        self.since: float | None = None
        #: Failed attempts in the current outage.
        self.failures = 0
        self._lock = threading.Lock()

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(
        self, message: str, *args: object, error: BaseException | None = None
    ) -> None:
        """Record a failed attempt; the first of an outage logs ``message``
        (lazy ``%s`` arguments) as a warning, later ones log it at DEBUG."""
        with self._lock:
            first = self.since is None
            if first:
                self.since = time.monotonic()
            self.failures += 1
        if first:
            self.logger.warning(
                message + " Logged once; it is retried until %s answers again.",
                *args,
                self.what,
                exc_info=error if _has_traceback(error) else None,
            )
        else:
            self.logger.debug(message, *args)

    def recovered(self, note: str = "") -> None:
        """Record a successful attempt; logs once if it ends an outage."""
        with self._lock:
            if self.since is None:
                return
            seconds, failures = time.monotonic() - self.since, self.failures
            self.since, self.failures = None, 0
        self.logger.info(
            "%s answers again after %.1f s (%s failed attempt%s).%s",
            self.what[:1].upper() + self.what[1:],
            seconds,
            failures,
            "" if failures == 1 else "s",
            f" {note}" if note else "",
        )


def _has_traceback(error: BaseException | None) -> bool:
    # A timeout's traceback says nothing the message does not.
    return error is not None and not isinstance(error, TimeoutError)
