"""Typing notifications (client-tags/typing.md): the 3-second throttle and expiry of others'."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from securechat.client.typing import Throttle, Typing, describe, is_typing_text

T0 = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_typing_sends_active_at_most_every_three_seconds() -> None:
    throttle = Throttle()
    sent = [throttle.edited("#a", "h" * i, at(i * 0.5)) for i in range(1, 14)]
    # keystrokes every 0.5 s from 0.5 s to 6.5 s: active at 0.5, 3.5 and 6.5 only
    assert [(i + 1) * 0.5 for i, state in enumerate(sent) if state] == [0.5, 3.5, 6.5]
    assert {state for state in sent if state} == {"active"}


def test_throttle_is_per_target() -> None:
    throttle = Throttle()
    assert throttle.edited("#a", "x", at(0)) == "active"
    assert throttle.edited("#b", "x", at(1)) == "active"


def test_clearing_the_input_sends_done_once_when_the_throttle_allows() -> None:
    throttle = Throttle()
    assert throttle.edited("#a", "hello", at(0)) == "active"
    assert throttle.edited("#a", "", at(1)) is None  # within 3 s: waits
    assert throttle.tick(at(2)) == []
    assert throttle.tick(at(3)) == [("#a", "done")]
    assert throttle.tick(at(10)) == []


def test_a_pause_with_text_left_sends_paused_once() -> None:
    throttle = Throttle()
    throttle.edited("#a", "hello", at(0))
    assert throttle.tick(at(4)) == []
    assert throttle.tick(at(5)) == [("#a", "paused")]
    assert throttle.tick(at(40)) == []
    assert throttle.edited("#a", "hello!", at(41)) == "active"


def test_sending_the_message_ends_typing_without_done() -> None:
    throttle = Throttle()
    throttle.edited("#a", "hello", at(0))
    throttle.sent_message("#a")
    assert throttle.edited("#a", "", at(4)) is None
    assert throttle.tick(at(20)) == []


def test_commands_and_empty_input_are_not_typing() -> None:
    assert not is_typing_text("/join #x")
    assert not is_typing_text("   ")
    assert is_typing_text("//not a command")
    throttle = Throttle()
    assert throttle.edited("#a", "/react 👍", at(0)) is None


def test_others_typing_expires_after_6_s_active_and_30_s_paused() -> None:
    typing = Typing()
    typing.update("bob", "active", at(0))
    typing.update("carol", "paused", at(0))
    assert typing.active() == ["bob"]
    assert not typing.expire(at(5))
    assert typing.expire(at(6)) and typing.active() == []
    assert "carol" in str(typing.since)
    assert typing.expire(at(30)) and typing.since == {}


def test_done_or_a_message_stops_typing_at_once() -> None:
    typing = Typing()
    typing.update("bob", "active", at(0))
    assert typing.update("bob", "done", at(1))
    typing.update("bob", "active", at(2))
    assert typing.stop("BOB") and typing.active() == []


def test_who_is_typing_in_words() -> None:
    assert describe([]) == ""
    assert describe(["alice"]) == "alice is typing…"
    assert describe(["alice", "bob"]) == "alice and bob are typing…"
    assert describe(["a", "b", "c"]) == "3 people are typing…"
