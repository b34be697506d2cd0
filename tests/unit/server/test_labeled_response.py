"""labeled-response (https://ircv3.net/specs/extensions/labeled-response)."""

from __future__ import annotations

from securechat.protocol import numerics as n
from securechat.server.config import OperBlock
from securechat.server.passwords import hash_password
from tests.unit.server.harness import Harness

CAPS = ("labeled-response", "batch", "message-tags")


def test_a_single_reply_carries_the_label() -> None:
    alice = Harness().register("alice", caps=CAPS)
    [pong] = alice.send("@label=abc PING :x").take()
    assert pong.command == "PONG" and pong.tags["label"] == "abc"


def test_no_reply_gets_an_ack_with_the_label() -> None:
    alice = Harness().register("alice", caps=CAPS)
    [ack] = alice.send("@label=q1 PONG :x").take()
    assert ack.command == "ACK" and ack.tags == {"label": "q1"}


def test_several_replies_come_in_a_labeled_response_batch() -> None:
    alice = Harness().register("alice", caps=CAPS)
    replies = alice.send("@label=w LUSERS").take()
    opening, closing = replies[0], replies[-1]
    assert opening.command == "BATCH" and opening.tags["label"] == "w"
    ref = opening.params[0].removeprefix("+")
    assert opening.params[1] == "labeled-response"
    assert closing.command == "BATCH" and closing.params == (f"-{ref}",)
    inner = replies[1:-1]
    assert inner and all(m.tags.get("batch") == ref for m in inner)
    assert n.RPL_LUSERCLIENT in [m.command for m in inner]


def test_an_error_reply_is_labeled_too() -> None:
    alice = Harness().register("alice", caps=CAPS)
    [error] = alice.send("@label=e FROB").take()
    assert error.command == n.ERR_UNKNOWNCOMMAND and error.tags["label"] == "e"


def test_echo_message_is_the_labeled_reply_and_others_get_no_label() -> None:
    h = Harness()
    bob = h.register("bob", caps=("message-tags",))
    alice = h.register("alice", caps=(*CAPS, "echo-message"))
    [echo] = alice.send("@label=m PRIVMSG bob :hi").take()
    assert echo.command == "PRIVMSG" and echo.tags["label"] == "m"
    assert "label" not in bob.last("PRIVMSG").tags


def test_an_offloaded_command_is_labeled_after_its_continuation() -> None:
    """OPER's check runs off the loop; its 381 and MODE come in the labeled batch."""
    h = Harness(opers={"root": OperBlock(hash_password("pw-long-enough"))})
    alice = h.register("alice", caps=CAPS)
    replies = alice.send("@label=o OPER root pw-long-enough").take()
    assert replies[0].command == "BATCH" and replies[0].tags["label"] == "o"
    assert [m.command for m in replies[1:-1]] == [n.RPL_YOUREOPER, "MODE"]


def test_without_the_cap_the_label_is_ignored() -> None:
    alice = Harness().register("alice", caps=("message-tags",))
    [pong] = alice.send("@label=abc PING :x").take()
    assert "label" not in pong.tags


def test_the_cap_is_offered() -> None:
    client = Harness().connect().send("CAP LS 302")
    assert "labeled-response" in client.last("CAP").params[-1].split(" ")
