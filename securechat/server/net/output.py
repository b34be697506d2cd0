"""What goes out: the core's sends, queued until the next flush, then written one TLS record
per connection; the send queues' limits. ``Output`` is ``ChatServer``'s base class beside
``Acceptor``; ``ChatServer.__init__`` sets the attributes and ``ChatServer`` owns ``run`` and
``_close``.

A flush runs once per event-loop iteration in which something was queued (later while the
server is busy: ``pacing.FlushPacer``). One line since the last flush, the unbatched regime
where each line is its own iteration, goes straight to each target's transport; several go
through each connection's own queue (``Connection.out``) and leave joined, one record per
connection (BENCHMARKS.md, "Fourth round"). A connection whose unsent bytes pass
``sendq_bytes`` gets ``ERROR :SendQ exceeded`` and is closed; so do the largest queues when
all of them together pass ``sendq_total_bytes`` (``sendq.SendBudget``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from securechat.server.actions import Action
from securechat.server.config import ServerConfig
from securechat.server.core import ServerCore
from securechat.server.net.connection import Connection, _is_closing, _unsent_bytes, flush_framed
from securechat.server.net.pacing import FlushPacer
from securechat.server.net.sendq import SendBudget
from securechat.server.net.tls_transport import TlsTransport

SENDQ_CLOSE_GRACE_SECONDS = 1.0  # the close grace for a client dropped for SendQ (a stuck reader)


class Output:
    """The writing half of ``ChatServer``."""

    config: ServerConfig
    core: ServerCore
    connections: dict[int, Connection]
    clock: Callable[[], float]
    sendq: SendBudget[Connection]
    _pacer: FlushPacer
    _flush_scheduled: bool
    # Sends since the last flush, in order (``_send``), and the connections whose own queue
    # (``Connection.out``) holds lines (``_distribute``).
    _pending: list[tuple[Sequence[int], bytes]]
    _dirty: list[Connection]

    def run(self, actions: list[Action], client: int | None = None) -> None:
        raise NotImplementedError  # ChatServer's

    def _close(self, conn: int, reason: str) -> None:
        raise NotImplementedError  # ChatServer's

    def drop(self, conn: int, reason: str, closing: bool = False) -> list[Action]:
        raise NotImplementedError  # ChatServer's

    def _send(self, targets: Sequence[int], data: bytes) -> None:
        """Queue ``data`` for each target until the next flush (``flush_all``)."""
        self.core.metrics.deliveries += len(targets)
        self._pending.append((targets, data))
        if not self._flush_scheduled:
            self._schedule_flush()

    def _distribute(self) -> bool:
        """Move the pending sends into each target's own queue (``Connection.out``), in order:
        for a flush that has several lines for some connection (one record each), and
        before a connection closes (its last lines go out first). True when some connection
        got more than one line (the pacer's measure of whether waiting paid)."""
        pending = self._pending
        if not pending:
            return False
        self._pending = []
        connections, dirty = self.connections, self._dirty
        merged = False
        for targets, data in pending:
            for conn in targets:
                connection = connections.get(conn)
                if connection is None or connection.closing:
                    continue
                out = connection.out
                if out is None:
                    connection.out = [data]
                    dirty.append(connection)
                else:
                    out.append(data)
                    merged = True
        return merged

    def _schedule_flush(self) -> None:
        self._flush_scheduled = True
        loop = asyncio.get_running_loop()
        wait = self._pacer.requested(time.perf_counter())
        if wait > 0.0:
            loop.call_later(wait, self.flush_all)
        else:
            loop.call_soon(self.flush_all)

    def flush_all(self) -> None:
        """Write what was queued since the last flush: one TLS record per connection."""
        started = time.perf_counter()
        self._flush_scheduled = False
        pending = self._pending
        if len(pending) == 1 and not self._dirty:
            # One line for all its targets since the last flush: the unbatched regime (a
            # line at a time, each its own loop iteration; BENCHMARKS.md, "Fourth round").
            # The line goes straight to each target's transport, with no per-recipient
            # queue to fill and empty.
            self._pending = []
            targets, data = pending[0]
            self._write_each(targets, data)
            merged = False
        else:
            merged = self._distribute()
            self._flush_dirty()
        if self.sendq.total > self.config.sendq_total_bytes:
            self._enforce_send_budget()
        self._pacer.flushed(started, time.perf_counter(), merged)

    def _write_each(self, targets: Sequence[int], data: bytes) -> None:
        connections, limit = self.connections, self.config.sendq_bytes
        budget = self.sendq
        sizes = budget.sizes
        for conn in targets:
            connection = connections.get(conn)
            if connection is None or connection.closing:
                continue
            transport = connection.transport
            if transport is None:
                continue
            if type(connection) is Connection:  # not a WebConnection, which frames its lines
                tls = transport.idle_tls
                if tls is None:  # something is held, or it is closing
                    size = transport.write_counted(data)
                else:  # TlsTransport.write_counted's common case, inlined (see idle_tls)
                    try:
                        sent: int | OSError = tls.write(data)
                    except OSError as exc:  # ssl.SSLError is an OSError
                        sent = exc
                    size = 0 if sent == len(data) else transport.write_idle_failed(data, sent)
            else:
                connection.out = [data]
                size = flush_framed(connection, transport)
            if size > limit:
                self._sendq_exceeded(connection)
            elif size > 0 or (size == 0 and sizes and connection in sizes):
                budget.update(connection, size)

    def _flush_dirty(self) -> None:
        dirty, self._dirty = self._dirty, []
        limit = self.config.sendq_bytes
        budget = self.sendq
        sizes = budget.sizes
        # Connection.flush inlined, and the TLS write and the SendQ measure in one call: this
        # loop runs once per recipient per flush (BENCHMARKS.md, "Third round").
        for connection in dirty:
            transport = connection.transport
            if connection.closing or transport is None:
                connection.out = None
                continue
            if type(connection) is Connection:  # not a WebConnection, which frames its lines
                out, connection.out = connection.out, None
                if out is None:
                    continue
                size = transport.write_counted(out[0] if len(out) == 1 else b"".join(out))
            else:
                size = flush_framed(connection, transport)
            if size > limit:
                self._sendq_exceeded(connection)
            elif size > 0 or (size == 0 and sizes and connection in sizes):
                budget.update(connection, size)

    def _enforce_send_budget(self) -> None:
        """All queues together are over ``sendq_total_bytes``: measure again (they drain
        between looks), then drop the largest until the rest fit."""
        self.sendq.refresh(_unsent_bytes)
        for connection in self.sendq.over(self.config.sendq_total_bytes, _is_closing):
            self.core.metrics.sendq_budget_drops += 1
            self._sendq_exceeded(connection)

    def _sendq_exceeded(self, connection: Connection) -> None:
        if connection.closing:
            return
        self.core.metrics.sendq_drops += 1
        actions = self.drop(connection.conn, "SendQ exceeded")
        self._distribute()  # what was queued before goes before the ERROR
        connection.out = [*(connection.out or ()), b"ERROR :SendQ exceeded\r\n"]
        if isinstance(connection.transport, TlsTransport):
            # A reader this far behind will not take a full queue in the usual grace: free
            # its memory sooner (the ERROR line still goes out if it does read).
            connection.transport.close_timeout = SENDQ_CLOSE_GRACE_SECONDS
        self._close(connection.conn, "SendQ exceeded")
        self.run(actions)
