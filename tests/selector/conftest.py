"""Shared helpers for the tests of the Async::Selector port (`selector_app.selector`).

The package has no Django import and none of these tests needs a database.
Fixtures: `sel` (an empty Selector), `res` (a `Res` registered on it as "res") and
`ticking` ("a" and "b" registered on it, always one ahead). Helper classes and
functions the tests call directly are imported by name:
``from tests.selector.conftest import Calls, Res``.
"""

import logging
from collections.abc import Callable
from typing import Any

import pytest

from selector_app.selector import Selector, Watcher


class Res:
    """A provider like the Mojo example's: the sequence number if newer than `since`.

    Records every condition it is called with in `inputs`.
    """

    def __init__(self, seq: int = 0) -> None:
        self.seq = seq
        self.inputs: list[Any] = []

    def __call__(self, since: Any) -> int | None:
        self.inputs.append(since)
        return self.seq if self.seq > since else None


class Calls:
    """A callback recording every `(watcher, results)` it receives."""

    def __init__(self, action: Callable[[Watcher, dict], object] | None = None):
        self.calls: list[tuple[Watcher, dict]] = []
        self.action = action

    def __call__(self, watcher: Watcher, results: dict) -> None:
        self.calls.append((watcher, results))
        if self.action is not None:
            self.action(watcher, results)

    @property
    def results(self) -> list[dict]:
        return [results for _, results in self.calls]


def tick(since: int) -> int:
    """A provider that always has something newer: `since + 1`."""
    return since + 1


def logged_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The records of level ERROR or above captured so far."""
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.fixture
def sel() -> Selector:
    return Selector()


@pytest.fixture
def res(sel: Selector) -> Res:
    """A `Res` at sequence 0, registered on `sel` as "res".

    Overrides, for these tests only, the database-backed `res` of tests/conftest.py.
    """
    resource = Res()
    sel.register(res=resource)
    return resource


@pytest.fixture
def ticking(sel: Selector) -> None:
    """Registers `tick` on `sel` as "a" and "b"."""
    sel.register(a=tick, b=tick)
