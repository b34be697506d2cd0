"""WHOWAS (Modern IRC "WHOWAS message"): recent nicks, bounded and expiring."""

from __future__ import annotations

from securechat.protocol import numerics as n
from tests.unit.server.harness import Harness


def test_whowas_after_a_quit_answers_314_312_369() -> None:
    h = Harness()
    h.register("bob").send("QUIT :bye")
    replies = h.register("alice").send("WHOWAS bob").take()
    assert [m.command for m in replies] == [
        n.RPL_WHOWASUSER,
        n.RPL_WHOISSERVER,
        n.RPL_ENDOFWHOWAS,
    ]
    assert replies[0].params[1:] == ("bob", "~bob", "127.0.0.1", "*", "bob Real")
    assert replies[1].params[2] == "irc.test"


def test_whowas_remembers_the_old_nick_of_a_rename() -> None:
    h = Harness()
    h.register("bob").send("NICK robert")
    assert h.register("alice").send("WHOWAS bob").has(n.RPL_WHOWASUSER)


def test_whowas_of_an_unknown_nick_gets_406_then_369() -> None:
    replies = Harness().register("alice").send("WHOWAS ghost").take()
    assert [m.command for m in replies] == [n.ERR_WASNOSUCHNICK, n.RPL_ENDOFWHOWAS]


def test_whowas_count_limits_the_entries_newest_first() -> None:
    h = Harness()
    for realname in ("first", "second", "third"):
        h.connect().send("NICK bob").send(f"USER bob 0 * :{realname}").send("QUIT")
    alice = h.register("alice")
    rows = [m for m in alice.send("WHOWAS bob 2").take() if m.command == n.RPL_WHOWASUSER]
    assert [m.params[-1] for m in rows] == ["third", "second"]


def test_whowas_forgets_after_whowas_seconds() -> None:
    h = Harness(whowas_seconds=60.0)
    h.register("bob").send("QUIT")
    h.advance(61)
    assert h.register("alice").send("WHOWAS bob").has(n.ERR_WASNOSUCHNICK)


def test_whowas_keeps_at_most_whowas_entries() -> None:
    h = Harness(whowas_entries=2)
    for nick in ("u1", "u2", "u3"):
        h.register(nick).send("QUIT")
    assert len(h.core.whowas.entries) == 2
    assert h.register("alice").send("WHOWAS u1").has(n.ERR_WASNOSUCHNICK)


def test_whowas_without_a_nick_gets_431() -> None:
    assert Harness().register("alice").send("WHOWAS").has(n.ERR_NONICKNAMEGIVEN)
