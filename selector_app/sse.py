"""The event-stream format (Server-Sent Events), as the app writes it.

One version is one event: ``id:`` its sequence, one ``data:`` line per line
of its message, a blank line. Encoded once per version for all the streams
that send it. No Django, no I/O.
"""

from __future__ import annotations

import re

from .protocol import Snapshot

CONTENT_TYPE = "text/event-stream; charset=utf-8"
#: The comment sent after ``KEEP_ALIVE_INTERVAL`` of silence.
KEEP_ALIVE = b": keep-alive\n\n"
#: Every line ending the event-stream format knows: data is split on each.
LINE_END = re.compile(r"\r\n|\r|\n")


def encode_event(snapshot: Snapshot) -> bytes:
    """One version as an event: ``id:``, one ``data:`` line per line of the
    message, a blank line."""
    lines = "".join(f"data: {line}\n" for line in LINE_END.split(snapshot.message))
    return f"id: {snapshot.sequence}\n{lines}\n".encode()


#: The last version encoded per resource: a fan-out pass sends the same
#: version to every stream of a resource, so it is encoded once per pass.
_encoded: dict[str, tuple[Snapshot, bytes]] = {}


def event_bytes(snapshot: Snapshot) -> bytes:
    """:func:`encode_event`, computed once per version."""
    cached = _encoded.get(snapshot.name)
    if cached is not None and cached[0] is snapshot:
        return cached[1]
    encoded = encode_event(snapshot)
    _encoded[snapshot.name] = (snapshot, encoded)
    return encoded


def retry_field(milliseconds: int) -> bytes:
    """The ``retry:`` field a stream starts with: the client's reconnect delay."""
    return f"retry: {milliseconds}\n\n".encode()
