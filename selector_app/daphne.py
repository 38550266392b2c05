"""Daphne on uvloop: ``python -m selector_app.daphne <Daphne's own arguments>``.

Daphne builds the event loop its Twisted reactor runs on when ``daphne.server``
is first imported (``asyncio.new_event_loop()`` at import time), so a loop
policy set any later, from settings or ``AppConfig.ready()``, comes too late:
``daphne``'s CLI imports the module before it reads its arguments, and
``manage.py runserver`` imports it while Django populates the apps (``daphne``
comes first in ``INSTALLED_APPS``). :func:`use_uvloop` therefore imports
``daphne.server`` itself, with uvloop's policy in place only for that import:
Daphne's loop is uvloop's and nothing else changes. The process's policy is
restored at once, so loops created later (``asyncio.run`` in a command, a
test's loop, ``async_to_sync`` in a thread) are what they would have been.

It costs Daphne less CPU per pushed frame (measured in docs/benchmarks.md).
``SELECTOR_DAPHNE_UVLOOP=0`` in the environment keeps asyncio's own loop
(an environment variable because this runs before Django's settings exist).
When the reactor starts, the loop it runs on is logged:
``Daphne is running on uvloop`` (INFO), or a WARNING naming the reason when
it is not uvloop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

logger = logging.getLogger("selector_app.daphne")

#: The environment variable that turns uvloop off (``0``).
OPT_OUT = "SELECTOR_DAPHNE_UVLOOP"


def use_uvloop() -> str:
    """Import ``daphne.server`` with Daphne's loop on uvloop; return why not.

    Returns ``""`` when Daphne's loop is uvloop's, else the reason it is not
    (also logged when the reactor starts). Idempotent; call it before
    anything imports ``daphne.server`` (``manage.py``, or this module's
    ``__main__``).
    """
    if "daphne.server" in sys.modules:
        reason = "" if _on_uvloop() else "daphne.server was imported before"
    elif os.environ.get(OPT_OUT, "1") == "0":
        import daphne.server  # noqa: F401  (builds Daphne's loop and reactor)

        reason = f"{OPT_OUT}=0"
    else:
        reason = _import_on_uvloop()
    _report_when_running(reason)
    return reason


def _import_on_uvloop() -> str:
    try:
        import uvloop
    except ImportError:
        import daphne.server

        return "uvloop is not installed (pip install uvloop)"
    previous = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    try:
        import daphne.server  # noqa: F401
    finally:
        asyncio.set_event_loop_policy(previous)
    return ""


def _loop() -> asyncio.AbstractEventLoop:
    from twisted.internet import reactor

    return reactor._asyncioEventloop


def _on_uvloop() -> bool:
    return type(_loop()).__module__.startswith("uvloop")


_reported = False


def _report_when_running(reason: str) -> None:
    """Log the loop once the reactor runs: logging is configured by then
    (Daphne's CLI and Django set it up after this module is imported), and
    only a process that serves with Daphne says anything."""
    global _reported
    if _reported:
        return
    _reported = True
    from twisted.internet import reactor

    reactor.callWhenRunning(_report, reason)


def _report(reason: str) -> None:
    loop = type(_loop())
    name = f"{loop.__module__}.{loop.__qualname__}"
    if not reason:
        logger.info("Daphne is running on uvloop (%s).", name)
    else:
        # Asked for (the opt-out) is news; anything else is a warning.
        level = logging.INFO if reason.startswith(OPT_OUT) else logging.WARNING
        logger.log(
            level,
            "Daphne is running on asyncio's own event loop (%s), not uvloop: %s.",
            name,
            reason,
        )


def main() -> None:
    """Daphne's command line, on uvloop."""
    use_uvloop()
    from daphne.cli import CommandLineInterface

    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
