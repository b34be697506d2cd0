"""draft/read-marker: MARKREAD per account and target, synced to the account's connections."""

from __future__ import annotations

from pathlib import Path

import pytest

from securechat.protocol import numerics as n
from securechat.protocol.tags import format_server_time
from securechat.server.store import Store
from tests.unit.server.harness import FakeClient, Harness

PASSWORD = "correct-horse"
CAPS = ("draft/read-marker", "message-tags", "server-time")


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(store=Store.open(tmp_path / "db.sqlite"))


def device(
    h: Harness, nick: str, register: bool = False, caps: tuple[str, ...] = CAPS
) -> FakeClient:
    """A connection logged in to the account ``alice`` (registering it with the first)."""
    client = h.register(nick, caps)
    command = f"REGISTER {PASSWORD}" if register else f"IDENTIFY alice {PASSWORD}"
    client.send(f"PRIVMSG NickServ :{command}")
    assert client.has(n.RPL_LOGGEDIN)
    client.take()
    return client


def stamp(h: Harness, seconds_ago: float = 0) -> str:
    return "timestamp=" + format_server_time(h.now - seconds_ago)


def markreads(client: FakeClient) -> list[tuple[str, ...]]:
    return [m.params for m in client.take() if m.command == "MARKREAD"]


def test_join_sends_a_star_before_end_of_names_when_no_marker_is_known(h: Harness) -> None:
    laptop = device(h, "alice", register=True)
    laptop.send("JOIN #a")
    commands = [m.command for m in laptop.inbox]
    assert commands.index("MARKREAD") < commands.index(n.RPL_ENDOFNAMES)
    assert laptop.last("MARKREAD").params == ("#a", "*")


def test_a_marker_set_on_one_device_moves_on_the_other(h: Harness) -> None:
    laptop = device(h, "alice", register=True)
    phone = device(h, "alice_phone")
    for client in (laptop, phone):
        client.send("JOIN #a")
        client.take()
    h.advance(5)
    phone.send(f"MARKREAD #a {stamp(h, 2)}")
    assert markreads(phone) == [("#a", stamp(h, 2))]
    assert markreads(laptop) == [("#a", stamp(h, 2))]


def test_an_older_timestamp_is_answered_with_the_stored_one_and_changes_nothing(
    h: Harness,
) -> None:
    laptop = device(h, "alice", register=True)
    phone = device(h, "alice_phone")
    laptop.send("JOIN #a")
    h.advance(10)
    laptop.send(f"MARKREAD #a {stamp(h, 1)}")
    laptop.take(), phone.take()
    laptop.send(f"MARKREAD #a {stamp(h, 5)}")
    assert markreads(laptop) == [("#a", stamp(h, 1))]
    assert markreads(phone) == []


def test_a_future_timestamp_is_clamped_to_now(h: Harness) -> None:
    laptop = device(h, "alice", register=True)
    laptop.send(f"MARKREAD bob {stamp(h, -3600)}")
    assert markreads(laptop) == [("bob", stamp(h))]


def test_the_marker_survives_logging_in_again_from_the_store(h: Harness) -> None:
    laptop = device(h, "alice", register=True)
    laptop.send(f"MARKREAD bob {stamp(h, 1)}")
    laptop.send("QUIT")
    h.advance(1)
    later = device(h, "alice2")
    later.send("MARKREAD bob")
    assert markreads(later) == [("bob", stamp(h, 2))]
    later.send("JOIN #b")
    assert markreads(later) == [("#b", "*")]


def test_markers_never_reach_another_account(h: Harness) -> None:
    laptop = device(h, "alice", register=True)
    bob = h.register("bob", CAPS)
    bob.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
    for client in (laptop, bob):
        client.send("JOIN #a")
        client.take()
    laptop.send(f"MARKREAD #a {stamp(h)}")
    assert markreads(bob) == []
    bob.send("MARKREAD #a")
    assert markreads(bob) == [("#a", "*")]


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("MARKREAD", "NEED_MORE_PARAMS"),
        ("MARKREAD #notjoined", "INVALID_PARAMS"),
        ("MARKREAD bad,nick", "INVALID_PARAMS"),
        ("MARKREAD bob *", "INVALID_PARAMS"),
        ("MARKREAD bob timestamp=yesterday", "INVALID_PARAMS"),
        ("MARKREAD bob 2020-01-01T00:00:00.000Z", "INVALID_PARAMS"),
    ],
)
def test_bad_parameters_get_the_specs_fail(h: Harness, line: str, code: str) -> None:
    laptop = device(h, "alice", register=True)
    laptop.send(line)
    fail = laptop.last("FAIL")
    assert fail.params[:2] == ("MARKREAD", code)


def test_a_client_that_is_not_logged_in_is_told_markers_need_an_account(h: Harness) -> None:
    guest = h.register("guest", CAPS)
    guest.send(f"MARKREAD bob {stamp(h)}")
    assert guest.last("FAIL").params[:3] == ("MARKREAD", "ACCOUNT_REQUIRED", "bob")
    guest.send("JOIN #a")
    assert guest.last("MARKREAD").params == ("#a", "*")


def test_clients_without_the_cap_get_no_marker_on_join(h: Harness) -> None:
    laptop = device(h, "alice", register=True, caps=())
    laptop.send("JOIN #a")
    assert not laptop.has("MARKREAD")


def test_markers_per_account_are_bounded_oldest_first(tmp_path: Path) -> None:
    h = Harness(store=Store.open(tmp_path / "db.sqlite"), max_read_markers=2)
    laptop = device(h, "alice", register=True)
    for nick in ("bob", "carol", "dave"):
        h.advance(1)
        laptop.send(f"MARKREAD {nick} {stamp(h)}")
    laptop.take()
    laptop.send("MARKREAD bob")
    assert markreads(laptop) == [("bob", "*")]
    assert h.store is not None
    assert set(h.store.read_markers("alice", 10)) == {"carol", "dave"}
