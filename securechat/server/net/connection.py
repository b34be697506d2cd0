"""One client connection: the asyncio protocol between a TLS transport and ``ChatServer``."""

from __future__ import annotations

import asyncio
import collections
from typing import TYPE_CHECKING, cast

from securechat.protocol.framing import LineBuffer

if TYPE_CHECKING:
    from securechat.server.net.server import ChatServer
    from securechat.server.net.tls_transport import TlsTransport


CLOSE_GRACE_SECONDS = 5.0  # how long a closing connection may take to flush before abort

# Decrypted input lands in ``ChatServer.read_view`` (``Connection.get_buffer``: the TLS
# transport's SSL_read writes into it) and is copied out at once in ``buffer_updated``: one
# buffer per server (per event loop: several in-process cluster nodes run on their own
# threads) instead of one per connection.
READ_BUFFER_BYTES = 64 * 1024


class Connection(asyncio.BufferedProtocol):
    __slots__ = (
        "addr",
        "backlog",
        "buffer",
        "closing",
        "conn",
        "lost",
        "out",
        "server",
        "transport",
    )

    def __init__(self, server: ChatServer, conn: int, addr: str) -> None:
        self.server = server
        self.conn = conn
        self.addr = addr
        self.buffer = LineBuffer()
        self.out: list[bytes] | None = None  # lines queued since the last flush (None: none)
        self.closing = False
        self.transport: TlsTransport | None = None
        self.backlog: collections.deque[bytes] | None = None  # lines held by flood control
        self.lost = False  # the peer is gone but its held lines are still being handled

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("TlsTransport", transport)
        self.server.connection_opened(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.server.read_view  # safe to share: its loop fills it, then buffer_updated

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(self.server.read_view[:nbytes]))

    def data_received(self, data: bytes) -> None:
        lines = self.buffer.feed(data)
        if not lines:
            return
        if self.backlog is None:
            self.server.handle_lines(self, lines)
        else:
            self.backlog.extend(lines)
            self.server.check_backlog(self)

    def eof_received(self) -> bool:
        return False  # let the transport close; connection_lost does the cleanup

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.socket_closed(self)
        if self.backlog and not self.closing:
            # Lines the client sent before leaving (often ending in QUIT) were accepted by
            # the server and only held by flood control: they still go out, at the same pace.
            self.lost, self.transport = True, None
            return
        self.server.connection_closed(self, "Connection closed" if exc is None else "Read error")

    def flush(self) -> None:
        out = self.out
        if out is None or self.transport is None:
            return
        self.out = None
        self.transport.write(b"".join(out) if len(out) > 1 else out[0])

    def close(self) -> None:
        """Flush what is queued (the ERROR line last), then close; abort if the peer stalls."""
        if self.closing or self.transport is None:
            return
        self.flush()
        self.closing = True
        self.transport.close()  # aborts by itself after CLOSE_GRACE_SECONDS


def _unsent_bytes(connection: Connection) -> int:
    """Held until the socket closes, also while closing (up to CLOSE_GRACE_SECONDS)."""
    transport = connection.transport
    return 0 if transport is None else transport.get_write_buffer_size()


def _is_closing(connection: Connection) -> bool:
    return connection.closing


def flush_framed(connection: Connection, transport: TlsTransport) -> int:
    """Flush a connection that frames its own output (``Connection.flush`` overridden, e.g. a
    WebSocket): its unsent bytes afterwards, -1 if closing."""
    if transport.is_closing():
        connection.out = None
        return -1
    connection.flush()
    return transport.get_write_buffer_size()
