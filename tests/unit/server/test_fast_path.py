"""The fan-out fast path keeps behaviour: cached room recipients follow joins, parts and CAP
changes; the sender gets its own message only with echo-message; ``data_dir = none`` works."""

from __future__ import annotations

from securechat.server.config import build_config, validate
from tests.unit.server.harness import FakeClient, Harness


def _room_of_three(h: Harness) -> tuple[FakeClient, FakeClient, FakeClient]:
    alice, bob, carol = (h.register(nick) for nick in ("alice", "bob", "carol"))
    for client in (alice, bob, carol):
        client.send("JOIN #r")
    for client in (alice, bob, carol):
        client.take()
    return alice, bob, carol


def test_a_member_who_parts_stops_receiving_and_a_new_one_starts() -> None:
    h = Harness()
    alice, bob, carol = _room_of_three(h)
    alice.send("PRIVMSG #r :one")  # fills the room's recipient cache
    bob.send("PART #r")
    dave = h.register("dave").send("JOIN #r")
    alice.take(), bob.take(), carol.take(), dave.take()
    alice.send("PRIVMSG #r :two")
    assert [m.params[-1] for m in bob.take() if m.command == "PRIVMSG"] == []
    assert [m.params[-1] for m in dave.take() if m.command == "PRIVMSG"] == ["two"]
    assert [m.params[-1] for m in carol.take() if m.command == "PRIVMSG"] == ["two"]


def test_a_cap_change_after_joining_changes_the_tags_a_member_gets() -> None:
    h = Harness()
    alice, bob, _ = _room_of_three(h)
    alice.send("PRIVMSG #r :plain")
    assert bob.last("PRIVMSG").tags == {}
    bob.send("CAP REQ :server-time")
    bob.take()
    alice.send("PRIVMSG #r :timed")
    assert "time" in bob.last("PRIVMSG").tags


def test_the_sender_gets_its_own_message_only_with_echo_message() -> None:
    h = Harness()
    alice, bob, _ = _room_of_three(h)
    alice.send("PRIVMSG #r :quiet")
    assert not alice.has("PRIVMSG")
    alice.send("CAP REQ :echo-message")
    alice.take()
    alice.send("PRIVMSG #r :echoed")
    assert alice.last("PRIVMSG").params[-1] == "echoed"
    assert bob.last("PRIVMSG").params[-1] == "echoed"


def test_data_dir_none_turns_the_store_off() -> None:
    flags = {"data_dir": validate("data_dir", "none")}
    assert build_config(flags).data_dir is None


def test_a_speaker_who_leaves_and_comes_back_is_heard_by_the_members_of_then() -> None:
    h = Harness()
    alice, bob, carol = _room_of_three(h)
    alice.send("PRIVMSG #r :before")  # alice's view of the room is cached now
    carol.send("PART #r")
    dave = h.register("dave").send("JOIN #r")
    for client in (alice, bob, carol, dave):
        client.take()
    alice.send("PRIVMSG #r :after")
    assert not carol.has("PRIVMSG")
    assert dave.last("PRIVMSG").params[-1] == "after"
    assert bob.last("PRIVMSG").params[-1] == "after"
    assert not alice.has("PRIVMSG")
