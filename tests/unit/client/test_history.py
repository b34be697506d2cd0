"""History in the client core: chathistory batches, dedup, paging, replay notices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from securechat.client.buffers import Buffer, Kind, Line, Style
from securechat.client.session import Session
from securechat.protocol.message import parse

T0 = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)
CAPS = "batch draft/chathistory echo-message message-tags server-time account-tag"


def wire(lines: list[bytes]) -> list[tuple[str, ...]]:
    parsed = [parse(line) for line in lines]
    assert None not in parsed
    return [(m.command, *m.params) for m in parsed if m is not None]


def stamp(minute: int) -> str:
    return (T0 + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def registered(caps: str = CAPS) -> Session:
    session = Session("alice")
    session.connection_made()
    session.receive(f":srv CAP * LS :{caps}", T0)
    session.receive(f":srv CAP * ACK :{caps}", T0)
    session.receive(":srv 001 alice :Welcome", T0)
    session.receive(":srv 005 alice CHATHISTORY=100 :are supported", T0)
    return session


def join(session: Session, room: str = "#lobby") -> list[tuple[str, ...]]:
    sent = wire(session.receive(f"@time={stamp(30)} :alice!a@h JOIN {room}", T0))
    session.receive(f":srv 366 alice {room} :End of /NAMES list", T0)
    return sent


def batch(session: Session, target: str, messages: list[tuple[int, str]], ref: str = "b1") -> None:
    """A chathistory batch of (minute, text) messages from bob, msgids ``m<minute>``."""
    session.receive(f":srv BATCH +{ref} chathistory {target}", T0)
    for minute, text in messages:
        tags = f"@batch={ref};time={stamp(minute)};msgid=m{minute}"
        session.receive(f"{tags} :bob!b@h PRIVMSG {target} :{text}", T0)
    session.receive(f":srv BATCH -{ref}", T0)


def lobby(session: Session) -> Buffer:
    buffer = session.buffer("#lobby")
    assert buffer is not None
    return buffer


def said(session: Session) -> list[str]:
    return [line.text for line in lobby(session).lines if line.style is Style.MESSAGE]


# ---- fetching on join -----------------------------------------------------------------------


def test_join_asks_for_the_latest_page_with_chathistory() -> None:
    session = registered()
    assert join(session) == [("CHATHISTORY", "LATEST", "#lobby", "*", "50")]


def test_join_asks_for_nothing_without_chathistory() -> None:
    session = registered(caps="batch server-time message-tags")
    assert join(session) == []


def test_batch_lines_go_into_the_room_marked_as_history_in_order_with_their_times() -> None:
    session = registered()
    join(session)
    batch(session, "#lobby", [(1, "first"), (2, "second")])
    lines = [line for line in lobby(session).lines if line.style is Style.MESSAGE]
    assert [(line.text, line.history, line.nick) for line in lines] == [
        ("first", True, "bob"),
        ("second", True, "bob"),
    ]
    assert lines[0].time == T0 + timedelta(minutes=1)
    # Older than the join (minute 30): shown above it.
    texts = [line.text for line in lobby(session).lines]
    assert texts.index("second") < texts.index("You joined #lobby")


def test_history_does_not_count_as_unread_or_mentions() -> None:
    session = registered()
    join(session)
    session.show(session.server)
    batch(session, "#lobby", [(1, "alice: are you there?")])
    assert (lobby(session).unread, lobby(session).mentions) == (0, 0)


def test_lines_inside_the_batch_wait_until_it_closes() -> None:
    session = registered()
    join(session)
    session.receive(":srv BATCH +b1 chathistory #lobby", T0)
    session.receive(f"@batch=b1;time={stamp(1)};msgid=m1 :bob!b@h PRIVMSG #lobby :hi", T0)
    assert said(session) == []
    session.receive(":srv BATCH -b1", T0)
    assert said(session) == ["hi"]


def test_a_replay_does_not_repeat_what_the_buffer_holds() -> None:
    session = registered()
    join(session)
    batch(session, "#lobby", [(1, "one"), (2, "two")])
    session.receive(f"@time={stamp(40)};msgid=m40 :bob!b@h PRIVMSG #lobby :live", T0)
    session.connection_lost("gone", T0)
    session.connection_made()
    session.receive(f":srv CAP * LS :{CAPS}", T0)
    session.receive(f":srv CAP * ACK :{CAPS}", T0)
    session.receive(":srv 001 alice :Welcome", T0)
    join(session)
    batch(session, "#lobby", [(1, "one"), (2, "two"), (35, "missed"), (40, "live")], ref="b2")
    assert said(session) == ["one", "two", "missed", "live"]


def test_a_live_message_already_fetched_as_history_is_not_shown_twice() -> None:
    session = registered()
    join(session)
    batch(session, "#lobby", [(1, "one")])
    session.receive(f"@time={stamp(1)};msgid=m1 :bob!b@h PRIVMSG #lobby :one", T0)
    assert said(session) == ["one"]


def test_own_history_is_recognised_by_account() -> None:
    session = registered()
    session.receive(":srv 900 alice alice!a@h alice :You are now logged in as alice", T0)
    join(session)
    session.receive(":srv BATCH +b chathistory #lobby", T0)
    tags = f"@batch=b;time={stamp(1)};msgid=x;account=alice"
    session.receive(f"{tags} :oldnick!a@h PRIVMSG #lobby :me before", T0)
    session.receive(":srv BATCH -b", T0)
    (line,) = [line for line in lobby(session).lines if line.style is Style.MESSAGE]
    assert line.own


def test_private_history_opens_the_conversation() -> None:
    session = registered()
    batch(session, "bob", [(1, "psst")])
    buffer = session.buffer("bob")
    assert buffer is not None and buffer.kind is Kind.PRIVATE
    assert [line.text for line in buffer.lines] == ["psst"]


def test_an_automatic_replay_without_chathistory_is_history_too() -> None:
    session = registered(caps="batch server-time message-tags")
    join(session)
    batch(session, "#lobby", [(1, "replayed")])
    assert [line.history for line in lobby(session).lines if line.text == "replayed"] == [True]


def test_notice_replay_from_the_server_shows_in_the_room() -> None:
    session = registered(caps="")
    join(session)
    session.receive(":test.server NOTICE #lobby :[12:01:00] <bob> hello", T0)
    (line,) = [line for line in lobby(session).lines if line.style is Style.NOTICE]
    assert (line.text, line.nick, line.history) == ("[12:01:00] <bob> hello", "test.server", False)


# ---- paging back ----------------------------------------------------------------------------


def test_history_pages_back_from_the_oldest_message_by_msgid() -> None:
    session = registered()
    join(session)
    batch(session, "#lobby", [(minute, f"m{minute}") for minute in range(1, 51)])
    assert wire(session.submit("/history", T0)) == [
        ("CHATHISTORY", "BEFORE", "#lobby", "msgid=m1", "50")
    ]


def test_history_count_is_capped_by_the_server_limit() -> None:
    session = registered()
    join(session)
    batch(session, "#lobby", [(minute, "x") for minute in range(1, 51)])
    assert wire(session.submit("/history 500", T0))[0][-1] == "100"


def test_a_page_is_merged_above_and_the_cursor_moves_back() -> None:
    session = registered()
    join(session)
    batch(session, "#lobby", [(minute, f"new{minute}") for minute in range(10, 60)])
    generation = lobby(session).generation
    session.submit("/history 2", T0)
    batch(session, "#lobby", [(3, "old3"), (4, "old4")], ref="b2")
    assert said(session)[:3] == ["old3", "old4", "new10"]
    assert lobby(session).generation > generation  # the UI redraws from the top
    assert wire(session.submit("/history 2", T0)) == [
        ("CHATHISTORY", "BEFORE", "#lobby", "msgid=m3", "2")
    ]


def test_only_one_page_is_asked_for_at_a_time() -> None:
    session = registered()
    join(session)
    batch(session, "#lobby", [(minute, "x") for minute in range(1, 51)])
    assert session.request_history(T0) != []
    assert session.request_history(T0) == []


def test_no_more_history_is_said_once_and_nothing_more_is_asked() -> None:
    session = registered()
    join(session)
    batch(session, "#lobby", [(minute, "x") for minute in range(5, 55)])
    session.submit("/history", T0)
    batch(session, "#lobby", [(1, "oldest")], ref="b2")
    assert session.submit("/history", T0) == []
    session.request_history(T0)
    ends = [line for line in lobby(session).lines if line.text == "No more history in #lobby."]
    assert len(ends) == 1
    assert lobby(session).lines[0] is ends[0]  # at the top, where the reader is


def test_a_short_first_page_means_no_more_without_saying_it_until_asked() -> None:
    session = registered()
    join(session)
    batch(session, "#lobby", [(1, "only")])
    assert not any("No more" in line.text for line in lobby(session).lines)
    assert session.request_history(T0) == []
    assert lobby(session).lines[0].text == "No more history in #lobby."


def test_without_a_known_message_history_asks_for_the_latest() -> None:
    session = registered()
    session.submit("/query bob", T0)
    assert wire(session.submit("/history", T0)) == [("CHATHISTORY", "LATEST", "bob", "*", "50")]


def test_timestamp_reference_when_messages_have_no_msgid() -> None:
    session = registered()
    join(session)
    session.receive(":srv BATCH +b chathistory #lobby", T0)
    for minute in range(1, 51):
        session.receive(f"@batch=b;time={stamp(minute)} :bob!b@h PRIVMSG #lobby :x", T0)
    session.receive(":srv BATCH -b", T0)
    assert wire(session.submit("/history", T0)) == [
        ("CHATHISTORY", "BEFORE", "#lobby", "timestamp=2026-01-02T12:01:00.000Z", "50")
    ]


def test_history_without_chathistory_is_a_hint() -> None:
    session = registered(caps="server-time")
    join(session)
    assert session.submit("/history", T0) == []
    assert "does not offer history" in lobby(session).lines[-1].text


def test_a_fail_answer_frees_the_request_and_is_shown() -> None:
    session = registered()
    join(session)
    text = "FAIL CHATHISTORY MESSAGE_ERROR LATEST #lobby :Messages could not be retrieved"
    session.receive(f":srv {text}", T0)
    assert not lobby(session).history.pending
    assert "Messages could not be retrieved" in lobby(session).lines[-1].text


# ---- the buffer merge itself ----------------------------------------------------------------


def test_merge_keeps_existing_order_and_drops_repeated_msgids() -> None:
    buffer = Buffer("#x", Kind.ROOM)
    late = Line(T0 + timedelta(minutes=5), Style.MESSAGE, "live", msgid="b")
    buffer.add(late)
    older = Line(T0, Style.MESSAGE, "old", msgid="a", history=True)
    again = Line(T0 + timedelta(minutes=5), Style.MESSAGE, "live", msgid="b", history=True)
    assert buffer.merge([older, older, again]) == [older]
    assert list(buffer.lines) == [older, late]


def test_a_page_back_goes_above_lines_with_the_same_millisecond() -> None:
    buffer = Buffer("#x", Kind.ROOM)
    buffer.add(Line(T0, Style.MESSAGE, "later", msgid="b", history=True))
    earlier = Line(T0, Style.MESSAGE, "earlier", msgid="a", history=True)
    buffer.merge([earlier], older=True)
    assert [line.text for line in buffer.lines] == ["earlier", "later"]


def test_a_fail_without_a_target_frees_the_shown_buffers_request() -> None:
    session = registered()
    join(session)
    batch(session, "#lobby", [(minute, "x") for minute in range(1, 51)])
    session.submit("/history", T0)
    session.receive(":srv FAIL CHATHISTORY INVALID_PARAMS BEFORE :Invalid limit", T0)
    assert not lobby(session).history.pending
