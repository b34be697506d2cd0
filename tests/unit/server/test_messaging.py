"""PRIVMSG and NOTICE routing, tags and echo."""

from securechat.protocol import numerics as n
from tests.unit.server.harness import Harness


def room_of(h: Harness, *clients):  # type: ignore[no-untyped-def]
    for client in clients:
        client.send("JOIN #a")
    for client in clients:
        client.take()


def test_room_message_reaches_every_other_member_once() -> None:
    h = Harness()
    alice, bob, carol = h.register("alice"), h.register("bob"), h.register("carol")
    room_of(h, alice, bob, carol)
    alice.send("PRIVMSG #a :hello")
    assert alice.take() == []
    for client in (bob, carol):
        (message,) = client.take()
        assert message.params == ("#a", "hello") and message.source == "alice!~alice@127.0.0.1"


def test_echo_message_returns_the_message_to_its_sender_with_the_same_msgid() -> None:
    h = Harness()
    alice = h.register("alice", caps=("echo-message", "message-tags"))
    bob = h.register("bob", caps=("message-tags",))
    room_of(h, alice, bob)
    alice.send("PRIVMSG #a :hi")
    assert alice.last("PRIVMSG").tags["msgid"] == bob.last("PRIVMSG").tags["msgid"]


def test_server_time_and_msgid_only_for_clients_that_asked() -> None:
    h = Harness()
    plain = h.register("plain")
    timed = h.register("timed", caps=("server-time",))
    tagged = h.register("tagged", caps=("message-tags", "server-time"))
    sender = h.register("sender")
    room_of(h, plain, timed, tagged, sender)
    sender.send("@+draft/reply=m1;+draft/react=x PRIVMSG #a :hi")
    assert plain.last("PRIVMSG").tags == {}
    assert set(timed.last("PRIVMSG").tags) == {"time"}
    assert set(tagged.last("PRIVMSG").tags) == {"msgid", "time", "+draft/reply", "+draft/react"}


def test_client_tags_that_are_not_client_only_are_dropped() -> None:
    h = Harness()
    tagged = h.register("tagged", caps=("message-tags",))
    sender = h.register("sender")
    room_of(h, tagged, sender)
    sender.send("@msgid=forged;+ok=1 PRIVMSG #a :hi")
    tags = tagged.last("PRIVMSG").tags
    assert tags["msgid"] != "forged" and tags["+ok"] == "1"


def test_private_message_reaches_only_the_target() -> None:
    h = Harness()
    alice, bob, carol = h.register("alice"), h.register("bob"), h.register("carol")
    alice.send("PRIVMSG BOB :psst")
    assert bob.last("PRIVMSG").params == ("bob", "psst")
    assert carol.take() == [] and alice.take() == []


def test_ctcp_action_passes_through_untouched() -> None:
    h = Harness()
    alice, bob = h.register("alice"), h.register("bob")
    alice.send("PRIVMSG bob :\x01ACTION waves\x01")
    assert bob.last("PRIVMSG").params[1] == "\x01ACTION waves\x01"


def test_unknown_nick_gets_401() -> None:
    assert Harness().register("alice").send("PRIVMSG ghost :hi").has(n.ERR_NOSUCHNICK)


def test_unknown_room_gets_403() -> None:
    assert Harness().register("alice").send("PRIVMSG #ghost :hi").has(n.ERR_NOSUCHCHANNEL)


def test_outsider_cannot_send_to_plus_n_room() -> None:
    h = Harness()
    alice = h.register("alice")
    room_of(h, alice)
    assert h.register("bob").send("PRIVMSG #a :hi").has(n.ERR_CANNOTSENDTOCHAN)


def test_no_recipient_gets_411_and_no_text_gets_412() -> None:
    h = Harness()
    alice = h.register("alice")
    assert alice.send("PRIVMSG").has(n.ERR_NORECIPIENT)
    assert alice.send("PRIVMSG bob").has(n.ERR_NOTEXTTOSEND)


def test_too_many_targets_gets_407() -> None:
    h = Harness(max_targets=2)
    assert h.register("alice").send("PRIVMSG a,b,c :hi").has(n.ERR_TOOMANYTARGETS)


def test_several_targets_each_get_the_message() -> None:
    h = Harness()
    alice, bob, carol = h.register("alice"), h.register("bob"), h.register("carol")
    alice.send("PRIVMSG bob,carol,ghost :hi")
    assert bob.has("PRIVMSG") and carol.has("PRIVMSG") and alice.has(n.ERR_NOSUCHNICK)


def test_privmsg_to_away_user_answers_301_but_notice_does_not() -> None:
    h = Harness()
    alice, bob = h.register("alice"), h.register("bob")
    bob.send("AWAY :lunch")
    alice.send("PRIVMSG bob :hi")
    assert alice.last(n.RPL_AWAY).params[-1] == "lunch"
    alice.take()
    alice.send("NOTICE bob :hi")
    assert alice.take() == []
