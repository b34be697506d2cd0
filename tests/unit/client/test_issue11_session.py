"""Client core behaviours from the terminal-client review (issue 11), without sockets."""

from __future__ import annotations

from securechat.client.session import Session
from securechat.protocol.message import parse
from tests.unit.client.test_session import T0, joined, registered, texts, wire


def test_whois_idle_reply_says_connected_on_a_date_once() -> None:
    session = joined(registered())
    session.receive(":srv 317 alice bob 5 1767355200 :seconds idle, signon time", T0)
    text = session.shown.lines[-1].text
    assert "on on" not in text
    assert text.startswith("bob has been idle 5s, connected on ")


def test_msg_to_another_nick_shows_what_was_sent_in_the_current_buffer() -> None:
    """irssi's ``-> *bob* text``: a successful /msg used to show nothing where you are."""
    session = joined(registered())
    session.submit("/msg bob are you there?", T0)
    assert session.shown.name == "#lobby"
    assert session.shown.lines[-1].text == "-> *bob* are you there?"
    assert texts(session, "bob")[-1] == "are you there?"


def test_no_such_nick_is_said_where_the_user_is_and_marks_the_conversation() -> None:
    session = joined(registered())
    session.submit("/msg ghost hello", T0)
    session.receive(":srv 401 alice ghost :No such nick/channel", T0)
    error = "There is no one called ghost on this server."
    assert session.shown.lines[-1].text == error
    ghost = session.buffer("ghost")
    assert ghost is not None and ghost.lines[-1].text == error and ghost.unread == 1


def test_registered_nick_warning_is_in_the_current_buffer_as_a_mention_with_our_login() -> None:
    session = joined(registered())
    session.receive(
        ":NickServ NOTICE alice :alice is a registered nickname. Log in within 30 seconds "
        "(/msg NickServ IDENTIFY <password>) or you will be renamed.",
        T0,
    )
    line = session.shown.lines[-1]
    assert session.shown.name == "#lobby" and line.highlight
    assert "Log in within 30 seconds (type /login PASSWORD)" in line.text
    assert [alerted for _, alerted in session.drain_alerts()] == [line]


def test_away_reply_of_whois_goes_where_the_rest_of_whois_goes() -> None:
    session = joined(registered())
    session.submit("/query bob", T0)
    session.show(session.buffer("#lobby"))  # type: ignore[arg-type]
    session.receive(":srv 311 alice bob bob host * :Bob", T0)
    session.receive(":srv 301 alice bob :at lunch", T0)
    assert session.shown.lines[-1].text == "bob is away: at lunch"
    assert texts(session, "bob") == []


def test_own_away_state_follows_305_and_306() -> None:
    session = joined(registered())
    session.receive(":srv 306 alice :You have been marked as being away", T0)
    assert session.away
    session.receive(":srv 305 alice :You are no longer marked as being away", T0)
    assert not session.away


def test_logout_is_answered_in_the_current_buffer() -> None:
    session = joined(registered())
    session.receive(":srv 901 alice alice!alice@host :You are now logged out", T0)
    assert session.shown.lines[-1].text == "You are now logged out."


def test_typing_in_a_room_we_left_says_so_and_sends_nothing() -> None:
    session = joined(registered())
    session.receive(":alice!alice@host PART #lobby :bye", T0)
    assert session.submit("anyone?", T0) == []
    assert session.shown.lines[-1].text == "You are not in #lobby: /join #lobby to talk there."


def test_the_server_shutdown_reason_is_kept_when_the_link_closes() -> None:
    session = joined(registered())
    session.receive("ERROR :Closing Link: 127.0.0.1 (Server shutting down)", T0)
    session.connection_lost("the server closed the connection", T0)
    expected = "Disconnected: Closing Link: 127.0.0.1 (Server shutting down)"
    assert session.shown.lines[-1].text == expected


def test_buffer_numbers_stay_when_a_conversation_partner_changes_nick() -> None:
    session = joined(registered())
    session.submit("/query bob", T0)
    session.submit("/join #z", T0)
    before = [b.name for b in session.ordered]
    session.receive(":bob!bob@host NICK robert", T0)
    after = [b.name for b in session.ordered]
    assert after == [("robert" if name == "bob" else name) for name in before]


def test_help_lists_the_keys_and_reconnect() -> None:
    session = registered()
    session.submit("/help", T0)
    shown = [line.text for line in session.shown.lines]
    assert "Keys:" in shown
    assert any("Alt-1 … Alt-9" in text for text in shown)
    assert any(text.strip().startswith("/reconnect") for text in shown)


def test_reconnect_is_asked_of_the_network_shell() -> None:
    session = registered()
    assert session.submit("/reconnect", T0) == []
    assert session.reconnect_requested


def test_join_with_a_space_is_refused_with_the_rule_and_a_suggestion() -> None:
    """It used to join #my with the key "room"."""
    session = registered()
    assert session.submit("/join my room", T0) == []
    text = session.shown.lines[-1].text
    assert "Room names cannot contain spaces" in text and "try /join #my-room" in text
    assert "# and 1 to 49 more characters" in text


def test_a_bad_nick_is_refused_naming_the_real_limit() -> None:
    session = registered()
    assert session.submit("/nick 9lives", T0) == []
    assert "a nick is 1 to 30 characters" in session.shown.lines[-1].text


def test_the_servers_erroneous_nickname_reply_names_the_same_rule() -> None:
    session = registered()
    session.receive(":srv 432 alice 9lives :Erroneous nickname", T0)
    assert "9lives cannot be a nickname: a nick is 1 to 30 characters" in (
        session.shown.lines[-1].text
    )


def test_long_message_split_uses_the_host_the_server_showed_us() -> None:
    session = joined(registered())  # the JOIN echo was alice!u@h
    assert session.source == "alice!u@h"
    sent = wire(session.submit("y" * 1200, T0))
    # The budget is computed from the real prefix: pieces are as long as it allows.
    assert len((":alice!u@h PRIVMSG #lobby :" + sent[0][2]).encode()) + 2 == 512
    assert "".join(line[2] for line in sent) == "y" * 1200


def test_a_paste_goes_as_one_multiline_batch_when_the_server_offers_it() -> None:
    session = Session("alice")
    session.connection_made()
    session.receive(":srv CAP * LS :batch draft/multiline=max-bytes=4096,max-lines=24", T0)
    session.receive(":srv CAP * ACK :batch draft/multiline", T0)
    session.receive(":srv 001 alice :Welcome", T0)
    joined(session)
    sent = session.submit_paste(["first", "", "third"], T0)
    lines = [parse(line) for line in sent]
    assert [(m.command, m.params) for m in lines if m] == [
        ("BATCH", ("+ml1", "draft/multiline", "#lobby")),
        ("PRIVMSG", ("#lobby", "first")),
        ("PRIVMSG", ("#lobby", "")),
        ("PRIVMSG", ("#lobby", "third")),
        ("BATCH", ("-ml1",)),
    ]
    assert all(m.tags.get("batch") == "ml1" for m in lines[1:-1] if m)


def test_a_paste_without_multiline_is_sent_line_by_line_in_order() -> None:
    session = joined(registered())
    assert wire(session.submit_paste(["one", "two", "/me three"], T0)) == [
        ("PRIVMSG", "#lobby", "one"),
        ("PRIVMSG", "#lobby", "two"),
        ("PRIVMSG", "#lobby", "\x01ACTION three\x01"),
    ]


def test_a_private_message_is_an_alert_and_our_own_lines_or_history_are_not() -> None:
    session = joined(registered())
    session.receive(":bob!b@h PRIVMSG alice :psst", T0)
    session.receive(":bob!b@h PRIVMSG #lobby :nothing for you", T0)
    session.receive(":bob!b@h PRIVMSG #lobby :alice: look", T0)
    alerts = [line.text for _, line in session.drain_alerts()]
    assert alerts == ["psst", "alice: look"]
    assert session.drain_alerts() == []


def test_window_move_gives_the_current_buffer_the_asked_number() -> None:
    session = joined(registered())
    session.submit("/query bob", T0)
    assert [b.name for b in session.ordered][-1] == "bob"
    assert session.submit("/window move 1", T0) == []
    assert session.ordered[0].name == "bob" and session.shown.name == "bob"
    session.submit("/window move 9", T0)
    assert [b.name for b in session.ordered][-1] == "bob"
