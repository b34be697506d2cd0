"""NickServ accounts, login throttling, nick protection and the account IRCv3 extensions."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securechat.protocol import numerics as n
from securechat.server.accounts import _deadline
from securechat.server.store import Store
from tests.unit.server.harness import FakeClient, Harness
from tests.unit.server.offloads import CountingHarness

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
    assert client.has(n.RPL_LOGGEDIN), [m.command for m in client.inbox]
    client.take()
    return client


def test_register_creates_the_account_and_logs_in(h: Harness) -> None:
    alice = h.register("alice")
    alice.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
    logged_in = alice.last(n.RPL_LOGGEDIN)
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
    assert alice.last(n.RPL_LOGGEDIN).params[2] == "alice"


def test_identify_names_the_account_when_using_another_nick(h: Harness) -> None:
    with_account(h, "alice").send("QUIT")
    other = h.register("ally")
    other.send(f"PRIVMSG NickServ :IDENTIFY alice {PASSWORD}")
    assert other.last(n.RPL_LOGGEDIN).params[2] == "alice"


def test_the_ns_command_works_like_a_message_to_nickserv(h: Harness) -> None:
    with_account(h, "alice").send("QUIT")
    alice = h.register("alice")
    alice.send(f"NS IDENTIFY {PASSWORD}")
    assert alice.has(n.RPL_LOGGEDIN)


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


def test_the_delay_follows_the_address_to_other_connections(h: Harness) -> None:
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
    assert bob.has(n.RPL_LOGGEDIN)
    assert h.core.accounts.by_account_source.failures(("alice", "127.0.0.1"), h.now) == 0


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
    assert alice.last(n.ERR_NICKNAMEINUSE).params[1] == nick


def test_whois_describes_a_service(h: Harness) -> None:
    alice = h.register("alice")
    alice.send("WHOIS NickServ")
    assert alice.last(n.RPL_WHOISUSER).params[1:4] == ("NickServ", "NickServ", "services.irc.test")


def test_whois_shows_the_account_with_330(h: Harness) -> None:
    with_account(h, "alice")
    bob = h.register("bob")
    bob.send("WHOIS alice")
    assert bob.last(n.RPL_WHOISACCOUNT).params[1:3] == ("alice", "alice")


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
    assert alice.has(n.RPL_LOGGEDOUT)
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
    assert alice.has(n.RPL_LOGGEDOUT)
    assert h.store is not None and h.store.get_account("alice") is None


def test_drop_with_a_wrong_password_keeps_the_account(h: Harness) -> None:
    alice = with_account(h, "alice")
    alice.send("PRIVMSG NickServ :DROP wrongpassword")
    assert h.store is not None and h.store.get_account("alice") is not None


# ---- the grace deadline is per (connection, nick): review H4 ----------------------------------


def squatting(h: Harness, nick: str = "alice") -> FakeClient:
    """A client holding the registered ``nick`` without its password; its notices are read."""
    squatter = h.connect(host="192.0.2.66").send(f"NICK {nick}").send("USER m 0 * :M")
    assert "is a registered nickname" in nickserv_says(squatter)[0]
    return squatter


def test_changing_only_the_case_keeps_the_original_deadline(h: Harness) -> None:
    with_account(h, "alice").send("QUIT")
    squatter = squatting(h)
    h.advance(25)
    squatter.send("NICK ALICE").send("NICK alice")
    h.advance(5)
    assert squatter.last("NICK").params == ("Guest00001",)


def test_leaving_and_retaking_the_nick_keeps_the_original_deadline(h: Harness) -> None:
    with_account(h, "alice").send("QUIT")
    squatter = squatting(h)
    h.advance(20)
    squatter.send("NICK elsewhere")
    h.advance(5)
    squatter.send("NICK alice")
    assert "within 5 seconds" in nickserv_says(squatter)[-1]
    h.advance(5)
    assert squatter.last("NICK").params == ("Guest00001",)


def test_retaking_the_nick_after_its_deadline_is_refused_at_once(h: Harness) -> None:
    """Refused before any store lookup: nothing sent behind the NICK goes out as alice."""
    with_account(h, "alice").send("QUIT")
    squatter = squatting(h)
    h.advance(30)
    squatter.take()
    squatter.send("NICK alice")
    assert squatter.last(n.ERR_NICKNAMEINUSE).params[1] == "alice"
    assert not [m for m in squatter.take() if m.command == "NICK"]
    assert h.core.sessions[squatter.conn].nick == "Guest00001"


def test_the_deadline_is_forgotten_once_its_memory_ran_out(h: Harness) -> None:
    with_account(h, "alice").send("QUIT")
    squatting(h)
    h.advance(h.config.nick_grace_seconds + h.config.nick_grace_memory_seconds + 60)
    assert h.core.accounts.deadlines == {}


def test_remembered_deadlines_are_bounded() -> None:
    h = Harness(store=None, throttle_max_entries=4)
    for conn in range(10):
        _deadline(h.core, conn, "alice", h.now)
    assert len(h.core.accounts.deadlines) <= 4
    assert (9, "alice") in h.core.accounts.deadlines  # the newest is kept


# ---- GHOST and REGAIN --------------------------------------------------------------------------


def owner_elsewhere(h: Harness) -> FakeClient:
    """alice's owner, logged in under another nick while a squatter holds ``alice``."""
    with_account(h, "alice").send("QUIT")
    owner = h.register("alice_")
    owner.send(f"PRIVMSG NickServ :IDENTIFY alice {PASSWORD}")
    assert owner.has(n.RPL_LOGGEDIN)
    owner.take()
    return owner


def test_ghost_by_the_logged_in_owner_disconnects_the_holder(h: Harness) -> None:
    owner = owner_elsewhere(h)
    squatter = squatting(h)
    owner.send("PRIVMSG NickServ :GHOST alice")
    assert squatter.closed == "GHOST command used by alice_"
    assert "alice has been ghosted" in nickserv_says(owner)


def test_ghost_with_the_password_works_without_logging_in(h: Harness) -> None:
    with_account(h, "alice").send("QUIT")
    squatter = squatting(h)
    owner = h.register("someone")
    owner.send(f"PRIVMSG NickServ :GHOST alice {PASSWORD}")
    assert squatter.closed is not None
    assert not owner.has(n.RPL_LOGGEDIN)


def test_ghost_with_a_wrong_password_leaves_the_holder(h: Harness) -> None:
    with_account(h, "alice").send("QUIT")
    squatter = squatting(h)
    stranger = h.register("stranger")
    stranger.send("PRIVMSG NickServ :GHOST alice wrongpassword")
    assert squatter.closed is None
    assert nickserv_says(stranger) == ["Invalid account name or password"]


def test_ghost_without_login_or_password_is_refused(h: Harness) -> None:
    with_account(h, "alice").send("QUIT")
    squatter = squatting(h)
    stranger = h.register("stranger")
    stranger.send("PRIVMSG NickServ :GHOST alice")
    assert squatter.closed is None
    assert "Log in to alice first" in nickserv_says(stranger)[0]


def test_regain_renames_the_holder_and_gives_the_owner_the_nick(h: Harness) -> None:
    owner = owner_elsewhere(h)
    squatter = squatting(h)
    owner.send("PRIVMSG NickServ :REGAIN alice")
    assert squatter.last("NICK").params == ("Guest00001",)
    assert owner.last("NICK").params == ("alice",)
    assert h.core.nicks.get("alice") is h.core.sessions[owner.conn]


def test_regain_with_the_password_logs_in_and_takes_the_nick(h: Harness) -> None:
    with_account(h, "alice").send("QUIT")
    squatting(h)
    owner = h.register("visitor")
    owner.send(f"PRIVMSG NickServ :REGAIN alice {PASSWORD}")
    assert owner.last(n.RPL_LOGGEDIN).params[2] == "alice"
    assert owner.last("NICK").params == ("alice",)
    h.advance(60)
    assert owner.last("NICK").params == ("alice",)  # the owner is never renamed


def test_regain_of_a_free_nick_just_takes_it(h: Harness) -> None:
    owner = owner_elsewhere(h)
    owner.send("PRIVMSG NickServ :REGAIN alice")
    assert owner.last("NICK").params == ("alice",)


def test_a_logged_in_owner_who_gets_433_is_told_about_regain(h: Harness) -> None:
    owner = owner_elsewhere(h)
    squatting(h)
    owner.send("NICK alice")
    assert owner.has(n.ERR_NICKNAMEINUSE)
    assert "/msg NickServ REGAIN alice" in nickserv_says(owner)[-1]


# ---- nobody's failures lock the owner out: review M1 ------------------------------------------


def from_address(h: Harness, nick: str, host: str) -> FakeClient:
    client = h.connect(host=host).send(f"NICK {nick}").send(f"USER {nick} 0 * :x")
    assert client.has(n.RPL_WELCOME)
    client.take()
    return client


def test_strangers_failures_never_refuse_the_owners_right_password(h: Harness) -> None:
    with_account(h, "alice").send("QUIT")
    stranger = from_address(h, "mallory", "192.0.2.7")
    for _ in range(8):
        stranger.send("PRIVMSG NickServ :IDENTIFY alice wrongpassword")
    assert "try again in" in nickserv_says(stranger)[-1]
    owner = from_address(h, "alice_", "198.51.100.1")
    owner.send(f"PRIVMSG NickServ :IDENTIFY alice {PASSWORD}")
    assert owner.last(n.RPL_LOGGEDIN).params[2] == "alice"


def test_one_address_is_slowed_across_accounts(h: Harness) -> None:
    stranger = from_address(h, "mallory", "192.0.2.7")
    for index in range(h.config.login_address_free_failures):
        stranger.send(f"PRIVMSG NickServ :IDENTIFY name{index} wrongpassword")
    stranger.take()
    stranger.send("PRIVMSG NickServ :IDENTIFY another wrongpassword")
    assert "try again in 2 seconds" in nickserv_says(stranger)[0]


def test_an_ipv6_address_counts_as_its_whole_64(h: Harness) -> None:
    with_account(h, "alice").send("QUIT")
    for index in range(3):
        guess = from_address(h, f"m{index}", f"2001:db8:1:2::{index + 1}")
        guess.send("PRIVMSG NickServ :IDENTIFY alice wrongpassword")
    next_door = from_address(h, "m9", "2001:db8:1:2::99")
    next_door.send(f"PRIVMSG NickServ :IDENTIFY alice {PASSWORD}")
    assert "try again in" in nickserv_says(next_door)[0]


def test_many_addresses_get_late_failures_but_the_owner_gets_in_at_once(h: Harness) -> None:
    with_account(h, "alice").send("QUIT")
    for index in range(h.config.login_account_free_failures):
        guess = from_address(h, f"m{index}", f"192.0.2.{index + 1}")
        guess.send("PRIVMSG NickServ :IDENTIFY alice wrongpassword")
    late = from_address(h, "late", "203.0.113.9")
    late.send("PRIVMSG NickServ :IDENTIFY alice wrongpassword")
    assert nickserv_says(late) == []  # held: the answer comes later
    late.send(f"PRIVMSG NickServ :IDENTIFY alice {PASSWORD}")
    assert "Another login is in progress" in nickserv_says(late)[0]
    owner = from_address(h, "alice_", "198.51.100.1")
    owner.send(f"PRIVMSG NickServ :IDENTIFY alice {PASSWORD}")
    assert owner.has(n.RPL_LOGGEDIN)
    h.advance(h.config.login_account_max_hold_seconds)
    assert nickserv_says(late) == ["Invalid account name or password"]


def test_a_failure_for_a_missing_name_is_throttled_like_one_for_a_real_account(h: Harness) -> None:
    with_account(h, "alice").send("QUIT")
    answers = []
    for name, host in (("alice", "192.0.2.1"), ("nobody", "192.0.2.2")):
        guesser = from_address(h, f"g{host[-1]}", host)
        for _ in range(4):
            guesser.send(f"PRIVMSG NickServ :IDENTIFY {name} wrongpassword")
        answers.append(nickserv_says(guesser))
    assert answers[0] == answers[1]


# ---- REGISTER checks before it hashes, and is rate-limited: review M2, L7 ---------------------


@pytest.fixture
def counting(tmp_path: Path) -> CountingHarness:
    return CountingHarness(store=Store.open(tmp_path / "db.sqlite"))


def test_register_on_a_taken_name_does_no_hashing(counting: CountingHarness) -> None:
    with_account(counting, "alice").send("QUIT")
    before = len(counting.offloads)
    again = counting.register("alice")
    again.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
    assert "alice is already registered" in nickserv_says(again)
    assert len(counting.offloads) == before


def test_register_hashes_in_the_bulk_lane(counting: CountingHarness) -> None:
    with_account(counting, "alice")
    assert [o.lane for o in counting.offloads] == ["bulk"]


def test_register_attempts_are_limited_per_connection(tmp_path: Path) -> None:
    h = Harness(store=Store.open(tmp_path / "db.sqlite"), nick_grace_seconds=3600)
    with_account(h, "alice").send("QUIT")
    again = h.register("alice")
    for _ in range(h.config.register_per_connection + 1):
        again.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
    assert "Too many REGISTER attempts; try again in 60 seconds" in nickserv_says(again)[-1]
    h.advance(h.config.register_window_seconds)
    again.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
    assert nickserv_says(again) == ["alice is already registered"]


def test_one_address_creates_a_bounded_number_of_accounts(tmp_path: Path) -> None:
    h = Harness(store=Store.open(tmp_path / "db.sqlite"), accounts_per_address=2)
    for nick in ("one", "two"):
        with_account(h, nick)
    three = h.register("three")
    three.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
    assert "Too many accounts were registered from your address" in nickserv_says(three)[0]
    assert h.store is not None and h.store.get_account("three") is None


# ---- the hashing lanes are bounded and logins have their own ----------------------------------


def test_a_full_bulk_lane_answers_busy_and_logins_still_run(tmp_path: Path) -> None:
    h = CountingHarness(store=Store.open(tmp_path / "db.sqlite"), hash_queue_bulk=2)
    with_account(h, "alice").send("QUIT")
    h.holding = True
    waiting = [from_address(h, f"new{i}", f"192.0.2.{i + 1}") for i in range(3)]
    for client in waiting:
        client.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
    assert nickserv_says(waiting[2]) == ["The server is busy; try again in a moment"]
    owner = h.register("alice")
    owner.send(f"PRIVMSG NickServ :IDENTIFY {PASSWORD}")
    assert [o.lane for o in h.held] == ["bulk", "bulk", "login"]
    h.run_held()
    assert owner.has(n.RPL_LOGGEDIN) and waiting[0].has(n.RPL_LOGGEDIN)
    h.holding = False
    waiting[2].send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")  # slots were given back
    assert waiting[2].has(n.RPL_LOGGEDIN)


_NICKSERV_WORDS = st.sampled_from(["GHOST", "REGAIN", "REGISTER", "IDENTIFY", "ghost", "regain"])
_ARGS = st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=40), max_size=3)


@settings(max_examples=60, deadline=None)
@given(command=_NICKSERV_WORDS, args=_ARGS)
def test_any_nickserv_arguments_get_a_notice_never_an_internal_error(
    command: str, args: list[str]
) -> None:
    h = Harness(store=Store.open(":memory:"), hash_queue_bulk=1, hash_queue_login=1)
    client = h.register("alice")
    text = " ".join([command, *args]).replace("\r", " ").replace("\n", " ").replace("\0", " ")
    client.send(f"PRIVMSG NickServ :{text}"[:500])
    assert not client.has(n.ERR_UNKNOWNERROR)


def test_reloaded_throttle_settings_apply_to_the_next_attempt(h: Harness) -> None:
    with_account(h, "alice").send("QUIT")
    h.apply(h.core.reloaded(h.config.replace(login_free_failures=1), None, None, h.now))
    bob = h.register("bob")
    bob.send("PRIVMSG NickServ :IDENTIFY alice wrongpassword")
    bob.send(f"PRIVMSG NickServ :IDENTIFY alice {PASSWORD}")
    assert nickserv_says(bob)[-1] == "Too many failed attempts; try again in 2 seconds"


@pytest.mark.parametrize("command", ["REGISTER", "IDENTIFY"])
def test_register_and_identify_tell_a_logged_in_user_so(h: Harness, command: str) -> None:
    alice = with_account(h, "alice")
    alice.send(f"PRIVMSG NickServ :{command} {PASSWORD}")
    assert nickserv_says(alice) == ["You are already logged in as alice"]


@pytest.mark.parametrize(
    ("command", "syntax"),
    [("REGISTER", "REGISTER <password>"), ("IDENTIFY", "IDENTIFY [account] <password>")],
)
def test_register_and_identify_without_a_password_give_the_syntax(
    h: Harness, command: str, syntax: str
) -> None:
    alice = h.register("alice")
    alice.send(f"PRIVMSG NickServ :{command}")
    assert nickserv_says(alice) == [f"Syntax: {syntax}"]
