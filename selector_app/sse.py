"""The event-stream format (Server-Sent Events), as the app writes it.

One version is one event: ``id:`` its sequence, one ``data:`` line per line
of its message, a blank line. Encoded once per version for all the streams
that send it. No Django, no I/O.
"""

from __future__ import annotations

import re

from .protocol import PerVersion, Snapshot

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


#: :func:`encode_event`, computed once per version for all the streams.
event_bytes = PerVersion(encode_event)


def retry_field(milliseconds: int) -> bytes:
    """The ``retry:`` field a stream starts with: the client's reconnect delay."""
    return f"retry: {milliseconds}\n\n".encode()
