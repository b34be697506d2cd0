"""The asyncio shell around ServerCore: listeners, TLS, framing, send queues, timers.

How a byte travels (DESIGN.md §4):

- Each listening socket (IRC's, and the browsers' on ``web_port``) accepts plain TCP.
  Per-address bounds apply first (``AcceptGate``: sockets, handshakes in progress, new sockets
  per second): a socket over them is closed at once, before any TLS work; near the descriptor
  limit the newest handshakes of the busiest address are shed. The first byte a client sends
  decides: a TLS ClientHello (record type 0x16, RFC 8446 §5.1) goes on to the TLS handshake
  (``tls_transport.ServerHandshake``); anything else gets one plaintext ``ERROR :This port
  requires TLS`` and is closed, so a user who forgot ``-tls`` in irssi sees why instead of a
  silent hang-up.
- ``Connection.data_received`` splits lines (``LineBuffer``) and feeds every
  complete line to the core at once: lines pipelined in one TLS record are
  all processed, none waits in a buffer.
- The core's ``Send`` actions are appended to each target's pending output
  without awaiting anything; once per event-loop iteration (later while the
  server is busy: ``pacing.FlushPacer``) every connection with pending output
  writes it in a single ``transport.write`` (one TLS record for many lines; ``output.py``).
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
import functools
import logging
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from securechat.logs import EventLimiter, event
from securechat.server.actions import (
    Action,
    AppendHistory,
    Close,
    Continuation,
    Offload,
    Reload,
    Send,
    StoreCall,
)
from securechat.server.config import ServerConfig
from securechat.server.core import ServerCore
from securechat.server.limits import AcceptGate
from securechat.server.net.accept import Acceptor, StartWeb, WebSide
from securechat.server.net.blocking import hand_to_loop, outcome_of
from securechat.server.net.connection import READ_BUFFER_BYTES, Connection
from securechat.server.net.metrics_http import start_metrics_server
from securechat.server.net.operations import read_settings, render_metrics, tend_resources
from securechat.server.net.output import Output
from securechat.server.net.pacing import FlushPacer
from securechat.server.net.sendq import MemoryTrim, SendBudget
from securechat.server.net.sockets import (
    client_certfp,
    descriptor_budget,
    format_address,
    hash_pools,
    keep_listening_addresses,
    open_listeners,
    warn_if_certificate_expires,
)
from securechat.server.store import Commit, StoreError, StoreWriter

if TYPE_CHECKING:
    from securechat.server.cluster.node import ClusterNode

log = logging.getLogger("securechat.server")

TICK_SECONDS = 1.0
CERT_CHECK_SECONDS = 6 * 3600.0
# Events a flood repeats once per socket: written at most log_burst times per interval each.
LIMITED_EVENTS = ("tls_failed", "accept_error", "refused", "history_write_failed", "shed")


class ChatServer(Acceptor, Output):
    """Owns the listeners, the connections and the core; ``run`` carries out actions."""

    def __init__(
        self,
        config: ServerConfig,
        ssl_context: ssl.SSLContext,
        motd: Sequence[str] | None = None,
        clock: Callable[[], float] = time.time,
        writer: StoreWriter | None = None,
        reload_settings: Callable[[], tuple[ServerConfig, ssl.SSLContext]] | None = None,
        start_web: StartWeb | None = None,
        start_cluster: Callable[[ChatServer], ClusterNode] | None = None,
    ) -> None:
        """``reload_settings`` re-reads the config file and certificate (SIGHUP, REHASH)."""
        if config.web_port is not None and start_web is None:
            raise ValueError("web_port is set: pass start_web (securechat.web.listener)")
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
        self.core = ServerCore(
            config,
            clock(),
            motd,
            persistent=writer is not None,
            msgid_prefix=writer.msgid_prefix if writer is not None else None,
        )
        self.connections: dict[int, Connection] = {}
        self.listeners: list[socket.socket] = []
        self.read_view = memoryview(bytearray(READ_BUFFER_BYTES))  # see Connection.get_buffer
        self._pending: list[tuple[Sequence[int], bytes]] = []  # see Output
        self._dirty: list[Connection] = []
        self._flush_scheduled = False
        self._hosts: dict[str, str] = {}  # see _shared_host
        self._pacer = FlushPacer(pause=config.flush_pause_ms / 1000.0)  # lines share records
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
        # ... of which these target lists are not in the set yet: merged only when a batch
        # without an append asks (_touches_held). With history on every message is held,
        # and its batch starts with its own append, so most never ask (BENCHMARKS.md,
        # "Fourth round"): no set insert per recipient per message.
        self._held_unmerged: list[Sequence[int]] = []
        self._on_commit: Callable[[], None] | None = None  # the writer's listener (_append)
        # Per client: its store calls and offloads in flight (history reads, logins, scrypt).
        # While it has any, its later lines wait (see ``run``), so replies keep command order.
        self._waiting_on: collections.Counter[int] = collections.Counter()
        self._hash_pools = hash_pools(config)  # Offload lanes (hashing.py)
        self._start_web = start_web
        self.web: WebSide | None = None  # browsers (securechat.web), when web_port is set
        # Cluster mode (docs/CLUSTER.md): the core is a replica; what changes it goes through
        # the node's stream. Passed in (as start_web), so net never imports the cluster
        # package, and a default server never loads redis.
        self.cluster: ClusterNode | None = None
        if config.cluster is not None:
            if start_cluster is None:
                raise ValueError("cluster is set: pass start_cluster (cluster.node.ClusterNode)")
            self.cluster = start_cluster(self)

    # ---- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        if self.cluster is not None:
            await self.cluster.start()  # the network's state first, then clients
        else:
            await self._restore_rooms()
        self.listeners = open_listeners(self.config.host, self.config.port, self.config.reuse_port)
        self.port = self.listeners[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        if self._start_web is not None and self.config.web_port is not None:
            self.web = self._start_web(self, self.config.web_port)
            self.listeners += self.web.sockets  # closed by shutdown like the IRC ones
        log.addFilter(self._log_limiter)
        for listener in self.listeners:
            loop.add_reader(listener.fileno(), self._accept, listener)
        if self.writer is not None:
            await self.reload_klines()
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
            # then the always-on users, back in those rooms (presence_accounts.py)
            users = await asyncio.wrap_future(self.writer.submit(lambda s: s.load_presences()))
            self.run(self.core.restore_presences(users, self.clock()))

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
        if self.cluster is not None:
            await self.cluster.stop(reason)
        else:
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

    def _new_connection(self, addr: str, listener: socket.socket) -> Connection:
        self._next_conn += 1
        if self.web is not None and listener in self.web.sockets:
            return self.web.connection(self._next_conn, addr)
        return Connection(self, self._next_conn, addr)

    # ---- connections ------------------------------------------------------------------------

    def connection_opened(self, connection: Connection) -> None:
        self.connections[connection.conn] = connection
        event(log, "connect", conn=connection.conn, peer=connection.addr)
        certfp = client_certfp(connection.transport)
        if self.cluster is not None:
            self.cluster.connect(connection.conn, connection.addr, certfp)
        else:
            self.run(self.core.connect(connection.conn, connection.addr, self.clock(), certfp))

    def connection_closed(self, connection: Connection, reason: str) -> None:
        if self.connections.pop(connection.conn, None) is None:
            return
        connection.closing = True
        event(log, "disconnect", conn=connection.conn, reason=reason)
        self.run(self.drop(connection.conn, reason))

    def drop(self, conn: int, reason: str, closing: bool = False) -> list[Action]:
        """The core forgets ``conn`` (``closing``: the server closes it, with ERROR first);
        in cluster mode every replica does, through the stream."""
        if self.cluster is not None:
            self.cluster.drop(conn, reason, closing)
            return []
        if closing:
            return self.core.close_conn(conn, reason, self.clock())
        return self.core.disconnect(conn, reason, self.clock())

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
            self._receive(conn, line, now)
            if conn in self._waiting_on:  # its later lines wait for the work's reply (_finished)
                connection.backlog = collections.deque(lines[index + 1 :])
                self.check_backlog(connection)
                return

    def _receive(self, conn: int, line: bytes, now: float) -> None:
        cluster = self.cluster
        if cluster is None:
            self.run(self.core.receive_line(conn, line, now))
        else:  # applied when it comes back from the stream, in the network's order
            cluster.line(conn, line, now)

    def check_backlog(self, connection: Connection) -> None:
        backlog = connection.backlog
        if backlog is not None and len(backlog) > self.config.flood_max_backlog:
            connection.backlog = None
            self.core.metrics.excess_floods += 1
            self.run(self.drop(connection.conn, "Excess flood", closing=True))

    def _schedule_backlog(self, connection: Connection, delay: float) -> None:
        self.check_backlog(connection)
        if connection.backlog is not None:
            asyncio.get_running_loop().call_later(delay, self._drain_backlog, connection)

    def _drain_backlog(self, connection: Connection) -> None:
        backlog = connection.backlog
        core, conn = self.core, connection.conn
        while backlog and not connection.closing:
            if conn in self._waiting_on:
                return  # _finished drains again
            now = self.clock()
            delay = core.flood_delay(conn, now)
            if delay > 0.0:
                asyncio.get_running_loop().call_later(delay, self._drain_backlog, connection)
                return
            self._receive(conn, backlog.popleft(), now)
        if conn in self._waiting_on:
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
        owner: Future[Any] | Commit | None = None  # the commit the rest of this batch awaits
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
                    self._held_unmerged.append(action.targets)
            else:
                self._do(action, holder)

    def _hold(self, action: Action, client: int | None) -> int | None:
        """The client ``action`` holds (counted in ``_waiting_on`` until ``_finished``), if any:
        the one it names, else the one whose held work's continuation emitted it."""
        if isinstance(action, StoreCall) and action.reader is not None:
            client = action.reader
        elif isinstance(action, StoreCall | Offload):
            client = action.client if action.client is not None else client
        else:
            return None
        if client is not None:
            self._waiting_on[client] += 1
        return client

    def _touches_held(self, action: Action) -> bool:
        """Is ``action`` for a client whose earlier output is still held?"""
        if self._held_unmerged:
            self._held_conns.update(*self._held_unmerged)
            self._held_unmerged.clear()
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
            future.add_done_callback(functools.partial(self._work_done, action.then, holder))

    def _work_done(
        self,
        then: Continuation | None,
        holder: int | None,
        done: Future[Any] | asyncio.Future[Any],
    ) -> None:
        """Offloaded work, a store call or a read finished: its continuation runs, then the
        client it held goes on. Cancelled (shutting down): nobody waits for the answer."""
        if then is not None and not done.cancelled():
            self._resume(then, outcome_of(done), holder)
        self._finished(holder)

    def _append(self, action: AppendHistory) -> Future[Any] | Commit:
        """Hand the records over; ``_release_held`` runs once they (and their group) commit."""
        loop = asyncio.get_running_loop()
        if self.cluster is not None:  # committed by the origin node; its outcome replicated
            future = self.cluster.commit_of(action)
            future.add_done_callback(lambda _: hand_to_loop(loop, self._release_held))
            return future
        assert self.writer is not None, "the core appends history only when a store is open"
        wake = self._on_commit or functools.partial(hand_to_loop, loop, self._release_held)
        self._on_commit = wake  # one partial, so the writer calls it once per group
        return self.writer.append_soon(action.records, wake)

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
        self._held_unmerged.clear()

    def _committed(self, action: Action, commit: Future[Any] | Commit) -> None:
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
                lambda done: hand_to_loop(loop, self._work_done, action.then, holder, done)
            )

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
            lambda done: hand_to_loop(loop, self._work_done, action.then, reader, done)
        )

    def _finished(self, holder: int | None) -> None:
        """Work that held ``holder`` is done (its continuation ran): let its lines go on."""
        if holder is None:
            return
        self._waiting_on[holder] -= 1
        if self._waiting_on[holder] > 0:
            return
        del self._waiting_on[holder]
        connection = self.connections.get(holder)
        if connection is not None and connection.backlog is not None:
            self._drain_backlog(connection)

    def _resume(self, then: Continuation, outcome: Any, holder: int | None = None) -> None:
        self.run(self.core.resume(then, outcome, self.clock()), holder)

    def _close(self, conn: int, reason: str) -> None:
        self._distribute()  # its last lines (the ERROR) go out before it closes
        connection = self.connections.pop(conn, None)
        if connection is not None:
            event(log, "disconnect", conn=conn, reason=reason)
            connection.close()

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        self.loop_lag = max(0.0, loop.time() - self._tick_due)
        now = self.clock()
        try:
            if self.cluster is not None:
                self.cluster.tick(now)
            else:
                self.run(self.core.tick(now))
            tend_resources(self, now)
            if now >= self._next_cert_check:
                self._next_cert_check = now + CERT_CHECK_SECONDS
                warn_if_certificate_expires(self.config)
        finally:  # whatever failed above, the next PING and timeout still come
            self._tick_due = loop.time() + TICK_SECONDS
            self._tick_handle = loop.call_later(TICK_SECONDS, self._tick)

    # ---- operations: reload and metrics (operations.py) -------------------------------------

    def reload(self, conn: int | None = None) -> None:
        """Re-read config and certificate, off the event loop (SIGHUP, REHASH); on any
        error keep the old ones and say why. One reload runs at a time."""
        if self._reloading is not None and not self._reloading.done():
            self._reload_done(conn, self.config, "a reload is already running")
            return
        self._reloading = asyncio.ensure_future(self.reload_now(conn))

    async def reload_now(self, conn: int | None = None) -> None:
        """The reload itself; file reads run on a thread with ``reload_timeout``. K-lines are
        read again from the store too: another process may share it (docs/CLUSTER.md)."""
        clustered = self.cluster is not None
        config, context, error = await read_settings(self.reload_settings, self.config, clustered)
        if context is not None:
            self._apply_reload(config, context)
        if self.writer is not None:
            try:
                await self.reload_klines()
            except StoreError as exc:  # the ones in memory stay
                event(log, "klines_reload_failed", level=logging.WARNING, error=str(exc))
        self._reload_done(conn, config, error)

    async def reload_klines(self) -> None:
        """Replace the K-lines in memory with the stored ones (the cache hook of
        docs/CLUSTER.md "PostgreSQL store"). Raises StoreError."""
        assert self.writer is not None
        klines = await asyncio.wrap_future(self.writer.submit(lambda store: store.load_klines()))
        self.core.load_klines(klines, replace=True)

    def _reload_done(self, conn: int | None, config: ServerConfig, error: str | None) -> None:
        if error is not None:
            event(log, "reload_failed", level=logging.ERROR, error=error)
        self.run(self.core.reloaded(config, error, conn, self.clock()))

    def _apply_reload(self, config: ServerConfig, context: ssl.SSLContext) -> None:
        config = keep_listening_addresses(self.config, config)
        self.ssl_context = context  # new handshakes use it; open connections keep theirs
        self.config = config
        self.gate.reconfigure(config)
        self._pacer.pause = config.flush_pause_ms / 1000.0
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
        return render_metrics(self)


@dataclass(slots=True)
class _Held:
    """An action waiting in ``ChatServer._held``: an append with its ``commit``, or an action
    behind one; ``owner`` is the commit of the append earlier in its own batch (its message),
    whose failure means it is not delivered."""

    action: Action
    commit: Future[Any] | Commit | None
    owner: Future[Any] | Commit | None
    holder: int | None = None  # the client the action holds (ChatServer._hold)
