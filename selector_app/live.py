"""Waiting on resources: what the Comet view and the push consumer call.

Both are the seed's level-triggered question, "is there a version whose
sequence differs from my cursor?", asked of this process's hub. A waiter
never touches the database while it waits.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from .conf import get_config
from .exceptions import InvalidCursor, TooManyWaiters, UnknownResource
from .hub import Hub, get_hub
from .snapshots import Snapshot

_CURSOR = re.compile(r"[0-9]{1,18}")


def parse_cursor(raw: str | None) -> int:
    """The client's ``seq``: missing or empty means 0 (it has nothing yet)."""
    if not raw:
        return 0
    if not _CURSOR.fullmatch(raw):
        raise InvalidCursor(f"seq must be 1 to 18 decimal digits, got {raw[:40]!r}.")
    return int(raw)


async def _known(hub: Hub, name: str) -> Snapshot:
    snapshot = await hub.aget(name)
    if snapshot is None:
        raise UnknownResource(f"There is no resource named {name!r}.")
    return snapshot


async def resource_poll(
    *, name: str, cursor: int, timeout: float | None = None
) -> Snapshot | None:
    """One long-poll: the current version at once if it differs from
    ``cursor``, else the next one published; ``None`` after ``timeout``."""
    hub = get_hub()
    current = await _known(hub, name)
    if current.sequence != cursor:
        return current
    if hub.held >= get_config().MAX_HELD_REQUESTS:
        raise TooManyWaiters(
            f"This server process already holds {hub.held} long-poll requests."
        )
    hub.held += 1
    try:
        results = await hub.selector.wait({name: cursor}, timeout=timeout)
    except TimeoutError:
        return None
    finally:
        hub.held -= 1
    return results[name]


async def resource_follow(*, name: str, cursor: int) -> AsyncIterator[Snapshot]:
    """Check that ``name`` exists, then return an iterator of its versions.

    The iterator yields every version newer than the last one it yielded,
    starting with the current one unless its sequence is ``cursor``. A slow
    consumer simply asks later and gets the latest version, never a backlog.
    """
    hub = get_hub()
    await _known(hub, name)
    return _follow(hub, name, cursor)


async def _follow(hub: Hub, name: str, cursor: int) -> AsyncIterator[Snapshot]:
    while True:
        snapshot = await hub.next_version(name, cursor)
        cursor = snapshot.sequence
        yield snapshot
