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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import unquote

T = TypeVar("T")

#: The channel-layer message type that announces a new version.
PUBLISHED = "resource.published"

#: A close frame's reason must fit in 123 bytes of UTF-8.
MAX_REASON = 123

#: A query with more fields than this is refused (Django's own default for
#: ``DATA_UPLOAD_MAX_NUMBER_FIELDS``); no endpoint reads more than a few.
MAX_QUERY_FIELDS = 1000

_CURSOR = re.compile(r"[0-9]{1,18}")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One version of a resource, with its wire form computed once.

    Thousands of sockets send the same version; building ``message`` here
    rather than per send keeps the fan-out loop free of string work.
    ``published_at`` (``time.time()`` of the publish, when known) travels in
    the layer message for the delivery-latency metric; it is not part of the
    version, so a re-read of the same row compares equal.
    """

    name: str
    sequence: int
    data: str
    published_at: float | None = field(default=None, repr=False, compare=False)
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
            "published_at": self.published_at,
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
        published_at = event.get("published_at")
        if not isinstance(published_at, float):
            published_at = None  # optional: older publishers do not send it
        return cls(name, sequence, data, published_at)


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


class Query:
    """A query string's parameters, read by :func:`parse_query`.

    The two accessors every transport uses, with ``QueryDict``'s meaning:
    ``get`` is the last value of a repeated name, ``getlist`` all of them.
    """

    __slots__ = ("_fields",)

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self._fields = fields

    def get(self, name: str) -> str | None:
        values = self._fields.get(name)
        return values[-1] if values else None

    def getlist(self, name: str) -> list[str]:
        return list(self._fields.get(name, ()))


def parse_query(raw: bytes | str) -> Query:
    """Read a query string without ever failing in a way a client can cause.

    Every transport reads its query here, so that every malformed one (more
    than :data:`MAX_QUERY_FIELDS` fields, a ``%`` not followed by two hex
    digits, bytes that are not UTF-8 before or after percent-decoding) is
    the same :class:`MalformedQuery`: a 400 or a close 4400 with a reason,
    never Django's ``TooManyFieldsSent`` or a ``UnicodeDecodeError`` after
    the socket was accepted.
    """
    if isinstance(raw, bytes):
        try:
            raw = raw.decode()
        except UnicodeDecodeError:
            raise MalformedQuery("The query string is not valid UTF-8.") from None
    fields: dict[str, list[str]] = {}
    if not raw:
        return Query(fields)
    # Counted before splitting: a refused query costs no list of its fields.
    if raw.count("&") >= MAX_QUERY_FIELDS:
        raise MalformedQuery(
            f"A query string may have at most {MAX_QUERY_FIELDS} fields."
        )
    for item in raw.split("&"):
        if item:
            name, _, value = item.partition("=")
            fields.setdefault(_unescape(name), []).append(_unescape(value))
    return Query(fields)


def _unescape(text: str) -> str:
    if "+" in text:
        text = text.replace("+", " ")
    if "%" not in text:
        return text
    if _BAD_ESCAPE.search(text):
        raise MalformedQuery(
            "The query string has a % that is not followed by two hex digits."
        )
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise MalformedQuery(
            "The query string is not valid UTF-8 once percent-decoded."
        ) from None


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


class MalformedQuery(Refused, ValueError):
    """A query string that cannot be read: too many fields, a bad
    percent-escape or text that is not UTF-8 (HTTP 400, close 4400)."""


class UnknownResource(Refused, LookupError):
    """No resource has this name (HTTP 404, close 4404)."""

    status = 404
    close_code = 4404


class Forbidden(Refused, PermissionError):
    """The ``AUTHORIZE`` hook refused this user the resource (HTTP 403, close
    4403). Raised before the resource is looked up, with the same reason for
    every name, so a refusal never tells whether the resource exists."""

    status = 403
    close_code = 4403


class UnknownEndpoint(Refused, LookupError):
    """No WebSocket route matches the path (close 4404, like an unknown
    resource; HTTP has Django's own 404)."""

    status = 404
    close_code = 4404


class TooManyWaiters(Refused, RuntimeError):
    """This process holds its limit of waiting requests (HTTP 503 with
    ``Retry-After``, close 1013 "try again later")."""

    status = 503
    close_code = 1013
    retry_later = True


class Unavailable(Refused, RuntimeError):
    """The answer needs the database, which did not answer in time (HTTP 503
    with ``Retry-After``, close 4503: Daphne's WebSocket library refuses to
    send 1013, so the code follows 4400/4404 instead)."""

    status = 503
    close_code = 4503
    retry_later = True


#: The close code of an unexpected server failure. Not 1011: Daphne's
#: WebSocket library (autobahn) refuses to send any code but 1000 and
#: 3000-4999 from the ASGI ``websocket.close`` it is given, so a 1011 never
#: reaches the client there. 4500 is "4000 + HTTP status" like 4400 and 4404.
SERVER_ERROR = 4500


class RateLimited(Refused, RuntimeError):
    """A client sending frames or bytes faster than its socket's rate limit
    (close 1008, "policy violation")."""

    status = 429
    close_code = 1008


class NotReading(Refused, RuntimeError):
    """A client that leaves more unread output on the server than the limit,
    on a server without back-pressure (close 1008)."""

    status = 429
    close_code = 1008


class MessageTooBig(Refused, ValueError):
    """A text frame, or the echo it would be answered with, over the size limit
    (close 1009, "message too big")."""

    status = 413
    close_code = 1009


class TooManySockets(Refused, RuntimeError):
    """This process holds its limit of open sockets (HTTP 503 at the handshake
    where the server can send one, else close 1013 "try again later")."""

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


class PerVersion(Generic[T]):
    """An encoding of a version, computed once per version for every client.

    A fan-out pass sends the same version to every client of a resource, so
    its wire form (an event, a JSON message) is built for the first and
    reused: the last version encoded is kept per resource. Emptied when it
    holds ``limit`` resources, so that it never keeps many versions the hub
    has dropped (memory follows what is watched).
    """

    def __init__(self, encode: Callable[[Snapshot], T], limit: int = 10_000) -> None:
        self.encode = encode
        self.limit = limit
        self._last: dict[str, tuple[Snapshot, T]] = {}

    def __call__(self, snapshot: Snapshot) -> T:
        cached = self._last.get(snapshot.name)
        if cached is not None and cached[0] is snapshot:
            return cached[1]
        value = self.encode(snapshot)
        if len(self._last) >= self.limit:
            self._last.clear()
        self._last[snapshot.name] = (snapshot, value)
        return value

    def __len__(self) -> int:
        return len(self._last)
