"""Accounts and history in cluster mode: one PostgreSQL (tests/pg.py) behind every node; the
store is written by the origin node of each event only, and every node sees the outcome."""

from __future__ import annotations

import base64
import ssl

from tests.cluster.support import StartNode, client, sync
from tests.support import IrcClient

PASSWORD = "correct-horse"
HISTORY_CAPS = ("batch", "server-time", "message-tags", "draft/chathistory")


def sasl_client(node: object, context: ssl.SSLContext, nick: str, *caps: str) -> IrcClient:
    conn = IrcClient.connect(node.host, node.port, context)  # type: ignore[attr-defined]
    conn.send("CAP LS 302")
    conn.send("CAP REQ :" + " ".join(("sasl", *caps)))
    conn.expect(r" CAP \S+ ACK ")
    conn.send(f"NICK {nick}")
    conn.send(f"USER {nick} 0 * :{nick}")
    conn.send("AUTHENTICATE PLAIN")
    conn.expect(r"^AUTHENTICATE \+")
    conn.send("AUTHENTICATE " + base64.b64encode(f"\0{nick}\0{PASSWORD}".encode()).decode())
    conn.expect(r" 903 ")
    conn.send("CAP END")
    conn.expect(r" 001 ")
    conn.nick = nick
    return conn


def history(conn: IrcClient, target: str, count: int = 10) -> list[tuple[str, str]]:
    """(msgid, text) of CHATHISTORY LATEST ``target``, oldest first."""
    conn.send(f"CHATHISTORY LATEST {target} * {count}")
    conn.expect(rf" BATCH \+\S+ chathistory :?{target}")
    found = []
    while True:
        line = conn.expect(r" BATCH :?-|PRIVMSG ")
        if line.command == "BATCH":
            return found
        found.append((line.tags["msgid"], line.params[-1]))


def test_an_account_registered_on_one_node_logs_in_on_another(
    make_node: StartNode, client_context: ssl.SSLContext, pg_url: str
) -> None:
    a, b, c = (make_node(database=pg_url) for _ in range(3))
    alice = client(a, client_context, "alice", "account-notify")
    alice.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
    alice.expect(r" 900 ")
    watcher = client(c, client_context, "watcher", "account-notify").join("#acc")
    alice.join("#acc")
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
