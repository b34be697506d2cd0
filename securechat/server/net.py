"""The asyncio shell around ServerCore: listeners, TLS, framing, send queues, timers.

How a byte travels (DESIGN.md §4):

- Each listening socket accepts plain TCP. Per-address bounds apply first (``AcceptGate``:
  sockets, handshakes in progress, new sockets per second): a socket over them is closed at
  once, before any TLS work; near the descriptor limit the newest handshakes of the busiest
  address are shed. The first byte a client sends
  decides: a TLS ClientHello (record type 0x16, RFC 8446 §5.1) goes on to the
  TLS handshake (``tls_transport.ServerHandshake``); anything else gets one plaintext
  ``ERROR :This port requires TLS`` and is closed, so a user who forgot
  ``-tls`` in irssi sees why instead of a silent hang-up.
- ``Connection.data_received`` splits lines (``LineBuffer``) and feeds every
  complete line to the core at once: lines pipelined in one TLS record are
  all processed, none waits in a buffer.
- The core's ``Send`` actions are appended to each target's pending output
  without awaiting anything; once per event-loop iteration (later while the
  server is busy: ``pacing.FlushPacer``) every connection with pending output
  writes it in a single ``transport.write`` (one TLS record for many lines).
  A connection whose unsent bytes exceed
  ``sendq_bytes`` (a slow or stuck reader) gets ``ERROR :SendQ exceeded``
  and is closed; nobody else waits for it. The same happens to the largest queues first when
  all of them together exceed ``sendq_total_bytes`` (``sendq.SendBudget``); the kernel's
  share is bounded by ``socket_send_buffer_bytes``, and memory freed after a burst goes back
  to the system (``sendq.MemoryTrim``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import resource
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from securechat.logs import EventLimiter, event
from securechat.protocol.framing import LineBuffer
from securechat.server.blocking import call_in_daemon_thread
from securechat.server.config import ConfigError, ServerConfig
from securechat.server.core import (
    Action,
    AppendHistory,
    Close,
    Continuation,
    Offload,
    Reload,
    Send,
    ServerCore,
    StoreCall,
)
from securechat.server.limits import AcceptGate, address_group
from securechat.server.metrics import render
from securechat.server.metrics_http import start_metrics_server
from securechat.server.pacing import FlushPacer
from securechat.server.sendq import MemoryTrim, SendBudget, trim_memory
from securechat.server.store import StoreError, StoreWriter
from securechat.server.tls_transport import ServerHandshake, TlsTransport
from securechat.tls import TlsSetupError, cert_der_from_pem_file, fingerprint_sha256, not_after

log = logging.getLogger("securechat.server")

ACCEPT_BATCH = 64  # connections taken per readable listener event: others get their turn
ACCEPT_PAUSE_SECONDS = 0.1  # after EMFILE and the like, before accepting again
MAX_SHARED_HOSTS = 4096  # peer host strings shared between connections (ChatServer._shared_host)
CLOSE_GRACE_SECONDS = 5.0  # how long a closing connection may take to flush before abort
SENDQ_CLOSE_GRACE_SECONDS = 1.0  # the same for a client dropped for SendQ (a stuck reader)
TICK_SECONDS = 1.0
CERT_CHECK_SECONDS = 6 * 3600.0
PLAINTEXT_REFUSAL = b"ERROR :This port requires TLS\r\n"
# Events a flood repeats once per socket: written at most log_burst times per interval each.
LIMITED_EVENTS = ("tls_failed", "accept_error", "refused", "history_write_failed", "shed")


# Decrypted input lands here (``Connection.get_buffer``: the TLS transport's SSL_read writes
# into it) and is copied out at once in ``buffer_updated``: one buffer for the whole process
# instead of one per connection.
READ_BUFFER = bytearray(64 * 1024)
READ_VIEW = memoryview(READ_BUFFER)


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
        self.transport: asyncio.Transport | None = None
        self.backlog: collections.deque[bytes] | None = None  # lines held by flood control
        self.lost = False  # the peer is gone but its held lines are still being handled

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # a TlsTransport
        self.server.connection_opened(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        return READ_VIEW  # safe to share: the loop fills it and calls buffer_updated at once

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(READ_VIEW[:nbytes]))

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

    def queue(self, data: bytes) -> None:
        if self.closing or self.lost:
            return
        if self.out is None:
            self.out = [data]
            self.server.mark_dirty(self)
        else:
            self.out.append(data)

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


class ChatServer:
    """Owns the listeners, the connections and the core; ``run`` carries out actions."""

    def __init__(
        self,
        config: ServerConfig,
        ssl_context: ssl.SSLContext,
        motd: Sequence[str] | None = None,
        clock: Callable[[], float] = time.time,
        writer: StoreWriter | None = None,
        reload_settings: Callable[[], tuple[ServerConfig, ssl.SSLContext]] | None = None,
    ) -> None:
        """``reload_settings`` re-reads the config file and certificate (SIGHUP, REHASH)."""
        self.config = config
        self.writer = writer
        self.reload_settings = reload_settings
        self._reloading: asyncio.Future[None] | None = None
        self.loop_lag = 0.0  # seconds the last timer fired late: event-loop health
        self._tick_due = 0.0
        self._metrics_server: asyncio.Server | None = None
        self._next_cert_check = 0.0
        self.ssl_context = ssl_context
        self.clock = clock
        self.core = ServerCore(config, clock(), motd, persistent=writer is not None)
        self.connections: dict[int, Connection] = {}
        self.listeners: list[socket.socket] = []
        self._dirty: list[Connection] = []
        self._flush_scheduled = False
        self._hosts: dict[str, str] = {}  # see _shared_host
        self._pacer = FlushPacer()  # busy: wait a little, so lines share records and writes
        self.gate = AcceptGate(config, descriptor_budget(config.fd_reserve))
        self.sendq: SendBudget[Connection] = SendBudget()
        self._trim = MemoryTrim()
        self._log_limiter = EventLimiter(
            LIMITED_EVENTS, config.log_burst, config.log_interval_seconds
        )
        self._next_conn = 0
        self._tick_handle: asyncio.TimerHandle | None = None
        self._closed = asyncio.Event()
        self.port = 0
        # Actions held behind a history commit, in order (see ``run``).
        self._held: collections.deque[_Held] = collections.deque()
        self._held_conns: set[int] = set()  # targets of held sends, until the queue empties
        # Per client: its store calls and offloads in flight (history reads, logins, scrypt).
        # While it has any, its later lines wait (see ``run``), so replies keep command order.
        self._reading: collections.Counter[int] = collections.Counter()
        self._hash_pools = hash_pools(config)  # Offload lanes (hashing.py)

    # ---- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        await self._restore_rooms()
        self.listeners = open_listeners(self.config.host, self.config.port)
        self.port = self.listeners[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        log.addFilter(self._log_limiter)
        for listener in self.listeners:
            loop.add_reader(listener.fileno(), self._accept, listener)
        if self.writer is not None:
            klines = await asyncio.wrap_future(
                self.writer.submit(lambda store: store.load_klines())
            )
            self.core.load_klines(klines)
        if self.config.metrics_port is not None:
            self._metrics_server = await start_metrics_server(
                self.config.metrics_port, self.render_metrics
            )
            event(log, "metrics", listening=f"127.0.0.1:{self.metrics_port}")
        self._tick_due = loop.time() + TICK_SECONDS
        self._tick_handle = loop.call_later(TICK_SECONDS, self._tick)
        addresses = ", ".join(format_address(s.getsockname()) for s in self.listeners)
        event(log, "start", listening=addresses, name=self.config.name)

    async def _restore_rooms(self) -> None:
        """Registered rooms come back (topic, modes, operators) before anyone can connect."""
        if self.writer is not None:
            rooms = await asyncio.wrap_future(self.writer.submit(lambda store: store.load_rooms()))
            self.run(self.core.restore_rooms(rooms, self.clock()))
            event(log, "rooms_restored", count=len(rooms))

    async def shutdown(self, reason: str = "Server shutting down", timeout: float = 5.0) -> None:
        """Stop accepting, tell every client why, flush, and wait (bounded) for them to go."""
        loop = asyncio.get_running_loop()
        for listener in self.listeners:
            if listener.fileno() != -1:
                loop.remove_reader(listener.fileno())
            listener.close()
        if self._tick_handle is not None:
            self._tick_handle.cancel()
        if self._metrics_server is not None:
            self._metrics_server.close()
        self.run(self.core.shutdown(reason, self.clock()))
        self.flush_all()
        await self._wait_for_connections(timeout)
        if self.writer is not None:
            self.writer.stop_reads()  # nobody is left to read for: cancel, do not wait
            # Let queued writes finish while the loop still runs; bounded, so a stuck disk
            # cannot keep the process up forever (main closes the writer after us).
            finished = asyncio.wrap_future(self.writer.submit(lambda store: None))
            try:
                await asyncio.wait_for(finished, timeout)
            except TimeoutError:
                event(log, "store_busy_at_stop", level=logging.WARNING, waited=timeout)
        for pool in self._hash_pools.values():
            pool.shutdown(wait=False, cancel_futures=True)
        event(log, "stop", reason=reason)
        self._log_limiter.flush()
        log.removeFilter(self._log_limiter)
        self._closed.set()

    async def _wait_for_connections(self, timeout: float) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while self.connections and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        for connection in list(self.connections.values()):
            if connection.transport is not None:
                connection.transport.abort()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    # ---- accepting --------------------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        """The listener is readable: take every waiting connection (a bounded batch)."""
        now = self.clock()
        for _ in range(ACCEPT_BATCH):
            try:
                sock, address = listener.accept()
            except BlockingIOError:
                return
            except ConnectionAbortedError:
                continue  # the peer gave up while queued: nothing to pause for
            except OSError as exc:  # EMFILE and friends: log, breathe, keep serving
                event(log, "accept_error", level=logging.WARNING, error=exc.strerror)
                self._pause_accepting(listener)
                return
            host = self._shared_host(address)
            group = address_group(host, self.config.address_ipv6_prefix)
            refusal = self.gate.refusal(group, now)
            if refusal is not None:
                self._refuse_at_accept(sock, host, refusal)
                continue
            self._start_handshake(sock, host, group)
            self._shed_handshakes()  # at once: never more than one socket over the budget

    def _refuse_at_accept(self, sock: socket.socket, host: str, reason: str) -> None:
        """Closed before any TLS byte (review M3): a refused socket costs no handshake, and
        no plaintext line can be said on a TLS port, so the peer just sees the close."""
        sock.close()
        self.core.metrics.accept_refusals += 1
        event(log, "refused", level=logging.WARNING, reason=reason, peer=host, at="accept")

    def _start_handshake(self, sock: socket.socket, host: str, group: str) -> None:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.config.socket_send_buffer_bytes:  # else the kernel autotunes (up to tcp_wmem)
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_SNDBUF, self.config.socket_send_buffer_bytes
            )
        handshake = ServerHandshake(
            asyncio.get_running_loop(),
            sock,
            self.ssl_context,
            functools.partial(self._new_connection, host),
            functools.partial(self._handshake_done, host, group),
            timeout=self.config.handshake_timeout,
            close_timeout=CLOSE_GRACE_SECONDS,
            on_plaintext=functools.partial(self._refuse_plaintext, group),
        )
        self.gate.opened(group, handshake.fd, handshake)

    def _shed_handshakes(self) -> None:
        """Near the descriptor limit: close the newest handshakes of the address with the
        most in progress, so one flood cannot take the descriptors everyone else needs."""
        while (victim := self.gate.shed()) is not None:
            group, handshake = victim
            cast(ServerHandshake, handshake).cancel()
            self.gate.closed(group)
            self.core.metrics.handshakes_shed += 1
            event(log, "shed", level=logging.WARNING, peer=group, reason="descriptors")

    def socket_closed(self, connection: Connection) -> None:
        """A connected client's socket is closed: the gate and the send budget forget it."""
        self.sendq.forget(connection)
        self.gate.closed(address_group(connection.addr, self.config.address_ipv6_prefix))

    def _shared_host(self, address: Any) -> str:
        """The peer's host as one string per address, however many connect from it. A bounded
        table, not ``sys.intern``: interned strings are immortal on some CPythons, and an IPv6
        client can connect from a new address every time."""
        host = host_of(address)
        shared = self._hosts.setdefault(host, host)
        if len(self._hosts) > MAX_SHARED_HOSTS:
            self._hosts.clear()  # strings already handed out stay valid; sharing starts over
        return shared

    def _pause_accepting(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(listener.fileno())
        loop.call_later(ACCEPT_PAUSE_SECONDS, self._resume_accepting, listener)

    def _resume_accepting(self, listener: socket.socket) -> None:
        if listener.fileno() != -1:  # not closed by shutdown meanwhile
            asyncio.get_running_loop().add_reader(listener.fileno(), self._accept, listener)

    def _handshake_done(
        self,
        host: str,
        group: str,
        handshake: ServerHandshake,
        transport: TlsTransport | None,
        exc: BaseException | None,
    ) -> None:
        self.gate.handshake_ended(group, handshake.fd)
        if transport is None:
            self.gate.closed(group)  # ServerHandshake closed the socket
        if transport is not None or not handshake.tls_started:
            return  # connected; or a client that left (or stayed silent) before saying anything
        self.core.metrics.tls_handshake_failures += 1
        event(log, "tls_failed", peer=host, error=type(exc).__name__)

    def _drop_silent(self, group: str, sock: socket.socket) -> None:
        asyncio.get_running_loop().remove_reader(sock.fileno())
        sock.close()
        self.gate.closed(group)

    def _refuse_plaintext(self, group: str, sock: socket.socket) -> None:
        """Say why, then read and discard until the peer closes (bounded in time).

        Closing a socket with unread input makes the kernel send RST, which can
        destroy our ERROR line before the peer reads it (RFC 1122 §4.2.2.13).
        """
        self.gate.handshake_ended(group, sock.fileno())  # still holds a socket while draining
        self.core.metrics.plaintext_refusals += 1
        event(log, "refused", reason="plaintext", peer=peer_host(sock))
        loop = asyncio.get_running_loop()
        try:
            sock.send(PLAINTEXT_REFUSAL)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            sock.close()
            self.gate.closed(group)
            return
        timer = loop.call_later(self.config.handshake_timeout, self._drop_silent, group, sock)
        loop.add_reader(sock.fileno(), self._drain_until_eof, group, sock, timer)

    def _drain_until_eof(self, group: str, sock: socket.socket, timer: asyncio.TimerHandle) -> None:
        try:
            more = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            more = b""
        if not more:
            timer.cancel()
            self._drop_silent(group, sock)

    def _new_connection(self, addr: str) -> Connection:
        self._next_conn += 1
        return Connection(self, self._next_conn, addr)

    # ---- connections ------------------------------------------------------------------------

    def connection_opened(self, connection: Connection) -> None:
        self.connections[connection.conn] = connection
        event(log, "connect", conn=connection.conn, peer=connection.addr)
        certfp = client_certfp(connection.transport)
        self.run(self.core.connect(connection.conn, connection.addr, self.clock(), certfp))

    def connection_closed(self, connection: Connection, reason: str) -> None:
        if self.connections.pop(connection.conn, None) is None:
            return
        connection.closing = True
        event(log, "disconnect", conn=connection.conn, reason=reason)
        self.run(self.core.disconnect(connection.conn, reason, self.clock()))

    # ---- incoming lines and flood control ---------------------------------------------------

    def handle_lines(self, connection: Connection, lines: list[bytes]) -> None:
        """Feed lines to the core while flood control allows; hold the rest (fake lag)."""
        core, conn, now = self.core, connection.conn, self.clock()
        for index, line in enumerate(lines):
            if connection.closing:
                return
            delay = core.flood_delay(conn, now)
            if delay > 0.0:
                connection.backlog = collections.deque(lines[index:])
                core.metrics.flood_delays += len(lines) - index
                self._schedule_backlog(connection, delay)
                return
            self.run(core.receive_line(conn, line, now))
            if conn in self._reading:  # its later lines wait for the work's reply (_finished)
                connection.backlog = collections.deque(lines[index + 1 :])
                self.check_backlog(connection)
                return

    def check_backlog(self, connection: Connection) -> None:
        backlog = connection.backlog
        if backlog is not None and len(backlog) > self.config.flood_max_backlog:
            connection.backlog = None
            self.run(self.core.excess_flood(connection.conn, self.clock()))

    def _schedule_backlog(self, connection: Connection, delay: float) -> None:
        self.check_backlog(connection)
        if connection.backlog is not None:
            asyncio.get_running_loop().call_later(delay, self._drain_backlog, connection)

    def _drain_backlog(self, connection: Connection) -> None:
        backlog = connection.backlog
        core, conn = self.core, connection.conn
        while backlog and not connection.closing:
            if conn in self._reading:
                return  # _finished drains again
            now = self.clock()
            delay = core.flood_delay(conn, now)
            if delay > 0.0:
                asyncio.get_running_loop().call_later(delay, self._drain_backlog, connection)
                return
            self.run(core.receive_line(conn, backlog.popleft(), now))
        if conn in self._reading:
            return
        connection.backlog = None
        if connection.lost:
            self.connection_closed(connection, "Connection closed")

    # ---- carrying out the core's actions ----------------------------------------------------

    def run(self, actions: list[Action], client: int | None = None) -> None:
        """Carry out one batch of actions (one line's, one timer's) in order.

        A store call or offload that names a client (``client``, or ``reader`` for a history
        read) holds that client's later lines until its continuation ran, and so does any
        store call or offload that continuation emits (``client`` here: whose work it
        continues): a client's replies come in the order of its commands, even when one of
        them waits for scrypt or the store (issue 13). Other clients are never held.

        Durable before delivered, and nothing else held: after an ``AppendHistory`` the rest
        of its batch waits for that commit (appends keep flowing to the writer meanwhile, so
        they commit in groups). A later batch's action waits only if it is for a client that
        has held output (so each client still sees everything in order); a PONG or numeric
        for anyone else goes out at once. Once one action of a batch waits, the rest of the
        batch waits behind it, in order.
        """
        held = self._held
        owner: Future[Any] | None = None  # the commit the rest of this batch belongs to
        holding = False
        for action in actions:
            holder = self._hold(action, client)
            if isinstance(action, AppendHistory):
                owner = self._append(action)
                held.append(_Held(action, owner, None))
                holding = True
            elif holding or (held and self._touches_held(action)):
                holding = True
                held.append(_Held(action, None, owner, holder))
                if isinstance(action, Send):
                    self._held_conns.update(action.targets)
            else:
                self._do(action, holder)

    def _hold(self, action: Action, client: int | None) -> int | None:
        """The client ``action`` holds (counted in ``_reading`` until ``_finished``), if any:
        the one it names, else the one whose held work's continuation emitted it."""
        if isinstance(action, StoreCall) and action.reader is not None:
            client = action.reader
        elif isinstance(action, StoreCall | Offload):
            client = action.client if action.client is not None else client
        else:
            return None
        if client is not None:
            self._reading[client] += 1
        return client

    def _touches_held(self, action: Action) -> bool:
        """Is ``action`` for a client whose earlier output is still held?"""
        if isinstance(action, Send):
            return not self._held_conns.isdisjoint(action.targets)
        if isinstance(action, Close):
            return action.conn in self._held_conns
        if isinstance(action, StoreCall):
            return action.reader is not None and action.reader in self._held_conns
        return False

    def _do(self, action: Action, holder: int | None = None) -> None:
        if isinstance(action, Send):
            self._send(action.targets, action.data)
        elif isinstance(action, Close):
            self._close(action.conn, action.reason)
        elif isinstance(action, StoreCall):
            self._store_call(action, holder)
        elif isinstance(action, Reload):
            self.reload(action.conn)
        elif isinstance(action, Offload):
            pool = self._hash_pools[action.lane]
            future = asyncio.get_running_loop().run_in_executor(pool, action.job)
            future.add_done_callback(functools.partial(self._offloaded, action.then, holder))

    def _offloaded(self, then: Continuation, holder: int | None, done: asyncio.Future[Any]) -> None:
        if not done.cancelled():  # cancelled: the pools were shut down with the server
            self._resume(then, _outcome(done), holder)
        self._finished(holder)

    def _append(self, action: AppendHistory) -> Future[Any]:
        assert self.writer is not None, "the core appends history only when a store is open"
        future = self.writer.append_history(action.records)
        loop = asyncio.get_running_loop()
        future.add_done_callback(lambda _: _call_soon_threadsafe(loop, self._release_held))
        return future

    def _release_held(self) -> None:
        held = self._held
        while held:
            entry = held[0]
            if entry.commit is not None:
                if not entry.commit.done():
                    return
                held.popleft()
                self._committed(entry.action, entry.commit)
                continue
            held.popleft()
            owner = entry.owner
            if owner is not None and owner.exception() is not None:
                if not isinstance(entry.action, Send):  # the message's own deliveries go;
                    self._do(entry.action, entry.holder)  # anything else still runs
                continue
            self._do(entry.action, entry.holder)
        self._held_conns.clear()

    def _committed(self, action: Action, commit: Future[Any]) -> None:
        """Tell the core a commit failed (it refuses the message), or succeeded while
        commits were failing (the store is back)."""
        assert isinstance(action, AppendHistory)
        error = commit.exception()
        if action.then is None:
            if error is not None:
                event(log, "history_write_failed", level=logging.ERROR, error=str(error))
        elif error is not None or self.core.history_health.failing:
            self._resume(action.then, error)

    def _store_call(self, action: StoreCall, holder: int | None) -> None:
        assert self.writer is not None, "the core calls the store only when one is open"
        reader = action.reader
        if reader is not None:
            self._read(reader, action)
            return
        future = self.writer.submit(action.job)
        if action.then is not None or holder is not None:
            loop = asyncio.get_running_loop()
            future.add_done_callback(
                lambda done: _call_soon_threadsafe(loop, self._stored, action, holder, done)
            )

    def _stored(self, action: StoreCall, holder: int | None, done: Future[Any]) -> None:
        if action.then is not None:
            self._resume(action.then, _outcome(done), holder)
        self._finished(holder)

    def _read(self, reader: int, action: StoreCall) -> None:
        """A history read on the reader thread; ``reader``'s lines wait for its reply."""
        assert self.writer is not None
        loop = asyncio.get_running_loop()
        try:
            future = self.writer.read(action.job)
        except RuntimeError:  # shutting down: the reads were stopped; answer and go on
            future = Future()
            future.set_exception(StoreError("the store reader is closed"))
        future.add_done_callback(
            lambda done: _call_soon_threadsafe(loop, self._read_done, reader, action, done)
        )

    def _read_done(self, reader: int, action: StoreCall, done: Future[Any]) -> None:
        if not done.cancelled() and action.then is not None:
            self._resume(action.then, _outcome(done), reader)
        self._finished(reader)

    def _finished(self, holder: int | None) -> None:
        """Work that held ``holder`` is done (its continuation ran): let its lines go on."""
        if holder is None:
            return
        self._reading[holder] -= 1
        if self._reading[holder] > 0:
            return
        del self._reading[holder]
        connection = self.connections.get(holder)
        if connection is not None and connection.backlog is not None:
            self._drain_backlog(connection)

    def _resume(self, then: Continuation, outcome: Any, holder: int | None = None) -> None:
        self.run(self.core.resume(then, outcome, self.clock()), holder)

    def _close(self, conn: int, reason: str) -> None:
        connection = self.connections.pop(conn, None)
        if connection is not None:
            event(log, "disconnect", conn=conn, reason=reason)
            connection.close()

    def _send(self, targets: Sequence[int], data: bytes) -> None:
        """Queue ``data`` for each target: the fan-out loop, so ``Connection.queue`` inlined."""
        connections, dirty = self.connections, self._dirty
        self.core.metrics.deliveries += len(targets)
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
        if dirty and not self._flush_scheduled:
            self._schedule_flush()

    def mark_dirty(self, connection: Connection) -> None:
        self._dirty.append(connection)
        if not self._flush_scheduled:
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        self._flush_scheduled = True
        loop = asyncio.get_running_loop()
        wait = self._pacer.requested(time.perf_counter())
        if wait > 0.0:
            loop.call_later(wait, self.flush_all)
        else:
            loop.call_soon(self.flush_all)

    def flush_all(self) -> None:
        started = time.perf_counter()
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, []
        limit = self.config.sendq_bytes
        budget = self.sendq
        sizes = budget.sizes
        for connection in dirty:
            transport = connection.transport
            if connection.closing or transport is None or transport.is_closing():
                connection.out = None
                continue
            connection.flush()
            size = transport.get_write_buffer_size()
            if size > limit:
                self._sendq_exceeded(connection)
            elif size or connection in sizes:
                budget.update(connection, size)
        if budget.total > self.config.sendq_total_bytes:
            self._enforce_send_budget()
        self._pacer.flushed(started, time.perf_counter())

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
        actions = self.core.disconnect(connection.conn, "SendQ exceeded", self.clock())
        connection.out = [*(connection.out or ()), b"ERROR :SendQ exceeded\r\n"]
        if isinstance(connection.transport, TlsTransport):
            # A reader this far behind will not take a full queue in the usual grace: free
            # its memory sooner (the ERROR line still goes out if it does read).
            connection.transport.close_timeout = SENDQ_CLOSE_GRACE_SECONDS
        self._close(connection.conn, "SendQ exceeded")
        self.run(actions)

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        self.loop_lag = max(0.0, loop.time() - self._tick_due)
        now = self.clock()
        self.run(self.core.tick(now))
        self._tick_resources(now)
        if now >= self._next_cert_check:
            self._next_cert_check = now + CERT_CHECK_SECONDS
            warn_if_certificate_expires(self.config)
        self._tick_due = loop.time() + TICK_SECONDS
        self._tick_handle = loop.call_later(TICK_SECONDS, self._tick)

    def _tick_resources(self, now: float) -> None:
        """Once a second: re-measure queued output, give memory back after a burst, forget
        refilled accept buckets, write the summaries of suppressed log lines."""
        self.sendq.refresh(_unsent_bytes)
        if self._trim.due(self.sendq.total, now) and trim_memory():
            self.core.metrics.memory_trims += 1
            event(log, "memory_trimmed", queued=self.sendq.total)
        self.gate.prune(now)
        self._log_limiter.flush()

    # ---- operations: reload and metrics ----------------------------------------------------

    def reload(self, conn: int | None = None) -> None:
        """Re-read config and certificate, off the event loop (SIGHUP, REHASH); on any
        error keep the old ones and say why. One reload runs at a time."""
        if self._reloading is not None and not self._reloading.done():
            self._reload_done(conn, self.config, "a reload is already running")
            return
        self._reloading = asyncio.ensure_future(self.reload_now(conn))

    async def reload_now(self, conn: int | None = None) -> None:
        """The reload itself; file reads run on a thread with ``reload_timeout``."""
        config, error = self.config, None
        if self.reload_settings is None:
            error = "this server was started without a config to reload"
        else:
            try:
                config, context = await call_in_daemon_thread(
                    self.reload_settings, self.config.reload_timeout, "securechat-reload"
                )
            except (ConfigError, TlsSetupError) as exc:
                error = str(exc)
            except TimeoutError:
                error = (
                    f"reading the settings took more than {self.config.reload_timeout:g} s "
                    "(a file on a stuck mount?)"
                )
            except Exception:
                log.exception("bug while reloading the settings")
                error = "internal error, see the server log"
            else:
                self._apply_reload(config, context)
        self._reload_done(conn, config, error)

    def _reload_done(self, conn: int | None, config: ServerConfig, error: str | None) -> None:
        if error is not None:
            event(log, "reload_failed", level=logging.ERROR, error=error)
        self.run(self.core.reloaded(config, error, conn, self.clock()))

    def _apply_reload(self, config: ServerConfig, context: ssl.SSLContext) -> None:
        if (config.host, config.port) != (self.config.host, self.config.port):
            event(
                log,
                "reload_ignored",
                level=logging.WARNING,
                reason="host and port change only on restart",
            )
            config = config.replace(host=self.config.host, port=self.config.port)
        self.ssl_context = context  # new handshakes use it; open connections keep theirs
        self.config = config
        self.gate.reconfigure(config)
        self.gate.fd_budget = descriptor_budget(config.fd_reserve)
        self._log_limiter.burst = config.log_burst
        self._log_limiter.interval = config.log_interval_seconds
        event(log, "reloaded", cert=config.cert)
        warn_if_certificate_expires(config)

    @property
    def metrics_port(self) -> int:
        server = self._metrics_server
        return int(server.sockets[0].getsockname()[1]) if server and server.sockets else 0

    def render_metrics(self) -> str:
        core = self.core
        registered = sum(1 for s in core.sessions.values() if s.registered)
        gauges = {
            "connections": (float(len(self.connections)), "open client connections"),
            "registered_users": (float(registered), "clients that completed registration"),
            "rooms": (float(len(core.rooms)), "rooms that exist now"),
            "event_loop_lag_seconds": (self.loop_lag, "how late the last 1 s timer fired"),
            "handshakes_in_progress": (float(self.gate.handshakes), "TLS handshakes under way"),
            "sendq_queued_bytes": (float(self.sendq.total), "unsent bytes over all clients"),
        }
        return render(core.metrics.snapshot(), gauges)


@dataclass(slots=True)
class _Held:
    """An action waiting in ``ChatServer._held``: an append with its ``commit``, or an action
    behind one; ``owner`` is the commit of the append earlier in its own batch (its message),
    whose failure means it is not delivered."""

    action: Action
    commit: Future[Any] | None
    owner: Future[Any] | None
    holder: int | None = None  # the client the action holds (ChatServer._hold)


def warn_if_certificate_expires(config: ServerConfig) -> None:
    """Log a warning while the certificate expires within cert_expiry_warning_days."""
    try:
        expires = not_after(cert_der_from_pem_file(config.cert))
    except (TlsSetupError, ValueError, OSError):
        return  # the file was readable at start; a broken replacement is reported by reload
    days_left = (expires - datetime.now(UTC)).total_seconds() / 86400
    if days_left < config.cert_expiry_warning_days:
        event(
            log,
            "cert_expiring",
            level=logging.WARNING,
            cert=config.cert,
            days_left=int(days_left),
            not_after=expires.isoformat(),
        )


def descriptor_budget(reserve: int) -> int:
    """Client sockets this process may hold: its descriptor limit less ``reserve`` (for
    listeners, the database, logs, metrics, and for accepting while shedding), but at least
    half of the limit, so that a tiny limit still serves someone."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return max(soft // 2, soft - reserve, 1)


def _unsent_bytes(connection: Connection) -> int:
    """Held until the socket closes, also while closing (up to CLOSE_GRACE_SECONDS)."""
    transport = connection.transport
    return 0 if transport is None else transport.get_write_buffer_size()


def _is_closing(connection: Connection) -> bool:
    return connection.closing


def client_certfp(transport: asyncio.BaseTransport | None) -> str | None:
    """SHA-256 of the client's TLS certificate (for SASL EXTERNAL), or None without one.

    Python's ssl hands over only certificates it verified against ``client_ca``: with no
    CA configured the server does not even ask for one.
    """
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    der = ssl_object.getpeercert(True) if ssl_object is not None else None  # DER form
    return fingerprint_sha256(der) if der else None


def _call_soon_threadsafe(
    loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: Any
) -> None:
    """Hand a store thread's result to the loop; after shutdown nobody is left to tell."""
    with contextlib.suppress(RuntimeError):  # the loop closed: the server has stopped
        loop.call_soon_threadsafe(callback, *args)


def _outcome(future: Future[Any] | asyncio.Future[Any]) -> Any:
    """A finished future's result, or the exception it raised."""
    error = future.exception()
    return error if error is not None else future.result()


def hash_pools(config: ServerConfig) -> dict[str, ThreadPoolExecutor]:
    """One small thread pool per hashing lane: logins never queue behind REGISTER floods."""
    sizes = {"login": config.hash_workers_login, "bulk": config.hash_workers_bulk}
    return {
        lane: ThreadPoolExecutor(max_workers=size, thread_name_prefix=f"hash-{lane}")
        for lane, size in sizes.items()
    }


def open_listeners(host: str, port: int) -> list[socket.socket]:
    """One non-blocking listening socket per address ``host`` resolves to (IPv4 and IPv6)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    listeners: list[socket.socket] = []
    for family, _, _, _, address in dict.fromkeys((i[0], 0, 0, "", i[4]) for i in infos):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(
            address if not listeners else (address[0], listeners[0].getsockname()[1], *address[2:])
        )
        sock.listen(1024)
        sock.setblocking(False)
        listeners.append(sock)
    return listeners


def peer_host(sock: socket.socket) -> str:
    try:
        return host_of(sock.getpeername())
    except OSError:
        return "unknown"


def host_of(address: Any) -> str:
    """The host part of a TCP peer address, IPv4 or IPv6."""
    return str(address[0])


def format_address(address: tuple[str, int] | tuple[str, int, int, int]) -> str:
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
