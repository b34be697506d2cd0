"""Applying the stream's events to this node's replica of the core.

Every node applies every event, its own included, in the stream's order, so every replica
goes through the same states (docs/CLUSTER.md). What must hold for that:
- ``now`` is the event's (its origin's clock), never ours, and never goes back;
- msgids come from the stream entry id, the event's place in its batch and a counter within
  the event: the same on every node, unique in the network, without a shared counter;
- side effects (StoreCall, Offload, AppendHistory: the database and scrypt) are carried out
  by the event's origin node only. Every replica keeps the continuation under a token made
  of the same three numbers; the origin publishes the outcome as an event, and every replica
  resumes the continuation with it, at the same place in the order;
- a client's lines wait behind its work (a store call or offload naming it, as the network
  layer does in single-process mode, issue 13): the replicas hold them, identically.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from securechat.logs import event as log_event
from securechat.server.actions import (
    Action,
    AppendHistory,
    Continuation,
    Offload,
    Reload,
    Send,
    StoreCall,
)
from securechat.server.cluster import codec, quiet_log
from securechat.server.core import NODE_SHIFT, ServerCore
from securechat.server.records import StoreError

log = logging.getLogger("securechat.server")


@dataclass(slots=True, frozen=True)
class ReplicatedAppend(AppendHistory):
    """An append whose commit every node waits for by ``token`` (``Replica.commit_future``):
    its continuation runs from the COMMITTED event, not from the network layer."""

    token: str = ""


@dataclass(slots=True, frozen=True)
class Work:
    """A side effect for the origin node to carry out; ``report``: publish its outcome."""

    token: str
    action: StoreCall | Offload | ReplicatedAppend
    report: bool


@dataclass(slots=True, frozen=True)
class _Gone:
    """In a client's deferred lines: it disconnected after them (``reason``)."""

    reason: str


@dataclass(slots=True)
class _Waiting:
    then: Continuation | None
    client: int | None  # whose lines wait for it
    origin: str  # the node that carries it out (its loss fails it)


class Replica:
    def __init__(self, core: ServerCore, origin: str, number: int = 0) -> None:
        self.core = core
        self.origin = origin  # this node, as events name their origin (name/number)
        quiet_log.install()
        # Replicated timers start from the same point on every node, not from each node's own
        # start time (the core's constructor reads ``now`` locally): both run at the first
        # replicated tick, then at the ticks' times, identically everywhere (and snapshots of
        # any node hold the same values).
        core.history_pruned_at = 0.0
        core._next_housekeeping = 0.0
        self.number = number
        self.now = 0.0
        core.nodes = {}
        self._waiting: dict[str, _Waiting] = {}
        self._appends: dict[str, tuple[Continuation | None, str]] = {}
        self._commits: dict[str, Future[Any]] = {}
        self._holds: collections.Counter[int] = collections.Counter()
        self._deferred: dict[int, collections.deque[bytes | _Gone]] = {}
        self._restored = False
        # the event being applied: its token prefix, its origin, what it produced
        self._prefix = ""
        self._entry = ""  # the stream entry of the event being applied, and its id in hex
        self._entry_hex = ""
        self._next_token = 0
        self._from = ""
        self._out: list[Action] = []
        self._work: list[Work] = []
        self._handlers: dict[str, Callable[[list[Any], float], None]] = {
            codec.CONNECT: self._connect,
            codec.LINE: self._line,
            codec.DISCONNECT: self._disconnect,
            codec.CLOSE: self._close,
            codec.OUTCOME: self._outcome,
            codec.COMMITTED: self._committed,
            codec.TICK: self._tick,
            codec.HELLO: self._hello,
            codec.NODE_LOST: self._node_lost,
            codec.RESTORE: self._restore,
        }

    def apply(
        self, entry: str, index: int, origin: str, event: list[Any]
    ) -> tuple[list[Action], list[Work]]:
        """One event: the actions for this node's network layer (sends to remote
        connections included: it drops them), and the work this node must carry out."""
        if entry != self._entry:  # once per stream entry, not per event of its batch
            ms, _, seq = entry.partition("-")
            self._entry, self._entry_hex = entry, f"{int(ms):x}.{int(seq or 0):x}."
        self._prefix = f"{self._entry_hex}{index:x}."
        self._next_token = 0
        self._from = origin
        core = self.core
        core._msgid_prefix = self._prefix  # msgids: the same on every node (module doc)
        core._msgid_counter = 0
        self.now = now = max(self.now, float(event[1]))
        self._out, self._work = [], []
        quiet = origin != self.origin  # its origin logs it (quiet_log.py)
        if quiet:
            quiet_log.REMOTE_EVENTS.set_quiet(True)
        try:
            self._handlers[event[0]](event, now)
        finally:
            if quiet:
                quiet_log.REMOTE_EVENTS.set_quiet(False)
        return self._out, self._work

    # ---- snapshots (snapshot.py) -------------------------------------------------------------

    def quiescent(self) -> bool:
        """Nothing in flight: no continuation waits for an outcome, no client's lines are held,
        no delayed reply is due (accounts.py). Only then is a snapshot taken: those are code,
        which a snapshot never holds."""
        pending = self._waiting or self._appends or self._holds or self._deferred
        return not (pending or self.core.accounts.held)

    def own_state(self) -> dict[str, Any]:
        """What a snapshot keeps of the replica itself, beside the core."""
        return {"now": self.now, "restored": self._restored}

    def load_own_state(self, state: dict[str, Any]) -> None:
        self.now, self._restored = float(state["now"]), bool(state["restored"])

    def is_local(self, conn: int) -> bool:
        return conn >> NODE_SHIFT == self.number

    # ---- events -----------------------------------------------------------------------------

    def _connect(self, event: list[Any], now: float) -> None:
        conn, host, certfp = event[2], event[3], event[4]
        self._sort(self.core.connect(conn, host, now, certfp))
        session = self.core.sessions.get(conn)
        if session is not None:
            session.remote = not self.is_local(conn)

    def _line(self, event: list[Any], now: float) -> None:
        self._apply_line(event[2], event[3].encode("latin-1"), now)  # codec.line_bytes

    def _apply_line(self, conn: int, raw: bytes | _Gone, now: float) -> None:
        if self._holds.get(conn):  # its earlier command still waits for its work
            self._deferred.setdefault(conn, collections.deque()).append(raw)
        elif isinstance(raw, _Gone):
            self._sort(self.core.disconnect(conn, raw.reason, now))
        else:
            self._sort(self.core.receive_line(conn, raw, now))

    def _disconnect(self, event: list[Any], now: float) -> None:
        conn, reason = event[2], event[3]
        if self._holds.get(conn):  # its lines sent before it left are still handled first,
            self._deferred.setdefault(conn, collections.deque()).append(_Gone(reason))
            return  # as ChatServer does with a lost connection's backlog
        self._sort(self.core.disconnect(conn, reason, now))

    def _close(self, event: list[Any], now: float) -> None:
        conn = event[2]
        self._deferred.pop(conn, None)
        self._sort(self.core.close_conn(conn, event[3], now))

    def _outcome(self, event: list[Any], now: float) -> None:
        waiting = self._waiting.pop(event[2], None)
        if waiting is None:
            return
        if waiting.then is not None:
            outcome = codec.decode_value(event[3])
            self._sort(self.core.resume(waiting.then, outcome, now), waiting.client)
        self._release(waiting.client, now)

    def _committed(self, event: list[Any], now: float) -> None:
        token, error_text = event[2], event[3]
        error = None if error_text is None else StoreError(error_text)
        self._finish_append(token, error, now)

    def _finish_append(self, token: str, error: Exception | None, now: float) -> None:
        then, _ = self._appends.pop(token, (None, ""))
        future = self._commits.pop(token, None)
        if future is not None and not future.done():
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)
        # as ChatServer._committed: a failure refuses the message; a success while failing
        # says the store is back
        if then is not None and (error is not None or self.core.history_health.failing):
            self._sort(self.core.resume(then, error, now))

    def _tick(self, event: list[Any], now: float) -> None:
        self._sort(self.core.tick(now, session_timers=False))

    def _hello(self, event: list[Any], now: float) -> None:
        assert self.core.nodes is not None
        self.core.nodes[int(event[2])] = str(event[3])

    def _node_lost(self, event: list[Any], now: float) -> None:
        """A node went (its lease lapsed, or it stopped): its users quit with ``reason``; work
        it was carrying out fails (its clients are gone; the rest is told the store failed)."""
        number, reason = int(event[2]), str(event[3])
        core = self.core
        assert core.nodes is not None
        name = core.nodes.pop(number, None)
        for conn in [c for c in core.sessions if c >> NODE_SHIFT == number]:
            self._deferred.pop(conn, None)
            self._sort(core.disconnect(conn, reason, now))
        origin = f"{name}/{number}"
        lost = StoreError(f"node {name} was lost")
        for token in [t for t, w in self._waiting.items() if w.origin == origin]:
            waiting = self._waiting.pop(token)
            if waiting.then is not None:
                self._sort(core.resume(waiting.then, lost, now), waiting.client)
            self._release(waiting.client, now)
        for token in [t for t, (_, o) in self._appends.items() if o == origin]:
            self._finish_append(token, lost, now)

    def _restore(self, event: list[Any], now: float) -> None:
        """Registered rooms and always-on users from the database, once per replica (a node
        that joined a Redis restarted a moment ago may send them again: ignored by the rest)."""
        if self._restored:
            return
        self._restored = True
        rooms = codec.decode_value(event[2])
        presences = codec.decode_value(event[3])
        self._sort(self.core.restore_rooms(rooms, now))
        self._sort(self.core.restore_presences(presences, now))

    # ---- what applying produced -------------------------------------------------------------

    def _token(self) -> str:
        self._next_token += 1
        return f"{self._prefix}{self._next_token:x}"

    def _sort(self, actions: list[Action], client: int | None = None) -> None:
        """Pass sends and closes on; keep each side effect's continuation under its token,
        and give the side effect itself to this node when it is the event's origin.
        ``client``: whose work's continuation emitted ``actions`` (its lines keep waiting
        for any work that emits, as ChatServer.run's ``client``)."""
        mine = self._from == self.origin
        out = self._out
        for action in actions:
            if type(action) is Send:  # nearly every action: one test, not four
                out.append(action)
            elif isinstance(action, StoreCall | Offload):
                self._side_effect(action, client, mine)
            elif isinstance(action, AppendHistory):
                token = self._token()
                self._appends[token] = (action.then, self._from)
                append = ReplicatedAppend(action.records, _resumed_by_replica, token)
                self._out.append(append)
                if mine:
                    self._work.append(Work(token, append, True))
            elif isinstance(action, Reload):
                if mine:  # REHASH reloads the operator's own node
                    self._out.append(action)
            else:
                self._out.append(action)

    def _side_effect(self, action: StoreCall | Offload, client: int | None, mine: bool) -> None:
        token = self._token()
        if isinstance(action, StoreCall) and action.reader is not None:
            holder: int | None = action.reader
        else:
            holder = action.client if action.client is not None else client
        report = action.then is not None or holder is not None
        if report:
            self._waiting[token] = _Waiting(action.then, holder, self._from)
            if holder is not None:
                self._holds[holder] += 1
        if mine:
            self._work.append(Work(token, action, report))

    def _release(self, client: int | None, now: float) -> None:
        """Work that held ``client`` is done: its waiting lines go on (until one waits)."""
        if client is None:
            return
        self._holds[client] -= 1
        if self._holds[client] > 0:
            return
        del self._holds[client]
        lines = self._deferred.pop(client, None)
        while lines:
            self._apply_line(client, lines.popleft(), now)
            if self._holds.get(client):
                if lines:
                    self._deferred.setdefault(client, collections.deque()).extendleft(
                        reversed(lines)
                    )
                return

    def commit_future(self, append: ReplicatedAppend) -> Future[Any]:
        """What ChatServer.run waits on before delivering what follows ``append``."""
        future: Future[Any] = Future()
        self._commits[append.token] = future
        return future


def _resumed_by_replica(outcome: Any, now: float) -> None:
    """ReplicatedAppend's ``then`` for the network layer: nothing (and no log of its own);
    the append's real continuation runs from the COMMITTED event (Replica._committed)."""


def log_bad_event(entry: str, error: Exception) -> None:
    log_event(log, "cluster_bad_event", level=logging.ERROR, entry=entry, error=repr(error))
