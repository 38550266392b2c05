"""The app's migrations change the schema only: a host site's database gets
no rows of the demo's (tests/test_embedding_guide.py migrates a brand-new
site and finds no resource)."""

from __future__ import annotations

from django.db import migrations
from django.db.migrations.loader import MigrationLoader

DATA_OPERATIONS = (migrations.RunPython, migrations.RunSQL)


def test_no_migration_of_the_app_writes_data():
    loader = MigrationLoader(None, ignore_no_migrations=True)
    ours = {
        name: migration
        for (app, name), migration in loader.disk_migrations.items()
        if app == "selector_app"
    }
    assert "0002_demo_resource" in ours  # kept: applied databases' history
    writing = [
        f"{name}: {type(operation).__name__}"
        for name, migration in sorted(ours.items())
        for operation in migration.operations
        if isinstance(operation, DATA_OPERATIONS)
    ]
    assert writing == []


def test_the_demo_creates_its_resource_in_its_own_migration():
    loader = MigrationLoader(None, ignore_no_migrations=True)
    [operation] = loader.disk_migrations["demo", "0001_demo_resource"].operations
    assert isinstance(operation, migrations.RunPython)
