"""Cluster nodes for the tests: in-process ChatServers (each on its own loop and thread, as
tests/support.ServerThread), all on one real Redis (tests/redis.py), each its own node."""

from __future__ import annotations

import ssl
from collections.abc import Callable

from tests.support import IrcClient, ServerThread

StartNode = Callable[..., ServerThread]


def client(node: ServerThread, context: ssl.SSLContext, nick: str, *caps: str) -> IrcClient:
    return IrcClient.connect(node.host, node.port, context).register(nick, caps)


def sync(conn: IrcClient, token: str) -> None:
    """By the PONG, every line ``conn`` sent before went through the stream and was applied
    (PING is replicated like any line, in order)."""
    conn.send(f"PING :{token}")
    conn.expect(rf"PONG \S+ :?{token}")
