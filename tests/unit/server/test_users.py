"""WHO, WHOIS, AWAY, LUSERS, PING and QUIT."""

from securechat.protocol import numerics as n
from tests.unit.server.harness import Harness


def test_who_room_lists_members_with_flags() -> None:
    h = Harness()
    alice, bob = h.register("alice"), h.register("bob")
    alice.send("JOIN #a")
    bob.send("JOIN #a")
    bob.send("AWAY :gone")
    alice.take()
    alice.send("WHO #a")
    replies = {m.params[5]: m.params[6] for m in alice.take() if m.command == n.RPL_WHOREPLY}
    assert replies == {"alice": "H@", "bob": "G"}


def test_who_nick_and_end_marker() -> None:
    h = Harness()
    h.register("bob")
    alice = h.register("alice").send("WHO bob")
    assert alice.commands() == [n.RPL_WHOREPLY, n.RPL_ENDOFWHO]


def test_whois_shows_user_rooms_server_secure_idle_and_end() -> None:
    h = Harness()
    bob = h.register("bob").send("JOIN #a")
    bob.send("AWAY :afk")
    alice = h.register("alice").send("WHOIS bob")
    assert alice.commands() == [
        n.RPL_WHOISUSER,
        n.RPL_WHOISCHANNELS,
        n.RPL_WHOISSERVER,
        n.RPL_AWAY,
        n.RPL_WHOISSECURE,
        n.RPL_WHOISIDLE,
        n.RPL_ENDOFWHOIS,
    ]


def test_whois_unknown_nick_gets_401_and_318() -> None:
    alice = Harness().register("alice").send("WHOIS ghost")
    assert alice.commands() == [n.ERR_NOSUCHNICK, n.RPL_ENDOFWHOIS]


def test_away_set_and_unset() -> None:
    h = Harness()
    alice = h.register("alice")
    assert alice.send("AWAY :lunch").has(n.RPL_NOWAWAY)
    assert alice.send("AWAY").has(n.RPL_UNAWAY)


def test_ping_gets_pong_with_the_token() -> None:
    alice = Harness().register("alice").send("PING :abc123")
    assert alice.last("PONG").params == ("irc.test", "abc123")


def test_ping_without_token_gets_409() -> None:
    assert Harness().register("alice").send("PING").has(n.ERR_NOORIGIN)


def test_lusers_counts_users_and_rooms() -> None:
    h = Harness()
    h.register("bob").send("JOIN #a")
    alice = h.register("alice").send("LUSERS")
    assert alice.last(n.RPL_LUSERCHANNELS).params[1] == "1"
    assert "2 users" in alice.last(n.RPL_LUSERCLIENT).params[-1]


def test_quit_is_broadcast_once_with_reason_and_closes() -> None:
    h = Harness()
    alice, bob = h.register("alice"), h.register("bob")
    alice.send("JOIN #a,#b")
    bob.send("JOIN #a,#b")
    bob.take()
    alice.send("QUIT :gone fishing")
    assert [m.params for m in bob.take() if m.command == "QUIT"] == [("Quit: gone fishing",)]
    assert alice.closed == "Quit: gone fishing" and alice.last("ERROR")
    assert h.core.nicks.get("alice") is None and h.core.rooms.get("#a") is not None
