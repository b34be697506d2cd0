"""Open the web listener beside the IRC one (``web_port``) and make its connections.

The listening sockets go through the server's own accept path (per-address limits, the TLS
handshake with the same certificate, reloaded on SIGHUP); only the protocol object differs.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from securechat.server.net.sockets import open_listeners
from securechat.web.connection import WebConnection
from securechat.web.site import Site, load_static

if TYPE_CHECKING:
    from securechat.server.net import ChatServer


class WebListener:
    def __init__(self, server: ChatServer, sockets: list[socket.socket]) -> None:
        self.server = server
        self.sockets = sockets
        self.site = Site(load_static())

    @property
    def port(self) -> int:
        return int(self.sockets[0].getsockname()[1])

    def connection(self, conn: int, addr: str) -> WebConnection:
        return WebConnection(self.server, conn, addr, self.site)


def start_web(server: ChatServer, port: int) -> WebListener:
    """Listen on ``port`` (0: a free one) at the server's host. ``ChatServer.start`` calls
    this (as ``start_web``) and accepts on these sockets with its IRC ones; a connection
    accepted here is served by ``WebListener.connection`` (see ChatServer._new_connection)."""
    # reuse_port: `--workers` runs N processes on one web port as on one IRC port
    return WebListener(server, open_listeners(server.config.host, port, server.config.reuse_port))
