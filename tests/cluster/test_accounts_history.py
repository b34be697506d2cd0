"""Accounts and history in cluster mode: one PostgreSQL (tests/pg.py) behind every node; the
store is written by the origin node of each event only, and every node sees the outcome."""

from __future__ import annotations

import itertools
import ssl
import time

import pytest

from tests.cluster.support import StartNode, client
from tests.pg import PgCluster
from tests.support import IrcClient, ServerThread, history, sync

PASSWORD = "correct-horse"
HISTORY_CAPS = ("batch", "server-time", "message-tags", "draft/chathistory")


def sasl_client(node: ServerThread, context: ssl.SSLContext, nick: str, *caps: str) -> IrcClient:
    return IrcClient.connect(node.host, node.port, context).login_plain(nick, PASSWORD, caps)


def test_an_account_registered_on_one_node_logs_in_on_another(
    make_node: StartNode, client_context: ssl.SSLContext, pg_url: str
) -> None:
    a, b, c = (make_node(database=pg_url) for _ in range(3))
    alice = client(a, client_context, "alice", "account-notify").join("#acc")
    watcher = client(c, client_context, "watcher", "account-notify").join("#acc")
    alice.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")  # scrypt runs once, on a
    alice.expect(r" 900 ")
    watcher.expect(r":alice!\S+ ACCOUNT :?alice")  # account-notify reaches c
    alice.send("QUIT :bye")
    alice.expect_closed()
    again = sasl_client(b, client_context, "alice", "account-notify")  # SASL on another node
    again.join("#acc")
    watcher.send("WHOIS alice")
    assert watcher.expect(r" 330 watcher alice ").params[2] == "alice"  # logged in, seen on c
    other = client(c, client_context, "mallory")
    other.send("NICK alice")
    other.expect(r" 433 ")


def test_history_from_a_third_node_has_the_same_msgids(
    make_node: StartNode, client_context: ssl.SSLContext, pg_url: str
) -> None:
    a, b, c = (make_node(database=pg_url) for _ in range(3))
    caps = (*HISTORY_CAPS, "echo-message")
    one = client(a, client_context, "one", *caps).join("#log")
    two = client(b, client_context, "two", *caps).join("#log")
    one.send("PRIVMSG #log :first")
    echoed = one.expect(r"PRIVMSG #log :first").tags["msgid"]
    two.send("PRIVMSG #log :second")
    delivered = one.expect(r"PRIVMSG #log :second").tags["msgid"]
    sync(two, "stored")
    three = client(c, client_context, "three", *caps).join("#log")
    assert history(three, "#log") == [(echoed, "first"), (delivered, "second")]
    assert history(one, "#log") == history(three, "#log")


@pytest.mark.logs_error  # event=history_write_failed, on every node's log
def test_postgresql_going_away_refuses_a_message_on_every_node_until_it_is_back(
    make_node: StartNode, client_context: ssl.SSLContext, pg_url: str, pg_cluster: PgCluster
) -> None:
    a, b = make_node(database=pg_url), make_node(database=pg_url)
    alice = client(a, client_context, "alice", "echo-message", *HISTORY_CAPS).join("#room")
    bob = client(b, client_context, "bob", *HISTORY_CAPS).join("#room")
    alice.send("PRIVMSG #room :before")
    bob.expect(r"PRIVMSG #room :before")
    pg_cluster.stop()
    try:
        alice.send("PRIVMSG #room :while it is down")
        reply = alice.expect(r"FAIL PRIVMSG")
        assert reply.params[:2] == ("PRIVMSG", "TEMPORARILY_UNAVAILABLE")
        sync(bob, "bystander")
        assert not [m for m in bob.seen if m.params[-1:] == ("while it is down",)]
    finally:
        pg_cluster.start()
    deadline = time.monotonic() + 15
    for attempt in itertools.count():  # the writer reconnects on its next job
        alice.send(f"PRIVMSG #room :back {attempt}")
        answer = alice.expect(rf"FAIL PRIVMSG|PRIVMSG #room :back {attempt}$")
        if answer.command != "FAIL":
            break
        assert time.monotonic() < deadline, "the store never came back"
    bob.expect(rf"PRIVMSG #room :back {attempt}")
    assert [text for _, text in history(bob, "#room")] == ["before", f"back {attempt}"]


def test_lines_after_a_login_wait_for_it_on_every_node_even_when_the_client_left(
    make_node: StartNode, client_context: ssl.SSLContext, pg_url: str
) -> None:
    """IDENTIFY (scrypt on the origin node) then JOIN and a message, in one write, then the
    socket closed: every replica applies the JOIN and message after the login, and the
    disconnect after them (issue 13's order, held by the replicas)."""
    a, b, c = (make_node(database=pg_url) for _ in range(3))
    owner = client(a, client_context, "owner")
    owner.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
    owner.expect(r" 900 ")
    watcher = client(c, client_context, "watcher", "extended-join", "account-tag").join("#acc")
    hasty = client(b, client_context, "hasty")
    hasty.sock.sendall(
        f"PRIVMSG NickServ :IDENTIFY owner {PASSWORD}\r\n"
        "JOIN #acc\r\nPRIVMSG #acc :after the login\r\n".encode()
    )
    hasty.close()
    # logged in first: the device joins as its account's user (multiclient), and speaks so
    assert watcher.expect(r":owner!\S+ JOIN #acc ").params[1] == "owner"
    assert watcher.expect(r"PRIVMSG #acc :after the login").tags["account"] == "owner"
    core = c.server.core
    assert c.in_loop(lambda: sorted(s.nick for s in core.sessions.values())) == [
        "owner",
        "watcher",
    ]  # and then it left
