"""The client core without sockets: registration, routing, counts, reconnect state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from securechat.client.buffers import Kind, Style, printable
from securechat.client.session import Session, fallback_nick
from securechat.protocol import numerics as n
from securechat.protocol.message import parse

T0 = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)
ALL_CAPS = "cap-notify echo-message message-tags multi-prefix server-time"


def wire(lines: list[bytes]) -> list[tuple[str, ...]]:
    """Protocol lines as (command, *params): what was sent, not how it was spelled."""
    parsed = [parse(line) for line in lines]
    assert all(line.endswith(b"\r\n") for line in lines) and None not in parsed
    return [(m.command, *m.params) for m in parsed if m is not None]


def registered(
    nick: str = "alice", caps: str = "message-tags server-time", rooms: tuple[str, ...] = ()
) -> Session:
    session = Session(nick, rooms=rooms)
    session.connection_made()
    session.receive(f":srv CAP * LS :{ALL_CAPS}", T0)
    session.receive(f":srv CAP * ACK :{caps}", T0)
    session.receive(f":srv 001 {nick} :Welcome to the network, {nick}", T0)
    session.receive(f":srv 005 {nick} PREFIX=(ov)@+ CHANMODES=b,k,l,imnt :are supported", T0)
    return session


def joined(session: Session, room: str = "#lobby", names: str = "@alice bob carol") -> Session:
    session.receive(f":{session.nick}!u@h JOIN {room}", T0)
    session.receive(f":srv 353 {session.nick} = {room} :{names}", T0)
    session.receive(f":srv 366 {session.nick} {room} :End of /NAMES list", T0)
    return session


def server_texts(session: Session) -> list[str]:
    return [line.text for line in session.server.lines]


def texts(session: Session, name: str) -> list[str]:
    buffer = session.buffer(name)
    assert buffer is not None
    return [line.text for line in buffer.lines]


# ---- registration -----------------------------------------------------------------------


def test_connection_starts_with_cap_ls_nick_and_user() -> None:
    lines = wire(Session("alice").connection_made())
    assert lines == [
        ("CAP", "LS", n.RPL_USERHOST),
        ("NICK", "alice"),
        ("USER", "alice", "0", "*", "alice"),
    ]


def test_cap_ls_requests_only_wanted_caps_that_are_offered() -> None:
    session = Session("alice")
    session.connection_made()
    sent = wire(session.receive(":srv CAP * LS :server-time sasl echo-message", T0))
    assert sent == [("CAP", "REQ", "echo-message server-time")]


def test_multiline_cap_ls_waits_for_the_last_line() -> None:
    session = Session("alice")
    session.connection_made()
    assert wire(session.receive(":srv CAP * LS * :server-time", T0)) == []
    sent = wire(session.receive(":srv CAP * LS :echo-message", T0))
    assert sent == [("CAP", "REQ", "echo-message server-time")]


def test_cap_ack_records_caps_and_ends_negotiation() -> None:
    session = Session("alice")
    session.connection_made()
    session.receive(f":srv CAP * LS :{ALL_CAPS}", T0)
    sent = wire(session.receive(":srv CAP * ACK :echo-message server-time", T0))
    assert sent == [("CAP", "END")]
    assert session.caps == {"echo-message", "server-time"}


def test_cap_nak_still_ends_negotiation() -> None:
    session = Session("alice")
    session.connection_made()
    session.receive(f":srv CAP * LS :{ALL_CAPS}", T0)
    assert wire(session.receive(":srv CAP * NAK :echo-message", T0)) == [("CAP", "END")]


def test_cap_new_after_registration_requests_a_wanted_cap() -> None:
    session = registered(caps="server-time")
    assert wire(session.receive(":srv CAP alice NEW :echo-message", T0)) == [
        ("CAP", "REQ", "echo-message")
    ]


def test_cap_del_forgets_the_cap() -> None:
    session = registered(caps="server-time echo-message")
    session.receive(":srv CAP alice DEL :echo-message", T0)
    assert "echo-message" not in session.caps


def test_nick_in_use_while_registering_tries_a_fallback() -> None:
    session = Session("alice")
    session.connection_made()
    assert wire(session.receive(":srv 433 * alice :Nickname is already in use", T0)) == [
        ("NICK", "alice_")
    ]
    assert wire(session.receive(":srv 433 * alice_ :Nickname is already in use", T0)) == [
        ("NICK", "alice__")
    ]


def test_fallback_nicks_stay_within_nicklen() -> None:
    assert fallback_nick("a" * 30, 1) == "a" * 29 + "_"
    assert fallback_nick("bob", 3) == "bob1"


def test_nick_in_use_after_registration_is_only_reported() -> None:
    session = registered()
    assert wire(session.receive(":srv 433 alice bob :Nickname is already in use", T0)) == []
    assert session.nick == "alice"
    assert server_texts(session)[-1] == "The nickname bob is already in use."


def test_welcome_joins_the_rooms_asked_for_on_the_command_line() -> None:
    session = Session("alice", rooms=("lobby", "#ops"))
    session.connection_made()
    sent = wire(session.receive(":srv 001 alice :Welcome", T0))
    assert sent == [("JOIN", "#lobby"), ("JOIN", "#ops")]
    assert session.registered


def test_rooms_from_the_command_line_are_open_before_connecting_and_last_is_shown() -> None:
    session = Session("alice", rooms=("lobby", "#ops"))
    assert [b.name for b in session.ordered] == ["server", "#lobby", "#ops"]
    assert session.shown.name == "#ops"


def test_ping_is_answered_with_pong() -> None:
    assert wire(registered().receive("PING :abc", T0)) == [("PONG", "abc")]


# ---- rooms and routing ------------------------------------------------------------------


def test_own_join_opens_the_room_and_names_fill_its_nick_list() -> None:
    session = joined(registered(), names="@alice +bob carol")
    room = session.buffer("#lobby")
    assert room is not None and room.joined and room.kind is Kind.ROOM
    listed = [(m.prefixes, m.nick) for m in session.sorted_members(room)]
    assert listed == [("@", "alice"), ("+", "bob"), ("", "carol")]


def test_multi_prefix_names_keep_every_prefix() -> None:
    session = joined(registered(), names="@+bob")
    room = session.buffer("#lobby")
    assert room is not None and room.members["bob"].prefixes == "@+"


def test_end_of_names_is_worded_with_the_count() -> None:
    session = joined(registered(), names="@alice bob")
    assert texts(session, "#lobby")[-1] == "2 people in #lobby: @alice bob"


def test_room_message_goes_to_the_room_buffer() -> None:
    session = joined(registered())
    session.receive(":bob!b@h PRIVMSG #lobby :hello there", T0)
    line = session.buffer("#lobby").lines[-1]  # type: ignore[union-attr]
    assert (line.nick, line.text, line.style) == ("bob", "hello there", Style.MESSAGE)


def test_message_to_a_hidden_room_counts_as_unread() -> None:
    session = joined(registered())
    session.show(session.server)
    session.receive(":bob!b@h PRIVMSG #lobby :hello", T0)
    room = session.buffer("#lobby")
    assert room is not None and (room.unread, room.mentions) == (1, 0)


def test_message_naming_us_counts_as_mention_and_is_highlighted() -> None:
    session = joined(registered())
    session.show(session.server)
    session.receive(":bob!b@h PRIVMSG #lobby :Alice: are you there?", T0)
    room = session.buffer("#lobby")
    assert room is not None and (room.unread, room.mentions) == (1, 1)
    assert room.lines[-1].highlight


def test_our_nick_inside_a_longer_word_is_not_a_mention() -> None:
    session = joined(registered())
    session.show(session.server)
    session.receive(":bob!b@h PRIVMSG #lobby :malice aforethought", T0)
    room = session.buffer("#lobby")
    assert room is not None and room.mentions == 0


def test_message_to_the_shown_buffer_is_not_unread() -> None:
    session = joined(registered())
    session.receive(":bob!b@h PRIVMSG #lobby :hello", T0)
    assert session.shown.unread == 0


def test_joins_and_parts_are_not_unread_activity() -> None:
    session = joined(registered())
    session.show(session.server)
    session.receive(":dave!d@h JOIN #lobby", T0)
    assert session.buffer("#lobby").unread == 0  # type: ignore[union-attr]


def test_showing_a_buffer_clears_its_counts() -> None:
    session = joined(registered())
    session.show(session.server)
    session.receive(":bob!b@h PRIVMSG #lobby :alice!", T0)
    session.show_index(1)
    assert (session.shown.unread, session.shown.mentions) == (0, 0)


def test_private_message_opens_a_buffer_named_after_the_sender_as_a_mention() -> None:
    session = registered()
    session.receive(":bob!b@h PRIVMSG alice :psst", T0)
    private = session.buffer("bob")
    assert private is not None and private.kind is Kind.PRIVATE
    assert (private.mentions, private.lines[-1].text) == (1, "psst")


def test_echoed_private_message_goes_to_the_recipients_buffer() -> None:
    session = registered(caps="echo-message")
    session.receive(":alice!a@h PRIVMSG bob :hi bob", T0)
    private = session.buffer("bob")
    assert private is not None and private.lines[-1].own and private.unread == 0


def test_server_notice_goes_to_the_server_buffer() -> None:
    session = registered()
    session.receive(":srv NOTICE alice :Server restarting soon", T0)
    assert session.server.lines[-1].style is Style.NOTICE


def test_ctcp_action_is_shown_as_an_action() -> None:
    session = joined(registered())
    session.receive(":bob!b@h PRIVMSG #lobby :\x01ACTION waves\x01", T0)
    line = session.buffer("#lobby").lines[-1]  # type: ignore[union-attr]
    assert (line.style, line.text) == (Style.ACTION, "waves")


def test_other_ctcp_requests_are_not_shown() -> None:
    session = joined(registered())
    before = len(session.buffer("#lobby").lines)  # type: ignore[union-attr]
    session.receive(":bob!b@h PRIVMSG #lobby :\x01VERSION\x01", T0)
    assert len(session.buffer("#lobby").lines) == before  # type: ignore[union-attr]


def test_server_time_tag_sets_the_line_time() -> None:
    session = joined(registered())
    session.receive("@time=2026-01-02T10:30:00.000Z :bob!b@h PRIVMSG #lobby :old news", T0)
    line = session.buffer("#lobby").lines[-1]  # type: ignore[union-attr]
    assert line.time == datetime(2026, 1, 2, 10, 30, tzinfo=UTC)


def test_control_characters_from_the_network_are_removed() -> None:
    session = joined(registered())
    session.receive(":bob!b@h PRIVMSG #lobby :\x1b[2Jclear \x02bold\x02 \x0304red", T0)
    assert texts(session, "#lobby")[-1] == "[2Jclear bold red"


def test_printable_keeps_ordinary_text() -> None:
    assert printable("héllo wörld ✓") == "héllo wörld ✓"


def test_topic_reply_sets_the_room_topic() -> None:
    session = joined(registered())
    session.receive(":srv 332 alice #lobby :Welcome all", T0)
    assert session.buffer("#lobby").topic == "Welcome all"  # type: ignore[union-attr]
    assert texts(session, "#lobby")[-1] == "Topic for #lobby: Welcome all"


def test_topic_change_updates_the_topic_and_says_who() -> None:
    session = joined(registered())
    session.receive(":bob!b@h TOPIC #lobby :new topic", T0)
    assert session.buffer("#lobby").topic == "new topic"  # type: ignore[union-attr]
    assert texts(session, "#lobby")[-1] == "bob changed the topic to: new topic"


def test_others_join_and_part_update_the_nick_list() -> None:
    session = joined(registered())
    session.receive(":dave!d@example.org JOIN #lobby", T0)
    session.receive(":bob!b@h PART #lobby :bye", T0)
    room = session.buffer("#lobby")
    assert room is not None and set(room.members) == {"alice", "carol", "dave"}
    assert texts(session, "#lobby")[-2:] == [
        "dave (d@example.org) joined #lobby",
        "bob left #lobby (bye)",
    ]


def test_quit_removes_the_nick_from_every_shared_room() -> None:
    session = joined(joined(registered()), "#ops", "alice bob")
    session.receive(":bob!b@h QUIT :gone", T0)
    for name in ("#lobby", "#ops"):
        assert "bob" not in session.buffer(name).members  # type: ignore[union-attr]
        assert texts(session, name)[-1] == "bob quit (gone)"


def test_nick_change_renames_member_and_private_buffer() -> None:
    session = joined(registered())
    session.receive(":bob!b@h PRIVMSG alice :hi", T0)
    session.receive(":bob!b@h NICK robert", T0)
    assert "robert" in session.buffer("#lobby").members  # type: ignore[union-attr]
    assert session.buffer("bob") is None and session.buffer("robert") is not None
    assert texts(session, "#lobby")[-1] == "bob is now known as robert"


def test_own_nick_change_updates_our_nick() -> None:
    session = joined(registered())
    session.receive(":alice!a@h NICK alicia", T0)
    assert session.nick == "alicia" and session.wanted_nick == "alicia"


def test_mode_op_and_voice_update_prefixes() -> None:
    session = joined(registered())
    session.receive(":alice!a@h MODE #lobby +ov-o bob carol alice", T0)
    members = session.buffer("#lobby").members  # type: ignore[union-attr]
    assert (members["bob"].prefixes, members["carol"].prefixes) == ("@", "+")
    assert members["alice"].prefixes == ""


def test_mode_with_a_key_parameter_does_not_shift_the_op_target() -> None:
    session = joined(registered())
    session.receive(":alice!a@h MODE #lobby +ko secret bob", T0)
    assert session.buffer("#lobby").members["bob"].prefixes == "@"  # type: ignore[union-attr]


def test_being_kicked_is_highlighted_and_the_room_is_not_rejoined() -> None:
    session = joined(registered())
    session.receive(":bob!b@h KICK #lobby alice :behave", T0)
    room = session.buffer("#lobby")
    assert room is not None and not room.joined and room.lines[-1].highlight
    assert session.rooms_to_join() == []


def test_invite_is_shown_with_the_command_to_accept() -> None:
    session = registered()
    session.receive(":bob!b@h INVITE alice #secret", T0)
    assert server_texts(session)[-1] == "bob invites you to #secret (type /join #secret)"


def test_error_from_the_server_is_recorded_as_a_close() -> None:
    session = registered()
    session.receive("ERROR :Closing Link: 127.0.0.1 (Quit: bye)", T0)
    assert session.closed_by_server


# ---- numerics as sentences --------------------------------------------------------------


def test_no_such_nick_is_shown_in_that_nicks_private_buffer() -> None:
    session = registered()
    session.receive(":bob!b@h PRIVMSG alice :hi", T0)
    session.show(session.server)
    session.receive(":srv 401 alice bob :No such nick/channel", T0)
    line = session.buffer("bob").lines[-1]  # type: ignore[union-attr]
    assert (line.text, line.style) == ("There is no one called bob on this server.", Style.ERROR)


def test_cannot_send_to_room_is_shown_in_the_room() -> None:
    session = joined(registered())
    session.show(session.server)
    session.receive(":srv 404 alice #lobby :Cannot send to channel", T0)
    assert texts(session, "#lobby")[-1] == (
        "Your message could not be sent to #lobby: Cannot send to channel"
    )


def test_chanop_needed_names_the_room() -> None:
    session = joined(registered())
    session.receive(":srv 482 alice #lobby :You're not channel operator", T0)
    assert texts(session, "#lobby")[-1] == "You need to be an operator of #lobby to do that."


def test_error_about_a_room_without_buffer_goes_to_the_shown_buffer() -> None:
    session = joined(registered())
    session.receive(":srv 403 alice #nowhere :No such channel", T0)
    assert texts(session, "#lobby")[-1] == "There is no room called #nowhere."


def test_unknown_command_numeric_names_the_command() -> None:
    session = registered()
    session.receive(":srv 421 alice FOO :Unknown command", T0)
    assert server_texts(session)[-1] == "The server does not know the command FOO."


def test_whois_idle_is_a_duration() -> None:
    session = registered()
    session.receive(":srv 317 alice bob 3725 :seconds idle", T0)
    assert server_texts(session)[-1] == "bob has been idle 1h 2m 5s"


def test_unlisted_numeric_shows_its_text() -> None:
    session = registered()
    session.receive(":srv 999 alice something :odd happened", T0)
    assert server_texts(session)[-1] == "something odd happened"


def test_isupport_is_not_shown() -> None:
    session = registered()
    assert not any("supported" in t for t in server_texts(session))


# ---- what the user types ----------------------------------------------------------------


def test_text_without_echo_message_is_echoed_locally() -> None:
    session = joined(registered(caps="server-time"))
    sent = wire(session.submit("hello all", T0))
    assert sent == [("PRIVMSG", "#lobby", "hello all")]
    line = session.buffer("#lobby").lines[-1]  # type: ignore[union-attr]
    assert (line.nick, line.text, line.own) == ("alice", "hello all", True)


def test_text_with_echo_message_waits_for_the_servers_echo() -> None:
    session = joined(registered(caps="echo-message"))
    before = len(session.buffer("#lobby").lines)  # type: ignore[union-attr]
    session.submit("hello all", T0)
    assert len(session.buffer("#lobby").lines) == before  # type: ignore[union-attr]


def test_join_shows_the_room_before_the_server_answers() -> None:
    session = registered()
    assert wire(session.submit("/join lobby", T0)) == [("JOIN", "#lobby")]
    assert session.shown.name == "#lobby"
    assert wire(session.submit("first!", T0)) == [("PRIVMSG", "#lobby", "first!")]


def test_msg_opens_a_private_buffer_without_showing_it() -> None:
    session = registered()
    session.submit("/msg bob hi there", T0)
    assert session.buffer("bob") is not None and session.shown is session.server


def test_query_opens_and_shows_a_private_buffer() -> None:
    session = registered()
    session.submit("/query bob", T0)
    assert session.shown.name == "bob" and session.shown.kind is Kind.PRIVATE


def test_close_parts_the_room_and_removes_its_buffer() -> None:
    session = joined(registered())
    assert wire(session.submit("/close", T0)) == [("PART", "#lobby")]
    assert session.buffer("#lobby") is None and session.shown is session.server


def test_clear_empties_the_shown_buffer() -> None:
    session = joined(registered())
    session.submit("/clear", T0)
    assert len(session.shown.lines) == 0 and session.shown.generation == 1


def test_unknown_command_is_a_hint_in_the_shown_buffer() -> None:
    session = registered()
    assert wire(session.submit("/frobnicate", T0)) == []
    assert session.server.lines[-1].style is Style.ERROR
    assert "Unknown command /frobnicate" in session.server.lines[-1].text


def test_commands_before_registration_are_not_sent() -> None:
    session = Session("alice")
    session.connection_made()
    assert wire(session.submit("/join #a", T0)) == []
    assert "Not connected" in session.shown.lines[-1].text


def test_quit_marks_the_session_as_quitting() -> None:
    session = registered()
    assert wire(session.submit("/quit bye now", T0)) == [("QUIT", "bye now")]
    assert session.quitting


# ---- navigation -------------------------------------------------------------------------


def test_next_and_previous_buffer_wrap_around() -> None:
    session = joined(joined(registered()), "#ops")
    session.show(session.server)
    session.show_next(-1)
    assert session.shown.name == "#ops"
    session.show_next(1)
    assert session.shown is session.server


def test_show_index_out_of_range_changes_nothing() -> None:
    session = registered()
    assert not session.show_index(5)
    assert session.shown is session.server


def test_active_buffer_prefers_mentions_over_unread() -> None:
    session = joined(joined(registered()), "#ops")
    session.show(session.server)
    session.receive(":bob!b@h PRIVMSG #lobby :just chatting", T0)
    session.receive(":bob!b@h PRIVMSG #ops :alice: look", T0)
    assert session.show_active() and session.shown.name == "#ops"
    assert session.show_active() and session.shown.name == "#lobby"
    assert not session.show_active()


# ---- reconnect --------------------------------------------------------------------------


def test_lost_connection_keeps_the_rooms_to_rejoin_and_says_so() -> None:
    session = joined(joined(registered()), "#ops")
    session.connection_lost("connection reset", T0)
    assert not session.registered
    assert session.rooms_to_join() == ["#lobby", "#ops"]
    assert texts(session, "#ops")[-1] == "Disconnected: connection reset"
    assert session.buffer("#ops").members == {}  # type: ignore[union-attr]


def test_reconnect_rejoins_the_rooms_that_were_open() -> None:
    session = joined(joined(registered()), "#ops")
    session.submit("/part #ops", T0)
    session.receive(":alice!a@h PART #ops", T0)
    session.connection_lost("reset", T0)
    session.connection_made()
    assert wire(session.receive(":srv 001 alice :Welcome back", T0)) == [("JOIN", "#lobby")]


def test_reconnect_asks_for_the_wanted_nick_again() -> None:
    session = Session("alice")
    session.connection_made()
    session.receive(":srv 433 * alice :in use", T0)
    session.receive(":srv 001 alice_ :Welcome", T0)
    session.connection_lost("reset", T0 + timedelta(seconds=1))
    assert ("NICK", "alice") in wire(session.connection_made())


# ---- completion -------------------------------------------------------------------------


def test_nick_completion_puts_the_most_recent_speaker_first() -> None:
    session = joined(registered(), names="alice bob bobby")
    session.receive(":bobby!b@h PRIVMSG #lobby :hi", T0)
    edit = session.complete("bo", 2)
    assert edit is not None and edit.text == "bobby: "
    edit = session.complete(edit.text, edit.cursor)
    assert edit is not None and edit.text == "bob: "


def test_nick_completion_mid_line_adds_a_space() -> None:
    session = joined(registered(), names="alice carol")
    edit = session.complete("hello ca", 8)
    assert edit is not None and (edit.text, edit.cursor) == ("hello carol ", 12)


def test_command_completion_at_line_start() -> None:
    session = registered()
    edit = session.complete("/jo", 3)
    assert edit is not None and edit.text == "/join "


def test_room_completion_offers_open_rooms() -> None:
    session = joined(registered(), "#lobby")
    edit = session.complete("/part #lo", 9)
    assert edit is not None and edit.text == "/part #lobby "


def test_completion_without_candidates_changes_nothing() -> None:
    session = joined(registered())
    assert session.complete("zzz", 3) is None


def test_welcome_burst_stays_in_the_server_buffer_while_a_room_is_shown() -> None:
    session = Session("alice", rooms=("#lobby",))
    session.connection_made()
    for line in (
        ":srv 001 alice :Welcome",
        ":srv 004 alice srv securechat-0.1 i ovtn",
        ":srv 252 alice 0 :operator(s) online",
        ":srv 422 alice :MOTD File is missing",
    ):
        session.receive(line, T0)
    assert session.shown.name == "#lobby" and len(session.shown.lines) == 0
    assert server_texts(session)[-1] == "The server has no message of the day."


def test_error_after_our_quit_is_not_shown_as_a_failure() -> None:
    session = registered()
    session.submit("/quit", T0)
    session.receive("ERROR :Closing Link: 127.0.0.1 (Quit: Leaving)", T0)
    assert session.server.lines[-1].style is Style.INFO
    assert server_texts(session)[-1].startswith("Left the server")
