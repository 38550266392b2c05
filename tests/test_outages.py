"""An outage is logged once; a dependency going away without a traceback."""

from __future__ import annotations

import logging

import pytest

from selector_app.outages import Outage


class ConnectionError(Exception):
    """Stands in for redis.exceptions.ConnectionError, not an OSError."""


@pytest.mark.parametrize(
    "error",
    [ConnectionResetError(104, "reset"), TimeoutError(), ConnectionError("gone")],
    ids=["oserror", "timeout", "client-library"],
)
def test_a_dependency_going_away_is_one_line(caplog, error):
    outage = Outage(logging.getLogger("test.outage"), "Redis")
    with caplog.at_level(logging.DEBUG, "test.outage"):
        outage.failed("Lost it (%s).", "reset", error=error)
        outage.failed("Lost it (%s).", "reset", error=error)
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.exc_info is None
    assert "Logged once" in warning.getMessage()


def test_an_unexpected_error_keeps_its_traceback(caplog):
    outage = Outage(logging.getLogger("test.outage"), "Redis")
    with caplog.at_level(logging.WARNING, "test.outage"):
        outage.failed("Lost it.", error=ValueError("a bug"))
    [warning] = caplog.records
    assert warning.exc_info is not None
