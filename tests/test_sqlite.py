"""SQLite as the demo configures it: two writers wait for each other, never fail.

The admin's change form reads the row, then writes it, in one transaction;
a publisher writes every few milliseconds. With SQLite's default (DEFERRED)
transactions the admin's upgrade from reading to writing fails at once with
"database is locked"; with the demo's settings it waits for the lock.
"""

from __future__ import annotations

import re
import textwrap
import threading

import pytest
from django.contrib.auth.models import User
from django.db import OperationalError, connection
from django.test import Client

from realtime_site.settings import database_options
from selector_app import services
from tests.support.server import ROOT

pytestmark = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="The demo's SQLite settings only."
)

SAVES = 40


class Publisher(threading.Thread):
    """Publishes every ``interval`` seconds on its own connection until stopped."""

    def __init__(self, interval: float) -> None:
        super().__init__(name="publisher")
        self.interval = interval
        self.stopping = threading.Event()
        self.published = 0
        self.errors: list[str] = []

    def run(self) -> None:
        try:
            while not self.stopping.wait(self.interval):
                try:
                    services.resource_publish(name="res", data=f"p{self.published}")
                    self.published += 1
                except OperationalError as error:
                    self.errors.append(str(error))
        finally:
            connection.close()


@pytest.mark.django_db(transaction=True)
def test_admin_saves_wait_for_a_busy_publisher_instead_of_failing(res):
    admin = User.objects.create_superuser("admin", "admin@example.com", "pw")
    client = Client(raise_request_exception=False)
    client.force_login(admin)
    url = f"/admin/selector_app/resource/{res.pk}/change/"
    publisher = Publisher(interval=0.002)
    publisher.start()
    try:
        statuses = [
            client.post(url, {"data": f"admin {n}"}).status_code for n in range(SAVES)
        ]
    finally:
        publisher.stopping.set()
        publisher.join(30)
    assert statuses == [302] * SAVES, f"{statuses.count(500)} saves failed"
    assert publisher.errors == [] and publisher.published > 0
    res.refresh_from_db()
    assert res.sequence == 1 + SAVES + publisher.published  # nothing lost


def test_the_database_runs_in_wal_mode(db):
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"


def test_the_demo_bounds_every_wait_on_the_database(settings):
    options = settings.DATABASES["default"]["OPTIONS"]
    assert options["transaction_mode"] == "IMMEDIATE"
    assert options["timeout"] == 5  # seconds of busy timeout
    assert options["init_command"] == "PRAGMA journal_mode=WAL"
    assert database_options("django.db.backends.postgresql", 7) == {
        "connect_timeout": 7,
        "options": "-c statement_timeout=7000",
    }


def test_the_documented_sqlite_options_are_the_demos():
    """docs/deployment.md's block, run verbatim, configures what the demo does."""
    text = (ROOT / "docs" / "deployment.md").read_text()
    [block] = [
        textwrap.dedent(code)
        for code in re.findall(r"```python\n(.*?)```", text, re.S)
        if "transaction_mode" in code
    ]
    namespace = {"DATABASES": {"default": {}}}
    exec(block, namespace)
    documented = namespace["DATABASES"]["default"]["OPTIONS"]
    assert documented == database_options("django.db.backends.sqlite3", 5)
