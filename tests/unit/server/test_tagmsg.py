"""TAGMSG (IRCv3 message-tags, "The TAGMSG tag-only message")."""

from __future__ import annotations

from securechat.protocol import numerics as n
from tests.unit.server.harness import Harness

TAGS = ("message-tags",)


def test_tagmsg_to_a_room_reaches_message_tags_members_only_with_client_tags() -> None:
    h = Harness()
    tagged = h.register("tagged", caps=TAGS).send("JOIN #a")
    plain = h.register("plain").send("JOIN #a")
    alice = h.register("alice", caps=TAGS).send("JOIN #a")
    tagged.take(), plain.take(), alice.take()
    alice.send("@+typing=active;+draft/reply=m1;+draft/react=x;server=no TAGMSG #a")
    relayed = tagged.last("TAGMSG")
    assert relayed.params == ("#a",) and (relayed.source or "").startswith("alice!")
    assert relayed.tags["+typing"] == "active" and relayed.tags["+draft/react"] == "x"
    assert "server" not in relayed.tags and "msgid" in relayed.tags
    assert not plain.has("TAGMSG")
    assert not alice.has("TAGMSG")  # no echo-message


def test_tagmsg_comes_back_to_the_sender_with_echo_message() -> None:
    h = Harness()
    bob = h.register("bob", caps=TAGS)
    alice = h.register("alice", caps=(*TAGS, "echo-message"))
    alice.send("@+reply=abc TAGMSG bob")
    assert bob.last("TAGMSG").tags["+reply"] == "abc"
    assert alice.last("TAGMSG").params == ("bob",)


def test_tagmsg_to_a_missing_target_gets_401_or_403() -> None:
    alice = Harness().register("alice", caps=TAGS)
    assert alice.send("@+typing=active TAGMSG ghost").has(n.ERR_NOSUCHNICK)
    assert alice.send("@+typing=active TAGMSG #nowhere").has(n.ERR_NOSUCHCHANNEL)


def test_tagmsg_to_a_room_that_refuses_outsiders_gets_404() -> None:
    h = Harness()
    h.register("bob").send("JOIN #a")
    alice = h.register("alice", caps=TAGS)
    assert alice.send("@+typing=active TAGMSG #a").has(n.ERR_CANNOTSENDTOCHAN)
