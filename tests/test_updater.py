"""The updater on its own (non-exclusive, no lock): what it publishes and says."""

from __future__ import annotations

import asyncio
import logging

import pytest
from django.db import OperationalError

from selector_app import services
from selector_app.updater import Updater

pytestmark = pytest.mark.usefixtures("res")


async def test_a_database_outage_is_one_warning_and_one_line_when_it_ends(
    monkeypatch, caplog
):
    real = services.aresource_publish_random
    calls = 0

    async def down_three_times(**kwargs):
        nonlocal calls
        calls += 1
        if calls <= 3:
            raise OperationalError("connection refused")
        return await real(**kwargs)

    monkeypatch.setattr(services, "aresource_publish_random", down_three_times)
    caplog.set_level(logging.DEBUG, "selector_app.updater")
    lines: list[tuple[int, str]] = []
    updater = Updater(
        name="res",
        interval=0.01,
        length=4,
        report=lambda level, line: lines.append((level, line)),
    )
    async with asyncio.timeout(10):
        await updater.run(count=2)
    assert (updater.published, updater.failed) == (2, 3)
    levels = [level for level, _ in lines]
    assert levels == [
        logging.INFO,  # Updating 'res' every ...
        logging.WARNING,  # the first failure only
        logging.INFO,  # back
        logging.DEBUG,  # Published res #2.
        logging.DEBUG,  # Published res #3.
    ]
    assert "connection refused" in lines[1][1] and "Logged once" in lines[1][1]
    assert lines[2][1].startswith("The database answers again after")
    assert lines[3][1] == "Published res #2."
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
