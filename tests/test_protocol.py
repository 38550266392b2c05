"""The wire vocabulary: versions, cursors, layer messages and refusals."""

from __future__ import annotations

import pytest

from selector_app.protocol import (
    MAX_QUERY_FIELDS,
    Forbidden,
    InvalidCursor,
    MalformedQuery,
    PerVersion,
    Snapshot,
    TooManyWaiters,
    UnknownResource,
    close_reason,
    differs,
    parse_cursor,
    parse_query,
)


def test_a_version_is_sequence_space_data():
    assert Snapshot("res", 12, "a b").message == "12 a b"


def test_a_layer_message_round_trips():
    snapshot = Snapshot("res", 3, "x")
    assert Snapshot.from_event(snapshot.as_event()) == snapshot
    assert snapshot.as_event()["type"] == "resource.published"


@pytest.mark.parametrize(
    "event",
    [
        {"name": "x", "sequence": "1", "data": ""},
        {"name": "x", "sequence": True, "data": ""},
        {"name": 1, "sequence": 1, "data": ""},
        {"name": "x", "sequence": 1},
    ],
)
def test_a_malformed_layer_message_is_a_value_error(event):
    with pytest.raises(ValueError, match=r"Not a resource\.published event"):
        Snapshot.from_event(event)


@pytest.mark.parametrize(
    ("raw", "cursor"),
    [(None, 0), ("", 0), ("0", 0), ("7", 7), ("9" * 18, 10**18 - 1)],
)
def test_cursors(raw, cursor):
    assert parse_cursor(raw) == cursor


@pytest.mark.parametrize("raw", ["-1", "1.5", " 1", "1" * 19, "\u0661", "x" * 100])
def test_bad_cursors_are_refused_with_a_short_reason(raw):
    with pytest.raises(InvalidCursor, match="seq must be 1 to 18 decimal digits") as e:
        parse_cursor(raw)
    assert len(str(e.value)) < 100


def test_differs_is_the_one_rule_of_every_transport():
    snapshot = Snapshot("res", 5, "x")
    assert differs(snapshot, 4) is snapshot
    assert differs(snapshot, 6) is snapshot  # a client ahead is answered too
    assert differs(snapshot, 5) is None
    assert differs(None, 0) is None


def test_each_refusal_carries_its_status_and_close_code():
    codes = {
        error: (error.status, error.close_code)
        for error in (InvalidCursor, UnknownResource, Forbidden, TooManyWaiters)
    }
    assert codes == {
        InvalidCursor: (400, 4400),
        UnknownResource: (404, 4404),
        Forbidden: (403, 4403),
        TooManyWaiters: (503, 1013),
    }


def test_close_reasons_fit_a_close_frame():
    assert len(close_reason("é" * 200).encode()) <= 123
    assert close_reason("short") == "short"


def test_a_query_reads_like_querydict():
    query = parse_query(b"seq=1&r=a%3A3&r=b+c&seq=2&flag&=x&&")
    assert query.get("seq") == "2"  # the last one wins
    assert query.getlist("r") == ["a:3", "b c"]
    assert query.get("flag") == "" and query.get("missing") is None
    assert parse_query("").getlist("seq") == []
    assert parse_query("seq=%C3%A9").get("seq") == "\u00e9"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"seq=1&" * MAX_QUERY_FIELDS + b"x", "at most 1000 fields"),
        (b"&" * MAX_QUERY_FIELDS, "at most 1000 fields"),
        (b"seq=%FF", "not valid UTF-8 once percent-decoded"),
        (b"seq=%C3%28", "not valid UTF-8 once percent-decoded"),
        (b"seq=\xff", "not valid UTF-8"),
        (b"seq=%zz", "not followed by two hex digits"),
        (b"seq=1%", "not followed by two hex digits"),
        (b"%G1=1", "not followed by two hex digits"),
    ],
)
def test_a_malformed_query_is_refused_with_400_and_4400(raw, reason):
    with pytest.raises(MalformedQuery, match=reason) as refused:
        parse_query(raw)
    assert (refused.value.status, refused.value.close_code) == (400, 4400)
    assert "\n" not in str(refused.value)


def test_the_field_limit_is_inclusive():
    assert len(parse_query(b"&".join([b"a=1"] * MAX_QUERY_FIELDS)).getlist("a")) == 1000


def test_a_version_is_encoded_once_and_the_memo_stays_bounded():
    calls = []
    memo = PerVersion(lambda snapshot: calls.append(snapshot) or snapshot.message, 3)
    first = Snapshot("a", 1, "x")
    assert memo(first) == memo(first) == "1 x" and len(calls) == 1
    assert memo(Snapshot("a", 1, "x")) == "1 x" and len(calls) == 2  # another version
    for index in range(10):
        memo(Snapshot(f"r{index}", 1, "y"))
    assert len(memo) <= 3
