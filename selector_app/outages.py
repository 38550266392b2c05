"""What an operator reads: outages logged twice, not once per attempt, and
status lines for commands.

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
from collections.abc import Callable

#: Where a long-running command shows what it is doing, besides the log:
#: ``report(level, line)`` with a :mod:`logging` level. ``runupdater`` writes
#: these lines to its own output, so a host site that has not configured
#: logging still sees them.
Report = Callable[[int, str], None]


def say(
    logger: logging.Logger,
    report: Report | None,
    level: int,
    message: str,
    *args: object,
) -> str:
    """Log ``message % args`` at ``level`` and hand it to ``report``; return it."""
    logger.log(level, message, *args)
    line = message % args if args else message
    if report is not None:
        report(level, line)
    return line


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
    ) -> str | None:
        """Record a failed attempt; the first of an outage logs ``message``
        (lazy ``%s`` arguments) as a warning and returns it, later ones log
        it at DEBUG and return None."""
        with self._lock:
            first = self.since is None
            if first:
                self.since = time.monotonic()
            self.failures += 1
        if not first:
            self.logger.debug(message, *args)
            return None
        message += " Logged once; retried until %s answers again."
        args = (*args, self.what)
        self.logger.warning(
            message, *args, exc_info=error if _has_traceback(error) else None
        )
        return message % args

    def recovered(self, note: str = "") -> str | None:
        """Record a successful attempt; if it ends an outage, log that once
        (INFO) and return the line."""
        with self._lock:
            if self.since is None:
                return None
            seconds, failures = time.monotonic() - self.since, self.failures
            self.since, self.failures = None, 0
        attempts = f"{failures} failed attempt{'' if failures == 1 else 's'}"
        line = (
            f"{self.what[:1].upper()}{self.what[1:]} answers again after "
            f"{seconds:.1f} s ({attempts}).{f' {note}' if note else ''}"
        )
        self.logger.info("%s", line)
        return line


#: Errors that only say a dependency went away (redis-py's and the database
#: drivers' are not OSErrors): the message names them, and their traceback,
#: deep in a client library, says nothing more.
GONE = ("ConnectionError", "OperationalError", "InterfaceError")


def _has_traceback(error: BaseException | None) -> bool:
    """Whether the first line of an outage should carry ``error``'s traceback:
    only for an error that is not a dependency going away (a bug)."""
    if error is None or isinstance(error, (TimeoutError, OSError)):
        return False
    return not any(cls.__name__ in GONE for cls in type(error).__mro__)
