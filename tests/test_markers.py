"""The change marker on a real, migrated database: SQLite and PostgreSQL
(when one answers, see tests/support/cluster.py). A re-read with no change
reads no row, one write is one row, and on PostgreSQL a transaction that
commits after a later one is still found by the next re-read."""

from __future__ import annotations

import pytest

from tests.support.cluster import postgres_admin_url, postgres_database
from tests.support.server import manage, project_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db.sqlite3'}"
        return
    admin = postgres_admin_url()
    if admin is None:
        pytest.skip("No PostgreSQL answers (set SELECTOR_TEST_POSTGRES_URL).")
    with postgres_database(admin) as url:
        yield url


def test_the_marker_finds_every_write_and_nothing_else(database_url):
    env = project_env(DATABASE_URL=database_url, SELECTOR_EMBEDDED_UPDATER="0")
    manage("migrate", "-v0", env=env)
    command = "from tests.support.markers_check import main; main()"
    assert "markers ok" in manage("shell", "-c", command, env=env)


def test_the_migration_is_reversible(database_url):
    env = project_env(DATABASE_URL=database_url, SELECTOR_EMBEDDED_UPDATER="0")
    manage("migrate", "-v0", env=env)
    manage("migrate", "selector_app", "0003", "-v0", env=env)
    manage("migrate", "-v0", env=env)
