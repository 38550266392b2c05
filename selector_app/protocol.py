"""What goes on the wire: versions, cursors, message formats and refusals.

Every transport (Comet, push, and those to come) speaks the same small
language, defined here once: a resource version is the text
``"<sequence> <data>"``, a client's cursor is ``seq`` (1 to 18 decimal
digits, missing or empty meaning 0), and each refusal has an HTTP status and
a WebSocket close code. This module imports nothing else of the app, so every
other module may import it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

#: The channel-layer message type that announces a new version.
PUBLISHED = "resource.published"

#: A close frame's reason must fit in 123 bytes of UTF-8.
MAX_REASON = 123

_CURSOR = re.compile(r"[0-9]{1,18}")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One version of a resource, with its wire form computed once.

    Thousands of sockets send the same version; building ``message`` here
    rather than per send keeps the fan-out loop free of string work.
    """

    name: str
    sequence: int
    data: str
    message: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", f"{self.sequence} {self.data}")

    def as_event(self) -> dict[str, object]:
        """The channel-layer message that announces this version."""
        return {
            "type": PUBLISHED,
            "name": self.name,
            "sequence": self.sequence,
            "data": self.data,
        }

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> Snapshot:
        """Parse :meth:`as_event`'s output; ``ValueError`` if it is malformed."""
        name, sequence, data = (
            event.get("name"),
            event.get("sequence"),
            event.get("data"),
        )
        if (
            not isinstance(name, str)
            or not isinstance(sequence, int)
            or isinstance(sequence, bool)
            or not isinstance(data, str)
        ):
            raise ValueError(f"Not a {PUBLISHED} event: {event!r:.200}")
        return cls(name, sequence, data)


def differs(snapshot: Snapshot | None, cursor: int) -> Snapshot | None:
    """``snapshot`` if a client at ``cursor`` should be sent it, else ``None``.

    The one rule of every transport: a version whose sequence is not the
    cursor. A cursor *ahead* of the server (its database was reset) is
    answered too, instead of being held for ever.
    """
    if snapshot is not None and snapshot.sequence != cursor:
        return snapshot
    return None


def parse_cursor(raw: str | None) -> int:
    """The client's ``seq``: missing or empty means 0 (it has nothing yet)."""
    if not raw:
        return 0
    if not _CURSOR.fullmatch(raw):
        raise InvalidCursor(f"seq must be 1 to 18 decimal digits, got {raw[:40]!r}.")
    return int(raw)


#: What a client is told when the drain ends its request or socket.
SHUTTING_DOWN = "This server process is shutting down; connect again."


def close_reason(text: str) -> str:
    """``text`` cut to what a WebSocket close frame can carry."""
    return text.encode()[:MAX_REASON].decode(errors="ignore")


class Refused(Exception):
    """A request the protocol answers with a refusal instead of a version.

    Each subclass carries what the client is told: an HTTP status for Comet
    and a close code for sockets, so every transport translates it the same
    way. The message is the one-line reason sent with it.
    """

    status: int = 400
    close_code: int = 4400
    #: Whether the refusal is temporary: HTTP answers then carry ``Retry-After``.
    retry_later: bool = False


class InvalidCursor(Refused, ValueError):
    """A ``seq`` that is not 1 to 18 decimal digits (HTTP 400, close 4400)."""


class UnknownResource(Refused, LookupError):
    """No resource has this name (HTTP 404, close 4404)."""

    status = 404
    close_code = 4404


class TooManyWaiters(Refused, RuntimeError):
    """This process holds its limit of waiting requests (HTTP 503 with
    ``Retry-After``, close 1013 "try again later")."""

    status = 503
    close_code = 1013
    retry_later = True


class ShuttingDown(Refused, RuntimeError):
    """This server process is draining before it exits (HTTP 503 with
    ``Retry-After``, close 1012 "service restart"): connect again, to another
    process if there is one, with the same cursor."""

    status = 503
    close_code = 1012
    retry_later = True
