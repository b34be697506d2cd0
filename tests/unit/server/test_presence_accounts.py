"""Several connections of one account, always-on users and offline messages, on the sans-I/O
core (server/presence_accounts.py, server/offline_messages.py). The harness delivers every
Send to a fake client by id: a send to a shared identity's own (virtual) id would fail it."""

from __future__ import annotations

from pathlib import Path

import pytest

from securechat.protocol import numerics as n
from securechat.server.presence_accounts import (
    AUTO_AWAY,
    DAY_SECONDS,
    EXPIRED,
    accounts_connections,
)
from securechat.server.store import Store
from tests.unit.server.harness import FakeClient, Harness

PASSWORD = "correct-horse"


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(store=Store.open(tmp_path / "db.sqlite"))


def with_account(h: Harness, nick: str, caps: tuple[str, ...] = ()) -> FakeClient:
    client = h.register(nick, caps)
    client.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
    assert client.has(n.RPL_LOGGEDIN), [m.command for m in client.inbox]
    client.take()
    return client


def attached(h: Harness, account: str, nick: str, caps: tuple[str, ...] = ()) -> FakeClient:
    """A client registered as ``nick`` that logs into ``account`` with IDENTIFY."""
    client = h.register(nick, caps)
    client.send(f"PRIVMSG NickServ :IDENTIFY {account} {PASSWORD}")
    return client


def always_on(h: Harness, client: FakeClient) -> None:
    client.send("PRIVMSG NickServ :SET ALWAYS-ON ON")
    assert any("Always-on is ON" in m.params[-1] for m in client.take())


def test_identify_attaches_a_registered_client_which_leaves_its_own_rooms_first(
    h: Harness,
) -> None:
    alice = with_account(h, "alice")
    alice.send("JOIN #home")
    phone = h.register("alice_phone")
    phone.send("JOIN #elsewhere")
    bob = h.register("bob")
    bob.send("JOIN #home").send("JOIN #elsewhere")
    bob.take()

    phone.take()
    phone.send(f"PRIVMSG NickServ :IDENTIFY alice {PASSWORD}")
    said = phone.take()
    assert [m.params for m in said if m.command == "NICK"] == [("alice",)]
    assert ("#home",) in [m.params for m in said if m.command == "JOIN"]
    seen_by_bob = bob.take()
    assert [(m.command, m.params[0]) for m in seen_by_bob] == [("PART", "#elsewhere")]
    assert seen_by_bob[0].source is not None and seen_by_bob[0].source.startswith("alice_phone!")
    assert accounts_connections(h.core, "ALICE") == [
        h.core.sessions[alice.conn],
        h.core.sessions[phone.conn],
    ]


def test_a_device_without_echo_message_does_not_get_its_own_message_but_its_sibling_does(
    h: Harness,
) -> None:
    alice = with_account(h, "alice")
    alice.send("JOIN #home")
    phone = attached(h, "alice", "phone")
    phone.take()
    alice.take()
    phone.send("PRIVMSG #home :hello")
    assert not phone.has("PRIVMSG")
    assert alice.last("PRIVMSG").params == ("#home", "hello")


def test_logout_from_one_device_of_several_is_refused(h: Harness) -> None:
    with_account(h, "alice")
    phone = attached(h, "alice", "phone")
    phone.take()
    phone.send("PRIVMSG NickServ :LOGOUT")
    assert not phone.has(n.RPL_LOGGEDOUT)
    assert "disconnect them first" in phone.last("NOTICE").params[-1]


def test_kill_of_a_shared_user_closes_every_device_and_quits_once(h: Harness) -> None:
    alice = with_account(h, "alice")
    alice.send("JOIN #home")
    phone = attached(h, "alice", "phone")
    bob = h.register("bob")
    bob.send("JOIN #home")
    bob.take()
    h.core.sessions[bob.conn].oper = True
    bob.send("KILL alice :enough")
    assert alice.closed is not None and phone.closed is not None
    assert [m.command for m in bob.take()].count("QUIT") == 1
    assert h.core.nicks.get("alice") is None and not h.core.presences.homes


def test_lusers_counts_a_user_with_two_devices_once(h: Harness) -> None:
    with_account(h, "alice")
    phone = attached(h, "alice", "phone")
    phone.take()
    phone.send("LUSERS")
    assert phone.last(n.RPL_LUSERCLIENT).params[-1].startswith("There are 1 users")


def test_a_detached_always_on_user_is_away_in_whois_and_expires(h: Harness) -> None:
    alice = with_account(h, "alice")
    always_on(h, alice)
    alice.send("JOIN #home")
    alice.send("QUIT")
    bob = h.register("bob")
    bob.send("JOIN #home")
    bob.take()
    bob.send("WHOIS alice")
    assert bob.last(n.RPL_AWAY).params[-1] == AUTO_AWAY
    h.advance(h.config.always_on_expire_days * DAY_SECONDS + 1)
    assert bob.last("QUIT").params == (EXPIRED,)
    assert h.core.nicks.get("alice") is None


def test_always_on_is_refused_to_a_user_in_too_many_rooms(tmp_path: Path) -> None:
    h = Harness(store=Store.open(tmp_path / "db.sqlite"), always_on_max_rooms=1)
    alice = with_account(h, "alice")
    alice.send("JOIN #one").send("JOIN #two")
    alice.take()
    alice.send("PRIVMSG NickServ :SET ALWAYS-ON ON")
    assert "at most 1" in alice.last("NOTICE").params[-1]
    assert h.store is not None and h.store.load_presences().always_on == ()


def test_one_message_over_the_offline_bound_is_refused_with_a_standard_reply(
    tmp_path: Path,
) -> None:
    h = Harness(store=Store.open(tmp_path / "db.sqlite"), offline_messages_per_account=1)
    with_account(h, "alice").send("QUIT")
    bob = h.register("bob")
    bob.send("PRIVMSG alice :one")
    assert bob.last(n.RPL_AWAY).params[1] == "alice"
    bob.take()
    bob.send("PRIVMSG alice :two")
    assert bob.last("FAIL").params[:3] == ("PRIVMSG", "OFFLINE_QUEUE_FULL", "alice")


def test_a_notice_to_an_offline_account_is_kept_without_a_reply(h: Harness) -> None:
    with_account(h, "alice").send("QUIT")
    bob = h.register("bob")
    bob.send("NOTICE alice :psst")
    bob.send("NOTICE nobody :psst")
    assert bob.take() == []
    back = attached(h, "alice", "alice")
    assert back.last("NOTICE").params == ("alice", "psst")


def test_kept_messages_are_delivered_once_then_forgotten(h: Harness) -> None:
    with_account(h, "alice").send("QUIT")
    bob = h.register("bob")
    bob.send("PRIVMSG alice :once")
    first = attached(h, "alice", "alice")
    assert first.last("PRIVMSG").params == ("alice", "once")
    first.send("QUIT")
    second = attached(h, "alice", "alice")
    assert not second.has("PRIVMSG")


def test_without_multiclient_a_login_does_not_attach(tmp_path: Path) -> None:
    h = Harness(store=Store.open(tmp_path / "db.sqlite"), multiclient=False)
    with_account(h, "alice")
    other = attached(h, "alice", "phone")
    assert not other.has("NICK") and h.core.nicks.get("phone") is h.core.sessions[other.conn]


def test_a_restored_always_on_user_is_back_in_its_rooms_with_its_away(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "db.sqlite")
    h = Harness(store=store)
    alice = with_account(h, "alice")
    always_on(h, alice)
    alice.send("JOIN #home").send("AWAY :gone fishing")
    alice.send("QUIT")
    h.advance(1)  # the presence timer saves what changed

    again = Harness(store=store)
    again.apply(again.core.restore_presences(store.load_presences(), again.now))
    bob = again.register("bob")
    bob.send("JOIN #home")
    assert "alice" in bob.last(n.RPL_NAMREPLY).params[-1]
    bob.send("PRIVMSG alice :hi")
    assert bob.last(n.RPL_AWAY).params[-1] == "gone fishing"


def test_tagmsg_to_a_shared_user_reaches_each_of_its_devices(h: Harness) -> None:
    caps = ("message-tags",)
    alice = with_account(h, "alice", caps)
    phone = attached(h, "alice", "phone", caps)
    phone.take()
    bob = h.register("bob", caps)
    bob.send("@+typing=active TAGMSG alice")
    assert alice.last("TAGMSG").tags["+typing"] == "active"
    assert phone.last("TAGMSG").tags["+typing"] == "active"


def test_who_lists_a_user_once_however_many_devices(h: Harness) -> None:
    with_account(h, "alice")
    attached(h, "alice", "phone").take()
    bob = h.register("bob")
    bob.send("WHO *")
    listed = [m.params[5] for m in bob.take() if m.command == n.RPL_WHOREPLY]
    assert sorted(listed) == ["alice", "bob"]
