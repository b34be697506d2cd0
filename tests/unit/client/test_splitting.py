"""Long messages: split into pieces that each fit the line the server relays, losing nothing."""

from __future__ import annotations

import functools
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from securechat.client.commands import Context, interpret
from securechat.client.splitting import split_text, text_budget
from securechat.protocol.message import MAX_BODY_BYTES, BodyTooLong, build, build_exact, parse

SOURCE = "alice!alice@127.0.0.1"
ROOM = Context(room="#dev", source=SOURCE)


def relayed(line: bytes, source: str = SOURCE) -> bytes:
    """The line as the server relays it to others: with our ``nick!user@host`` in front."""
    return b":" + source.encode() + b" " + line


def texts(lines: list[bytes]) -> list[str]:
    parsed = [parse(line) for line in lines]
    return [m.params[-1] for m in parsed if m is not None]


def test_multibyte_text_at_the_limit_is_cut_between_characters_never_inside_one() -> None:
    limit = text_budget(SOURCE, "PRIVMSG", "#dev")
    text = "é" * limit  # two bytes each: twice the budget, no spaces
    pieces = split_text(text, limit)
    assert "".join(pieces) == text
    assert all(len(p.encode()) <= limit for p in pieces)
    assert len(pieces[0].encode()) in (limit, limit - 1)  # as full as whole characters allow


def test_a_5000_character_line_reaches_the_room_whole_in_several_messages() -> None:
    """It used to arrive as one 480-character message, the rest dropped silently."""
    words = [f"word{i}" for i in range(800)]
    text = " ".join(words)
    assert len(text) > 5000
    outcome = interpret(text, ROOM)
    assert len(outcome.send) > 10
    assert all(len(relayed(line)) <= MAX_BODY_BYTES for line in outcome.send)
    assert " ".join(texts(outcome.send)).split(" ") == words  # cut between words only
    assert [said for _, _, said in outcome.said] == texts(outcome.send)


def test_an_action_is_split_with_each_piece_a_whole_action() -> None:
    outcome = interpret("/me " + "waves " * 200, ROOM)
    assert len(outcome.send) > 1
    for line in outcome.send:
        assert len(relayed(line)) <= MAX_BODY_BYTES
        text = texts([line])[0]
        assert text.startswith("\x01ACTION ") and text.endswith("\x01")


def test_without_a_known_host_the_split_assumes_a_long_one() -> None:
    """Before the server shows our host, pieces are short enough for any host it may use."""
    outcome = interpret("x" * 2000, Context(room="#dev"))
    long_source = "alice!" + "u" * 16 + "@" + "h" * 63
    assert all(len(relayed(line, long_source)) <= MAX_BODY_BYTES for line in outcome.send)


def test_a_topic_too_long_for_one_line_is_refused_not_cut() -> None:
    outcome = interpret("/topic " + "t" * 600, ROOM)
    assert outcome.send == [] and outcome.error
    assert "over the 512-byte line limit; it was not sent" in outcome.notes[0]


def test_build_exact_refuses_what_build_would_cut() -> None:
    with pytest.raises(BodyTooLong):
        build_exact("PRIVMSG", ["#dev", "x" * 600])


def test_build_says_when_it_cuts_at_debug_level(caplog: pytest.LogCaptureFixture) -> None:
    """Debug, not warning: a client can make the server cut its replies at will."""
    with caplog.at_level(logging.DEBUG, logger="securechat.protocol.message"):
        line = build("PRIVMSG", ["#dev", "x" * 600])
    assert len(line) == MAX_BODY_BYTES
    assert "PRIVMSG line of" in caplog.text and "cut to the protocol limit" in caplog.text


@given(
    text=st.text(
        alphabet=st.sampled_from(["a", " ", "é", "€", "𝄞", "z", "\u0301"]), min_size=0, max_size=600
    ),
    limit=st.integers(min_value=4, max_value=120),
)
def test_pieces_fit_and_put_back_together_give_the_text(text: str, limit: int) -> None:
    pieces = split_text(text, limit)
    assert all(len(p.encode()) <= limit for p in pieces)
    assert rebuilds(text, tuple(pieces))


def rebuilds(text: str, pieces: tuple[str, ...]) -> bool:
    """``text`` is the pieces in order, each joined to the next by nothing or one space."""

    @functools.cache
    def match(offset: int, index: int) -> bool:
        piece = pieces[index]
        if not text.startswith(piece, offset):
            return False
        end = offset + len(piece)
        if index == len(pieces) - 1:
            return end == len(text)
        spaced = text.startswith(" ", end) and match(end + 1, index + 1)
        return match(end, index + 1) or spaced

    return match(0, 0)
