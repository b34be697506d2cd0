"""ServerCore dispatch rules, error handling, disconnects and timers."""

import logging

import pytest

from securechat.protocol import numerics as n
from securechat.protocol.framing import TOO_LONG
from securechat.server import core as core_module
from securechat.server.commands import COMMANDS, Command
from tests.unit.server.harness import Harness


def test_unknown_command_gets_421() -> None:
    assert Harness().register("alice").send("FROB x").last(n.ERR_UNKNOWNCOMMAND).params[1] == "FROB"


def test_missing_params_get_461() -> None:
    assert (
        Harness().register("alice").send("KICK #a").last(n.ERR_NEEDMOREPARAMS).params[1] == "KICK"
    )


def test_overlong_line_gets_417_and_connection_lives() -> None:
    h = Harness()
    alice = h.register("alice")
    h.feed(alice.conn, TOO_LONG)
    assert alice.has(n.ERR_INPUTTOOLONG) and alice.closed is None
    assert alice.send("PING x").has("PONG")


@pytest.mark.logs_error
def test_a_bug_in_a_handler_gets_400_without_details_and_is_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setitem(COMMANDS, "AWAY", Command(broken))
    h = Harness()
    alice = h.register("alice")
    with caplog.at_level(logging.ERROR, logger="securechat"):
        alice.send("AWAY :x")
    reply = alice.last(n.ERR_UNKNOWNERROR)
    assert "secret" not in " ".join(reply.params)
    assert "secret internals" in caplog.text
    assert alice.closed is None and alice.send("PING y").has("PONG")


def test_abrupt_disconnect_broadcasts_quit_and_frees_nick_and_empty_rooms() -> None:
    h = Harness()
    alice, bob = h.register("alice"), h.register("bob")
    alice.send("JOIN #a,#solo")
    bob.send("JOIN #a")
    bob.take()
    h.apply(h.core.disconnect(alice.conn, "Connection closed", h.now))
    assert bob.last("QUIT").params == ("Connection closed",)
    assert h.core.nicks.get("alice") is None and h.core.rooms.get("#solo") is None


def test_disconnect_of_unregistered_client_broadcasts_nothing() -> None:
    h = Harness()
    bob = h.register("bob")
    ghost = h.connect().send("NICK ghost")
    h.apply(h.core.disconnect(ghost.conn, "Connection closed", h.now))
    assert bob.take() == [] and h.core.nicks.get("ghost") is None


def test_registration_timeout_closes_unregistered_connections() -> None:
    h = Harness(registration_timeout=10.0)
    client = h.connect().send("NICK slow")
    h.advance(5)
    assert client.closed is None
    h.advance(6)
    assert client.closed == "Registration timed out" and client.last("ERROR")


def test_idle_client_is_pinged_then_closed_on_ping_timeout() -> None:
    h = Harness(ping_interval=60.0, ping_timeout=30.0)
    alice = h.register("alice")
    h.advance(61)
    assert alice.last("PING").params == ("irc.test",)
    h.advance(31)
    assert alice.closed is not None and alice.closed.startswith("Ping timeout")


@pytest.mark.logs_error
def test_a_broken_timer_does_not_stop_the_idle_ping_or_the_registration_timeout(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_: object) -> None:
        raise KeyError("guest renamer bug")

    monkeypatch.setattr(core_module, "account_timers", broken)
    h = Harness(ping_interval=60.0, ping_timeout=30.0, registration_timeout=90.0)
    alice = h.register("alice")
    slow = h.connect().send("NICK slow")
    h.advance(61)
    assert alice.last("PING").params == ("irc.test",)
    h.advance(31)
    assert alice.closed is not None and alice.closed.startswith("Ping timeout")
    assert slow.closed == "Registration timed out"
    assert "bug in account timers" in caplog.text


@pytest.mark.logs_error
def test_a_bug_in_connect_or_disconnect_is_logged_and_the_server_carries_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    h = Harness()
    alice = h.register("alice")

    def broken(*_: object) -> None:
        raise RuntimeError("release bug")

    monkeypatch.setattr(type(h.core.addresses), "release", broken)
    h.apply(h.core.disconnect(alice.conn, "Connection closed", h.now))
    assert "bug in disconnect" in caplog.text
    bob = h.register("bob")
    assert bob.send("PING x").has("PONG")


def test_answering_ping_keeps_the_client() -> None:
    h = Harness(ping_interval=60.0, ping_timeout=30.0)
    alice = h.register("alice")
    h.advance(61)
    alice.send("PONG :irc.test")
    h.advance(31)
    assert alice.closed is None


def test_shutdown_sends_error_to_everyone_and_closes() -> None:
    h = Harness()
    alice, bob = h.register("alice"), h.register("bob")
    h.apply(h.core.shutdown("Server shutting down", h.now))
    for client in (alice, bob):
        assert "Server shutting down" in client.last("ERROR").params[0]
        assert client.closed == "Server shutting down"
    assert h.core.sessions == {}


def test_lines_after_close_are_ignored() -> None:
    h = Harness()
    alice = h.register("alice").send("QUIT")
    assert h.core.receive_line(alice.conn, b"PRIVMSG x :y", h.now) == []
