"""Input parsing: every command to protocol lines, and a hint for every mistake."""

from __future__ import annotations

import pytest

from securechat.client.commands import COMMANDS, Context, Outcome, help_text, interpret
from securechat.protocol.message import parse

ROOM = Context(room="#lobby")
QUERY = Context(query="bob")
SERVER = Context()


def wire(lines: list[bytes]) -> list[tuple[str, ...]]:
    """Protocol lines as (command, *params): what was sent, not how it was spelled."""
    parsed = [parse(line) for line in lines]
    assert all(line.endswith(b"\r\n") for line in lines) and None not in parsed
    return [(m.command, *m.params) for m in parsed if m is not None]


def sent(text: str, context: Context = ROOM) -> list[tuple[str, ...]]:
    outcome = interpret(text, context)
    assert not outcome.error, outcome.notes
    return wire(outcome.send)


def hint_for(text: str, context: Context = ROOM) -> str:
    outcome = interpret(text, context)
    assert outcome.error and outcome.send == [] and len(outcome.notes) == 1
    return outcome.notes[0]


# ---- plain text and messages ------------------------------------------------------------


def test_text_goes_to_the_current_room() -> None:
    outcome = interpret("hello there", ROOM)
    assert wire(outcome.send) == [("PRIVMSG", "#lobby", "hello there")]
    assert outcome.said == [("#lobby", "message", "hello there")]


def test_text_goes_to_the_current_private_conversation() -> None:
    assert sent("hi", QUERY) == [("PRIVMSG", "bob", "hi")]


def test_text_in_the_server_buffer_is_a_hint() -> None:
    assert "server buffer" in hint_for("hello", SERVER)


def test_blank_text_sends_nothing() -> None:
    assert interpret("   ", ROOM) == Outcome()


def test_double_slash_sends_a_literal_slash() -> None:
    assert sent("//shrug") == [("PRIVMSG", "#lobby", "/shrug")]


def test_msg_sends_and_opens_a_private_buffer() -> None:
    outcome = interpret("/msg bob see you", SERVER)
    assert wire(outcome.send) == [("PRIVMSG", "bob", "see you")]
    assert outcome.query == "bob" and not outcome.switch_to_query


def test_msg_to_a_room_opens_no_private_buffer() -> None:
    outcome = interpret("/msg #ops deploy done", SERVER)
    assert wire(outcome.send) == [("PRIVMSG", "#ops", "deploy done")] and outcome.query is None


def test_msg_without_text_is_a_hint() -> None:
    assert "Usage: /msg NICK|ROOM TEXT" in hint_for("/msg bob")


def test_msg_to_an_invalid_nick_is_a_hint() -> None:
    assert "not a valid nick" in hint_for("/msg 9lives hi")


def test_query_opens_and_shows_a_private_buffer() -> None:
    outcome = interpret("/query bob", ROOM)
    assert outcome.query == "bob" and outcome.switch_to_query and outcome.send == []


def test_query_with_text_also_sends_it() -> None:
    assert sent("/query bob hi") == [("PRIVMSG", "bob", "hi")]


def test_me_sends_a_ctcp_action() -> None:
    outcome = interpret("/me waves", ROOM)
    assert wire(outcome.send) == [("PRIVMSG", "#lobby", "\x01ACTION waves\x01")]
    assert outcome.said == [("#lobby", "action", "waves")]


def test_me_in_the_server_buffer_is_a_hint() -> None:
    assert "/me works in a room" in hint_for("/me waves", SERVER)


def test_notice_sends_a_notice() -> None:
    assert sent("/notice bob ping") == [("NOTICE", "bob", "ping")]


# ---- rooms ------------------------------------------------------------------------------


def test_join_adds_the_missing_hash_and_opens_the_room() -> None:
    outcome = interpret("/join lobby", SERVER)
    assert wire(outcome.send) == [("JOIN", "#lobby")] and outcome.join == ["#lobby"]


def test_join_several_rooms_with_a_key() -> None:
    outcome = interpret("/join a,#b secret", SERVER)
    assert wire(outcome.send) == [("JOIN", "#a,#b", "secret")] and outcome.join == ["#a", "#b"]


def test_join_without_a_room_is_a_hint() -> None:
    assert hint_for("/join") == "Give the room to join. Usage: /join ROOM [KEY]"


def test_join_an_invalid_room_is_a_hint() -> None:
    assert "not a valid room name" in hint_for("/join #a\x07b")


def test_part_leaves_the_current_room_with_a_reason() -> None:
    assert sent("/part see you later") == [("PART", "#lobby", "see you later")]


def test_part_names_another_room() -> None:
    assert sent("/part #ops") == [("PART", "#ops")]


def test_part_in_the_server_buffer_without_a_room_is_a_hint() -> None:
    assert "Name a room" in hint_for("/part", SERVER)


def test_topic_without_text_asks_for_the_topic() -> None:
    assert sent("/topic") == [("TOPIC", "#lobby")]


def test_topic_with_text_sets_it() -> None:
    assert sent("/topic Release day") == [("TOPIC", "#lobby", "Release day")]


def test_topic_of_a_named_room() -> None:
    assert sent("/topic #ops all quiet", SERVER) == [("TOPIC", "#ops", "all quiet")]


def test_names_of_the_current_room() -> None:
    assert sent("/names") == [("NAMES", "#lobby")]


def test_list_with_and_without_a_pattern() -> None:
    assert sent("/list", SERVER) == [("LIST",)]
    assert sent("/list #dev*", SERVER) == [("LIST", "#dev*")]


def test_invite_to_the_current_room() -> None:
    assert sent("/invite carol") == [("INVITE", "carol", "#lobby")]


def test_invite_to_a_named_room_adds_the_hash() -> None:
    assert sent("/invite carol ops", SERVER) == [("INVITE", "carol", "#ops")]


def test_kick_with_a_reason() -> None:
    assert sent("/kick bob too loud") == [("KICK", "#lobby", "bob", "too loud")]


def test_kick_in_a_named_room() -> None:
    assert sent("/kick #ops bob", SERVER) == [("KICK", "#ops", "bob")]


def test_kick_without_a_nick_is_a_hint() -> None:
    assert "Give the nick to kick" in hint_for("/kick")


def test_mode_in_the_current_room() -> None:
    assert sent("/mode +o bob") == [("MODE", "#lobby", "+o", "bob")]


def test_mode_query_of_the_current_room() -> None:
    assert sent("/mode") == [("MODE", "#lobby")]


def test_mode_of_a_named_target() -> None:
    assert sent("/mode alice +i", SERVER) == [("MODE", "alice", "+i")]


# ---- people -----------------------------------------------------------------------------


def test_nick_changes_the_nick() -> None:
    assert sent("/nick alicia") == [("NICK", "alicia")]


def test_invalid_nick_is_a_hint_and_sends_nothing() -> None:
    assert "not a valid nick" in hint_for("/nick 1abc")


def test_whois_a_nick() -> None:
    assert sent("/whois bob") == [("WHOIS", "bob")]


def test_whois_in_a_private_buffer_defaults_to_that_nick() -> None:
    assert sent("/whois", QUERY) == [("WHOIS", "bob")]


def test_away_with_and_without_a_reason() -> None:
    assert sent("/away lunch") == [("AWAY", "lunch")]
    assert sent("/away") == [("AWAY", "Away")]


def test_back_clears_away() -> None:
    assert sent("/back") == [("AWAY",)]


# ---- the client itself ------------------------------------------------------------------


def test_quote_sends_the_raw_line() -> None:
    assert sent("/quote PRIVMSG #x :raw text") == [("PRIVMSG", "#x", "raw text")]


def test_quote_never_sends_more_than_one_line() -> None:
    assert sent("/quote PING a\r\nQUIT") == [("PING", "a  QUIT")]  # CR LF neutralized, one line


def test_close_in_a_room_parts_it() -> None:
    outcome = interpret("/close", ROOM)
    assert outcome.close and wire(outcome.send) == [("PART", "#lobby")]


def test_close_in_a_private_buffer_sends_nothing() -> None:
    outcome = interpret("/close", QUERY)
    assert outcome.close and outcome.send == []


def test_close_of_the_server_buffer_is_a_hint() -> None:
    assert "/quit" in hint_for("/close", SERVER)


def test_clear_asks_to_clear() -> None:
    assert interpret("/clear", ROOM).clear


def test_quit_with_default_and_given_reason() -> None:
    assert wire(interpret("/quit", ROOM).send) == [("QUIT", "Leaving")]
    outcome = interpret("/quit gone fishing", ROOM)
    assert outcome.quit and wire(outcome.send) == [("QUIT", "gone fishing")]


def test_commands_are_case_insensitive() -> None:
    assert sent("/JOIN #a") == [("JOIN", "#a")]


def test_aliases_reach_their_command() -> None:
    assert sent("/j a") == [("JOIN", "#a")]


def test_unknown_command_is_a_one_line_hint() -> None:
    assert hint_for("/frob x") == "Unknown command /frob. Type /help for the list of commands."


# ---- help -------------------------------------------------------------------------------


def test_help_lists_every_command() -> None:
    lines = help_text()
    for name in COMMANDS:
        assert any(line.strip().startswith(f"/{name}") for line in lines), name


def test_help_for_one_command() -> None:
    assert interpret("/help join", ROOM).notes == [
        "/join ROOM [KEY] — join a room (# is added when missing) and show it"
    ]


def test_help_for_an_unknown_command() -> None:
    assert help_text("nope") == ["No such command /nope. Type /help for the list of commands."]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_no_command_raises_on_odd_arguments(name: str) -> None:
    for args in ("", " ", "#", ":", "\x00", "a " * 300):
        for context in (ROOM, QUERY, SERVER):
            outcome = interpret(f"/{name} {args}", context)
            assert all(line.endswith(b"\r\n") and line.count(b"\n") == 1 for line in outcome.send)
