"""Replies as Modern IRC (modern.ircdocs.horse) and RFC 2812 define them (issue 13,
"Replies that differ from the specs")."""

from __future__ import annotations

from securechat.protocol import numerics as n
from tests.unit.server.harness import Harness


def test_user_with_an_empty_realname_gets_461_and_no_welcome() -> None:
    """Modern IRC USER: ERR_NEEDMOREPARAMS when a parameter is missing or empty."""
    h = Harness()
    client = h.connect().send("NICK alice").send("USER alice 0 * :")
    reply = client.last(n.ERR_NEEDMOREPARAMS)
    assert reply.params[1] == "USER"
    assert not client.has(n.RPL_WELCOME)


def test_notice_to_a_missing_nick_or_room_gets_no_reply() -> None:
    """RFC 2812 §3.3.2: a NOTICE never causes an automatic reply, errors included."""
    h = Harness()
    alice = h.register("alice")
    alice.send("NOTICE nobody :hi").send("NOTICE #nowhere :hi").send("NOTICE alice")
    assert alice.take() == []


def test_notice_to_a_room_that_refuses_it_gets_no_404() -> None:
    h = Harness()
    h.register("bob").send("JOIN #a").send("MODE #a +n")
    carol = h.register("carol")
    assert carol.send("NOTICE #a :hi").take() == []
    assert carol.send("PRIVMSG #a :hi").has(n.ERR_CANNOTSENDTOCHAN)


def test_notice_still_reaches_the_good_targets_of_a_list() -> None:
    h = Harness()
    bob = h.register("bob")
    h.register("alice").send("NOTICE nobody,bob :hello")
    assert bob.last("NOTICE").params == ("bob", "hello")


def test_mode_o_for_a_nick_that_does_not_exist_gets_401() -> None:
    """Modern IRC MODE: 401 for an unknown nick; 441 only for one not in the room."""
    h = Harness()
    alice = h.register("alice").send("JOIN #a")
    alice.take()
    reply = alice.send("MODE #a +o ghost").last(n.ERR_NOSUCHNICK)
    assert reply.params[1] == "ghost"
    assert not alice.has(n.ERR_USERNOTINCHANNEL)


def test_mode_o_for_an_existing_nick_outside_the_room_gets_441() -> None:
    h = Harness()
    h.register("bob")
    alice = h.register("alice").send("JOIN #a")
    alice.take()
    reply = alice.send("MODE #a +o bob").last(n.ERR_USERNOTINCHANNEL)
    assert reply.params[1:3] == ("bob", "#a")


def test_mode_k_with_an_invalid_key_gets_696() -> None:
    """Modern IRC ERR_INVALIDMODEPARAM: "<client> <target> <mode char> <parameter> :<reason>"."""
    h = Harness()
    alice = h.register("alice").send("JOIN #a")
    alice.take()
    reply = alice.send("MODE #a +k :two words").last(n.ERR_INVALIDMODEPARAM)
    assert reply.params[1:3] == ("#a", "k") and len(reply.params) == 5
