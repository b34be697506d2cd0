"""WHO masks, flags, invisibility and WHOX (Modern IRC "WHO message", IRCv3 WHOX), and
LUSERS counts (Modern IRC "LUSERS message")."""

from __future__ import annotations

from securechat.protocol import numerics as n
from securechat.protocol.message import Message
from tests.unit.server.harness import FakeClient, Harness


def who(client: FakeClient, line: str) -> list[Message]:
    """The WHO replies to ``line``; asserts it ended with exactly one 315."""
    replies = client.send(line).take()
    assert [m.command for m in replies].count(n.RPL_ENDOFWHO) == 1
    assert replies[-1].command == n.RPL_ENDOFWHO
    return [m for m in replies if m.command in (n.RPL_WHOREPLY, n.RPL_WHOSPCRPL)]


def nicks(replies: list[Message]) -> set[str]:
    return {m.params[5] for m in replies}


def test_who_star_lists_visible_users_and_ends_with_315() -> None:
    h = Harness()
    h.register("bob")
    h.register("carol")
    alice = h.register("alice")
    assert nicks(who(alice, "WHO *")) == {"alice", "bob", "carol"}
    end = alice.send("WHO *").last(n.RPL_ENDOFWHO)
    assert end.params[1] == "*"


def test_who_mask_matches_nick_user_host_and_realname() -> None:
    h = Harness()
    h.register("bobby")
    h.register("carol").send("JOIN #x")
    alice = h.register("alice")
    assert nicks(who(alice, "WHO bob*")) == {"bobby"}
    assert nicks(who(alice, "WHO *Carol Real*")) == {"carol"}  # realname "Carol Real"
    assert nicks(who(alice, "WHO ~car*")) == {"carol"}  # the user name
    assert nicks(who(alice, "WHO irc.te?t")) == {"alice", "bobby", "carol"}  # the server
    assert who(alice, "WHO nobody*") == []


def test_who_hides_invisible_users_from_those_who_share_no_room() -> None:
    h = Harness()
    h.register("ghost").send("MODE ghost +i").send("JOIN #haunt")
    stranger = h.register("stranger")
    assert "ghost" not in nicks(who(stranger, "WHO *"))
    friend = h.register("friend").send("JOIN #haunt")
    friend.take()
    assert "ghost" in nicks(who(friend, "WHO *"))
    assert nicks(who(stranger, "WHO ghost")) == {"ghost"}  # an exact nick is always answered


def test_who_room_hides_invisible_members_from_outsiders() -> None:
    h = Harness()
    h.register("ghost").send("MODE ghost +i").send("JOIN #open")
    h.register("bob").send("JOIN #open")
    outsider = h.register("outsider")
    assert nicks(who(outsider, "WHO #open")) == {"bob"}


def test_who_flags_show_away_operator_and_prefixes() -> None:
    h = Harness()
    alice = h.register("alice", caps=("multi-prefix",)).send("JOIN #a").send("AWAY :out")
    alice.send("MODE #a +v alice")
    alice.take()
    [row] = who(alice, "WHO #a")
    assert row.params[6] == "G@+"  # away, op and voice (multi-prefix)
    h.core.nicks.get("alice").oper = True  # type: ignore[union-attr]
    [row] = who(alice, "WHO alice")
    assert row.params[6] == "G*"


def test_who_o_lists_operators_only() -> None:
    h = Harness()
    h.register("bob")
    alice = h.register("alice")
    h.core.nicks.get("alice").oper = True  # type: ignore[union-attr]
    assert nicks(who(alice, "WHO * o")) == {"alice"}


def test_whox_answers_354_with_the_fields_in_spec_order_and_the_token() -> None:
    """IRCv3 WHOX: fields in the order tcuihsnfdlaor whatever order was asked."""
    h = Harness()
    h.register("bob").send("JOIN #a")
    alice = h.register("alice")
    [row] = who(alice, "WHO #a %nuhat,42")
    assert row.command == n.RPL_WHOSPCRPL
    assert row.params[1:] == ("42", "~bob", "127.0.0.1", "bob", "0")


def test_whox_account_field_shows_the_account() -> None:
    h = Harness()
    bob = h.register("bob")
    h.core.nicks.get("bob").account = "bobacct"  # type: ignore[union-attr]
    [row] = who(bob, "WHO bob %na")
    assert row.params[1:] == ("bob", "bobacct")


def test_isupport_advertises_whox() -> None:
    client = Harness().connect().send("NICK alice").send("USER alice 0 * :Alice")
    tokens = [t for m in client.take() if m.command == n.RPL_ISUPPORT for t in m.params[1:-1]]
    assert "WHOX" in tokens


# ---- LUSERS ---------------------------------------------------------------------------------


def test_lusers_counts_invisible_operators_unknown_rooms_and_the_peak() -> None:
    h = Harness()
    h.register("ghost").send("MODE ghost +i").send("JOIN #a")
    h.register("bob").send("JOIN #b")
    gone = h.register("gone")
    h.connect()  # an unknown (unregistered) connection
    alice = h.register("alice")
    h.core.nicks.get("alice").oper = True  # type: ignore[union-attr]
    gone.send("QUIT")
    replies = {m.command: m for m in alice.send("LUSERS").take()}
    assert replies[n.RPL_LUSERCLIENT].params[-1] == (
        "There are 2 users and 1 invisible on 1 servers"
    )
    assert replies[n.RPL_LUSEROP].params[1] == "1"
    assert replies[n.RPL_LUSERUNKNOWN].params[1] == "1"
    assert replies[n.RPL_LUSERCHANNELS].params[1] == "2"
    assert replies[n.RPL_LUSERME].params[-1] == "I have 3 clients and 0 servers"
    assert replies[n.RPL_LOCALUSERS].params[1:3] == ("3", "4")  # current 3, max 4 (gone left)
    assert replies[n.RPL_GLOBALUSERS].params[1:3] == ("3", "4")
