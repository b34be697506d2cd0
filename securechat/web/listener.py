"""Open the web listener beside the IRC one (``web_port``) and make its connections.

The listening sockets go through the server's own accept path (per-address limits, the TLS
handshake with the same certificate, reloaded on SIGHUP); only the protocol object differs.
"""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING

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
    """Listen on ``port`` (0: a free one) at the server's host; accepted sockets are served
    by ``WebListener.connection`` (see ChatServer._new_connection)."""
    from securechat.server.net import open_listeners

    web = WebListener(server, open_listeners(server.config.host, port))
    loop = asyncio.get_running_loop()
    for listener in web.sockets:
        loop.add_reader(listener.fileno(), server._accept, listener)
    return web
