"""draft/account-registration: REGISTER and VERIFY, on NickServ's registration path."""

from __future__ import annotations

from pathlib import Path

import pytest

from securechat.protocol import numerics as n
from securechat.server.store import Store
from tests.unit.server.harness import FakeClient, Harness

PASSWORD = "correct-horse"


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(store=Store.open(tmp_path / "db.sqlite"))


def fail_of(client: FakeClient) -> tuple[str, ...]:
    return client.last("FAIL").params


def test_the_cap_offers_before_connect_and_no_email(h: Harness) -> None:
    client = h.connect()
    client.send("CAP LS 302")
    offered = " ".join(m.params[-1] for m in client.take()).split()
    assert "draft/account-registration=before-connect" in offered


def test_register_after_connecting_creates_the_account_and_logs_in(h: Harness) -> None:
    alice = h.register("alice")
    alice.send(f"REGISTER * * {PASSWORD}")
    success = alice.last("REGISTER")
    assert success.params[:2] == ("SUCCESS", "alice")
    assert alice.has(n.RPL_LOGGEDIN)
    assert h.store is not None and h.store.get_account("alice") is not None


def test_register_before_connect_then_the_connection_completes_logged_in(h: Harness) -> None:
    client = h.connect()
    client.send("CAP LS 302").send("NICK alice")
    client.send(f"REGISTER alice alice@example.org {PASSWORD}")  # the email is ignored
    assert client.last("REGISTER").params[:2] == ("SUCCESS", "alice")
    client.send("USER alice 0 * :Alice").send("CAP END")
    assert client.has(n.RPL_WELCOME) and client.has(n.RPL_LOGGEDIN)


def test_register_before_nick_needs_a_nick(h: Harness) -> None:
    client = h.connect()
    client.send(f"REGISTER * * {PASSWORD}")
    assert fail_of(client)[:3] == ("REGISTER", "NEED_NICK", "*")


def test_a_server_password_comes_first(tmp_path: Path) -> None:
    h = Harness(store=Store.open(tmp_path / "db.sqlite"), password="letmein")
    client = h.connect()
    client.send("CAP LS 302")
    offered = " ".join(m.params[-1] for m in client.take()).split()
    assert "draft/account-registration" in offered  # without before-connect
    client.send("NICK alice").send(f"REGISTER * * {PASSWORD}")
    assert fail_of(client)[:2] == ("REGISTER", "COMPLETE_CONNECTION_REQUIRED")


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (f"REGISTER bob * {PASSWORD}", "ACCOUNT_NAME_MUST_BE_NICK"),
        ("REGISTER * * short", "WEAK_PASSWORD"),
        ("REGISTER * * " + "p" * 301, "UNACCEPTABLE_PASSWORD"),
    ],
)
def test_bad_requests_get_the_specs_fail(h: Harness, line: str, code: str) -> None:
    alice = h.register("alice")
    alice.send(line)
    assert fail_of(alice)[:2] == ("REGISTER", code)
    assert not alice.has(n.RPL_LOGGEDIN)


def test_a_guest_nick_is_a_bad_account_name(h: Harness) -> None:
    guest = h.register("Guest12345")
    guest.send(f"REGISTER * * {PASSWORD}")
    assert fail_of(guest)[:2] == ("REGISTER", "BAD_ACCOUNT_NAME")


def test_a_taken_name_and_a_logged_in_client_are_refused(h: Harness) -> None:
    alice = h.register("alice")
    alice.send(f"REGISTER * * {PASSWORD}")
    alice.send(f"REGISTER * * {PASSWORD}")
    assert fail_of(alice)[:3] == ("REGISTER", "ALREADY_AUTHENTICATED", "*")
    alice.send("VERIFY alice 123456")
    assert fail_of(alice)[:3] == ("VERIFY", "ALREADY_AUTHENTICATED", "alice")
    alice.send("QUIT")
    other = h.register("ALICE")  # someone else's registered nick, until renamed
    other.send(f"REGISTER * * {PASSWORD}")
    assert fail_of(other)[:3] == ("REGISTER", "ACCOUNT_EXISTS", "ALICE")


def test_attempts_share_nickservs_throttle(tmp_path: Path) -> None:
    h = Harness(store=Store.open(tmp_path / "db.sqlite"), register_per_connection=1)
    alice = h.register("alice")
    alice.send("PRIVMSG NickServ :REGISTER short")  # refused before counting: too short
    alice.send("PRIVMSG NickServ :REGISTER " + PASSWORD + "x")
    alice.send("PRIVMSG NickServ :LOGOUT")
    alice.take()
    alice.send(f"REGISTER * * {PASSWORD}")
    assert fail_of(alice)[:2] == ("REGISTER", "TEMPORARILY_UNAVAILABLE")


def test_verify_has_nothing_to_verify(h: Harness) -> None:
    alice = h.register("alice")
    alice.send("VERIFY alice 123456")
    assert fail_of(alice)[:3] == ("VERIFY", "INVALID_CODE", "alice")


def test_without_a_store_register_is_unavailable() -> None:
    h = Harness()
    alice = h.register("alice")
    alice.send(f"REGISTER * * {PASSWORD}")
    assert fail_of(alice)[:2] == ("REGISTER", "TEMPORARILY_UNAVAILABLE")
