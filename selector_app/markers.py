"""The change marker: a number the database assigns to a resource row on every write.

A re-read asks for the rows written since the previous one
(``change >= horizon``), so its cost follows the publishes, not the table.
The marker is assigned by a trigger, so every write gets one: a publish, an
admin save, an ``INSERT`` of a row deleted and created again, SQL typed by an
operator, a restore that loads rows with triggers on. Neither the marker nor
the horizon depends on the clocks of the hosts agreeing:

- **PostgreSQL**: the writing transaction's id (``pg_current_xact_id()``, 64
  bits, never wraps). The horizon is the oldest transaction still running
  when a re-read starts (``pg_snapshot_xmin``): every transaction below it
  has ended, so its rows are visible to the read or never will be, and a
  transaction that commits after the read has an id at or above the horizon
  and is found by the next read, whatever order transactions commit in.
  A transaction left open anywhere in the cluster holds the horizon back:
  re-reads then read again what was written since it began, until it ends.
- **SQLite**: a counter that never goes back (an ``AUTOINCREMENT`` table,
  whose ``sqlite_sequence`` row is the horizon). SQLite runs one write
  transaction at a time, so markers are assigned in commit order.

Another database has no trigger: its markers stay 0, :func:`horizon` is
``None`` and a re-read relies on the check of the held names alone (see
:func:`selector_app.services.resource_reread`), which is correct there too.

A restore can bring rows back with markers the database already passed
(``pg_restore`` creates triggers after loading the data; a file copy of a
SQLite database rewinds its counter). That is why a re-read also checks the
sequence and time of every resource the process holds: a reset is adopted
within one re-read interval however the rows came back.
"""

from __future__ import annotations

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.operations.base import Operation

TABLE = "selector_app_resource"
COUNTER = "selector_app_change_counter"

POSTGRESQL_INSTALL = [
    f"""
    CREATE OR REPLACE FUNCTION {TABLE}_change() RETURNS trigger AS $$
    BEGIN
        NEW.change := pg_current_xact_id()::text::bigint;
        RETURN NEW;
    END
    $$ LANGUAGE plpgsql
    """,
    f"""
    CREATE TRIGGER {TABLE}_change BEFORE INSERT OR UPDATE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION {TABLE}_change()
    """,
]
POSTGRESQL_REMOVE = [
    f"DROP TRIGGER IF EXISTS {TABLE}_change ON {TABLE}",
    f"DROP FUNCTION IF EXISTS {TABLE}_change()",
]

# One body for both triggers; the UPDATE trigger fires on the columns a write
# changes, never on ``change`` itself (so it does not fire itself).
_SQLITE_BODY = f"""
    BEGIN
        INSERT INTO {COUNTER} (id) VALUES (NULL);
        UPDATE {TABLE} SET change = last_insert_rowid() WHERE id = NEW.id;
        DELETE FROM {COUNTER} WHERE id < last_insert_rowid();
    END
"""
SQLITE_INSTALL = [
    f"CREATE TABLE {COUNTER} (id INTEGER PRIMARY KEY AUTOINCREMENT)",
    f"CREATE TRIGGER {TABLE}_change_insert AFTER INSERT ON {TABLE}" + _SQLITE_BODY,
    f"CREATE TRIGGER {TABLE}_change_update AFTER UPDATE OF name, sequence, data "
    f"ON {TABLE}" + _SQLITE_BODY,
]
SQLITE_REMOVE = [
    f"DROP TRIGGER IF EXISTS {TABLE}_change_insert",
    f"DROP TRIGGER IF EXISTS {TABLE}_change_update",
    f"DROP TABLE IF EXISTS {COUNTER}",
]

INSTALL = {"postgresql": POSTGRESQL_INSTALL, "sqlite": SQLITE_INSTALL}
REMOVE = {"postgresql": POSTGRESQL_REMOVE, "sqlite": SQLITE_REMOVE}


def horizon(connection: BaseDatabaseWrapper) -> int | None:
    """The lowest marker a write not yet visible to a read starting now can
    get; ``None`` on a database without markers. Take it *before* the read."""
    vendor = connection.vendor
    with connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
            return int(cursor.fetchone()[0])
        if vendor == "sqlite":
            cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [COUNTER])
            row = cursor.fetchone()
            return (row[0] if row else 0) + 1
    return None


class InstallChangeMarker(Operation):
    """Schema only: the trigger (and SQLite's counter table) that assigns the
    ``change`` column on every write. Writes no row."""

    reversible = True

    def state_forwards(self, app_label: str, state: object) -> None:
        pass  # nothing Django's model state knows about

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        for statement in INSTALL.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        for statement in REMOVE.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement)

    def describe(self) -> str:
        return "Install the trigger that assigns Resource.change on every write"
