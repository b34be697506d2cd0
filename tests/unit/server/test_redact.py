"""REDACT (draft/message-redaction): who may, what history keeps, who hears of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from securechat.protocol import numerics as n
from securechat.protocol.message import Message
from securechat.server.history_lines import REDACTED_TEXT
from securechat.server.store import Store
from tests.unit.server.harness import FakeClient, Harness

PASSWORD = "correct-horse"
CAPS = (
    "message-tags",
    "echo-message",
    "batch",
    "server-time",
    "draft/chathistory",
    "draft/message-redaction",
)


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(store=Store.open(tmp_path / "db.sqlite"))


def in_room(*clients: FakeClient, room: str = "#a") -> None:
    for client in clients:
        client.send(f"JOIN {room}")
    for client in clients:
        client.take()


def msgid_of(client: FakeClient, line: str) -> str:
    client.send(line)
    echo = [m for m in client.take() if m.command in ("PRIVMSG", "TAGMSG")][-1]
    return echo.tags["msgid"]


def history(client: FakeClient, target: str = "#a") -> list[Message]:
    client.take()
    client.send(f"CHATHISTORY LATEST {target} * 10")
    return [m for m in client.take() if m.command in ("PRIVMSG", "TAGMSG", "REDACT")]


def fail_of(client: FakeClient) -> tuple[str, ...]:
    return client.last("FAIL").params


def account(h: Harness, nick: str) -> FakeClient:
    client = h.register(nick, CAPS)
    client.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
    assert client.has(n.RPL_LOGGEDIN)
    client.take()
    return client


def test_the_sender_redacts_and_members_with_the_cap_hear_of_it(h: Harness) -> None:
    alice, bob = h.register("alice", CAPS), h.register("bob", CAPS)
    plain = h.register("plain")
    in_room(alice, bob, plain)
    msgid = msgid_of(alice, "PRIVMSG #a :oops, wrong room")
    bob.take(), plain.take()
    alice.send(f"REDACT #a {msgid} :wrong room")
    redact = bob.last("REDACT")
    assert redact.params == ("#a", msgid, "wrong room") and "msgid" in redact.tags
    assert alice.last("REDACT").params[1] == msgid  # echo-message
    assert not plain.take()


def test_history_keeps_the_fact_and_loses_the_text(h: Harness) -> None:
    alice, bob = h.register("alice", CAPS), h.register("bob", ("batch", "server-time"))
    in_room(alice, bob)
    msgid = msgid_of(alice, "@+draft/reply=x1 PRIVMSG #a :secret")
    alice.send(f"REDACT #a {msgid} :leaked")
    stored = history(alice)
    assert [m.command for m in stored] == ["PRIVMSG", "REDACT"]
    assert stored[0].params == ("#a", REDACTED_TEXT) and "+draft/reply" not in stored[0].tags
    assert stored[0].tags["msgid"] == msgid
    assert stored[1].params == ("#a", msgid, "leaked")
    assert h.store is not None
    assert "secret" not in repr(h.store.message_by_msgid(msgid))
    carol = h.register("carol", ("batch", "server-time"))
    carol.send("JOIN #a")
    replayed = [m for m in carol.take() if m.command == "PRIVMSG"]
    assert [m.params[1] for m in replayed] == [REDACTED_TEXT]


def test_redacting_a_message_drops_its_reactions_and_a_reaction_can_be_redacted(
    h: Harness,
) -> None:
    alice, bob = h.register("alice", CAPS), h.register("bob", CAPS)
    in_room(alice, bob)
    first = msgid_of(alice, "PRIVMSG #a :one")
    second = msgid_of(alice, "PRIVMSG #a :two")
    msgid_of(bob, f"@+draft/reply={first};+draft/react=👍 TAGMSG #a")
    reaction = msgid_of(bob, f"@+draft/reply={second};+draft/react=👎 TAGMSG #a")
    bob.send(f"REDACT #a {reaction}")
    alice.send(f"REDACT #a {first}")
    stored = history(alice)
    assert [m.command for m in stored] == ["PRIVMSG", "REDACT", "PRIVMSG"]


def test_someone_elses_message_is_forbidden(h: Harness) -> None:
    alice, bob = h.register("alice", CAPS), h.register("bob", CAPS)
    in_room(alice, bob)  # alice created #a: she is its operator, bob is not
    msgid = msgid_of(alice, "PRIVMSG #a :mine")
    bob.send(f"REDACT #a {msgid}")
    assert fail_of(bob)[:4] == ("REDACT", "REDACT_FORBIDDEN", "#a", msgid)
    assert [m.params[1] for m in history(bob)] == ["mine"]


def test_a_room_operator_may_redact_anyones_message(h: Harness) -> None:
    alice, bob = h.register("alice", CAPS), h.register("bob", CAPS)
    in_room(alice, bob)
    msgid = msgid_of(bob, "PRIVMSG #a :spam")
    alice.send(f"REDACT #a {msgid} :spam")
    assert bob.last("REDACT").params == ("#a", msgid, "spam")


def test_a_msgid_of_another_room_is_unknown_here(h: Harness) -> None:
    alice, bob = h.register("alice", CAPS), h.register("bob", CAPS)
    in_room(alice, bob)
    in_room(alice, room="#private")
    msgid = msgid_of(alice, "PRIVMSG #private :not for bob")
    alice.send(f"REDACT #a {msgid}")  # even its operator and sender: the msgid is not #a's
    assert fail_of(alice)[:4] == ("REDACT", "UNKNOWN_MSGID", "#a", msgid)
    bob.send(f"REDACT #private {msgid}")
    assert fail_of(bob)[:3] == ("REDACT", "INVALID_TARGET", "#private")


def test_an_unknown_msgid_and_a_second_redaction_are_unknown(h: Harness) -> None:
    alice = h.register("alice", CAPS)
    in_room(alice)
    alice.send("REDACT #a nosuchid")
    assert fail_of(alice)[:4] == ("REDACT", "UNKNOWN_MSGID", "#a", "nosuchid")
    msgid = msgid_of(alice, "PRIVMSG #a :x")
    alice.send(f"REDACT #a {msgid}")
    alice.send(f"REDACT #a {msgid}")
    assert fail_of(alice)[:2] == ("REDACT", "UNKNOWN_MSGID")


def test_the_window_limits_senders_but_not_operators(tmp_path: Path) -> None:
    h = Harness(store=Store.open(tmp_path / "db.sqlite"), redact_window_seconds=60)
    alice, bob = h.register("alice", CAPS), h.register("bob", CAPS)
    in_room(alice, bob)
    mine = msgid_of(bob, "PRIVMSG #a :old")
    h.advance(61)
    bob.send(f"REDACT #a {mine}")
    assert fail_of(bob)[:5] == ("REDACT", "REDACT_WINDOW_EXPIRED", "#a", mine, "60")
    alice.send(f"REDACT #a {mine}")
    assert bob.last("REDACT").params[:2] == ("#a", mine)


def test_a_private_message_is_redacted_between_the_two_accounts(h: Harness) -> None:
    alice, bob = account(h, "alice"), account(h, "bob")
    msgid = msgid_of(alice, "PRIVMSG bob :sorry, wrong window")
    bob.take()
    alice.send(f"REDACT bob {msgid}")
    assert bob.last("REDACT").params == ("bob", msgid)
    stored = history(bob, "alice")
    assert stored[0].params[1] == REDACTED_TEXT and stored[1].command == "REDACT"
    carol = account(h, "carol")
    carol.send(f"REDACT bob {msgid}")  # carol's conversation with bob has no such message
    assert fail_of(carol)[:2] == ("REDACT", "UNKNOWN_MSGID")


def test_redacting_a_private_message_needs_an_account(h: Harness) -> None:
    guest = h.register("guest", CAPS)
    guest.send("REDACT bob someid")
    assert fail_of(guest)[:3] == ("REDACT", "INVALID_TARGET", "bob")


def test_redact_without_a_msgid_is_461(h: Harness) -> None:
    alice = h.register("alice", CAPS)
    alice.send("REDACT #a")
    assert alice.has(n.ERR_NEEDMOREPARAMS)


def test_a_redacted_message_kept_for_an_offline_account_is_never_delivered(h: Harness) -> None:
    account(h, "alice").send("QUIT")
    bob = account(h, "bob")
    gone = msgid_of(bob, "PRIVMSG alice :sent to the wrong person")
    msgid_of(bob, "PRIVMSG alice :hello")
    bob.send(f"REDACT alice {gone}")
    assert not bob.has("FAIL")
    alice = h.register("alice", CAPS)
    alice.send(f"PRIVMSG NickServ :IDENTIFY {PASSWORD}")
    delivered = [m.params[1] for m in alice.take() if m.command == "PRIVMSG"]
    assert delivered == ["hello"]
