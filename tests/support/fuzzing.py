"""The fuzz suite's contract: what each endpoint may answer, whatever it is sent.

``ALLOWED`` is the table every fuzz test checks first: an answer not in it
(a 500, a 1011, a socket dropped without a close frame) fails, whatever the
input. A feature that adds a refusal (authorization's 403/4403, a rate
limit's 1008, a drain's 503...) adds its status or close code to the rows of
the endpoints that give it. The fuzz tests then check the answer the
protocol documents for the input they generated.

Also here: the strategies that generate hostile queries, paths, headers and
frames, and :func:`nothing_left_behind`.
"""

from __future__ import annotations

import asyncio
from urllib.parse import quote, quote_plus

from hypothesis import strategies as st

from tests.support.waiting import until

#: A WebSocket whose first message is a data frame (a version, a tick, an echo).
DATA = "data frame"
#: A push socket holding, correctly, for a version newer than its cursor.
HELD = "held"

#: Every answer each endpoint may give. HTTP: the status. WebSocket: the
#: handshake's HTTP status when refused (403), else the first thing the
#: server says after accepting: ``DATA``, ``HELD`` or a close code. A close
#: code 1xxx the server refuses to send goes out as 1xxx + 3000 on Daphne.
ALLOWED: dict[str, frozenset[int | str]] = {
    # Page: 400 is Django's answer to a Host not in ALLOWED_HOSTS.
    "/": frozenset({200, 400, 404, 405}),
    # Comet: 204 after the long-poll timeout, 503 past the held-request limit.
    "/comet": frozenset({200, 204, 400, 404, 405, 503}),
    "/comet/<name>": frozenset({200, 204, 400, 404, 405, 503}),
    # Push: 4400 bad query or cursor, 4404 unknown resource, 1013 overloaded.
    "/websocket": frozenset({403, DATA, HELD, 4400, 4404, 1013}),
    "/websocket/<name>": frozenset({403, DATA, HELD, 4400, 4404, 1013}),
    # Echo and tick: 1009 for a frame (or its echo) over the size limit; 4009
    # where the server refuses to send 1009 (Daphne: SelectorConsumer.close).
    "/bidirectional": frozenset({403, DATA, 1009, 4009}),
    # Operations: health is 200 or 503 (not synced, layer down, draining);
    # metrics 404 when off, 403 outside METRICS_NETWORKS. Both ignore queries.
    "/health": frozenset({200, 400, 405, 503}),
    "/metrics": frozenset({200, 400, 403, 404, 405}),
    # Paths no route matches: Django's 404 (400 for a bad Host), and the
    # WebSocket fallback route's 4404.
    "http elsewhere": frozenset({400, 404, 405}),
    "ws elsewhere": frozenset({403, 4404}),
}

#: HTTP methods a client may send (the servers refuse unknown tokens first).
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")

#: Text a real server can hand the application: no lone surrogates (a text
#: frame or a percent-decoded path is valid UTF-8, or replaced).
TEXT = st.characters(exclude_categories=("Cs",))

#: Cursors: valid ones (1 to 18 digits) and the near misses.
CURSORS = st.one_of(
    st.from_regex(r"[0-9]{1,18}", fullmatch=True),
    st.sampled_from(
        ["", "0", "1", "-1", "+1", " 1", "1 ", "1e3", "0x1f", "1.0", "9" * 19, "\u0661"]
    ),
    st.text(TEXT, max_size=24),
)

#: Query field names: the ones endpoints read, and anything else.
NAMES = st.one_of(st.sampled_from(["seq", "r", "name"]), st.text(TEXT, max_size=12))

#: Resource names in a path: the demo's, other slugs, and anything else.
SEGMENTS = st.one_of(
    st.just("res"),
    st.from_regex(r"[-a-zA-Z0-9_]{1,40}", fullmatch=True),
    st.text(TEXT, min_size=1, max_size=40),
    st.sampled_from(["res/", "res/x", "..", "%FF", "\x00", "a" * 2000]),
)

#: Raw query strings that no encoder would produce.
RAW_QUERIES = st.one_of(
    st.binary(max_size=64),
    st.sampled_from(
        [
            b"%",
            b"seq=%",
            b"seq=%zz",
            b"seq=%FF",
            b"seq=%C3%28",
            b"seq=\xff",
            b"seq=1&" * 1001,
            b"&" * 1000,
            b"seq=" + b"9" * 60000,
            b"=&=&==",
        ]
    ),
)


@st.composite
def queries(draw: st.DrawFn) -> tuple[bytes, str | None]:
    """A well-encoded query and the ``seq`` it carries (the last one wins)."""
    fields = draw(st.lists(st.tuples(NAMES, CURSORS), max_size=6))
    encode = draw(st.sampled_from([quote, quote_plus]))
    text = "&".join(f"{encode(name)}={encode(value)}" for name, value in fields)
    seqs = [value for name, value in fields if name == "seq"]
    return text.encode("ascii"), (seqs[-1] if seqs else None)


def expected_cursor(seq: str | None) -> int | None:
    """The cursor a valid ``seq`` means, or ``None`` for one the protocol
    refuses (missing or empty is 0; else 1 to 18 ASCII digits)."""
    if not seq:
        return 0
    if len(seq) <= 18 and seq.isascii() and seq.isdigit():
        return int(seq)
    return None


def selector_tasks() -> set[str]:
    """Names of the app's tasks running now (its tasks are named
    ``selector_app ...``)."""
    return {
        task.get_name()
        for task in asyncio.all_tasks()
        if task.get_name().startswith("selector_app") and not task.done()
    }


async def nothing_left_behind(hub, tasks_before: set[str]) -> None:
    """Every watcher and held poll released, and no task of a request or a
    socket still running (the runtime's own tasks stay)."""

    def left() -> dict[str, object]:
        found = {
            "watchers": hub.selector.watchers(),
            "waiting polls": hub.waiting_polls,
            "tasks": selector_tasks() - tasks_before,
        }
        return {what: value for what, value in found.items() if value}

    try:
        await until(lambda: not left())
    except TimeoutError:
        raise AssertionError(f"Left behind: {left()}") from None
