"""History: recording before delivery, replay on join, draft/chathistory, retention."""

from __future__ import annotations

from pathlib import Path

import pytest

from securechat.protocol import numerics as n
from securechat.protocol.tags import format_server_time
from securechat.server.actions import AppendHistory, Send
from securechat.server.history import current_epoch
from securechat.server.store import HistoryRecord, Store, View
from tests.unit.server.harness import FakeClient, Harness

PASSWORD = "correct-horse"
FULL = ("batch", "server-time", "message-tags", "draft/chathistory")


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(store=Store.open(tmp_path / "db.sqlite"))


def store(h: Harness) -> Store:
    assert h.store is not None
    return h.store


def stored(h: Harness, room_name: str) -> list[HistoryRecord]:
    """Every message of the room's current incarnation, as its founder-to-be would see it."""
    room = h.core.rooms.get(room_name)
    assert room is not None
    view = View(current_epoch(h.core, room))
    return store(h).latest(room_name, 100, view=view)


def with_account(h: Harness, nick: str, caps: tuple[str, ...] = ()) -> FakeClient:
    client = h.register(nick, caps)
    client.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
    client.take()
    return client


def in_room(*clients: FakeClient) -> None:
    for client in clients:
        client.send("JOIN #a")
    for client in clients:
        client.take()


def said(h: Harness, client: FakeClient, *texts: str) -> None:
    for text in texts:
        client.send(f"PRIVMSG #a :{text}")
        h.advance(1)


# ---- recording --------------------------------------------------------------------------------


def test_the_record_is_appended_before_the_message_is_sent(h: Harness) -> None:
    alice, bob = h.register("alice"), h.register("bob")
    in_room(alice, bob)
    actions = h.core.receive_line(alice.conn, b"PRIVMSG #a :hello", h.now)
    assert [type(a) for a in actions] == [AppendHistory, Send]
    assert isinstance(actions[0], AppendHistory)
    (record,) = actions[0].records
    assert record.text == "hello" and record.sender == "alice!~alice@127.0.0.1"


def test_the_stored_msgid_and_time_are_the_ones_delivered(h: Harness) -> None:
    alice, bob = h.register("alice"), h.register("bob", caps=("message-tags", "server-time"))
    in_room(alice, bob)
    h.now += 0.1234567
    alice.send("PRIVMSG #a :hello")
    delivered = bob.last("PRIVMSG")
    (record,) = stored(h, "#a")
    assert record.msgid == delivered.tags["msgid"]
    assert format_server_time(record.time) == delivered.tags["time"]


def test_a_private_message_between_accounts_is_kept(h: Harness) -> None:
    with_account(h, "bob")
    alice = with_account(h, "alice")
    alice.send("PRIVMSG bob :psst")
    (record,) = store(h).latest("alice,bob", 10)
    assert (record.text, record.account, record.display_target) == ("psst", "alice", "bob")


def test_a_private_message_without_both_accounts_is_not_kept(h: Harness) -> None:
    alice = with_account(h, "alice")
    h.register("carol")
    alice.send("PRIVMSG carol :psst")
    assert store(h).targets([], "alice", 0, h.now + 10, 10) == []


def test_ctcp_requests_are_not_kept_but_actions_are(h: Harness) -> None:
    alice = h.register("alice")
    in_room(alice)
    alice.send("PRIVMSG #a :\x01VERSION\x01").send("PRIVMSG #a :\x01ACTION waves\x01")
    assert [r.text for r in stored(h, "#a")] == ["\x01ACTION waves\x01"]


def test_messages_to_services_are_never_kept(h: Harness) -> None:
    with_account(h, "alice")
    assert store(h).targets([], "alice", 0, h.now + 10, 10) == []


# ---- replay on join ---------------------------------------------------------------------------


def test_a_batch_and_server_time_client_gets_history_in_a_batch(h: Harness) -> None:
    alice = h.register("alice")
    in_room(alice)
    said(h, alice, "one", "two")
    bob = h.register("bob", caps=("batch", "server-time"))
    bob.send("JOIN #a")
    lines = [m for m in bob.take() if m.command in ("BATCH", "PRIVMSG")]
    assert [m.command for m in lines] == ["BATCH", "PRIVMSG", "PRIVMSG", "BATCH"]
    start, first = lines[0], lines[1]
    assert start.params[1:] == ("chathistory", "#a")
    assert first.tags["batch"] == start.params[0][1:] and "time" in first.tags
    assert first.params == ("#a", "one") and first.source == "alice!~alice@127.0.0.1"


def test_other_clients_get_history_as_stamped_notices(h: Harness) -> None:
    alice = h.register("alice")
    in_room(alice)
    alice.send("PRIVMSG #a :one").send("NOTICE #a :two").send("PRIVMSG #a :\x01ACTION waves\x01")
    bob = h.register("bob")
    bob.send("JOIN #a")
    notices = [m.params for m in bob.take() if m.command == "NOTICE"]
    assert notices == [
        ("#a", "[13:46:40] <alice> one"),
        ("#a", "[13:46:40] -alice- two"),
        ("#a", "[13:46:40] * alice waves"),
    ]


def test_replay_shows_the_date_of_an_older_message(h: Harness) -> None:
    alice = h.register("alice")
    in_room(alice)
    alice.send("PRIVMSG #a :yesterday")
    h.advance(86400)
    bob = h.register("bob")
    bob.send("JOIN #a")
    assert bob.last("NOTICE").params[1] == "[1970-01-12 13:46:40] <alice> yesterday"


def test_replay_is_limited_to_history_on_join(tmp_path: Path) -> None:
    h = Harness(store=Store.open(tmp_path / "db.sqlite"), history_on_join=2)
    alice = h.register("alice")
    in_room(alice)
    said(h, alice, "one", "two", "three")
    bob = h.register("bob")
    bob.send("JOIN #a")
    assert [m.params[1][-5:] for m in bob.take() if m.command == "NOTICE"] == ["> two", "three"]


def test_chathistory_clients_get_no_automatic_replay(h: Harness) -> None:
    alice = h.register("alice")
    in_room(alice)
    said(h, alice, "one")
    bob = h.register("bob", caps=FULL)
    bob.send("JOIN #a")
    assert not bob.has("BATCH") and not bob.has("PRIVMSG")


def test_no_replay_without_a_store() -> None:
    h = Harness()
    alice = h.register("alice")
    in_room(alice)
    alice.send("PRIVMSG #a :one")
    bob = h.register("bob")
    bob.send("JOIN #a")
    assert not bob.has("NOTICE")


# ---- CHATHISTORY ------------------------------------------------------------------------------


def history_texts(client: FakeClient) -> list[str]:
    return [m.params[1] for m in client.take() if m.command in ("PRIVMSG", "NOTICE")]


def test_isupport_advertises_the_chathistory_limit(h: Harness) -> None:
    client = h.connect()
    client.send("NICK x").send("USER x 0 * :x")
    tokens = [t for m in client.take() if m.command == n.RPL_ISUPPORT for t in m.params]
    assert "CHATHISTORY=100" in tokens and "MSGREFTYPES=timestamp,msgid" in tokens


def test_latest_returns_the_newest_messages_in_a_batch(h: Harness) -> None:
    alice, bob = h.register("alice"), h.register("bob", caps=FULL)
    in_room(alice, bob)
    said(h, alice, "one", "two", "three")
    bob.take()
    bob.send("CHATHISTORY LATEST #a * 2")
    replies = bob.take()
    assert [m.command for m in replies] == ["BATCH", "PRIVMSG", "PRIVMSG", "BATCH"]
    assert [m.params[1] for m in replies[1:3]] == ["two", "three"]
    assert replies[0].params[1:] == ("chathistory", "#a")


def test_before_pages_back_from_a_msgid(h: Harness) -> None:
    alice, bob = h.register("alice"), h.register("bob", caps=FULL)
    in_room(alice, bob)
    said(h, alice, "one", "two", "three")
    msgid = [m for m in bob.take() if m.command == "PRIVMSG"][2].tags["msgid"]
    bob.send(f"CHATHISTORY BEFORE #a msgid={msgid} 10")
    assert history_texts(bob) == ["one", "two"]


def test_after_and_between_use_timestamps(h: Harness) -> None:
    alice, bob = h.register("alice"), h.register("bob", caps=FULL)
    in_room(alice, bob)
    said(h, alice, "one", "two", "three")
    times = [m.tags["time"] for m in bob.take() if m.command == "PRIVMSG"]
    bob.send(f"CHATHISTORY AFTER #a timestamp={times[0]} 10")
    assert history_texts(bob) == ["two", "three"]
    bob.send(f"CHATHISTORY BETWEEN #a timestamp={times[2]} timestamp={times[0]} 10")
    assert history_texts(bob) == ["two"]


def test_around_includes_the_anchor(h: Harness) -> None:
    alice, bob = h.register("alice"), h.register("bob", caps=FULL)
    in_room(alice, bob)
    said(h, alice, "one", "two", "three")
    msgid = [m for m in bob.take() if m.command == "PRIVMSG"][1].tags["msgid"]
    bob.send(f"CHATHISTORY AROUND #a msgid={msgid} 3")
    assert history_texts(bob) == ["one", "two", "three"]


def test_the_limit_is_capped_by_chathistory_limit(tmp_path: Path) -> None:
    h = Harness(store=Store.open(tmp_path / "db.sqlite"), chathistory_limit=2)
    alice, bob = h.register("alice"), h.register("bob", caps=FULL)
    in_room(alice, bob)
    said(h, alice, "one", "two", "three")
    bob.take()
    bob.send("CHATHISTORY LATEST #a * 50")
    assert history_texts(bob) == ["two", "three"]


def test_without_batch_the_messages_come_unwrapped(h: Harness) -> None:
    alice, bob = h.register("alice"), h.register("bob", caps=("draft/chathistory",))
    in_room(alice, bob)
    said(h, alice, "one")
    bob.take()
    bob.send("CHATHISTORY LATEST #a * 10")
    assert [m.command for m in bob.take()] == ["PRIVMSG"]


def test_a_room_is_readable_only_by_its_members(h: Harness) -> None:
    alice = h.register("alice")
    in_room(alice)
    said(h, alice, "secret")
    eve = h.register("eve", caps=FULL)
    eve.send("CHATHISTORY LATEST #a * 10")
    (fail,) = eve.take()
    assert fail.command == "FAIL"
    assert fail.params[:4] == ("CHATHISTORY", "INVALID_TARGET", "LATEST", "#a")


def test_a_private_conversation_is_read_by_its_two_accounts(h: Harness) -> None:
    bob = with_account(h, "bob", caps=FULL)
    alice = with_account(h, "alice", caps=FULL)
    alice.send("PRIVMSG bob :psst")
    bob.send("PRIVMSG alice :hi")
    bob.take()
    bob.send("CHATHISTORY LATEST alice * 10")
    assert history_texts(bob) == ["psst", "hi"]


def test_nobody_reads_someone_elses_private_conversation(h: Harness) -> None:
    with_account(h, "bob")
    with_account(h, "alice").send("PRIVMSG bob :psst")
    eve = with_account(h, "eve", caps=FULL)
    eve.send("CHATHISTORY LATEST alice * 10")
    eve.send("CHATHISTORY LATEST bob * 10")
    assert history_texts(eve) == []


def test_private_history_needs_a_login(h: Harness) -> None:
    eve = h.register("eve", caps=FULL)
    eve.send("CHATHISTORY LATEST alice * 10")
    assert eve.last("FAIL").params[1] == "INVALID_TARGET"


def test_targets_lists_rooms_and_private_peers(h: Harness) -> None:
    bob = with_account(h, "bob", caps=FULL)
    alice = with_account(h, "alice")
    in_room(alice, bob)
    alice.send("PRIVMSG bob :psst")
    h.advance(1)
    said(h, alice, "hello room")
    bob.take()
    start, end = format_server_time(0), format_server_time(h.now + 1)
    bob.send(f"CHATHISTORY TARGETS timestamp={start} timestamp={end} 10")
    replies = bob.take()
    assert replies[0].params[1] == "draft/chathistory-targets"
    assert [m.params[1] for m in replies if m.command == "CHATHISTORY"] == ["alice", "#a"]


@pytest.mark.parametrize(
    ("line", "context"),
    [
        ("CHATHISTORY FROB #a * 10", ("FROB",)),
        ("CHATHISTORY LATEST #a *", ("LATEST",)),
        ("CHATHISTORY LATEST #a * 10 extra", ("LATEST",)),
        ("CHATHISTORY LATEST #a * zero", ("LATEST", "zero")),
        ("CHATHISTORY BEFORE #a * 10", ("BEFORE", "*")),
        ("CHATHISTORY BEFORE #a timestamp=yesterday 10", ("BEFORE", "timestamp=yesterday")),
        ("CHATHISTORY TARGETS msgid=x timestamp=2024-01-01T00:00:00Z 5", ("TARGETS", "msgid=x")),
    ],
)
def test_malformed_requests_get_invalid_params(h: Harness, line: str, context: tuple[str]) -> None:
    alice = h.register("alice")
    in_room(alice)
    alice.send(line)
    fail = alice.last("FAIL")
    assert fail.params[:2] == ("CHATHISTORY", "INVALID_PARAMS")
    assert fail.params[2:-1] == context


def test_chathistory_without_a_store_is_a_message_error() -> None:
    h = Harness()
    alice = h.register("alice")
    alice.send("CHATHISTORY LATEST #a * 10")
    assert alice.last("FAIL").params[1:4] == ("MESSAGE_ERROR", "LATEST", "#a")


# ---- who reads what: room incarnations and +i/+k rooms (README "History") -------------------


def latest_texts(client: FakeClient, room: str = "#a") -> list[str]:
    client.take()
    client.send(f"CHATHISTORY LATEST {room} * 50")
    return history_texts(client)


def test_a_keyed_invite_only_rooms_history_is_not_readable_by_whoever_recreates_it(
    h: Harness,
) -> None:
    """Security review H2: the room empties, a stranger creates it again and reads it."""
    alice = h.register("alice")
    in_room(alice)
    alice.send("MODE #a +ik s3cret")
    said(h, alice, "secret-0", "secret-1")
    alice.send("PART #a")
    h.advance(1)
    mallory = h.register("mallory", caps=FULL)
    mallory.send("JOIN #a")
    assert latest_texts(mallory) == []
    plain = h.register("plain")
    plain.send("JOIN #a")
    assert not [m for m in plain.take() if m.command == "NOTICE" and "secret" in m.params[1]]


def test_a_public_rooms_history_outlives_the_room(h: Harness) -> None:
    """Anyone could have joined and read it while the room lived, so nothing is uncovered."""
    alice = h.register("alice")
    in_room(alice)
    said(h, alice, "said while it lived")
    alice.send("PART #a")
    h.advance(1)
    carol = h.register("carol")
    carol.send("JOIN #a")
    assert [m.params[1][-4:] for m in carol.take() if m.command == "NOTICE"] == ["ived"]


def test_an_invited_member_reads_an_invite_only_room_from_its_join_on(h: Harness) -> None:
    alice = h.register("alice")
    in_room(alice)
    alice.send("MODE #a +i")
    said(h, alice, "before bob")
    bob = h.register("bob", caps=FULL)
    alice.send("INVITE bob #a")
    bob.send("JOIN #a")
    said(h, alice, "after bob")
    assert latest_texts(bob) == ["after bob"]


def test_messages_sent_before_a_room_went_invite_only_stay_readable(h: Harness) -> None:
    alice = h.register("alice")
    in_room(alice)
    said(h, alice, "public then")
    bob = h.register("bob", caps=FULL)
    alice.send("MODE #a +i").send("INVITE bob #a")
    said(h, alice, "private now")
    bob.send("JOIN #a")
    assert latest_texts(bob) == ["public then"]


def test_the_founder_of_a_registered_room_reads_all_of_its_restricted_history(h: Harness) -> None:
    alice = with_account(h, "alice", FULL)
    in_room(alice)
    alice.send("PRIVMSG ChanServ :REGISTER #a")
    alice.send("MODE #a +k s3cret")
    said(h, alice, "for members")
    bob = h.register("bob", caps=FULL)
    bob.send("JOIN #a s3cret")
    assert latest_texts(bob) == []
    alice.send("PART #a")
    h.advance(1)
    alice.send("JOIN #a s3cret")
    assert latest_texts(alice) == ["for members"]


def test_a_rooms_restricted_history_from_before_its_registration_is_not_carried_over(
    h: Harness,
) -> None:
    """Registering starts the room's lasting incarnation; whoever registers a re-created room
    does not get what an earlier incarnation said while it was +k."""
    alice = with_account(h, "alice", FULL)
    in_room(alice)
    alice.send("MODE #a +k s3cret")
    said(h, alice, "unregistered")
    alice.send("PRIVMSG ChanServ :REGISTER #a")
    said(h, alice, "registered")
    assert latest_texts(alice) == ["registered"]


# ---- retention --------------------------------------------------------------------------------


def test_the_retention_job_prunes_old_messages(tmp_path: Path) -> None:
    h = Harness(store=Store.open(tmp_path / "db.sqlite"), history_max_age_days=1)
    alice = h.register("alice")
    in_room(alice)
    alice.send("PRIVMSG #a :old")
    h.advance(86400 + 1)
    alice.send("PRIVMSG #a :new")
    h.advance(300)
    assert [r.text for r in stored(h, "#a")] == ["new"]


def test_the_retention_job_keeps_a_count_per_target(tmp_path: Path) -> None:
    h = Harness(store=Store.open(tmp_path / "db.sqlite"), history_max_per_target=2)
    alice = h.register("alice")
    in_room(alice)
    said(h, alice, "one", "two", "three")
    h.advance(300)
    assert [r.text for r in stored(h, "#a")] == ["two", "three"]


def test_retention_finishes_in_several_bounded_transactions(tmp_path: Path) -> None:
    h = Harness(
        store=Store.open(tmp_path / "db.sqlite"),
        history_max_per_target=2,
        history_prune_batch_rows=2,
    )
    alice = h.register("alice")
    in_room(alice)
    said(h, alice, "one", "two", "three", "four", "five", "six", "seven")
    h.advance(300)
    assert [r.text for r in stored(h, "#a")] == ["six", "seven"]
