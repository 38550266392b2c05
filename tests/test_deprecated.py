"""Import paths that moved keep working for one release, with a warning."""

from __future__ import annotations

import importlib

import pytest

MOVED = [
    ("selector_app.snapshots", "Snapshot", "selector_app.protocol"),
    ("selector_app.exceptions", "UnknownResource", "selector_app.protocol"),
    ("selector_app.exceptions", "InvalidCursor", "selector_app.protocol"),
    ("selector_app.exceptions", "TooManyWaiters", "selector_app.protocol"),
    ("selector_app.gc_tuning", "tune_gc", "selector_app.runtime"),
    ("selector_app.services", "channel_layer", "selector_app.layers"),
]


@pytest.mark.parametrize(("old", "name", "new"), MOVED)
def test_an_old_path_warns_and_gives_the_same_object(old, name, new):
    with pytest.warns(DeprecationWarning, match=f"has moved to {new}.{name}"):
        moved = getattr(importlib.import_module(old), name)
    assert moved is getattr(importlib.import_module(new), name)


def test_from_import_works_too():
    with pytest.warns(DeprecationWarning):
        from selector_app.snapshots import Snapshot  # noqa: F401


def test_a_name_that_never_existed_is_still_an_attribute_error():
    import selector_app.snapshots

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        selector_app.snapshots.Nope  # noqa: B018
