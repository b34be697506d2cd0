"""The cluster's codec (securechat/server/cluster/codec.py): every outcome type a store job or
worker returns survives the trip between nodes; anything else is refused, not unpickled."""

from __future__ import annotations

import json

import pytest

from securechat.server.accounts import LoginOutcome
from securechat.server.cluster import codec
from securechat.server.records import (
    Account,
    AccountExists,
    HistoryRecord,
    PresenceRecord,
    Reaction,
    Redaction,
    RoomRecord,
    StoredPresences,
    StoreError,
)


def trip(value: object) -> object:
    return codec.decode_value(json.loads(json.dumps(codec.encode_value(value))))


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        3,
        0.1 + 0.2,
        "text",
        [1, "a"],
        (1, ("x", True)),
        {"#room": 1733580000.125},
        b"\x00\xff",
        Account("alice", "scrypt$...", 1.5, ("ab", "cd")),
        RoomRecord("#Python", "alice", 2.0, operators=("bob",), bans=("*!*@evil",), limit=5),
        HistoryRecord(
            "18c.0.0.1",
            "#python",
            "#Python",
            "a!u@h",
            None,
            3.25,
            "PRIVMSG",
            "hi",
            lines=(("one", False), ("two", True)),
            redaction=Redaction("op!u@h", 4.0, "spam"),
            reactions=(Reaction("m2", "#python", "18c.0.0.1", "b!u@h", "bob", 5.0, "+1"),),
        ),
        StoredPresences(
            (PresenceRecord("alice", "alice", "u", "Alice", "h", None, ("#a",), 9.0),),
            (("alice", True),),
        ),
        LoginOutcome(account="alice"),
        ("stored", None),
    ],
)
def test_outcomes_survive_the_trip(value: object) -> None:
    assert trip(value) == value
    assert type(trip(value)) is type(value)


def test_errors_come_back_as_the_same_type_and_text() -> None:
    error = trip(AccountExists("alice is taken"))
    assert isinstance(error, AccountExists) and str(error) == "alice is taken"


def test_an_unexpected_exception_arrives_as_a_store_failure() -> None:
    error = trip(KeyError("boom"))
    assert type(error) is StoreError and "KeyError" in str(error)


def test_a_type_not_listed_is_refused_both_ways() -> None:
    with pytest.raises(TypeError):
        codec.encode_value(object())
    with pytest.raises(KeyError):
        codec.decode_value({"r": "Popen", "f": {}})


def test_a_line_of_any_bytes_survives_a_batch() -> None:
    raw = b"PRIVMSG #x :\xff\xfe caf\xc3\xa9"
    batch = codec.encode_batch([[codec.LINE, 1.0, 7, codec.line_text(raw)]])
    assert codec.line_bytes(codec.decode_batch(batch)[0][3]) == raw
