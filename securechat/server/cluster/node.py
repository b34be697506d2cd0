"""A cluster node: the network layer's inputs go into the stream; the stream's events come
back, in the network's order, into this node's replica (replica.py); the side effects of this
node's own events are carried out here and their outcomes published (docs/CLUSTER.md).

Three tasks: the sender (everything published in one event-loop iteration leaves as one
XADD; while Redis does not answer the batch waits and goes when it answers), the reader
(XREAD BLOCK, in order), and the lease (renewed every second; the leader sends the timer
ticks and sweeps nodes whose lease lapsed; a node that cannot renew for longer than its
lease closes its own clients and stops: no split brain).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from securechat.logs import event
from securechat.protocol.message import build
from securechat.server.actions import Action, AppendHistory, Close, Offload, Send, StoreCall
from securechat.server.cluster import codec, snapshot, snapshot_child
from securechat.server.cluster.bus import (
    READ_BLOCK_MS,
    SNAPSHOT,
    Bus,
    BusError,
    ClusterUnavailable,
)
from securechat.server.cluster.replica import Replica, ReplicatedAppend, Work, log_bad_event
from securechat.server.core import NODE_SHIFT
from securechat.server.net.blocking import hand_to_loop, outcome_of
from securechat.server.records import StoreError
from securechat.server.settings_scope import differing, settings_hashes

if TYPE_CHECKING:
    from securechat.server.config import ServerConfig
    from securechat.server.net.server import ChatServer

log = logging.getLogger("securechat.server")

LEASE_SECONDS = 5.0  # a node silent this long is swept by the others (and stops itself)
RENEW_SECONDS = 1.0
LEADER_SECONDS = 3.0
RETRY_SECONDS = 0.2  # between attempts while Redis does not answer
STOP_SECONDS = 2.0  # what a stopping node waits for its last events to leave
COALESCE_ENTRIES = 8  # an XREAD that returned fewer entries than this: the stream is light,
COALESCE_SECONDS = 0.001  # so wait this long before the next (latency: at most this much more)


def _unless_cancelled() -> None:
    """redis-py may turn the cancellation of a command in flight into a connection error:
    a loop that retries on errors would then never end (a stop, or asyncio.run's cleanup,
    would wait for it forever). Let the cancellation through."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def default_node_name(port: int) -> str:
    return f"{socket.gethostname()}:{port}"


def node_name(config: ServerConfig) -> str:
    """What this node is called in the cluster (WHOIS 312, its lease, its log lines)."""
    return config.node_name or default_node_name(config.port)


class ClusterNode:
    def __init__(self, server: ChatServer) -> None:
        config = server.config
        assert config.cluster is not None
        self.server = server
        self.name = node_name(config)
        self.bus = Bus(config.cluster)
        self.number = 0
        self.origin = ""  # name/number: this process, as events name their origin
        self.replica = Replica(server.core, "")
        self._outbox: list[list[Any]] = []
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing: set[int] = set()  # closes published, not applied yet
        self._leader = False
        self._renewed_at = 0.0
        self._unreachable_logged = False
        self._cut_off_at: float | None = None
        self._batches = 0  # batches this node published (see _append)
        self._applied: dict[str, int] = {}  # origin -> the last batch number applied
        self._sending = False  # an XADD is in flight (stop waits for it)
        self._stopping = False  # the tasks must end (_end_tasks)
        self._last = "0"  # the last stream entry applied
        # snapshots (docs/CLUSTER.md "Snapshots and trimming"): the leader takes one every
        # this many events, at the first entry after which nothing is in flight
        self._snapshot_every = config.cluster_snapshot_events
        self._since_snapshot = 0  # events applied since the last snapshot (or the start)
        self._snapshot_tasks: set[asyncio.Task[None]] = set()
        self._snapshot_blocked = False  # the state held what a snapshot cannot carry
        self._trim_failed = False

    # ---- start and stop ---------------------------------------------------------------------

    async def start(self) -> None:
        """Join: take the name's lease, say hello, apply the stream up to the hello (the
        network's state now), then run. ClusterUnavailable (one line) when it cannot."""
        bus = self.bus
        await bus.open()
        try:
            await self._join()
        except BusError as exc:
            raise ClusterUnavailable(f"{bus.shown}: {exc}") from None
        loop = asyncio.get_running_loop()
        self._renewed_at = loop.time()
        self._tasks = [
            asyncio.create_task(self._send_loop()),
            asyncio.create_task(self._read_loop(self._last)),
            asyncio.create_task(self._lease_loop()),
        ]
        event(log, "cluster_joined", node=self.name, number=self.number, redis=bus.shown)

    async def _join(self) -> None:
        bus, server = self.bus, self.server
        # A random number, not a Redis counter: an emptied Redis (restarted) must not hand
        # out a number a running node has (31 bits: a collision is a 1e-9 chance per pair).
        self.number = secrets.randbits(31) | 1
        if not await bus.claim_name(self.name, self.number, int(LEASE_SECONDS * 1000)):
            raise ClusterUnavailable(
                f"node name {self.name!r} is in use by a live node (give another --node-name, "
                f"or start again {LEASE_SECONDS:g} s after that node stopped)"
            )
        self.origin = f"{self.name}/{self.number}"
        self.replica.origin, self.replica.number = self.origin, self.number
        server._next_conn = self.number << NODE_SHIFT  # conn ids unique in the network
        now = server.clock()
        events: list[list[Any]] = []
        if await bus.start_fresh(self.name):  # no live node: the old stream's users are gone
            event(log, "cluster_fresh_stream", node=self.name)
        await self._check_settings()
        previous = await bus.register(self.name, self.number)
        if previous is not None:  # our name's previous process died before it was swept
            events.append([codec.NODE_LOST, now, previous, f"Server {self.name} restarted"])
        await bus.applied(self.name, "0-0")  # no trim past us while we catch up (bus._TRIM)
        await self._load_snapshot()
        if server.writer is not None and await bus.first_start():
            events.append(await self._restore_event(now))
        events.append([codec.HELLO, now, self.number, self.name])
        self._batches += 1
        hello = await bus.append(self.origin, codec.encode_batch(events), self._batches)
        while self._last != hello:  # catch up: everything before us, then our hello
            for entry, fields in await bus.read(self._last):
                self._last = entry
                self._apply_entry(entry, fields)
                if entry == hello:
                    break

    async def _check_settings(self) -> None:
        """Refuse to join a cluster whose replicated settings differ from ours (before our
        hello: nothing of ours is in the stream yet), naming them; our name is free again."""
        mine = settings_hashes(self.server.config)
        names = differing(mine, await self.bus.settings(mine))
        if not names:
            return
        with contextlib.suppress(BusError):
            await self.bus.leave(self.name, self.number)
        raise ClusterUnavailable(
            f"{self.bus.shown}: settings differ from the running cluster's: {', '.join(names)}; "
            "every node must use the same ones (docs/CLUSTER.md)"
        )

    async def _load_snapshot(self) -> None:
        """The network's state at the snapshot's entry, if there is one: then only the events
        after it are read. One that cannot be decoded stops this node (ClusterUnavailable,
        one line): a replica without the network's state would diverge from the others."""
        data = await self.bus.snapshot()
        if data is None:
            return
        try:
            taken = await asyncio.to_thread(snapshot.from_bytes, data)
            self._applied = snapshot.load(self.replica, taken)
        except snapshot.SnapshotError as exc:
            with contextlib.suppress(BusError):  # our name is free again at once
                await self.bus.leave(self.name, self.number)
            raise ClusterUnavailable(
                f"{self.bus.shown}: the cluster's snapshot ({SNAPSHOT}) cannot be loaded: {exc}"
            ) from None
        self._last = taken.entry
        event(log, "cluster_snapshot_loaded", entry=taken.entry, bytes=len(data))

    async def _restore_event(self, now: float) -> list[Any]:
        """The registered rooms and always-on users, loaded once, by the cluster's first node."""
        writer = self.server.writer
        assert writer is not None
        rooms = await asyncio.wrap_future(writer.submit(lambda store: store.load_rooms()))
        users = await asyncio.wrap_future(writer.submit(lambda store: store.load_presences()))
        return [codec.RESTORE, now, codec.encode_value(rooms), codec.encode_value(users)]

    async def stop(self, reason_text: str) -> None:
        """Close this node's clients, tell the others they quit, and leave."""
        self._close_local(reason_text)
        if self._cut_off_at is not None:  # Redis does not answer: nothing to wait for
            await self._end_tasks()
            return
        # Always-on users are saved by each TICK's origin; what changed since the last one
        # is saved now, as one process does at shutdown: this may be the cluster's last
        # node, and then no tick follows (the writer finishes it before the node exits).
        self.server.run(self.server.core.save_presences())
        now = self.server.clock()
        self.publish([codec.NODE_LOST, now, self.number, f"{reason_text} ({self.name})"])
        with contextlib.suppress(TimeoutError, BusError):
            await asyncio.wait_for(self._drained(), STOP_SECONDS)
            await asyncio.wait_for(self.bus.leave(self.name, self.number), STOP_SECONDS)
        await self._end_tasks()

    async def _end_tasks(self) -> None:
        """Stop the three tasks. Closing the connections ends an XREAD in flight, which a
        cancellation alone may not (redis-py can hold on to a cancelled read)."""
        self._stopping = True
        tasks = [task for task in self._tasks if task is not asyncio.current_task()]
        tasks += self._snapshot_tasks
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.bus.close(), STOP_SECONDS)
        if tasks:
            await asyncio.wait(tasks, timeout=STOP_SECONDS)

    async def _drained(self) -> None:
        while self._outbox or self._sending:
            await asyncio.sleep(0.01)

    def _close_local(self, reason_text: str) -> None:
        server = self.server
        actions: list[Action] = []
        for conn, connection in list(server.connections.items()):
            line = build("ERROR", [f"Closing Link: {connection.addr} ({reason_text})"])
            actions += [Send((conn,), line), Close(conn, reason_text)]
        server.run(actions)

    # ---- the network layer's hooks (net/server.py) ------------------------------------------

    def connect(self, conn: int, host: str, certfp: str | None) -> None:
        self.publish([codec.CONNECT, self.server.clock(), conn, host, certfp])

    def line(self, conn: int, raw: bytes, now: float) -> None:
        self.publish([codec.LINE, now, conn, codec.line_text(raw)])

    def drop(self, conn: int, reason_text: str, closing: bool) -> None:
        kind = codec.CLOSE if closing else codec.DISCONNECT
        self.publish([kind, self.server.clock(), conn, reason_text])

    def commit_of(self, action: AppendHistory) -> Future[Any]:
        assert isinstance(action, ReplicatedAppend)
        return self.replica.commit_future(action)

    def tick(self, now: float) -> None:
        """Once a second: this node's own sessions' timers (their closes replicated), and,
        on the leader, the network's timers (a TICK event every replica applies)."""
        server = self.server
        sessions, config = server.core.sessions, server.core.config
        for conn in list(server.connections):
            session = sessions.get(conn)
            if session is None or conn in self._closing:
                continue
            why = None
            if not session.registered:
                if now - session.connected_at > config.registration_timeout:
                    why = "Registration timed out"
            elif session.ping_sent_at is not None:
                if now - session.ping_sent_at > config.ping_timeout:
                    server.core.metrics.ping_timeouts += 1
                    why = f"Ping timeout: {int(now - session.last_activity)} seconds"
            elif now - session.last_activity > config.ping_interval:
                session.ping_sent_at = now  # only this node times it
                server.run([Send((conn,), build("PING", [config.name]))])
            if why is not None:
                self._closing.add(conn)
                self.publish([codec.CLOSE, now, conn, why])
        self._closing = {conn for conn in self._closing if conn in sessions}
        if self._leader:
            self.publish([codec.TICK, now])

    # ---- the stream -------------------------------------------------------------------------

    def publish(self, event_: list[Any]) -> None:
        self._outbox.append(event_)
        self._wake.set()

    async def _send_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if len(self._outbox) == 1:
                # One event: let one loop iteration pass, so the lines that arrive with it
                # (other clients' reads ready in the same poll) share its XADD.
                await asyncio.sleep(0)
            while self._outbox:
                batch, self._outbox = self._outbox, []
                self._sending = True
                self._batches += 1
                await self._append(self._batches, codec.encode_batch(batch))
                self._sending = False

    async def _append(self, number: int, data: bytes) -> None:
        """One XADD; while Redis does not answer, the batch waits (in order) and goes when
        it does (docs/CLUSTER.md, "Redis unreachable"). ``number``: this node's count of
        batches; a retry of an XADD whose reply was lost may store a batch twice, and readers
        apply a number once (``_apply_entry``)."""
        while True:
            try:
                await self.bus.append(self.origin, data, number)
            except BusError as exc:
                self._unless_stopping()
                self._unreachable(exc)
                await asyncio.sleep(RETRY_SECONDS)
            else:
                self._reachable()
                return

    async def _read_loop(self, last: str) -> None:
        entries: list[tuple[str, dict[bytes, bytes]]] = []
        while True:
            if 0 < len(entries) < COALESCE_ENTRIES:
                # A light stream: wait a moment so the next XREAD takes several entries
                # (each XREAD is a wake-up of this node and of Redis; BENCHMARKS.md, Cluster)
                await asyncio.sleep(COALESCE_SECONDS)
            try:
                entries = await self.bus.read(last, READ_BLOCK_MS)
            except BusError as exc:
                self._unless_stopping()
                self._unreachable(exc)
                entries = []
                await asyncio.sleep(RETRY_SECONDS)
                continue
            for entry, fields in entries:
                last = self._last = entry
                try:
                    self._apply_entry(entry, fields)
                except Exception:  # a bug: logged; the reader must go on, or the node stops
                    log.exception("bug while applying stream entry %s", entry)
                if self._since_snapshot >= self._snapshot_every > 0 and self._leader:
                    self._snapshot(entry)

    def _apply_entry(self, entry: str, fields: dict[bytes, bytes]) -> None:
        try:
            origin = fields[b"o"].decode()
            number = int(fields[b"n"])
            batch = codec.decode_batch(fields[b"e"])
        except (KeyError, ValueError) as exc:
            log_bad_event(entry, exc)
            return
        if number <= self._applied.get(origin, 0):
            return  # the same batch again (a retried XADD): applied once
        self._applied[origin] = number
        self._since_snapshot += len(batch)
        server = self.server
        for index, event_ in enumerate(batch):
            try:
                actions, work = self.replica.apply(entry, index, origin, event_)
            except Exception as exc:  # a malformed event: logged, the others still apply
                log_bad_event(entry, exc)
                continue
            for item in work:
                self._perform(item)
            if actions:
                server.run(actions)

    def _snapshot(self, entry: str) -> None:
        """Take a snapshot right after ``entry`` (nothing in flight, else at a later entry),
        then store it and trim the stream, off the loop's critical path."""
        if self._snapshot_tasks or not self.replica.quiescent():  # one at a time
            return
        started = time.perf_counter()
        try:
            encoded, forked = self._encode_snapshot(entry, dict(self._applied))
        except snapshot.Unencodable as exc:
            self._snapshot_waits(exc)
            self._since_snapshot = 0  # a bug to fix, not a passing state: the next interval
            return
        self._since_snapshot = 0
        paused_ms = round((time.perf_counter() - started) * 1000, 1)  # the loop's pause
        task = asyncio.create_task(self._store_snapshot(entry, encoded, paused_ms, forked))
        self._snapshot_tasks.add(task)
        task.add_done_callback(self._snapshot_tasks.discard)

    def _encode_snapshot(
        self, entry: str, applied: dict[str, int]
    ) -> tuple[Callable[[], Awaitable[bytes]], bool]:
        """The snapshot's bytes to come, and whether a forked child makes them
        (snapshot_child.py: the loop then pauses for the fork only); without fork, or when
        it fails (no memory, no processes left), the walk runs here on the loop."""
        replica = self.replica

        def take() -> snapshot.Snapshot:
            taken = snapshot.take(replica, applied, entry)
            assert taken is not None  # quiescent: the caller checked, nothing ran since
            return taken

        if snapshot_child.can_fork():
            snapshot.schema(replica.core)  # computed here: the child must not call OpenSSL
            with contextlib.suppress(OSError):
                child = snapshot_child.SnapshotChild(lambda: snapshot.to_bytes(take()))
                return child.result, True
        return functools.partial(asyncio.to_thread, snapshot.to_bytes, take()), False

    def _snapshot_waits(self, exc: snapshot.Unencodable) -> None:
        """Said once per streak (a bug to fix): snapshots wait, the stream grows meanwhile."""
        if not self._snapshot_blocked:
            self._snapshot_blocked = True
            event(log, "cluster_snapshot_waits", level=logging.WARNING, reason=str(exc))

    async def _trim(self) -> None:
        """A failed trim (a Redis refusing the script) is not a lost lease: said, not fatal."""
        try:
            await self.bus.trim()
        except BusError as exc:
            if not self._trim_failed:  # once, not every second
                event(log, "cluster_trim_failed", level=logging.WARNING, error=str(exc))
            self._trim_failed = True
        else:
            self._trim_failed = False

    async def _store_snapshot(
        self,
        entry: str,
        encoded: Callable[[], Awaitable[bytes]],
        paused_ms: float,
        forked: bool,
    ) -> None:
        try:
            data = await encoded()
        except snapshot.Unencodable as exc:  # found by the child: the next interval tries
            self._snapshot_waits(exc)
            return
        except snapshot_child.ChildFailed as exc:  # the next one will do
            event(log, "cluster_snapshot_failed", level=logging.WARNING, error=str(exc))
            return
        self._snapshot_blocked = False
        try:
            trimmed = await self.bus.trim(entry, data)
        except BusError as exc:  # the next one will do; the stream is only longer meanwhile
            event(log, "cluster_snapshot_failed", level=logging.WARNING, error=str(exc))
            return
        event(
            log,
            "cluster_snapshot",
            entry=entry,
            bytes=len(data),
            trimmed=trimmed,
            loop_pause_ms=paused_ms,
            forked="yes" if forked else "no",
        )

    # ---- side effects of this node's events -------------------------------------------------

    def _perform(self, work: Work) -> None:
        action, server = work.action, self.server
        loop = asyncio.get_running_loop()
        writer = server.writer
        future: Future[Any] | asyncio.Future[Any]
        if isinstance(action, ReplicatedAppend):
            assert writer is not None
            future = writer.append_history(action.records)
            future.add_done_callback(
                lambda done: hand_to_loop(loop, self._report_commit, work.token, done)
            )
            return
        if isinstance(action, Offload):
            future = loop.run_in_executor(server._hash_pools[action.lane], action.job)
        else:
            assert isinstance(action, StoreCall) and writer is not None
            future = self._store_future(action)
        if work.report:
            future.add_done_callback(
                lambda done: hand_to_loop(loop, self._report, work.token, done)
            )

    def _store_future(self, action: StoreCall) -> Future[Any]:
        writer = self.server.writer
        assert writer is not None
        if action.reader is None:
            return writer.submit(action.job)
        try:
            return writer.read(action.job)
        except RuntimeError:  # shutting down: the reads were stopped
            future: Future[Any] = Future()
            future.set_exception(StoreError("the store reader is closed"))
            return future

    def _report(self, token: str, done: Future[Any] | asyncio.Future[Any]) -> None:
        if done.cancelled():
            return
        outcome = outcome_of(done)
        try:
            encoded = codec.encode_value(outcome)
        except TypeError as exc:  # a type the codec does not know: our bug, said once
            event(log, "cluster_outcome_unencodable", level=logging.ERROR, error=str(exc))
            encoded = codec.encode_value(StoreError(str(exc)))
        self.publish([codec.OUTCOME, self.server.clock(), token, encoded])

    def _report_commit(self, token: str, done: Future[Any]) -> None:
        error = done.exception()
        text = None if error is None else (str(error) or type(error).__name__)
        self.publish([codec.COMMITTED, self.server.clock(), token, text])

    def _unless_stopping(self) -> None:
        """After a Redis error in a retrying loop: end the loop if the node stops."""
        if self._stopping:
            raise asyncio.CancelledError
        _unless_cancelled()

    # ---- liveness ---------------------------------------------------------------------------

    async def _lease_loop(self) -> None:
        loop = asyncio.get_running_loop()
        lease_ms, leader_ms = int(LEASE_SECONDS * 1000), int(LEADER_SECONDS * 1000)
        while True:
            await asyncio.sleep(RENEW_SECONDS)
            try:
                # asyncio.timeout, not wait_for: wait_for runs the renewal as a task of its own,
                # and when a stop cancels this loop while closing the connection, redis-py
                # ends that task with a connection error nobody retrieves (a traceback in
                # the log at exit)
                async with asyncio.timeout(1.0):
                    await self.bus.renew(self.name, self.number, lease_ms)
                await self.bus.remember(self.name, self.number)
                await self.bus.applied(self.name, self._last)  # how far the stream may go
                self._renewed_at = loop.time()
                self._leader = await self.bus.lead(self.origin, leader_ms)
                if self._leader:
                    await self._sweep()
                    if self._snapshot_every > 0:  # what lagging nodes held back, if any
                        await self._trim()
            except (BusError, TimeoutError) as exc:
                self._unless_stopping()
                self._leader = False
                self._unreachable(exc)
                if loop.time() - self._renewed_at > LEASE_SECONDS:
                    await self._cut_off()
                    return

    async def _sweep(self) -> None:
        """Nodes whose lease lapsed (killed, cut off): their users quit everywhere."""
        for name, number in await self.bus.lapsed():
            if name != self.name and await self.bus.forget(name, number):
                event(log, "cluster_node_lost", node=name, number=number)
                text = f"Server {name} lost (no answer for {LEASE_SECONDS:g} s)"
                self.publish([codec.NODE_LOST, self.server.clock(), number, text])

    async def _cut_off(self) -> None:
        """Our lease lapsed: the others have swept (or will sweep) our users, so ours must
        not stay connected to a network that no longer has them. Close them and stop."""
        text = f"Lost the cluster (Redis {self.bus.shown} unreachable for {LEASE_SECONDS:g} s)"
        event(log, "cluster_cut_off", level=logging.ERROR, redis=self.bus.shown)
        self._cut_off_at = self.server.clock()
        await self.server.shutdown(text)

    def _unreachable(self, exc: BaseException) -> None:
        if not self._unreachable_logged:
            self._unreachable_logged = True
            event(log, "cluster_unreachable", level=logging.WARNING, error=str(exc) or "timeout")

    def _reachable(self) -> None:
        if self._unreachable_logged:
            self._unreachable_logged = False
            event(log, "cluster_reachable")
