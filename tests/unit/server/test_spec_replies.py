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


def test_invalid_utf8_gets_fail_invalid_utf8_and_is_not_relayed() -> None:
    """IRCv3 UTF8ONLY: ``FAIL <command> INVALID_UTF8``; the message goes nowhere."""
    h = Harness()
    bob = h.register("bob")
    alice = h.register("alice")
    alice.send(b"PRIVMSG bob :caf\xe9")
    fail = alice.last("FAIL")
    assert fail.params[:2] == ("PRIVMSG", "INVALID_UTF8")
    assert not bob.has("PRIVMSG")


def test_isupport_advertises_utf8only_and_bot() -> None:
    h = Harness()
    client = h.connect().send("NICK alice").send("USER alice 0 * :Alice")
    tokens = [t for m in client.take() if m.command == n.RPL_ISUPPORT for t in m.params[1:-1]]
    assert "UTF8ONLY" in tokens and "BOT=B" in tokens


# ---- user modes (Modern IRC "User Modes", IRCv3 bot mode) -------------------------------------


def test_mode_own_nick_answers_221_with_the_modes_set() -> None:
    h = Harness()
    alice = h.register("alice").send("MODE alice +iwB")
    assert alice.last("MODE").params == ("alice", "+iwB")
    assert alice.send("MODE alice").last(n.RPL_UMODEIS).params[1] == "+iwB"


def test_plus_o_by_mode_is_ignored() -> None:
    """Modern IRC: a user making itself an operator with +o "should be ignored"."""
    h = Harness()
    alice = h.register("alice").send("MODE alice +o")
    assert not alice.has("MODE") and not h.core.nicks.get("alice").oper  # type: ignore[union-attr]


def test_unknown_user_mode_letter_gets_one_501() -> None:
    h = Harness()
    alice = h.register("alice").send("MODE alice +xyi")
    replies = alice.take()
    assert [m.command for m in replies].count(n.ERR_UMODEUNKNOWNFLAG) == 1
    assert [m.params for m in replies if m.command == "MODE"] == [("alice", "+i")]


def test_a_bots_messages_carry_the_bot_tag_and_whois_says_335() -> None:
    h = Harness()
    reader = h.register("reader", caps=("message-tags",))
    plain = h.register("plain")
    bot = h.register("bot").send("MODE bot +B")
    bot.send("PRIVMSG reader :beep").send("PRIVMSG plain :beep")
    assert "bot" in reader.last("PRIVMSG").tags
    assert plain.last("PRIVMSG").tags == {}
    whois = plain.send("WHOIS bot").last(n.RPL_WHOISBOT)
    assert whois.params[1] == "bot"


def test_who_shows_the_bot_flag() -> None:
    h = Harness()
    h.register("bot").send("MODE bot +B")
    reply = h.register("alice").send("WHO bot").last(n.RPL_WHOREPLY)
    assert reply.params[6] == "HB"


def test_client_tag_data_over_4094_bytes_gets_417_and_the_client_stays() -> None:
    """IRCv3 message-tags "Size limit": 417 ERR_INPUTTOOLONG, nothing relayed."""
    h = Harness()
    bob = h.register("bob", caps=("message-tags",))
    alice = h.register("alice", caps=("message-tags",))
    alice.send("@+big=" + "x" * 4095 + " PRIVMSG bob :hi")
    assert alice.has(n.ERR_INPUTTOOLONG) and alice.closed is None
    assert not bob.has("PRIVMSG")
    alice.send("@+ok=" + "x" * 4000 + " PRIVMSG bob :hi")
    assert bob.last("PRIVMSG").tags["+ok"] == "x" * 4000
