"""NickServ accounts, login throttling, nick protection and the account IRCv3 extensions."""

from __future__ import annotations

from pathlib import Path

import pytest

from securechat.server.store import Store
from tests.unit.server.harness import FakeClient, Harness

PASSWORD = "correct-horse"


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(store=Store.open(tmp_path / "db.sqlite"))


def nickserv_says(client: FakeClient) -> list[str]:
    return [
        m.params[-1]
        for m in client.take()
        if m.command == "NOTICE" and (m.source or "").startswith("NickServ!")
    ]


def with_account(h: Harness, nick: str, caps: tuple[str, ...] = ()) -> FakeClient:
    client = h.register(nick, caps)
    client.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
    assert client.has("900"), [m.command for m in client.inbox]
    client.take()
    return client


def test_register_creates_the_account_and_logs_in(h: Harness) -> None:
    alice = h.register("alice")
    alice.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
    logged_in = alice.last("900")
    assert logged_in.params[1:3] == ("alice!~alice@127.0.0.1", "alice")
    assert h.store is not None and h.store.get_account("alice") is not None


def test_replies_come_from_the_nickserv_service_user(h: Harness) -> None:
    alice = h.register("alice")
    alice.send("PRIVMSG NickServ :HELP")
    assert alice.last("NOTICE").source == "NickServ!NickServ@services.irc.test"


def test_register_refuses_a_short_password(h: Harness) -> None:
    alice = h.register("alice")
    alice.send("PRIVMSG NickServ :REGISTER short")
    assert any("at least 8" in text for text in nickserv_says(alice))
    assert h.store is not None and h.store.get_account("alice") is None


def test_a_taken_account_name_cannot_be_registered_again(h: Harness) -> None:
    with_account(h, "alice").send("QUIT")
    again = h.register("alice")
    again.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}x")
    assert "alice is already registered" in nickserv_says(again)


def test_identify_with_the_right_password_logs_in(h: Harness) -> None:
    with_account(h, "alice").send("QUIT")
    alice = h.register("alice")
    alice.send(f"PRIVMSG NickServ :IDENTIFY {PASSWORD}")
    assert alice.last("900").params[2] == "alice"


def test_identify_names_the_account_when_using_another_nick(h: Harness) -> None:
    with_account(h, "alice").send("QUIT")
    other = h.register("ally")
    other.send(f"PRIVMSG NickServ :IDENTIFY alice {PASSWORD}")
    assert other.last("900").params[2] == "alice"


def test_the_ns_command_works_like_a_message_to_nickserv(h: Harness) -> None:
    with_account(h, "alice").send("QUIT")
    alice = h.register("alice")
    alice.send(f"NS IDENTIFY {PASSWORD}")
    assert alice.has("900")


def test_a_wrong_password_does_not_say_whether_the_account_exists(h: Harness) -> None:
    with_account(h, "alice").send("QUIT")
    bob = h.register("bob")
    bob.send("PRIVMSG NickServ :IDENTIFY alice wrongpassword")
    bob.send("PRIVMSG NickServ :IDENTIFY nobody wrongpassword")
    assert nickserv_says(bob) == ["Invalid account name or password"] * 2


def test_the_third_wrong_password_starts_an_exponential_delay(h: Harness) -> None:
    with_account(h, "alice").send("QUIT")
    bob = h.register("bob")
    for _ in range(3):
        bob.send("PRIVMSG NickServ :IDENTIFY alice wrongpassword")
    bob.take()
    bob.send(f"PRIVMSG NickServ :IDENTIFY alice {PASSWORD}")
    assert nickserv_says(bob) == ["Too many failed attempts; try again in 2 seconds"]
    h.advance(2)
    bob.send("PRIVMSG NickServ :IDENTIFY alice wrongpassword")
    bob.send("PRIVMSG NickServ :IDENTIFY alice wrongpassword")
    assert nickserv_says(bob)[-1] == "Too many failed attempts; try again in 4 seconds"


def test_the_delay_follows_the_account_to_other_connections(h: Harness) -> None:
    with_account(h, "alice").send("QUIT")
    for nick in ("m1", "m2", "m3"):
        h.register(nick).send("PRIVMSG NickServ :IDENTIFY alice wrongpassword")
    fresh = h.register("m4")
    fresh.send(f"PRIVMSG NickServ :IDENTIFY alice {PASSWORD}")
    assert "try again in" in nickserv_says(fresh)[0]


def test_a_successful_login_clears_the_delay(h: Harness) -> None:
    with_account(h, "alice").send("QUIT")
    bob = h.register("bob")
    for _ in range(3):
        bob.send("PRIVMSG NickServ :IDENTIFY alice wrongpassword")
    h.advance(2)
    bob.send(f"PRIVMSG NickServ :IDENTIFY alice {PASSWORD}")
    assert bob.has("900")
    assert h.core.accounts.throttles == {}


def test_accounts_say_they_are_unavailable_without_a_store() -> None:
    h = Harness()
    alice = h.register("alice")
    alice.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
    assert "not available" in nickserv_says(alice)[0]


def test_a_notice_to_nickserv_gets_no_reply(h: Harness) -> None:
    alice = h.register("alice")
    alice.send("NOTICE NickServ :HELP")
    assert alice.take() == []


@pytest.mark.parametrize("nick", ["NickServ", "chanserv"])
def test_service_nicks_are_reserved(h: Harness, nick: str) -> None:
    alice = h.register("alice")
    alice.send(f"NICK {nick}")
    assert alice.last("433").params[1] == nick


def test_whois_describes_a_service(h: Harness) -> None:
    alice = h.register("alice")
    alice.send("WHOIS NickServ")
    assert alice.last("311").params[1:4] == ("NickServ", "NickServ", "services.irc.test")


def test_whois_shows_the_account_with_330(h: Harness) -> None:
    with_account(h, "alice")
    bob = h.register("bob")
    bob.send("WHOIS alice")
    assert bob.last("330").params[1:3] == ("alice", "alice")


# ---- nick protection --------------------------------------------------------------------------


def test_taking_a_registered_nick_warns_and_renames_after_the_grace_period(h: Harness) -> None:
    with_account(h, "alice").send("QUIT")
    squatter = h.connect().send("NICK alice").send("USER a 0 * :A")
    assert "alice is a registered nickname" in nickserv_says(squatter)[0]
    h.advance(29)
    assert not squatter.has("NICK")
    h.advance(1)
    assert squatter.last("NICK").params == ("Guest00001",)


def test_logging_in_during_the_grace_period_keeps_the_nick(h: Harness) -> None:
    with_account(h, "alice").send("QUIT")
    alice = h.register("alice")
    alice.send(f"PRIVMSG NickServ :IDENTIFY {PASSWORD}")
    h.advance(60)
    assert not alice.has("NICK")


def test_changing_to_a_registered_nick_starts_the_grace_period(h: Harness) -> None:
    with_account(h, "alice").send("QUIT")
    bob = h.register("bob")
    bob.send("NICK alice")
    h.advance(h.config.nick_grace_seconds)
    assert bob.last("NICK").params == ("Guest00001",)


def test_logging_out_starts_the_grace_period(h: Harness) -> None:
    alice = with_account(h, "alice")
    alice.send("PRIVMSG NickServ :LOGOUT")
    assert alice.has("901")
    h.advance(h.config.nick_grace_seconds)
    assert alice.last("NICK").params == ("Guest00001",)


def test_an_unregistered_nick_is_never_renamed(h: Harness) -> None:
    bob = h.register("bob")
    h.advance(120)
    assert not bob.has("NICK")


# ---- account-notify, extended-join, account-tag -------------------------------------------


def test_account_notify_tells_peers_about_login_and_logout(h: Harness) -> None:
    with_account(h, "alice").send("QUIT")
    alice = h.register("alice")
    bob = h.register("bob", caps=("account-notify",))
    for client in (alice, bob):
        client.send("JOIN #a")
    bob.take()
    alice.send(f"PRIVMSG NickServ :IDENTIFY {PASSWORD}")
    assert bob.last("ACCOUNT").params == ("alice",)
    alice.send("PRIVMSG NickServ :LOGOUT")
    assert bob.last("ACCOUNT").params == ("*",)


def test_extended_join_carries_account_and_realname(h: Harness) -> None:
    bob = h.register("bob", caps=("extended-join",))
    plain = h.register("carol")
    for client in (bob, plain):
        client.send("JOIN #a")
    alice = with_account(h, "alice")
    alice.send("JOIN #a")
    assert bob.last("JOIN").params == ("#a", "alice", "alice Real")
    assert plain.last("JOIN").params == ("#a",)


def test_extended_join_marks_a_guest_with_a_star(h: Harness) -> None:
    bob = h.register("bob", caps=("extended-join",))
    bob.send("JOIN #a")
    h.register("dave").send("JOIN #a")
    assert bob.last("JOIN").params == ("#a", "*", "dave Real")


def test_account_tag_is_on_messages_from_logged_in_users_only(h: Harness) -> None:
    bob = h.register("bob", caps=("account-tag",))
    alice = with_account(h, "alice")
    dave = h.register("dave")
    for client in (bob, alice, dave):
        client.send("JOIN #a")
    alice.send("PRIVMSG #a :hi")
    assert bob.last("PRIVMSG").tags == {"account": "alice"}
    dave.send("PRIVMSG #a :yo")
    assert bob.last("PRIVMSG").tags == {}


# ---- INFO, CERT, DROP -------------------------------------------------------------------------


def test_info_shows_registration_and_who_is_logged_in(h: Harness) -> None:
    with_account(h, "alice")
    bob = h.register("bob")
    bob.send("PRIVMSG NickServ :INFO alice")
    said = nickserv_says(bob)
    assert said[0].startswith("Account alice, registered ")
    assert said[1] == "Logged in now as: alice"


def test_cert_add_list_and_del(h: Harness) -> None:
    alice = with_account(h, "alice")
    fingerprint = "ab" * 32
    alice.send(f"PRIVMSG NickServ :CERT ADD {fingerprint}")
    alice.send("PRIVMSG NickServ :CERT LIST")
    assert nickserv_says(alice)[-2:] == ["Certificates of alice: 1", f"  {fingerprint}"]
    alice.send(f"PRIVMSG NickServ :CERT DEL {fingerprint}")
    assert nickserv_says(alice) == [f"Certificate {fingerprint} removed"]


def test_cert_add_without_a_fingerprint_uses_the_connection_certificate(h: Harness) -> None:
    client = h.connect(certfp="cd" * 32)
    client.send("NICK alice").send("USER alice 0 * :A")
    client.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
    client.send("PRIVMSG NickServ :CERT ADD")
    assert h.store is not None and h.store.list_certfps("alice") == ("cd" * 32,)


def test_a_certificate_cannot_belong_to_two_accounts(h: Harness) -> None:
    with_account(h, "alice").send(f"PRIVMSG NickServ :CERT ADD {'ab' * 32}")
    bob = with_account(h, "bob")
    bob.send(f"PRIVMSG NickServ :CERT ADD {'ab' * 32}")
    assert "belongs to another account" in nickserv_says(bob)[0]


def test_drop_deletes_the_account_and_logs_out(h: Harness) -> None:
    alice = with_account(h, "alice")
    alice.send(f"PRIVMSG NickServ :DROP {PASSWORD}")
    assert alice.has("901")
    assert h.store is not None and h.store.get_account("alice") is None


def test_drop_with_a_wrong_password_keeps_the_account(h: Harness) -> None:
    alice = with_account(h, "alice")
    alice.send("PRIVMSG NickServ :DROP wrongpassword")
    assert h.store is not None and h.store.get_account("alice") is not None
