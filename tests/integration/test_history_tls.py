"""Registered rooms and history over real TLS, across a server restart on the same data dir."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path

from tests.support import IrcClient, ServerThread

PASSWORD = "correct-horse"
StartServer = Callable[..., ServerThread]


def client(server: ServerThread, context: ssl.SSLContext, nick: str, *caps: str) -> IrcClient:
    return IrcClient.connect(server.host, server.port, context).register(nick, caps)


def restart(make_server: StartServer, server: ServerThread, data_dir: Path) -> ServerThread:
    server.stop()
    return make_server(data_dir=data_dir)


def test_a_registered_room_keeps_topic_and_founder_across_a_restart(
    make_server: StartServer, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    server = make_server(data_dir=tmp_path)
    alice = client(server, client_context, "alice")
    alice.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
    alice.expect(r" 900 ")
    alice.join("#keep")
    alice.send("PRIVMSG ChanServ :REGISTER #keep")
    alice.expect(r"ChanServ!\S+ NOTICE alice :#keep is registered to alice")
    alice.send("TOPIC #keep :still here")
    alice.expect(r" TOPIC #keep ")
    alice.close()

    server = restart(make_server, server, tmp_path)
    alice = client(server, client_context, "alice")
    alice.send(f"PRIVMSG NickServ :IDENTIFY {PASSWORD}")
    alice.expect(r" 900 ")
    alice.send("JOIN #keep")
    assert alice.expect(r"ChanServ!\S+ MODE #keep ").params == ("#keep", "+o", "alice")
    assert alice.expect(r" 332 ").params[-1] == "still here"


def test_a_registered_rooms_history_is_replayed_on_join_after_a_restart(
    make_server: StartServer, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    server = make_server(data_dir=tmp_path)
    alice = client(server, client_context, "alice")
    alice.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
    alice.expect(r" 900 ")
    bob = client(server, client_context, "bob")
    alice.join("#talk")
    alice.send("PRIVMSG ChanServ :REGISTER #talk")
    alice.expect(r"ChanServ!\S+ NOTICE alice :#talk is registered to alice")
    bob.join("#talk")
    alice.send("PRIVMSG #talk :before the restart")
    bob.expect(r"PRIVMSG #talk :before the restart")
    alice.close()
    bob.close()

    server = restart(make_server, server, tmp_path)
    carol = client(server, client_context, "carol", "batch", "server-time")
    carol.send("JOIN #talk")
    carol.expect(r" BATCH \+\S+ chathistory :?#talk")
    replayed = carol.expect(r"PRIVMSG #talk")
    assert replayed.params[1] == "before the restart" and "time" in replayed.tags
    carol.expect(r" BATCH :?-")
    plain = client(server, client_context, "dave")
    plain.send("JOIN #talk")
    assert plain.expect(r" NOTICE #talk ").params[1].endswith("<alice> before the restart")


def test_an_unregistered_rooms_history_ends_with_the_room(
    make_server: StartServer, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    """A room nobody registered is gone after a restart; whoever creates it again starts with
    an empty history (the old messages stay stored until retention removes them)."""
    server = make_server(data_dir=tmp_path)
    alice = client(server, client_context, "alice")
    alice.join("#talk")
    alice.send("PRIVMSG #talk :before the restart")
    alice.send("PING :stored")
    alice.expect(r"PONG \S+ :?stored")
    alice.close()

    server = restart(make_server, server, tmp_path)
    caps = ("batch", "server-time", "message-tags", "draft/chathistory")
    carol = client(server, client_context, "carol", *caps)
    carol.join("#talk")
    carol.send("CHATHISTORY LATEST #talk * 10")
    carol.expect(r" BATCH \+\S+ chathistory :?#talk")
    assert carol.expect(r" BATCH :?-|PRIVMSG #talk").command == "BATCH"


def test_chathistory_pages_a_private_conversation(
    make_server: StartServer, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    server = make_server(data_dir=tmp_path)
    caps = ("batch", "server-time", "message-tags", "draft/chathistory")
    alice = client(server, client_context, "alice", *caps)
    bob = client(server, client_context, "bob", *caps)
    for user in (alice, bob):
        user.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
        user.expect(r" 900 ")
    for number in range(3):
        alice.send(f"PRIVMSG bob :message {number}")
        bob.expect(rf"PRIVMSG bob :message {number}")
    bob.send("CHATHISTORY LATEST alice * 2")
    bob.expect(r" BATCH \+\S+ chathistory :?alice")
    assert bob.expect(r"PRIVMSG bob").params[1] == "message 1"
    newest = bob.expect(r"PRIVMSG bob")
    assert newest.params[1] == "message 2"
    bob.expect(r" BATCH :?-")
    bob.send(f"CHATHISTORY BEFORE alice msgid={newest.tags['msgid']} 10")
    bob.expect(r" BATCH \+")
    assert bob.expect(r"PRIVMSG bob").params[1] == "message 0"
