"""Ban and K-line masks: bounded when set and when restored, matched without backtracking
(security review C1: one JOIN against ``*a*a*a*a*a*a*a*a*a*b`` froze the server for 43 s)."""

from __future__ import annotations

from pathlib import Path

import pytest

from securechat.protocol import numerics as n
from securechat.server.config import ConfigError, OperBlock, validate
from securechat.server.passwords import hash_password
from securechat.server.store import KLine, Store
from tests.unit.server.harness import FakeClient, Harness

REDOS_MASK = "*a*a*a*a*a*a*a*a*a*b"  # 10 wildcards: within the default limit of 16
A_NICK = "a" * 30
PASSWORD = "correct horse"


def room_with_operator(h: Harness) -> FakeClient:
    alice = h.register("alice").send("JOIN #a")
    alice.take()
    return alice


def test_pathological_ban_is_matched_and_the_join_answered() -> None:
    h = Harness()
    alice = room_with_operator(h)
    alice.send(f"MODE #a +b {REDOS_MASK}").send(f"MODE #a +b *{'a?' * 7}b*")
    assert [m.command for m in alice.take()] == ["MODE", "MODE"]
    attacker = h.connect().send(f"NICK {A_NICK}").send(f"USER {'a' * 18} 0 * :x")
    attacker.take()
    assert attacker.send("JOIN #a").has(n.RPL_ENDOFNAMES)  # the masks need a "b": not banned


def test_pathological_ban_still_bans_what_it_matches() -> None:
    h = Harness()
    alice = room_with_operator(h)
    alice.send(f"MODE #a +b {REDOS_MASK}")
    attacker = h.connect().send(f"NICK {A_NICK[1:]}b").send("USER a 0 * :x")
    attacker.take()
    assert attacker.send("JOIN #a").has(n.ERR_BANNEDFROMCHAN)


def test_ban_mask_with_too_many_wildcards_gets_696_with_the_limit() -> None:
    h = Harness(max_mask_wildcards=4)
    alice = room_with_operator(h)
    alice.send("MODE #a +b *a*a*a*b")  # completed to *a*a*a*b!*@*: 6 wildcards
    reply = alice.last(n.ERR_INVALIDMODEPARAM)
    assert reply.params[1:3] == ("#a", "b") and "more than 4 wildcards" in reply.params[-1]
    assert not alice.has("MODE") and h.core.rooms.get("#a").bans == []  # type: ignore[union-attr]


def test_ban_mask_longer_than_the_limit_gets_696() -> None:
    h = Harness(max_mask_length=20)
    alice = room_with_operator(h)
    alice.send(f"MODE #a +b {'x' * 20}")  # 24 characters once completed with !*@*
    assert "longer than 20 characters" in alice.last(n.ERR_INVALIDMODEPARAM).params[-1]


def test_repeated_stars_count_once() -> None:
    h = Harness(max_mask_wildcards=3)
    alice = room_with_operator(h)
    assert alice.send("MODE #a +b ****!*@*").last("MODE").params[2] == "****!*@*"


@pytest.mark.parametrize("key", ["max_mask_length", "max_mask_wildcards"])
def test_mask_limits_must_be_positive(key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        validate(key, 0)


# ---- bans restored at start ---------------------------------------------------------------


def test_restore_skips_saved_bans_beyond_todays_limits(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    h = Harness(store=Store.open(db))
    alice = h.register("alice").send("PRIVMSG NickServ :REGISTER correct-horse")
    alice.send("JOIN #a").send("PRIVMSG ChanServ :REGISTER #a")
    alice.send(f"MODE #a +bb {REDOS_MASK} carol")
    assert h.store is not None
    h.store.close()
    again = Harness(store=Store.open(db), max_mask_wildcards=4)
    assert again.store is not None
    again.apply(again.core.restore_rooms(again.store.load_rooms(), again.now))
    room = again.core.rooms.get("#a")
    assert room is not None and [ban.mask for ban in room.bans] == ["carol!*@*"]


def test_stored_klines_beyond_the_limits_are_skipped_at_start() -> None:
    h = Harness(max_mask_wildcards=4)
    h.core.load_klines(
        [KLine("*a*a*a*a*@*", "x", "op", 0.0), KLine("~bob@*", "go away", "op", 0.0)]
    )
    assert list(h.core.klines) == ["~bob@*"]


# ---- K-lines --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def opers() -> dict[str, OperBlock]:
    return {"root": OperBlock(hash_password(PASSWORD), hosts=("*a*a*a*a*a*a*a*a*a*@127.0.0.1",))}


def test_kline_with_too_many_wildcards_is_refused(opers: dict[str, OperBlock]) -> None:
    h = Harness(opers=opers, max_mask_wildcards=4)
    alice = h.register("alaaaaaaaaaaaa").send(f"OPER root :{PASSWORD}")
    assert alice.has(n.RPL_YOUREOPER)
    alice.send("KLINE *a*a*a*a*a@* :no")
    assert (
        "more than 4 wildcards" in alice.last(n.ERR_NEEDMOREPARAMS).params[-1] and not h.core.klines
    )


def test_pathological_kline_and_oper_masks_are_matched(opers: dict[str, OperBlock]) -> None:
    h = Harness(opers=opers)
    alice = h.register("alice").send(f"OPER root :{PASSWORD}")
    assert alice.has(n.ERR_NOOPERHOST)  # ~alice@127.0.0.1 has too few "a"s for the oper mask
    oper = h.register("alaaaaaaaaaaaa").send(f"OPER root :{PASSWORD}")
    assert oper.has(n.RPL_YOUREOPER)
    victim = h.connect().send(f"NICK {A_NICK}").send(f"USER {'a' * 18} 0 * :x")
    oper.send(f"KLINE {REDOS_MASK}@* :no")  # needs a "b" in the user name
    assert victim.closed is None and oper.last("NOTICE").params[-1].startswith("Added K-line")
