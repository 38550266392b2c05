"""What each ``SELECTOR_APP`` value may be: its type and range, in words.

One table for the settings object (which refuses a bad value with
``ImproperlyConfigured``) and the system checks (``selector_app.E005``), so
that ``manage.py check`` and the running app say the same thing. Plain
Python: no Django, so the table can be read (and tested) on its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

#: Where a user reads the docs (they are not in the wheel).
DOCS_URL = "https://github.com/selector-app/django-selector-app/blob/main/docs/"
#: What every key means, its default and its range.
SETTINGS_DOCS = f"{DOCS_URL}settings.md"

#: Channels' rule for group names: ASCII letters, digits, ``-``, ``_``, ``.``.
GROUP_NAME = re.compile(r"[A-Za-z0-9._-]{1,99}")
#: A resource name, as the URL routes (`<slug:name>`) and the model take it.
RESOURCE_NAME = re.compile(r"[-a-zA-Z0-9_]{1,100}")


@dataclass(frozen=True, slots=True)
class Rule:
    """A test a value must pass, and what it expects, said to a user."""

    expected: str
    accepts: Callable[[object], bool]


@dataclass(frozen=True, slots=True)
class Problem:
    """A key whose value breaks its rule."""

    key: str
    value: object
    expected: str

    def __str__(self) -> str:
        return (
            f"SELECTOR_APP[{self.key!r}] = {self.value!r} ({type(self.value).__name__})"
            f" is not {self.expected}."
        )


def _is_number(value: object) -> bool:
    # bool is an int to Python, never a number of seconds to a user.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def seconds(*, zero: bool = False) -> Rule:
    """A number of seconds above 0 (or at least 0 when ``zero`` means off)."""
    if zero:
        return Rule(
            "a number of seconds, 0 or more (an int or a float)",
            lambda value: _is_number(value) and value >= 0,
        )
    return Rule(
        "a number of seconds greater than 0 (an int or a float)",
        lambda value: _is_number(value) and value > 0,
    )


def rate() -> Rule:
    """A rate per second, 0 for no limit."""
    return Rule(
        "a rate per second, 0 or more (an int or a float; 0 turns it off)",
        lambda value: _is_number(value) and value >= 0,
    )


def count(minimum: int) -> Rule:
    """A whole number of at least ``minimum``."""
    return Rule(
        f"an int of at least {minimum}",
        lambda value: _is_int(value) and value >= minimum,
    )


def name() -> Rule:
    """A non-empty string."""
    return Rule("a non-empty str", lambda value: isinstance(value, str) and bool(value))


FLAG = Rule("True or False (a bool)", lambda value: isinstance(value, bool))

#: Every key but AUTHORIZE, whose type, import and signature
#: ``selector_app.E004`` checks.
RULES: dict[str, Rule] = {
    "BASE_TEMPLATE": name(),
    "DEFAULT_RESOURCE": name(),
    "LONG_POLL_TIMEOUT": seconds(),
    "KEEP_ALIVE_INTERVAL": seconds(),
    "MAX_HELD_REQUESTS": count(1),
    "RETRY_AFTER": count(0),
    "DRAIN_TIMEOUT": seconds(zero=True),
    "RESYNC_INTERVAL": seconds(),
    "READ_TIMEOUT": seconds(),
    "SNAPSHOT_CACHE": count(0),
    "ANNOUNCE_TIMEOUT": seconds(),
    "CHANNEL_LAYER": name(),
    "GROUP": Rule(
        "a channel-layer group name (1-99 ASCII letters, digits, '-', '_' or '.')",
        lambda value: isinstance(value, str) and bool(GROUP_NAME.fullmatch(value)),
    ),
    "EMBEDDED_UPDATER": FLAG,
    "UPDATER_RESOURCE": name(),
    "GRID_RESOURCES": Rule(
        "a list (or tuple) of at most 100 resource names (str of letters, "
        "digits, '-' or '_')",
        lambda value: (
            isinstance(value, tuple | list)
            and len(value) <= 100
            and all(
                isinstance(item, str) and RESOURCE_NAME.fullmatch(item)
                for item in value
            )
        ),
    ),
    "UPDATE_INTERVAL": seconds(),
    "RESOURCE_LENGTH": count(1),
    "TICK_INTERVAL": seconds(),
    "MAX_MESSAGE_SIZE": count(1),
    "RECEIVE_FRAMES_PER_SECOND": rate(),
    "RECEIVE_FRAME_BURST": count(1),
    "RECEIVE_BYTES_PER_SECOND": rate(),
    "RECEIVE_BYTE_BURST": count(1),
    "MAX_UNSENT_BYTES": count(0),
    "MAX_OPEN_SOCKETS": count(0),
    "MAX_SELECT_RESOURCES": count(1),
    "LOCK_TTL": seconds(),
    "LOCK_REDIS_URL": Rule(
        "a str: empty, or a redis://, rediss:// or unix:// URL",
        lambda value: (
            isinstance(value, str)
            and (not value or value.startswith(("redis://", "rediss://", "unix://")))
        ),
    ),
    "GC_TUNING": FLAG,
    "GC_THRESHOLDS": Rule(
        "three ints of at least 0 (a tuple or a list), e.g. (50000, 20, 100)",
        lambda value: (
            isinstance(value, tuple | list)
            and len(value) == 3
            and all(_is_int(item) and item >= 0 for item in value)
        ),
    ),
    "LAZY_AUTOBAHN_LOGS": FLAG,
    "EAGER_TWISTED_WRITES": FLAG,
    "ALLOWED_ORIGINS": Rule(
        "None or a list (or tuple) of origin patterns (str)",
        lambda value: (
            value is None
            or (
                isinstance(value, tuple | list)
                and all(isinstance(item, str) for item in value)
            )
        ),
    ),
    "REQUIRE_ORIGIN": FLAG,
    "ADMIN_RANDOM_PUBLISH": FLAG,
    "METRICS": FLAG,
    "METRICS_NETWORKS": Rule(
        "a list (or tuple) of IP addresses or networks (str)",
        lambda value: (
            isinstance(value, tuple | list)
            and all(isinstance(item, str) for item in value)
        ),
    ),
    "METRICS_PERMISSION": Rule(
        'None or a permission name (a str, "app_label.codename")',
        lambda value: value is None or (isinstance(value, str) and "." in value),
    ),
    "HEARTBEATS": FLAG,
}


def problems(values: Mapping[str, object]) -> list[Problem]:
    """The values of known keys that break their rule, in key order."""
    return [
        Problem(key, values[key], RULES[key].expected)
        for key in sorted(values)
        if key in RULES and not RULES[key].accepts(values[key])
    ]
