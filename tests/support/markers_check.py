"""Run inside ``manage.py shell`` against a migrated database (SQLite or
PostgreSQL): the change marker's guarantees, asserted. tests/test_markers.py
runs it; it prints ``markers ok`` at the end."""

from __future__ import annotations

import os


def written_since(horizon: int) -> set[str]:
    from selector_app.models import Resource

    return set(
        Resource.objects.filter(change__gte=horizon).values_list("name", flat=True)
    )


def main() -> None:
    from django.db import connection

    from selector_app import markers, services
    from selector_app.models import Resource

    Resource.objects.bulk_create(Resource(name=f"r{n}", data="x") for n in range(50))
    first = services.resource_reread(horizon=None, held={})
    assert first.narrow == first.whole == 0, first
    quiet = services.resource_reread(horizon=first.horizon, held={})
    assert (quiet.narrow, quiet.whole) == (0, 0), quiet
    services._write(name="r1", data="new")
    found = services.resource_reread(horizon=quiet.horizon, held={})
    assert (found.narrow, found.whole) == (1, 0), found
    held = {"r1": (2, Resource.objects.get(name="r1").updated_at.timestamp())}
    unchanged = services.resource_reread(horizon=found.horizon, held=held)
    assert (unchanged.narrow, unchanged.whole, unchanged.snapshots) == (1, 0, [])

    if connection.vendor == "postgresql":
        # Transactions commit in any order: one that started before a read
        # and commits after it is found by the next read.
        import psycopg

        before = markers.horizon(connection)
        with psycopg.connect(os.environ["DATABASE_URL"]) as slow:
            slow.execute(
                "UPDATE selector_app_resource SET sequence = sequence + 1 "
                "WHERE name = 'r2'"
            )  # open, not committed
            services._write(name="r3", data="quick")  # commits first
            horizon = markers.horizon(connection)
            assert written_since(before) == {"r3"}
            slow.commit()
        assert "r2" in written_since(horizon)
    print("markers ok")


if __name__ == "__main__":
    main()
