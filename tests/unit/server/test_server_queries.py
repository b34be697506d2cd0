"""USERHOST, ISON, VERSION, TIME, ADMIN, INFO, LINKS and HELP, as Modern IRC defines them."""

from __future__ import annotations

from securechat.protocol import numerics as n
from securechat.server.commands import COMMANDS
from securechat.server.commands.help import HELP_TEXT
from tests.unit.server.harness import Harness


def test_userhost_lists_online_nicks_with_operator_and_away_marks() -> None:
    """Modern IRC RPL_USERHOST: ``nick[*]=(+|-)user@host``, ``-`` when away."""
    h = Harness()
    h.register("bob").send("AWAY :lunch")
    alice = h.register("alice")
    h.core.nicks.get("alice").oper = True  # type: ignore[union-attr]
    reply = alice.send("USERHOST alice bob ghost").last(n.RPL_USERHOST)
    assert reply.params[1] == "alice*=+~alice@127.0.0.1 bob=-~bob@127.0.0.1"


def test_userhost_answers_at_most_five_nicks() -> None:
    h = Harness()
    for name in "abcdef":
        h.register(f"u{name}")
    reply = h.register("alice").send("USERHOST ua ub uc ud ue uf").last(n.RPL_USERHOST)
    assert len(reply.params[1].split(" ")) == 5


def test_ison_answers_the_online_nicks_as_their_owners_spell_them() -> None:
    h = Harness()
    h.register("Bob")
    alice = h.register("alice")
    assert alice.send("ISON bob ghost alice").last(n.RPL_ISON).params[1] == "Bob alice"
    assert alice.send("ISON :ghost BOB").last(n.RPL_ISON).params[1] == "Bob"
    assert alice.send("ISON ghost").last(n.RPL_ISON).params[1] == ""


def test_version_answers_351_then_isupport() -> None:
    alice = Harness().register("alice")
    replies = alice.send("VERSION").take()
    assert replies[0].command == n.RPL_VERSION and replies[0].params[2] == "irc.test"
    assert n.RPL_ISUPPORT in [m.command for m in replies[1:]]


def test_a_server_name_other_than_ours_gets_402() -> None:
    alice = Harness().register("alice")
    for command in ("VERSION", "TIME", "ADMIN", "INFO"):
        assert alice.send(f"{command} elsewhere.example").last(n.ERR_NOSUCHSERVER)
    assert alice.send("TIME irc.test").has(n.RPL_TIME)


def test_time_answers_391_with_server_timestamp_and_text() -> None:
    h = Harness()
    reply = h.register("alice").send("TIME").last(n.RPL_TIME)
    assert reply.params[1] == "irc.test" and reply.params[2] == str(int(h.now))
    assert reply.params[-1]


def test_admin_answers_256_to_259() -> None:
    commands = Harness().register("alice").send("ADMIN").commands()
    assert commands == [n.RPL_ADMINME, n.RPL_ADMINLOC1, n.RPL_ADMINLOC2, n.RPL_ADMINEMAIL]


def test_info_ends_with_374() -> None:
    commands = Harness().register("alice").send("INFO").commands()
    assert commands[-1] == n.RPL_ENDOFINFO and set(commands[:-1]) == {n.RPL_INFO}


def test_links_lists_only_this_server() -> None:
    replies = Harness().register("alice").send("LINKS").take()
    assert [m.command for m in replies] == [n.RPL_LINKS, n.RPL_ENDOFLINKS]
    assert replies[0].params[1:3] == ("irc.test", "irc.test")


def test_help_for_a_command_answers_704_705_706() -> None:
    alice = Harness().register("alice")
    replies = alice.send("HELP privmsg").take()
    assert [m.command for m in replies] == [n.RPL_HELPSTART, n.RPL_HELPTXT, n.RPL_ENDOFHELP]
    assert {m.params[1] for m in replies} == {"PRIVMSG"}
    assert replies[0].params[2].startswith("PRIVMSG <target>")


def test_help_alone_answers_the_index_and_helpop_is_the_same() -> None:
    alice = Harness().register("alice")
    assert alice.send("HELP").take()[0].params[1] == "*"
    assert alice.send("HELPOP who").has(n.RPL_HELPSTART)


def test_help_on_an_unknown_subject_gets_524() -> None:
    reply = Harness().register("alice").send("HELP frobnicate").last(n.ERR_HELPNOTFOUND)
    assert reply.params[1] == "FROBNICATE"


def test_every_command_has_a_help_text() -> None:
    assert set(COMMANDS) <= set(HELP_TEXT)
