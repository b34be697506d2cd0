"""Room moderation over real TLS: what an operator does to a noisy room, end to end."""

from __future__ import annotations

from collections.abc import Callable

from securechat.protocol import numerics as n
from tests.support import IrcClient

Connect = Callable[..., IrcClient]


def test_operator_bans_silences_kicks_and_keeps_out(connect: Connect) -> None:
    alice, bob = connect("alice"), connect("bob")
    alice.join("#mod")
    bob.join("#mod")
    alice.send("MODE #mod +b bob")
    assert bob.expect(r" MODE #mod ").params == ("#mod", "+b", "bob!*@*")
    bob.send("PRIVMSG #mod :spam")
    bob.expect(r" 404 bob #mod ")
    alice.send("KICK #mod bob :enough")
    assert bob.expect(r" KICK #mod ").params == ("#mod", "bob", "enough")
    bob.send("JOIN #mod")
    bob.expect(r" 474 bob #mod ")


def test_ban_list_is_listed_with_its_setter(connect: Connect) -> None:
    alice = connect("alice").join("#mod")
    alice.send("MODE #mod +b *!*@evil.example")
    setter = alice.expect(r" MODE #mod ").source
    alice.send("MODE #mod b")
    assert alice.expect(r" 367 ").params[2:4] == ("*!*@evil.example", setter)
    alice.expect(r" 368 alice #mod ")


def test_invite_only_room_admits_the_invited_and_notifies_ops(connect: Connect) -> None:
    alice, dave = connect("alice"), connect("dave", caps=("invite-notify",))
    carol = connect("carol")
    alice.join("#club")
    dave.join("#club")
    alice.send("MODE #club +io dave")
    dave.expect(r" MODE #club \+io ")
    carol.send("JOIN #club")
    carol.expect(r" 473 carol #club ")
    alice.send("INVITE carol #club")
    assert carol.expect(r" INVITE carol ").params == ("carol", "#club")
    assert dave.expect(r":alice!\S+ INVITE carol ").params == ("carol", "#club")
    carol.join("#club")


def test_key_and_limit_are_enforced_and_shown_to_members(connect: Connect) -> None:
    alice, bob, carol = connect("alice"), connect("bob"), connect("carol")
    alice.join("#k")
    alice.send("MODE #k +kl sesame 2")
    alice.expect(r" MODE #k ")
    bob.send("JOIN #k wrong")
    bob.expect(r" 475 bob #k ")
    bob.send("JOIN #k sesame")
    bob.expect(r" 366 bob #k ")
    carol.send("JOIN #k sesame")
    carol.expect(r" 471 carol #k ")
    alice.send("MODE #k")
    assert alice.expect(r" 324 ").params[2:] == ("+klnt", "sesame", "2")


def test_moderated_room_lets_only_voiced_members_speak(connect: Connect) -> None:
    alice, bob = connect("alice"), connect("bob")
    alice.join("#quiet")
    bob.join("#quiet")
    alice.send("MODE #quiet +m")
    bob.expect(r" MODE #quiet :\+m")
    bob.send("PRIVMSG #quiet :can I talk?")
    bob.expect(r" 404 bob #quiet ")
    alice.send("MODE #quiet +v bob")
    bob.expect(r" MODE #quiet \+v :bob")
    bob.send("PRIVMSG #quiet :now I can")
    assert alice.expect(r" PRIVMSG #quiet ").params[1] == "now I can"


def test_pathological_ban_masks_never_delay_a_bystander(connect: Connect) -> None:
    """Security review C1: with a backtracking regex, one JOIN against this ban froze the
    whole server for 43 s. Now each JOIN is answered and a bystander's PING meanwhile too."""
    op, bystander = connect("redosop"), connect("canary")
    op.join("#redos")
    op.send(f"MODE #redos +bb *a*a*a*a*a*a*a*a*a*b {'*a' * 7}*?b")
    op.expect(r" MODE #redos \+bb ")
    attacker = connect("a" * 30)
    for round_ in range(3):
        attacker.send("JOIN #redos")
        bystander.send(f"PING :canary{round_}")
        bystander.expect(rf" PONG \S+ :?canary{round_}", timeout=2.0)
        attacker.expect(r" 366 a+ #redos ")
        attacker.send("PART #redos")
        attacker.expect(r" PART :?#redos")


def test_invite_only_room_keeps_its_members_from_outsiders(connect: Connect) -> None:
    """Security review L6: NAMES of a +i room from outside listed its members."""
    alice, carol = connect("alice"), connect("carol")
    alice.join("#hidden")
    alice.send("MODE #hidden +i")
    alice.expect(r" MODE #hidden :?\+i")
    carol.send("NAMES #hidden")
    end = carol.expect(r" 366 carol #hidden ")
    assert not any(m.command == n.RPL_NAMREPLY for m in carol.seen) and end.params[1] == "#hidden"


def test_look_alike_room_name_is_refused_with_476(connect: Connect) -> None:
    """Security review L1: "#lobby" with a Cyrillic o was created and looked like #lobby."""
    mallory = connect("mallory")
    mallory.send("JOIN #l\u043ebby")
    reply = mallory.expect(r" 476 mallory ")
    assert "mix scripts" in reply.params[-1]
