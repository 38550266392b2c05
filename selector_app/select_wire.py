"""What ``/select`` puts on the wire: watch sets, control frames, messages.

A watch set is the client's cursor per resource: repeated ``r=<name>:<seq>``
query items, the ``{"watch": {...}}`` / ``{"unwatch": [...]}`` frames of a
socket, or an event stream's ``Last-Event-ID`` (``a:4,b:7``). Every bad item
is refused by name (:class:`~selector_app.protocol.MalformedQuery`: 400 or
close 4400), so a client with fifty resources learns which one is wrong.
A message is one JSON object per version, encoded once for every client.
No Django, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from .protocol import (
    InvalidCursor,
    MalformedQuery,
    PerVersion,
    Query,
    Snapshot,
    parse_cursor,
)

#: A resource name, as the URL routes (``<slug:name>``) and the model take it.
from .rules import RESOURCE_NAME as NAME

#: A watch set: resource name -> the sequence the client has.
Cursors = dict[str, int]


def _name(raw: object) -> str:
    if not isinstance(raw, str) or not NAME.fullmatch(raw):
        raise MalformedQuery(
            f"{str(raw)[:40]!r} is not a resource name (1 to 100 letters, "
            "digits, '-' or '_')."
        )
    return raw


def _item(raw: str) -> tuple[str, int]:
    """One ``name[:seq]`` item."""
    name, colon, seq = raw.partition(":")
    _name(name)
    if colon and not seq:
        raise InvalidCursor(f"The item {raw[:60]!r} has no sequence after ':'.")
    try:
        return name, parse_cursor(seq)
    except InvalidCursor:
        raise InvalidCursor(
            f"The item {raw[:60]!r}: the sequence must be 1 to 18 decimal digits."
        ) from None


def parse_items(items: Iterable[str], *, limit: int, what: str) -> Cursors:
    """A watch set from ``name[:seq]`` items (``what`` says where they came
    from, for the reason); a name given twice keeps its last cursor."""
    cursors: Cursors = {}
    for raw in items:
        name, cursor = _item(raw)
        cursors[name] = cursor
    check_size(cursors, limit=limit, what=what)
    return cursors


def check_size(cursors: Mapping[str, object], *, limit: int, what: str) -> None:
    """Refuse an empty watch set, or one over ``limit`` (``what`` it is)."""
    if not cursors:
        raise MalformedQuery(f"{what} names no resource; give at least one.")
    if len(cursors) > limit:
        raise MalformedQuery(
            f"{what} names {len(cursors)} resources; at most {limit} are allowed."
        )


def query_cursors(query: Query, *, limit: int) -> Cursors:
    """The watch set of a ``?r=a:3&r=b:7`` query."""
    return parse_items(query.getlist("r"), limit=limit, what="The query")


def last_event_cursors(header: str, *, limit: int) -> Cursors:
    """The watch set of an event stream's ``Last-Event-ID`` (``a:4,b:7``)."""
    return parse_items(header.split(","), limit=limit, what="Last-Event-ID")


def event_id(cursors: Mapping[str, int]) -> str:
    """The ``id:`` of an event: the whole cursor set, ``a:4,b:7``."""
    return ",".join(f"{name}:{cursor}" for name, cursor in cursors.items())


class Control:
    """A socket's change to its watch set: names to watch (with cursors),
    or names to stop watching."""

    __slots__ = ("unwatch", "watch")

    def __init__(self, watch: Cursors, unwatch: list[str]) -> None:
        self.watch = watch
        self.unwatch = unwatch


def parse_control(text: str | None) -> Control:
    """A ``{"watch": {"c": 0}}`` or ``{"unwatch": ["a"]}`` text frame."""
    if text is None:
        raise MalformedQuery(
            'Send text frames: {"watch": {...}} or {"unwatch": [...]}.'
        )
    try:
        frame = json.loads(text)
    except ValueError:
        raise MalformedQuery("A frame must be a JSON object.") from None
    if not isinstance(frame, dict) or len(frame) != 1:
        raise MalformedQuery(
            'A frame must be {"watch": {"name": seq}} or {"unwatch": ["name"]}.'
        )
    [(key, value)] = frame.items()
    if key == "watch" and isinstance(value, dict) and value:
        return Control({_name(n): _frame_cursor(n, c) for n, c in value.items()}, [])
    if key == "unwatch" and isinstance(value, list) and value:
        return Control({}, [_name(name) for name in value])
    raise MalformedQuery(
        'A frame must be {"watch": {"name": seq, ...}} or {"unwatch": ["name", ...]},'
        " neither empty."
    )


def _frame_cursor(name: str, cursor: object) -> int:
    if type(cursor) is not int or cursor < 0 or cursor >= 10**18:
        raise InvalidCursor(
            f"The cursor of {name!r} must be a whole number from 0 (18 digits at most)."
        )
    return cursor


def _encode(snapshot: Snapshot) -> str:
    return json.dumps(
        {"name": snapshot.name, "sequence": snapshot.sequence, "data": snapshot.data},
        ensure_ascii=False,
        separators=(",", ":"),
    )


#: ``{"name", "sequence", "data"}`` as JSON, computed once per version.
message = PerVersion(_encode)


def answer(snapshots: Iterable[Snapshot]) -> str:
    """A Comet answer: the JSON array of every version that differs."""
    return "[" + ",".join(message(snapshot) for snapshot in snapshots) + "]"
