"""Replies, reactions and typing: checked, relayed, and (but typing) kept in history."""

from __future__ import annotations

from pathlib import Path

import pytest

from securechat.protocol.message import Message
from securechat.server.store import Store
from tests.unit.server.harness import FakeClient, Harness

TAGS = ("message-tags", "echo-message", "batch", "server-time", "draft/chathistory")


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(store=Store.open(tmp_path / "db.sqlite"))


def room_of(h: Harness, *clients: FakeClient, room: str = "#a") -> None:
    for client in clients:
        client.send(f"JOIN {room}")
    for client in clients:
        client.take()


def said(client: FakeClient, line: str) -> Message:
    """Send ``line``; its echo (the client has echo-message)."""
    client.send(line)
    echoes = [m for m in client.take() if m.command in ("PRIVMSG", "TAGMSG")]
    assert echoes, line
    return echoes[-1]


def history(client: FakeClient, room: str = "#a") -> list[Message]:
    client.take()
    client.send(f"CHATHISTORY LATEST {room} * 10")
    return [m for m in client.take() if m.command in ("PRIVMSG", "TAGMSG", "REDACT")]


def test_a_reply_keeps_its_tag_in_history(h: Harness) -> None:
    alice, bob = h.register("alice", TAGS), h.register("bob", TAGS)
    room_of(h, alice, bob)
    first = said(alice, "PRIVMSG #a :lunch?")
    said(bob, f"@+draft/reply={first.tags['msgid']} PRIVMSG #a :yes")
    stored = history(alice)
    assert [m.params[1] for m in stored] == ["lunch?", "yes"]
    assert stored[1].tags["+draft/reply"] == first.tags["msgid"]


def test_a_reaction_is_relayed_and_comes_back_with_its_message(h: Harness) -> None:
    alice, bob = h.register("alice", TAGS), h.register("bob", TAGS)
    room_of(h, alice, bob)
    first = said(alice, "PRIVMSG #a :shipped")
    said(alice, "PRIVMSG #a :next topic")
    parent = first.tags["msgid"]
    bob.send(f"@+draft/reply={parent};+draft/react=🎉 TAGMSG #a")
    relayed = alice.last("TAGMSG")
    assert relayed.tags["+draft/react"] == "🎉" and relayed.tags["+draft/reply"] == parent
    stored = history(alice)
    assert [m.command for m in stored] == ["PRIVMSG", "TAGMSG", "PRIVMSG"]
    assert stored[1].tags["msgid"] == relayed.tags["msgid"]
    assert stored[1].source is not None and stored[1].source.startswith("bob!")


def test_clients_without_message_tags_get_no_reactions_from_history(h: Harness) -> None:
    alice, bob = h.register("alice", TAGS), h.register("bob", TAGS)
    room_of(h, alice, bob)
    parent = said(alice, "PRIVMSG #a :shipped").tags["msgid"]
    bob.send(f"@+draft/reply={parent};+draft/react=🎉 TAGMSG #a")
    carol = h.register("carol", ("batch", "server-time"))
    carol.send("JOIN #a")
    replayed = [m.command for m in carol.take() if m.command in ("PRIVMSG", "TAGMSG")]
    assert replayed == ["PRIVMSG"]


def test_unreact_removes_the_stored_reaction(h: Harness) -> None:
    alice, bob = h.register("alice", TAGS), h.register("bob", TAGS)
    room_of(h, alice, bob)
    parent = said(alice, "PRIVMSG #a :vote").tags["msgid"]
    said(bob, f"@+draft/reply={parent};+draft/react=👍 TAGMSG #a")
    said(bob, f"@+draft/reply={parent};+draft/unreact=👍 TAGMSG #a")
    assert alice.last("TAGMSG").tags["+draft/unreact"] == "👍"
    assert [m.command for m in history(alice)] == ["PRIVMSG"]


def test_the_same_reaction_twice_is_kept_once(h: Harness) -> None:
    alice, bob = h.register("alice", TAGS), h.register("bob", TAGS)
    room_of(h, alice, bob)
    parent = said(alice, "PRIVMSG #a :vote").tags["msgid"]
    for _ in range(2):
        said(bob, f"@+draft/reply={parent};+draft/react=👍 TAGMSG #a")
    assert [m.command for m in history(alice)] == ["PRIVMSG", "TAGMSG"]


def test_reactions_per_message_are_bounded(tmp_path: Path) -> None:
    h = Harness(store=Store.open(tmp_path / "db.sqlite"), max_reactions_per_message=2)
    alice, bob = h.register("alice", TAGS), h.register("bob", TAGS)
    room_of(h, alice, bob)
    parent = said(alice, "PRIVMSG #a :vote").tags["msgid"]
    for emoji in ("1", "2"):
        said(bob, f"@+draft/reply={parent};+draft/react={emoji} TAGMSG #a")
    alice.take()
    bob.send(f"@+draft/reply={parent};+draft/react=3 TAGMSG #a")
    assert bob.last("FAIL").params[:4] == ("TAGMSG", "TOO_MANY_REACTIONS", "#a", parent)
    assert not alice.has("TAGMSG")


def test_a_reaction_to_another_rooms_message_is_not_linked_to_it(h: Harness) -> None:
    alice, bob = h.register("alice", TAGS), h.register("bob", TAGS)
    room_of(h, alice, bob)
    room_of(h, alice, room="#secret")
    parent = said(alice, "PRIVMSG #secret :private plans").tags["msgid"]
    said(bob, f"@+draft/reply={parent};+draft/react=👀 TAGMSG #a")  # relayed in #a only
    assert [m.command for m in history(alice, "#secret")] == ["PRIVMSG"]
    assert history(alice, "#a") == []


def test_typing_is_relayed_and_never_stored(h: Harness) -> None:
    alice, bob = h.register("alice", TAGS), h.register("bob", TAGS)
    room_of(h, alice, bob)
    bob.send("@+typing=active TAGMSG #a")
    assert alice.last("TAGMSG").tags["+typing"] == "active"
    said(bob, "@+typing=done PRIVMSG #a :hi")
    stored = history(alice)
    assert [m.command for m in stored] == ["PRIVMSG"] and "+typing" not in stored[0].tags


@pytest.mark.parametrize(
    ("tags", "bad"),
    [
        ("+draft/react=👍", "+draft/react"),
        ("+draft/reply=x;+draft/react=" + "a" * 65, "+draft/react"),
        ("+draft/reply=x;+draft/unreact=", "+draft/unreact"),
        ("+draft/reply=" + "m" * 65, "+draft/reply"),
        ("+typing=dancing", "+typing"),
    ],
)
def test_malformed_tags_get_fail_invalid_tag_and_are_not_relayed(
    h: Harness, tags: str, bad: str
) -> None:
    alice, bob = h.register("alice", TAGS), h.register("bob", TAGS)
    room_of(h, alice, bob)
    for command in ("TAGMSG #a", "PRIVMSG #a :text"):
        bob.send(f"@{tags} {command}")
        assert bob.last("FAIL").params[:4] == (command.split()[0], "INVALID_TAG", "#a", bad)
        assert not alice.has("TAGMSG") and not alice.has("PRIVMSG")
