"""/reply, /react, /unreact, /edit, /delete, /markread: parsed before anything is sent."""

from __future__ import annotations

import pytest

from securechat.client.commands import Context, interpret
from securechat.client.message_commands import OWN_LATEST, Act, ActError, Ref, edit, react, reply

ROOM = Context(room="#lobby")


def test_reply_takes_a_position_or_a_nick_then_the_text() -> None:
    assert reply("-2 sure thing") == Act("reply", Ref(position=2), "sure thing")
    assert reply("bob sure thing") == Act("reply", Ref(nick="bob"), "sure thing")
    with pytest.raises(ActError):
        reply("bob")


def test_react_defaults_to_the_latest_message() -> None:
    assert react("👍") == Act("react", Ref(position=1), "👍")
    assert react("bob 🎉") == Act("react", Ref(nick="bob"), "🎉")
    with pytest.raises(ActError):
        react("")
    with pytest.raises(ActError):
        react("x" * 65)


def test_edit_defaults_to_our_latest_message_and_keeps_the_whole_text() -> None:
    assert edit("hello world") == Act("edit", OWN_LATEST, "hello world")
    assert edit("-3 fixed typo") == Act("edit", Ref(position=3), "fixed typo")
    with pytest.raises(ActError):
        edit("-1")


def test_message_commands_outside_a_room_or_conversation_are_a_hint() -> None:
    outcome = interpret("/react 👍", Context())
    assert outcome.error and "room or a private conversation" in outcome.notes[0]


def test_message_commands_give_the_session_an_act_and_send_nothing_themselves() -> None:
    outcome = interpret("/delete -1 spam", ROOM)
    assert outcome.send == [] and outcome.act == Act("delete", Ref(position=1), "spam")
    assert interpret("/markread now", ROOM).error
    assert interpret("/unreact 👍", ROOM).act == Act("unreact", Ref(position=1), "👍")


def test_help_lists_the_message_commands() -> None:
    notes = "\n".join(interpret("/help", ROOM).notes)
    for name in ("/reply", "/react", "/unreact", "/edit", "/delete", "/markread", "/verify"):
        assert name in notes
