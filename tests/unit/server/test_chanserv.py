"""ChanServ: registering rooms, saving their state, restoring it, re-opping operators."""

from __future__ import annotations

from pathlib import Path

import pytest

from securechat.protocol import numerics as n
from securechat.server.store import Store
from tests.unit.server.harness import FakeClient, Harness

PASSWORD = "correct-horse"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "db.sqlite"


@pytest.fixture
def h(db: Path) -> Harness:
    return Harness(store=Store.open(db))


def with_account(h: Harness, nick: str) -> FakeClient:
    client = h.register(nick)
    client.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
    client.take()
    return client


def chanserv_says(client: FakeClient) -> list[str]:
    return [m.params[-1] for m in client.take() if (m.source or "").startswith("ChanServ!")]


def registered_room(h: Harness, founder: str = "alice") -> FakeClient:
    client = with_account(h, founder)
    client.send("JOIN #a").send("PRIVMSG ChanServ :REGISTER #a")
    client.take()
    return client


def restarted(h: Harness, db: Path) -> Harness:
    """A new core on the same database, restored the way net.py does it at start."""
    assert h.store is not None
    h.store.close()
    again = Harness(store=Store.open(db))
    assert again.store is not None
    again.apply(again.core.restore_rooms(again.store.load_rooms(), again.now))
    return again


def test_an_operator_who_is_logged_in_registers_the_room(h: Harness) -> None:
    alice = with_account(h, "alice")
    alice.send("JOIN #a").send("PRIVMSG ChanServ :REGISTER #a")
    assert chanserv_says(alice) == ["#a is registered to alice"]
    assert h.store is not None and h.store.get_room("#a") is not None


def test_registering_needs_a_login(h: Harness) -> None:
    bob = h.register("bob")
    bob.send("JOIN #a").send("PRIVMSG ChanServ :REGISTER #a")
    assert chanserv_says(bob) == ["Log in first (/msg NickServ IDENTIFY <password>)"]


def test_registering_needs_operator_status(h: Harness) -> None:
    h.register("carol").send("JOIN #a")
    bob = with_account(h, "bob")
    bob.send("JOIN #a").send("PRIVMSG ChanServ :REGISTER #a")
    assert chanserv_says(bob) == ["You must be an operator of #a to register it"]


def test_a_registered_room_outlives_its_members(h: Harness) -> None:
    registered_room(h).send("PART #a")
    assert h.core.rooms.get("#a") is not None


def test_topic_changes_are_saved(h: Harness) -> None:
    registered_room(h).send("TOPIC #a :welcome")
    assert h.store is not None
    room = h.store.get_room("#a")
    assert room is not None and room.topic == "welcome"


def test_mode_changes_are_saved(h: Harness) -> None:
    registered_room(h).send("MODE #a +mk sesame")
    assert h.store is not None
    room = h.store.get_room("#a")
    assert room is not None and room.modes == "+mnt" and room.key == "sesame"


def test_a_restart_restores_topic_and_modes(h: Harness, db: Path) -> None:
    registered_room(h).send("TOPIC #a :welcome").send("MODE #a +m")
    again = restarted(h, db)
    room = again.core.rooms.get("#a")
    assert room is not None and room.topic == "welcome" and room.modes == {"m", "n", "t"}


def test_the_founder_is_opped_on_join_after_a_restart(h: Harness, db: Path) -> None:
    registered_room(h)
    again = restarted(h, db)
    alice = again.register("alice")
    alice.send(f"PRIVMSG NickServ :IDENTIFY {PASSWORD}").send("JOIN #a")
    mode = alice.last("MODE")
    assert mode.params == ("#a", "+o", "alice")
    assert mode.source == "ChanServ!ChanServ@services.irc.test"


def test_the_first_joiner_of_an_empty_registered_room_is_not_opped(h: Harness, db: Path) -> None:
    registered_room(h)
    again = restarted(h, db)
    bob = again.register("bob")
    bob.send("JOIN #a").send("NAMES #a")
    assert bob.last(n.RPL_NAMREPLY).params[-1] == "bob"


def test_logging_in_after_joining_ops_the_founder(h: Harness, db: Path) -> None:
    registered_room(h)
    again = restarted(h, db)
    alice = again.register("alice")
    alice.send("JOIN #a").send(f"PRIVMSG NickServ :IDENTIFY {PASSWORD}")
    assert alice.last("MODE").params == ("#a", "+o", "alice")


def test_a_listed_operator_is_opped_on_join(h: Harness) -> None:
    alice = registered_room(h)
    bob = with_account(h, "bob")
    alice.send("PRIVMSG ChanServ :OP #a bob")
    assert chanserv_says(alice) == ["bob is now an operator of #a"]
    bob.send("JOIN #a")
    assert bob.last("MODE").params == ("#a", "+o", "bob")
    assert h.store is not None and h.store.get_room("#a").operators == ("bob",)  # type: ignore[union-attr]


def test_op_refuses_an_unknown_account(h: Harness) -> None:
    alice = registered_room(h)
    alice.send("PRIVMSG ChanServ :OP #a nobody")
    assert chanserv_says(alice) == ["nobody is not a registered account"]


def test_deop_removes_an_operator(h: Harness) -> None:
    alice = registered_room(h)
    with_account(h, "bob")
    alice.send("PRIVMSG ChanServ :OP #a bob").send("PRIVMSG ChanServ :DEOP #a bob")
    assert h.store is not None and h.store.get_room("#a").operators == ()  # type: ignore[union-attr]


def test_only_the_founder_manages_operators(h: Harness) -> None:
    registered_room(h)
    bob = with_account(h, "bob")
    bob.send("PRIVMSG ChanServ :OP #a bob")
    assert chanserv_says(bob) == ["Only the founder of #a can do that"]


def test_info_names_the_founder(h: Harness) -> None:
    registered_room(h)
    bob = h.register("bob")
    bob.send("PRIVMSG ChanServ :INFO #a")
    assert chanserv_says(bob)[0].startswith("#a is registered to alice since ")


def test_drop_unregisters_and_an_empty_room_goes(h: Harness) -> None:
    alice = registered_room(h)
    alice.send("PRIVMSG ChanServ :DROP #a").send("PART #a")
    assert h.core.rooms.get("#a") is None
    assert h.store is not None and h.store.get_room("#a") is None


def test_dropping_the_founder_account_unregisters_its_rooms(h: Harness) -> None:
    alice = registered_room(h)
    alice.send(f"PRIVMSG NickServ :DROP {PASSWORD}").send("PART #a")
    assert h.core.rooms.get("#a") is None


@pytest.mark.parametrize("command", ["OP", "DEOP"])
def test_op_and_deop_without_an_account_give_the_syntax(h: Harness, command: str) -> None:
    alice = registered_room(h)
    alice.send(f"PRIVMSG ChanServ :{command} #a")
    assert chanserv_says(alice) == [f"Syntax: {command} #room <account|nick>"]


@pytest.mark.parametrize("command", ["OP", "DEOP"])
def test_op_and_deop_by_anyone_but_the_founder_are_refused_first(h: Harness, command: str) -> None:
    """The founder check comes before the syntax check: a stranger learns nothing more."""
    registered_room(h)
    bob = h.register("bob")
    bob.send(f"PRIVMSG ChanServ :{command} #a")
    assert chanserv_says(bob) == ["Only the founder of #a can do that"]
