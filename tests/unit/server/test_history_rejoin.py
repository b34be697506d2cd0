"""Replay on join to clients without batch (irssi, WeeChat 3.8): fewer notices, none twice."""

from __future__ import annotations

from pathlib import Path

from securechat.protocol.message import Message, serialize
from securechat.server.store import Store
from tests.unit.server.harness import Harness
from tests.unit.server.test_history import in_room, said


def replayed(lines: list[Message]) -> list[str]:
    """The texts of the replayed ``[HH:MM:SS] <nick> text`` notices."""
    return [m.params[1].split("> ", 1)[1] for m in lines if m.command == "NOTICE"]


def test_a_rejoin_replays_only_messages_newer_than_the_last_replay(tmp_path: Path) -> None:
    h = Harness(store=Store.open(tmp_path / "db.sqlite"))
    alice = h.register("alice")
    in_room(alice)
    said(h, alice, "one", "two")
    bob = h.register("bob")
    bob.send("JOIN #a")
    assert replayed(bob.take()) == ["one", "two"]
    bob.send("PART #a")
    said(h, alice, "three")
    bob.send("JOIN #a")
    assert replayed(bob.take()) == ["three"]
    bob.send("PART #a").send("JOIN #a")
    assert replayed(bob.take()) == []


def test_a_rejoin_does_not_replay_what_was_seen_live(tmp_path: Path) -> None:
    """Messages said while bob was in the room reached him live: not again on his rejoin."""
    h = Harness(store=Store.open(tmp_path / "db.sqlite"))
    alice = h.register("alice")
    in_room(alice)
    bob = h.register("bob")
    bob.send("JOIN #a")
    said(h, alice, "live one", "live two")
    bob.send("PART #a")
    said(h, alice, "while away")
    bob.take()
    bob.send("JOIN #a")
    assert replayed(bob.take()) == ["while away"]


def test_a_kicked_member_is_not_replayed_what_it_saw_live(tmp_path: Path) -> None:
    h = Harness(store=Store.open(tmp_path / "db.sqlite"))
    alice = h.register("alice")
    in_room(alice)
    bob = h.register("bob")
    bob.send("JOIN #a")
    said(h, alice, "seen live")
    alice.send("KICK #a bob :out")
    bob.take()
    bob.send("JOIN #a")
    assert replayed(bob.take()) == []


def test_a_new_connection_gets_the_replay_again(tmp_path: Path) -> None:
    h = Harness(store=Store.open(tmp_path / "db.sqlite"))
    alice = h.register("alice")
    in_room(alice)
    said(h, alice, "one")
    bob = h.register("bob")
    bob.send("JOIN #a")
    assert replayed(bob.take()) == ["one"]
    bob.send("QUIT :bye")
    again = h.register("bob")
    again.send("JOIN #a")
    assert replayed(again.take()) == ["one"]


def test_clients_without_batch_get_at_most_history_on_join_notices(tmp_path: Path) -> None:
    h = Harness(store=Store.open(tmp_path / "db.sqlite"))
    alice = h.register("alice")
    in_room(alice)
    said(h, alice, *[f"m{i}" for i in range(15)])
    bob = h.register("bob")
    bob.send("JOIN #a")
    assert replayed(bob.take()) == [f"m{i}" for i in range(5, 15)]  # the default, 10
    carol = h.register("carol", caps=("batch", "server-time"))
    carol.send("JOIN #a")
    assert len([m for m in carol.take() if m.command == "PRIVMSG"]) == 15  # history_on_join


def test_a_replayed_notice_too_long_for_one_line_is_cut_visibly(tmp_path: Path) -> None:
    """The [HH:MM:SS] <nick> stamp can push a full-length message past 512 bytes."""
    h = Harness(store=Store.open(tmp_path / "db.sqlite"))
    alice = h.register("alice")
    in_room(alice)
    text = "é" * 236  # 472 bytes: fits the relayed PRIVMSG, not the stamped NOTICE
    alice.send(f"PRIVMSG #a :{text}")
    bob = h.register("bob")
    bob.send("JOIN #a")
    (notice,) = [m for m in bob.take() if m.command == "NOTICE"]
    assert notice.params[1].endswith("é […]")
    assert len(serialize(notice)) <= 512
