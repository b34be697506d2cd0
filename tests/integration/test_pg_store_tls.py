"""The PostgreSQL store end to end over TLS (``database = postgresql://…``): accounts, rooms,
K-lines and history in a real PostgreSQL (tests/pg.py); two servers sharing one database; the
database going away and coming back while clients stay connected."""

from __future__ import annotations

import itertools
import ssl
import time
from collections.abc import Callable

import pytest

from securechat.server.config import OperBlock
from securechat.server.passwords import hash_password
from tests.conftest import test_config as server_config
from tests.pg import PgCluster
from tests.support import IrcClient, ServerThread, history, sync

StartServer = Callable[..., ServerThread]
PASSWORD = "correct-horse"
HISTORY_CAPS = ("batch", "server-time", "message-tags", "draft/chathistory")


def client(server: ServerThread, context: ssl.SSLContext, nick: str, *caps: str) -> IrcClient:
    return IrcClient.connect(server.host, server.port, context).register(nick, caps)


def sasl_client(server: ServerThread, context: ssl.SSLContext, nick: str, *caps: str) -> IrcClient:
    """``nick`` logged in to its account with SASL PLAIN while registering."""
    return IrcClient.connect(server.host, server.port, context).login_plain(nick, PASSWORD, caps)


def test_accounts_rooms_and_history_survive_a_restart_in_postgresql(
    make_server: StartServer, client_context: ssl.SSLContext, pg_url: str
) -> None:
    server = make_server(database=pg_url)
    alice = client(server, client_context, "alice", *HISTORY_CAPS)
    alice.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
    alice.expect(r" 900 ")
    alice.join("#home")
    alice.send("PRIVMSG ChanServ :REGISTER #home")
    alice.expect(r"#home is registered to alice")
    alice.send("TOPIC #home :our place")
    alice.expect(r" TOPIC #home ")
    alice.send("@label=m1 PRIVMSG #home :remember me")
    sync(alice, "stored")
    sent = history(alice, "#home")
    assert [text for _, text in sent] == ["remember me"]
    server.stop()

    again = make_server(database=pg_url)
    back = sasl_client(again, client_context, "alice", *HISTORY_CAPS)
    back.send("JOIN #home")
    assert back.expect(r" MODE #home ").params == ("#home", "+o", "alice")
    assert back.expect(r" 332 ").params[-1] == "our place"
    assert history(back, "#home") == sent  # the same msgids


def test_two_servers_on_one_database_share_accounts_and_history_msgids(
    make_server: StartServer, client_context: ssl.SSLContext, pg_url: str
) -> None:
    """No cluster: two independent servers, one PostgreSQL. An account made on one logs in on
    the other; messages stored by both are one history with distinct msgids."""
    first, second = make_server(database=pg_url), make_server(database=pg_url)
    alice = client(first, client_context, "alice", *HISTORY_CAPS)
    alice.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
    alice.expect(r" 900 ")
    alice.join("#shared")
    alice.send("PRIVMSG #shared :from the first server")
    sync(alice, "one")

    bob = sasl_client(second, client_context, "alice", *HISTORY_CAPS)  # same account, 2nd server
    bob.join("#shared")
    bob.send("PRIVMSG #shared :from the second server")
    sync(bob, "two")

    seen_on_second = history(bob, "#shared")
    seen_on_first = history(alice, "#shared")
    assert [text for _, text in seen_on_first] == [
        "from the first server",
        "from the second server",
    ]
    assert seen_on_first == seen_on_second
    ids = [msgid for msgid, _ in seen_on_first]
    assert len(set(ids)) == 2
    prefixes = {server.server.core.new_msgid()[:8] for server in (first, second)}
    assert len(prefixes) == 2, "each process reserves its own msgid prefix"


def test_a_room_registered_through_one_server_cannot_be_registered_through_another(
    make_server: StartServer, client_context: ssl.SSLContext, pg_url: str
) -> None:
    """The second server's registry has not heard of it; the database has, and refuses."""
    first, second = make_server(database=pg_url), make_server(database=pg_url)
    for server, nick in ((first, "alice"), (second, "bob")):
        owner = client(server, client_context, nick)
        owner.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
        owner.expect(r" 900 ")
        owner.join("#contested")
        owner.send("PRIVMSG ChanServ :REGISTER #contested")
        if nick == "alice":
            owner.expect(r"#contested is registered to alice")
        else:
            owner.expect(r"NOTICE bob :#contested is already registered")
    late = client(first, client_context, "carol")
    late.send("PRIVMSG ChanServ :INFO #contested")
    late.expect(r"alice")


def test_a_kline_is_kept_in_postgresql_across_a_restart(
    make_server: StartServer, client_context: ssl.SSLContext, pg_url: str
) -> None:
    opers = {"root": OperBlock(hash_password(PASSWORD))}
    server = make_server(database=pg_url, opers=opers)
    root = client(server, client_context, "root")
    root.send(f"OPER root {PASSWORD}")
    root.expect(r" 381 ")
    root.send("KLINE *@banned.example :go away")
    root.expect(r"NOTICE root :.*K-line")
    server.stop()

    again = make_server(database=pg_url, opers=opers)
    root = client(again, client_context, "root")
    root.send(f"OPER root {PASSWORD}")
    root.expect(r" 381 ")
    root.send("STATS k")
    assert root.expect(r" 216 ").params[1:4] == ("K", "*@banned.example", "*")


@pytest.mark.logs_error  # the operator event "history cannot be stored" is logged at ERROR
def test_postgresql_going_away_refuses_messages_and_its_return_needs_no_restart(
    make_server: StartServer, client_context: ssl.SSLContext, pg_url: str, pg_cluster: PgCluster
) -> None:
    """pg_ctl stop -m fast under a running server: a message that cannot be stored is not
    delivered and its sender gets FAIL; operators are told; once PostgreSQL is back the same
    connections send, receive and read history again."""
    server = make_server(
        database=pg_url,
        exempt=("127.0.0.0/8",),
        opers={"root": OperBlock(hash_password(PASSWORD))},
    )
    root = client(server, client_context, "root")
    root.send(f"OPER root {PASSWORD}")
    root.expect(r" 381 ")
    alice = client(server, client_context, "alice", "echo-message", *HISTORY_CAPS).join("#room")
    bob = client(server, client_context, "bob", *HISTORY_CAPS).join("#room")
    alice.send("PRIVMSG #room :before")
    bob.expect(r"PRIVMSG #room :before")

    pg_cluster.stop()
    try:
        alice.send("PRIVMSG #room :while it is down")
        reply = alice.expect(r"FAIL PRIVMSG")
        assert reply.params[:3] == ("PRIVMSG", "TEMPORARILY_UNAVAILABLE", "#room")
        root.expect(r"NOTICE root :\*\*\* History cannot be stored")
        sync(bob, "bystander")
        assert not [m for m in bob.seen if m.params[-1:] == ("while it is down",)]
        core = server.server.core
        assert server.in_loop(lambda: core.metrics.history_write_failures) >= 1
    finally:
        pg_cluster.start()

    # The writer reconnects on its next job (slow failed attempts are paced): send until one
    # is stored, within a bound. With echo-message, each attempt gets exactly one answer: its
    # FAIL, or its echo once stored.
    deadline = time.monotonic() + 15
    for attempt in itertools.count():
        alice.send(f"PRIVMSG #room :back {attempt}")
        answer = alice.expect(rf"FAIL PRIVMSG|PRIVMSG #room :back {attempt}$")
        if answer.command != "FAIL":
            break
        assert time.monotonic() < deadline, "the store never came back"
    bob.expect(rf"PRIVMSG #room :back {attempt}")
    root.expect(r"NOTICE root :\*\*\* History is stored again")
    texts = [text for _, text in history(bob, "#room")]
    assert texts == ["before", f"back {attempt}"]


def test_rehash_reads_the_klines_another_server_stored(
    make_server: StartServer,
    client_context: ssl.SSLContext,
    server_context: ssl.SSLContext,
    pg_url: str,
) -> None:
    """K-lines are kept in memory (checked at every connect); REHASH refreshes them from the
    shared database, so a K-line set through one server applies on the other."""
    opers = {"root": OperBlock(hash_password(PASSWORD))}
    settings = server_config(database=pg_url, opers=opers), server_context
    first, second = (
        make_server(
            database=pg_url, opers=opers, server_options={"reload_settings": lambda: settings}
        )
        for _ in range(2)
    )
    roots = []
    for server in (first, second):
        root = client(server, client_context, "root")
        root.send(f"OPER root {PASSWORD}")
        root.expect(r" 381 ")
        roots.append(root)
    roots[0].send("KLINE *@banned.example :go away")
    roots[0].expect(r"NOTICE root :.*K-line")
    writer = first.server.writer
    assert writer is not None
    writer.submit(lambda store: None).result(10)  # its jobs run in order: the K-line is saved
    roots[1].send("REHASH")
    roots[1].expect(r" 382 ")
    roots[1].send("STATS k")
    assert roots[1].expect(r" 216 ").params[2] == "*@banned.example"
