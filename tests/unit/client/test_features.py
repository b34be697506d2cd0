"""The client core and IRCv3 chat features: read markers, replies, reactions, typing,
redactions and edits, multiline messages, missed conversations (no sockets)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from securechat.client.buffers import Buffer, Kind, Style, format_timestamp
from securechat.client.decor import Decorator
from securechat.client.plain import format_line
from securechat.client.session import Session
from securechat.protocol.message import parse

T0 = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)
CAPS = (
    "batch draft/chathistory draft/message-redaction draft/multiline draft/read-marker "
    "echo-message message-tags server-time"
)


def wire(lines: list[bytes]) -> list[tuple[str, dict[str, str], tuple[str, ...]]]:
    parsed = [parse(line) for line in lines]
    return [(m.command, dict(m.tags), m.params) for m in parsed if m is not None]


def stamp(seconds: int) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def session_in_lobby(caps: str = CAPS, account: bool = True) -> Session:
    session = Session("alice")
    session.connection_made()
    session.receive(f":srv CAP * LS :{caps}", T0)
    session.receive(f":srv CAP * ACK :{caps}", T0)
    if account:
        session.receive(":srv 900 alice alice!a@h alice :You are now logged in as alice", T0)
    session.receive(":srv 001 alice :Welcome", T0)
    session.receive(":alice!a@h JOIN #lobby", T0)
    session.receive(":srv 366 alice #lobby :End of /NAMES list", T0)
    session.drain_outbox()
    return session


def say(session: Session, nick: str, text: str, msgid: str, at: int, tags: str = "") -> None:
    extra = f";{tags}" if tags else ""
    session.receive(
        f"@msgid={msgid};time={stamp(at)}{extra} :{nick}!u@h PRIVMSG #lobby :{text}", T0
    )


def lobby(session: Session) -> Buffer:
    buffer = session.buffer("#lobby")
    assert buffer is not None
    return buffer


def other_buffer(session: Session) -> None:
    session.show(session.server)
    session.drain_outbox()


# ---- read markers ---------------------------------------------------------------------------


def test_a_read_marker_from_another_device_recounts_unread() -> None:
    session = session_in_lobby()
    other_buffer(session)
    for index in range(4):
        say(session, "bob", f"m{index}", f"id{index}", index)
    assert lobby(session).unread == 4
    session.receive(f":srv MARKREAD #lobby timestamp={stamp(1)}", T0)
    assert lobby(session).unread == 2
    session.receive(f":srv MARKREAD #lobby timestamp={stamp(3)}", T0)
    assert lobby(session).unread == 0


def test_a_read_marker_never_moves_back() -> None:
    session = session_in_lobby()
    session.receive(f":srv MARKREAD #lobby timestamp={stamp(5)}", T0)
    session.receive(f":srv MARKREAD #lobby timestamp={stamp(1)}", T0)
    session.receive(":srv MARKREAD #lobby *", T0)
    assert lobby(session).read_marker == T0 + timedelta(seconds=5)


def test_showing_a_buffer_marks_its_newest_message_read_on_the_server() -> None:
    session = session_in_lobby()
    other_buffer(session)
    say(session, "bob", "hello", "id1", 7)
    session.show(lobby(session))
    assert wire(session.drain_outbox()) == [("MARKREAD", {}, ("#lobby", f"timestamp={stamp(7)}"))]
    session.show(session.server)
    session.show(lobby(session))
    assert session.drain_outbox() == []  # nothing newer: not sent again


def test_a_live_message_in_the_shown_buffer_is_marked_read_as_it_arrives() -> None:
    session = session_in_lobby()
    sent = session.receive(f"@msgid=x;time={stamp(9)} :bob!u@h PRIVMSG #lobby :hi", T0)
    assert wire(sent) == [("MARKREAD", {}, ("#lobby", f"timestamp={stamp(9)}"))]


def test_without_the_read_marker_cap_or_an_account_nothing_is_sent() -> None:
    session = session_in_lobby("batch message-tags server-time")
    assert session.receive(f"@msgid=x;time={stamp(9)} :bob!u@h PRIVMSG #lobby :hi", T0) == []
    guest = session_in_lobby(account=False)  # markers are per account: ACCOUNT_REQUIRED
    assert guest.receive(f"@msgid=x;time={stamp(9)} :bob!u@h PRIVMSG #lobby :hi", T0) == []


def test_history_after_the_marker_is_counted_and_separated_with_its_time() -> None:
    session = session_in_lobby()
    other_buffer(session)
    session.receive(f":srv MARKREAD #lobby timestamp={stamp(1)}", T0)
    session.receive(":srv BATCH +h chathistory #lobby", T0)
    for index in range(4):
        tags = f"@batch=h;msgid=h{index};time={stamp(index)}"
        session.receive(f"{tags} :bob!u@h PRIVMSG #lobby :old {index}", T0)
    session.receive(":srv BATCH -h", T0)
    assert lobby(session).unread == 2
    texts = [line.text for line in lobby(session).lines]
    separator = next(t for t in texts if "unread" in t)
    assert separator.startswith("── 2 unread messages since ")
    assert texts.index(separator) == texts.index("old 1") + 1  # right after the last read


# ---- replies, reactions, typing -------------------------------------------------------------


def test_reply_sends_the_text_tagged_with_the_message_it_answers() -> None:
    session = session_in_lobby()
    say(session, "bob", "lunch?", "m1", 1)
    say(session, "carol", "later", "m2", 2)
    sent = wire(session.submit("/reply bob sure", T0))
    assert sent == [("PRIVMSG", {"+draft/reply": "m1"}, ("#lobby", "sure"))]
    sent = wire(session.submit("/reply -1 ok", T0))
    assert sent == [("PRIVMSG", {"+draft/reply": "m2"}, ("#lobby", "ok"))]


def test_a_reply_to_an_unknown_message_or_nick_is_a_hint() -> None:
    session = session_in_lobby()
    assert session.submit("/reply dave hi", T0) == []
    assert session.shown.lines[-1].text == "No message from dave here."
    assert session.shown.lines[-1].style is Style.ERROR


def test_a_received_reply_is_shown_with_the_quote_of_the_original() -> None:
    session = session_in_lobby()
    say(session, "bob", "lunch at noon?", "m1", 1)
    say(session, "carol", "yes", "m2", 2, tags="+draft/reply=m1")
    line = lobby(session).lines[-1]
    decor = Decorator(lobby(session), "alice").decor(line)
    assert line.reply_to == "m1" and decor.quote == "bob: lunch at noon?"
    shown = format_line(lobby(session), line, decor)
    assert shown.endswith("#lobby <carol> [↪ bob: lunch at noon?] yes")


def test_react_and_unreact_are_tagmsgs_and_counts_follow_the_echo() -> None:
    session = session_in_lobby()
    say(session, "bob", "shipped!", "m1", 1)
    sent = wire(session.submit("/react 🎉", T0))
    assert sent == [("TAGMSG", {"+draft/reply": "m1", "+draft/react": "🎉"}, ("#lobby",))]
    session.receive("@msgid=r1;+draft/reply=m1;+draft/react=🎉 :alice!a@h TAGMSG #lobby", T0)
    session.receive("@msgid=r2;+draft/reply=m1;+draft/react=🎉 :carol!c@h TAGMSG #lobby", T0)
    decor = Decorator(lobby(session), "alice").decor(lobby(session).lines[-1])
    assert decor.reactions == "🎉 2" and decor.mine == ("🎉",)
    assert wire(session.submit("/unreact 🎉", T0))[0][1]["+draft/unreact"] == "🎉"
    session.receive("@+draft/reply=m1;+draft/unreact=🎉 :alice!a@h TAGMSG #lobby", T0)
    assert Decorator(lobby(session), "alice").decor(lobby(session).lines[-1]).reactions == "🎉 1"


def test_a_reaction_is_told_in_line_mode_with_the_new_count() -> None:
    session = session_in_lobby()
    say(session, "bob", "shipped!", "m1", 1)
    session.drain()
    session.receive("@+draft/reply=m1;+draft/react=👍 :carol!c@h TAGMSG #lobby", T0)
    [(_, line)] = session.drain()
    assert line.text.startswith("carol reacted 👍 to bob's message from ")
    assert line.text.endswith("(👍 1)")


def test_a_reaction_to_a_message_we_do_not_hold_is_ignored() -> None:
    session = session_in_lobby()
    session.receive("@+draft/reply=nope;+draft/react=👍 :carol!c@h TAGMSG #lobby", T0)
    assert lobby(session).reactions == {}


def test_typing_from_others_is_tracked_and_ended_by_their_message() -> None:
    session = session_in_lobby()
    session.receive("@+typing=active :bob!u@h TAGMSG #lobby", T0)
    assert lobby(session).typing.active() == ["bob"]
    say(session, "bob", "done typing", "m1", 1)
    assert lobby(session).typing.active() == []


def test_our_typing_is_sent_throttled_and_paused_by_tick() -> None:
    session = session_in_lobby()
    assert wire(session.typed("h", T0)) == [("TAGMSG", {"+typing": "active"}, ("#lobby",))]
    assert session.typed("he", T0 + timedelta(seconds=1)) == []
    lines, _ = session.tick(T0 + timedelta(seconds=6))
    assert wire(lines) == [("TAGMSG", {"+typing": "paused"}, ("#lobby",))]
    assert session.typed("/join #x", T0 + timedelta(seconds=20)) != []  # a command: done
    assert session_in_lobby("batch").typed("hello", T0) == []  # no message-tags: nothing


def test_stale_typing_expires_on_tick() -> None:
    session = session_in_lobby()
    session.receive("@+typing=active :bob!u@h TAGMSG #lobby", T0)
    _, changed = session.tick(T0 + timedelta(seconds=7))
    assert changed and lobby(session).typing.active() == []


# ---- redaction and edits --------------------------------------------------------------------


def test_a_redacted_message_loses_its_text_and_says_who_deleted_it() -> None:
    session = session_in_lobby()
    say(session, "bob", "oops secret", "m1", 1)
    session.receive(":op!o@h REDACT #lobby m1 :spam", T0)
    line = lobby(session).lines[-1]
    assert line.redacted and "secret" not in line.text
    assert line.text == "(message deleted by op: spam)"


def test_a_redact_of_an_unknown_msgid_is_ignored() -> None:
    session = session_in_lobby()
    say(session, "bob", "keep", "m1", 1)
    session.receive(":bob!u@h REDACT #lobby other", T0)
    assert lobby(session).lines[-1].text == "keep"


def test_a_redacted_reaction_is_taken_off_the_count() -> None:
    session = session_in_lobby()
    say(session, "bob", "hi", "m1", 1)
    session.receive("@msgid=r1;+draft/reply=m1;+draft/react=👍 :carol!c@h TAGMSG #lobby", T0)
    session.receive(":carol!c@h REDACT #lobby r1", T0)
    assert Decorator(lobby(session), "alice").decor(lobby(session).lines[-1]).reactions == ""


def test_delete_and_edit_send_redact_and_a_reply_linked_resend() -> None:
    session = session_in_lobby()
    session.receive(f"@msgid=own1;time={stamp(1)} :alice!a@h PRIVMSG #lobby :teh typo", T0)
    assert wire(session.submit("/edit the typo", T0)) == [
        ("REDACT", {}, ("#lobby", "own1", "edited")),
        ("PRIVMSG", {"+draft/reply": "own1"}, ("#lobby", "the typo")),
    ]
    assert wire(session.submit("/delete", T0)) == [("REDACT", {}, ("#lobby", "own1"))]


def test_edit_of_someone_elses_message_is_refused() -> None:
    session = session_in_lobby()
    say(session, "bob", "hi", "m1", 1)
    assert session.submit("/edit -1 changed", T0) == []
    assert "only edit your own" in session.shown.lines[-1].text


def test_an_edit_replaces_the_original_and_is_marked_edited() -> None:
    session = session_in_lobby()
    say(session, "bob", "teh typo", "m1", 1)
    session.receive(":bob!u@h REDACT #lobby m1", T0)
    say(session, "bob", "the typo", "m2", 2, tags="+draft/reply=m1")
    decorator = Decorator(lobby(session), "alice")
    original, edit = list(lobby(session).lines)[-2:]
    assert decorator.decor(original).hidden
    decor = decorator.decor(edit)
    assert decor.edited and decor.quote == ""
    assert format_line(lobby(session), edit, decor).endswith("<bob> the typo (edited)")


def test_redaction_needs_the_cap() -> None:
    session = session_in_lobby("batch echo-message message-tags server-time")
    session.receive("@msgid=own1 :alice!a@h PRIVMSG #lobby :x", T0)
    assert session.submit("/delete", T0) == []
    assert "draft/message-redaction" in session.shown.lines[-1].text


# ---- multiline ------------------------------------------------------------------------------


def test_a_multiline_batch_is_one_message_joined_by_line_feeds_and_concat() -> None:
    session = session_in_lobby()
    session.receive(f"@msgid=ml;time={stamp(3)} :bob!u@h BATCH +b draft/multiline #lobby", T0)
    session.receive("@batch=b :bob!u@h PRIVMSG #lobby :def f():", T0)
    session.receive("@batch=b :bob!u@h PRIVMSG #lobby :    return 1", T0)
    session.receive("@batch=b :bob!u@h PRIVMSG #lobby :and a long ", T0)
    session.receive("@batch=b;draft/multiline-concat :bob!u@h PRIVMSG #lobby :line", T0)
    session.receive(":srv BATCH -b", T0)
    line = lobby(session).lines[-1]
    assert line.text == "def f():\n    return 1\nand a long line"
    assert line.msgid == "ml" and line.time == T0 + timedelta(seconds=3)
    shown = format_line(lobby(session), line).split("\n")
    assert shown[0].endswith("<bob> def f():")
    assert shown[1].strip() == "return 1" and shown[1].index("return") == shown[0].index("def") + 4


def test_a_multiline_message_in_history_is_merged_as_one() -> None:
    session = session_in_lobby()
    session.receive(":srv BATCH +h chathistory #lobby", T0)
    session.receive(
        f"@batch=h;msgid=ml;time={stamp(1)} :bob!u@h BATCH +m draft/multiline #lobby", T0
    )
    session.receive("@batch=m :bob!u@h PRIVMSG #lobby :one", T0)
    session.receive("@batch=m :bob!u@h PRIVMSG #lobby :two", T0)
    session.receive(":srv BATCH -m", T0)
    session.receive(":srv BATCH -h", T0)
    [line] = [line for line in lobby(session).lines if line.msgid == "ml"]
    assert line.text == "one\ntwo" and line.history


def test_control_characters_inside_multiline_lines_are_still_removed() -> None:
    session = session_in_lobby()
    session.receive(":bob!u@h BATCH +b draft/multiline #lobby", T0)
    session.receive("@batch=b :bob!u@h PRIVMSG #lobby :\x1b[31mred", T0)
    session.receive("@batch=b :bob!u@h PRIVMSG #lobby :ok\x07", T0)
    session.receive(":srv BATCH -b", T0)
    assert lobby(session).lines[-1].text == "[31mred\nok"


# ---- missed conversations -------------------------------------------------------------------


def test_welcome_asks_which_conversations_had_messages_and_fetches_them() -> None:
    session = Session("alice")
    session.connection_made()
    session.receive(f":srv CAP * LS :{CAPS}", T0)
    session.receive(f":srv CAP * ACK :{CAPS}", T0)
    session.receive(":srv 900 alice alice!a@h alice :You are now logged in as alice", T0)
    sent = wire(session.receive(":srv 001 alice :Welcome", T0))
    assert sent[-1][0] == "CHATHISTORY" and sent[-1][2][0] == "TARGETS"
    session.receive(":srv BATCH +t draft/chathistory-targets", T0)
    session.receive(f"@batch=t :srv CHATHISTORY TARGETS bob timestamp={stamp(1)}", T0)
    session.receive(f"@batch=t :srv CHATHISTORY TARGETS #lobby timestamp={stamp(1)}", T0)
    fetched = wire(session.receive(":srv BATCH -t", T0))
    assert [(c, p[:2]) for c, _, p in fetched] == [
        ("CHATHISTORY", ("LATEST", "bob")),
        ("MARKREAD", ("bob",)),
    ]
    bob = session.buffer("bob")
    assert bob is not None and bob.kind is Kind.PRIVATE


def test_a_shown_buffer_counts_nothing_unread_whatever_marker_arrives() -> None:
    session = session_in_lobby()
    say(session, "bob", "one", "m1", 5)
    say(session, "bob", "two", "m2", 6)
    session.receive(f":srv MARKREAD #lobby timestamp={stamp(5)}", T0)  # older than what we saw
    session.receive(f":srv MARKREAD #lobby timestamp={stamp(7)}", T0)
    assert lobby(session).unread == 0 and lobby(session).mentions == 0


def test_the_first_history_page_of_a_shown_buffer_is_marked_read() -> None:
    session = session_in_lobby()
    session.receive(":srv BATCH +h chathistory #lobby", T0)
    session.receive(f"@batch=h;msgid=h1;time={stamp(4)} :bob!u@h PRIVMSG #lobby :old", T0)
    sent = session.receive(":srv BATCH -h", T0)
    assert wire(sent) == [("MARKREAD", {}, ("#lobby", f"timestamp={stamp(4)}"))]


def test_a_busy_shown_room_sends_markread_at_most_every_three_seconds() -> None:
    """Live lines carry their server time, which is the clock they are throttled by."""
    session = session_in_lobby()
    first = session.receive(f"@msgid=a;time={stamp(1)} :bob!u@h PRIVMSG #lobby :one", T0)
    assert len(first) == 1
    for index in range(5):
        at = (T0 + timedelta(seconds=1, milliseconds=100 * (index + 1))).isoformat()
        said = f"@msgid=b{index};time={at.replace('+00:00', 'Z')} :bob!u@h PRIVMSG #lobby :more"
        assert session.receive(said, T0) == []  # within 3 s of the last MARKREAD
    assert session.tick(T0 + timedelta(seconds=3))[0] == []
    lines, _ = session.tick(T0 + timedelta(seconds=4))
    newest = lobby(session).latest_time()
    assert newest is not None
    assert wire(lines) == [("MARKREAD", {}, ("#lobby", f"timestamp={format_timestamp(newest)}"))]
    assert session.tick(T0 + timedelta(seconds=9))[0] == []
