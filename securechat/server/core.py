"""ServerCore: the sans-I/O heart of the server.

The network layer calls ``connect``, ``receive_line``, ``disconnect`` and
``tick`` with the current time; each returns the actions to carry out, in
order: ``Send`` (the same bytes to each target connection) and ``Close``.
Nothing here touches sockets, asyncio, ssl or the clock (DESIGN.md §2.2).

Rules kept here, once, for every command (ergo's single command table):
- an unknown command gets 421, a known one with too few parameters 461, and a
  command other than registration ones before registration 451;
- a handler validates first and mutates after, raising ``IrcError`` for a
  client mistake; the core turns it into exactly one reply;
- any other exception is a bug: logged with its traceback, answered with a
  generic 400, and the connection is kept. Exception text never reaches a peer.
- every other entry point (connect, disconnect, tick, resume, restore_rooms, reloaded,
  shutdown) has the same log-and-continue boundary, and each timer in ``tick`` runs on its
  own: one bug never stops the PINGs and timeouts of the whole server (as ergo's ``recover``).
"""

from __future__ import annotations

import logging
import secrets
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial

from securechat.logs import event
from securechat.protocol import numerics as n
from securechat.protocol.framing import TOO_LONG
from securechat.protocol.masks import mask_problem
from securechat.protocol.message import MAX_CLIENT_TAG_DATA, Message, build, parse, safe_param
from securechat.protocol.names import casefold
from securechat.protocol.tags import format_server_time
from securechat.server import labels, presence_accounts
from securechat.server.accounts import AccountState, account_timers
from securechat.server.actions import Action, Close, Continuation, IrcError, Outcome, Send
from securechat.server.commands import COMMANDS
from securechat.server.commands.multiline import OpenBatch, add_line
from securechat.server.config import ServerConfig
from securechat.server.history import HistoryHealth, prune_periodically
from securechat.server.limits import AddressLimits, flood_delay
from securechat.server.metrics import Metrics
from securechat.server.monitor import MonitorRegistry, signed_off
from securechat.server.presence_accounts import AccountPresences, presence_timers
from securechat.server.read_markers import ReadMarkers
from securechat.server.records import KLine, RoomRecord, StoredPresences
from securechat.server.room_registry import RoomRegistry, restore
from securechat.server.rooms import Room, RoomManager
from securechat.server.state import (
    VARIANT_ACCOUNT,
    VARIANT_TAGS,
    VARIANT_TIME,
    NickRegistry,
    Session,
)
from securechat.server.whowas import WhowasLog

log = logging.getLogger("securechat.server")

NODE_SHIFT = 32  # cluster mode: a conn id is node number << NODE_SHIFT | the node's own id


class ServerCore:
    def __init__(
        self,
        config: ServerConfig,
        now: float,
        motd: Sequence[str] | None = None,
        persistent: bool | None = None,
        msgid_prefix: str | None = None,
    ) -> None:
        """``persistent``: a store is wired (default: when ``config.data_dir`` or
        ``config.database`` is set). Without one the core never emits store actions; accounts
        and history say they are unavailable. ``msgid_prefix``: 8 hex digits that no other
        process sharing the store uses (the PostgreSQL store reserves one); default random."""
        self.config = config
        self.commands = COMMANDS
        self.motd = list(motd) if motd is not None else None
        self.started_at = now
        self.sessions: dict[int, Session] = {}
        self.nicks = NickRegistry()
        self.rooms = RoomManager()
        self._actions: list[Action] = []
        self._capture: labels.Capture | None = None  # the labeled response in progress
        self.addresses = AddressLimits(config)
        self._exempt_accounts = {casefold(name) for name in config.exempt_accounts}
        self.klines: dict[str, KLine] = {}  # casefolded mask -> K-line (stored or added live)
        self.room_activity: Counter[str] = Counter()  # room -> messages since the last log
        self._next_housekeeping = now + config.activity_log_seconds
        self.metrics = Metrics()
        self._msgid_prefix = msgid_prefix or secrets.token_hex(4)
        self._msgid_counter = 0
        stored = config.data_dir is not None or config.database is not None
        self.persistent = stored if persistent is None else persistent
        self.accounts: AccountState = AccountState(config)
        self.registry: RoomRegistry = RoomRegistry()
        self.history_pruned_at = now  # the retention timer's last run (history.py)
        self.history_health = HistoryHealth()
        # Per connection, per room: up to when a client without batch has seen the room's
        # messages (history.replay_on_join replays only what came after).
        self.replay_marks: dict[int, dict[str, float]] = {}
        self.max_users = 0  # the most registered clients seen at once (LUSERS 265/266)
        self.monitors = MonitorRegistry()  # MONITOR watches (monitor.py)
        self.whowas: WhowasLog = WhowasLog()  # nicks recently left (whowas.py)
        self.read_markers = ReadMarkers()  # draft/read-marker of logged-in accounts
        self.multiline: dict[int, OpenBatch] = {}  # conn -> the draft/multiline batch it sends
        # Accounts on several connections, always-on users (presence_accounts.py)
        self.presences = AccountPresences()
        self.rooms.identities = self.presences.homes
        # Cluster mode: node number (a conn id's high bits) -> node name, for WHOIS 312
        self.nodes: dict[int, str] | None = None

    def server_of(self, session: Session) -> str:
        """The name of the server that holds ``session``'s connection."""
        nodes = self.nodes
        if nodes is None:
            return self.config.name
        return nodes.get(session.conn >> NODE_SHIFT, self.config.name)

    # ---- the network layer's entry points -------------------------------------------------

    def connect(self, conn: int, host: str, now: float, certfp: str | None = None) -> list[Action]:
        """``certfp``: SHA-256 hex of the client's TLS certificate, if it presented one."""
        self._contained("connect", lambda: self._connect(conn, host, now, certfp))
        return self._take_actions()

    def _connect(self, conn: int, host: str, now: float, certfp: str | None) -> None:
        refusal = self.addresses.refusal(host, now)
        if refusal is not None:
            self.metrics.connections_refused += 1
            event(log, "refused", conn=conn, peer=host, reason=refusal)
            error = build("ERROR", [f"Closing Link: {host} ({refusal})"])
            self._actions.append(Send((conn,), error))
            self._actions.append(Close(conn, refusal))
            return
        self.metrics.connections_accepted += 1
        session = Session(conn, host, now)
        session.certfp = certfp
        session.flood_tokens = float(self.config.flood_burst)
        session.flood_exempt = self.addresses.is_exempt(host)
        self.sessions[conn] = session

    def flood_delay(self, conn: int, now: float) -> float:
        """Seconds before ``conn``'s next line may be handled (0: now, and it is counted)."""
        session = self.sessions.get(conn)
        if session is None or session.flood_exempt:
            return 0.0
        if session.account is not None and casefold(session.account) in self._exempt_accounts:
            return 0.0
        return flood_delay(session, self.config, now)

    def close_conn(self, conn: int, reason: str, now: float) -> list[Action]:
        """The server closes ``conn`` (ERROR, then QUIT to its peers): a cluster node's timer."""
        session = self.sessions.get(conn)
        if session is not None:
            self._contained("close", lambda: self.close(session, reason, now))
        return self._take_actions()

    def excess_flood(self, conn: int, now: float) -> list[Action]:
        """The client's delayed backlog overflowed: disconnect it."""
        session = self.sessions.get(conn)
        if session is not None:
            self.metrics.excess_floods += 1
            self._contained("excess_flood", lambda: self.close(session, "Excess flood", now))
        return self._take_actions()

    def receive_line(self, conn: int, raw: bytes, now: float) -> list[Action]:
        session = self.sessions.get(conn)
        if session is None:
            return []
        session.last_activity = now
        session.ping_sent_at = None  # any traffic proves the peer is alive
        self.metrics.lines_in += 1
        if raw == TOO_LONG or _client_tags_too_long(raw):  # TOO_LONG: framing's marker
            self.reply(session, n.ERR_INPUTTOOLONG, "Input line was too long")
            return self._take_actions()
        message = parse(raw)
        if message is not None and not _is_utf8(raw):
            # IRCv3 UTF8ONLY (advertised in 005): refuse the line, relay nothing, and say so
            # with the standard reply the spec names.
            text = "Message rejected, your IRC software MUST use UTF-8 encoding on this network"
            fail = [safe_param(message.command), "INVALID_UTF8", text]
            self.send(session, build("FAIL", fail, self.config.name))
            return self._take_actions()
        if message is not None:
            if message.command in ("PRIVMSG", "NOTICE"):
                self.metrics.messages_in += 1
            self._dispatch(session, message, now)
        return self._take_actions()

    def disconnect(self, conn: int, reason: str, now: float) -> list[Action]:
        """The connection is gone (or being closed by the network layer): clean up."""
        session = self.sessions.get(conn)
        if session is not None:
            self._contained("disconnect", lambda: self._remove(session, reason, now))
        return self._take_actions()

    def tick(self, now: float, session_timers: bool = True) -> list[Action]:
        """Timers: registration timeout, idle PING, ping timeout, the services' and history's
        timers, housekeeping. Call about once a second. Each runs inside its own boundary.
        ``session_timers`` False: a cluster replica, whose nodes time their own sessions."""
        if session_timers:
            self._contained("session timers", lambda: self._session_timers(now))
        self._contained("account timers", lambda: account_timers(self, now))
        self._contained("history retention", lambda: prune_periodically(self, now))
        self._contained("presence timers", lambda: presence_timers(self, now))
        self._contained("housekeeping", lambda: self._housekeeping(now))
        return self._take_actions()

    def _session_timers(self, now: float) -> None:
        config = self.config
        for session in list(self.sessions.values()):
            if not session.registered:
                if now - session.connected_at > config.registration_timeout:
                    self.close(session, "Registration timed out", now)
            elif session.ping_sent_at is not None:
                if now - session.ping_sent_at > config.ping_timeout:
                    self.metrics.ping_timeouts += 1
                    seconds = int(now - session.last_activity)
                    self.close(session, f"Ping timeout: {seconds} seconds", now)
            elif now - session.last_activity > config.ping_interval:
                session.ping_sent_at = now
                self.send(session, build("PING", [config.name]))

    def _contained(self, where: str, step: Callable[[], None]) -> None:
        """The boundary every entry point shares with ``_dispatch``: a bug is logged with its
        traceback and the server carries on (the actions queued before it still go out)."""
        try:
            step()
        except Exception:
            log.exception("bug in %s", where)

    def _housekeeping(self, now: float) -> None:
        """Once per activity interval: log per-room message counts and forget idle buckets."""
        if now < self._next_housekeeping:
            return
        self._next_housekeeping = now + self.config.activity_log_seconds
        for room, count in sorted(self.room_activity.items()):
            event(log, "activity", room=room, messages=count)
        self.room_activity.clear()
        self.addresses.prune(now)

    def restore_rooms(self, records: Sequence[RoomRecord], now: float) -> list[Action]:
        """Registered rooms loaded from the store at start-up (before any client connects)."""
        self._contained("restore_rooms", lambda: restore(self, records, now))
        return self._take_actions()

    def save_presences(self) -> list[Action]:
        """The always-on users changed since the last tick, saved now (a stopping cluster
        node: the next tick may never come)."""
        self._contained("presence save", lambda: presence_accounts.save_now(self))
        return self._take_actions()

    def restore_presences(self, stored: StoredPresences, now: float) -> list[Action]:
        """Always-on users loaded from the store at start-up, after the rooms: back in them."""
        self._contained("restore_presences", lambda: presence_accounts.restore(self, stored, now))
        return self._take_actions()

    def resume(self, then: Continuation, outcome: Outcome, now: float) -> list[Action]:
        """Continue work that waited for the store or a worker thread."""
        self._contained("a continuation", lambda: then(outcome, now))
        return self._take_actions()

    def reloaded(
        self, config: ServerConfig, error: str | None, conn: int | None, now: float
    ) -> list[Action]:
        """Apply a reloaded config (``error`` None) and tell the operator who asked."""
        self._contained("reloaded", lambda: self._reloaded(config, error, conn))
        return self._take_actions()

    def _reloaded(self, config: ServerConfig, error: str | None, conn: int | None) -> None:
        if error is None:
            self.config = config
            self.addresses.reconfigure(config)
            self._exempt_accounts = {casefold(name) for name in config.exempt_accounts}
        session = self.sessions.get(conn) if conn is not None else None
        if session is not None:
            if error is None:
                self.reply(session, n.RPL_REHASHING, "config", "Rehashing")
            else:
                self.server_notice(session, f"Reload failed, old settings kept: {error}")

    def load_klines(self, klines: Iterable[KLine], replace: bool = False) -> None:
        """Stored K-lines at start; one too complex for today's mask limits is skipped.
        ``replace``: they are all there is (a reload: the store is shared, and another server
        process may have added or removed some; docs/CLUSTER.md)."""
        if replace:
            self.klines.clear()
        for kline in klines:
            problem = mask_problem(
                kline.mask, self.config.max_mask_length, self.config.max_mask_wildcards
            )
            if problem is None:
                self.klines[casefold(kline.mask)] = kline
            else:
                event(log, "kline_skipped", mask=kline.mask, reason=problem)

    def shutdown(self, reason: str, now: float) -> list[Action]:
        """Say goodbye to every client; one client's bug does not keep the others open."""
        notice = self.config.shutdown_notice
        for session in list(self.sessions.values()):
            if notice:
                self.server_notice(session, notice)
            self._contained("shutdown", partial(self.close, session, reason, now, False))
        self._contained("presence save", lambda: presence_accounts.save_now(self))
        return self._take_actions()

    # ---- dispatch -------------------------------------------------------------------------

    def _dispatch(self, session: Session, message: Message, now: float) -> None:
        capture = labels.start(session, message)
        if capture is None:
            self._run_command(session, message, now)
            return
        mark, self._capture = len(self._actions), capture
        try:
            self._run_command(session, message, now)
        finally:
            self._capture = None
        labels.collect(self, capture, mark)
        if capture.pending == 0:
            labels.finish(self, capture)

    def _run_command(self, session: Session, message: Message, now: float) -> None:
        command = self.commands.get(message.command)
        try:
            if command is None:
                if session.registered:
                    raise IrcError(n.ERR_UNKNOWNCOMMAND, message.command, "Unknown command")
                raise IrcError(n.ERR_NOTREGISTERED, "You have not registered")
            if command.needs_registration and not session.registered:
                raise IrcError(n.ERR_NOTREGISTERED, "You have not registered")
            if len(message.params) < command.min_params:
                raise IrcError(n.ERR_NEEDMOREPARAMS, message.command, "Not enough parameters")
            if message.tags and "batch" in message.tags and session.registered:
                add_line(self, session, message)  # a line of a client's draft/multiline batch
                return
            command.handler(self, session, message, now)
            if session.principal is not None:  # a device: its user's state follows it
                presence_accounts.mirror(self, session)
        except IrcError as error:
            self.reply(session, error.numeric, *error.params)
        except Exception:
            log.exception("bug while handling %s from conn %d", message.command, session.conn)
            self.reply(session, n.ERR_UNKNOWNERROR, message.command, "Internal server error")

    # ---- output helpers used by the handlers ----------------------------------------------

    def _take_actions(self) -> list[Action]:
        actions, self._actions = self._actions, []
        return actions

    def perform(self, action: Action) -> None:
        """Queue a store, worker or other action in order with the sends around it."""
        if self._capture is not None:
            action = labels.follow(self, self._capture, action)
        self._actions.append(action)

    def send(self, session: Session, data: bytes) -> None:
        devices = session.devices
        if devices is None:
            self._actions.append(Send((session.conn,), data))
        elif devices:  # a shared identity (presence_accounts.py): each connected device
            self._actions.append(Send([d.conn for d in devices], data))

    def send_many(self, sessions: Iterable[Session], data: bytes) -> None:
        if self.presences.homes:  # shared identities exist: expand them to their devices
            targets = presence_accounts.connection_ids(sessions)
        else:
            targets = [s.conn for s in sessions]
        if targets:
            self._actions.append(Send(targets, data))

    def reply(self, session: Session, numeric: str, *params: str) -> None:
        self.send(session, build(numeric, [session.nick, *params], self.config.name))

    def server_notice(self, session: Session, text: str) -> None:
        self.send(session, build("NOTICE", [session.nick, text], self.config.name))

    def close(self, session: Session, reason: str, now: float, announce: bool = True) -> None:
        """Tell the client why, close its connection and clean up after it."""
        if session.devices is not None:  # KILL, GHOST of a shared identity: the whole user
            presence_accounts.close_identity(self, session, reason, now)
            return
        self.send(session, build("ERROR", [f"Closing Link: {session.host} ({reason})"]))
        self._actions.append(Close(session.conn, reason))
        self._remove(session, reason if announce else "Server shutting down", now)

    def _remove(self, session: Session, reason: str, now: float) -> None:
        del self.sessions[session.conn]
        self.addresses.release(session.host)
        self.multiline.pop(session.conn, None)
        if presence_accounts.stays(self, session, reason, now):  # another device, or always-on
            self.monitors.forget(session)
            self.replay_marks.pop(session.conn, None)
            return
        if session.registered:
            self.send_many(self.rooms.peers(session), build("QUIT", [reason], session.source))
            event(log, "quit", conn=session.conn, nick=session.nick, reason=reason)
            signed_off(self, session, session.nick)
            self.whowas.record(self, session, session.nick, now)
        self.monitors.forget(session)
        self.replay_marks.pop(session.conn, None)
        self.rooms.leave_all(session)
        self.nicks.release(session)

    # ---- broadcasting with IRCv3 tags -----------------------------------------------------

    def new_msgid(self) -> str:
        self._msgid_counter += 1
        return f"{self._msgid_prefix}{self._msgid_counter:x}"

    def broadcast(
        self,
        recipients: Iterable[Session],
        command: str,
        params: Sequence[str],
        source: str,
        now: float,
        client_tags: Mapping[str, str] | None = None,
        msgid: str | None = None,
        account: str | None = None,
    ) -> None:
        """Send one message to many, serialized once per tag variant (not per recipient).
        ``account``: the sender's account, tagged for account-tag clients (IRCv3 account-tag)."""
        groups: dict[int, list[int]] = {}
        if self.presences.homes:
            recipients = presence_accounts.expand(recipients)
        for session in recipients:
            groups.setdefault(session.tag_variant, []).append(session.conn)
        self.broadcast_groups(groups, command, params, source, now, client_tags, msgid, account)

    def broadcast_groups(
        self,
        groups: Mapping[int, Sequence[int]],
        command: str,
        params: Sequence[str],
        source: str,
        now: float,
        client_tags: Mapping[str, str] | None = None,
        msgid: str | None = None,
        account: str | None = None,
    ) -> None:
        """``broadcast`` to connection ids already grouped by tag variant (Room's cache)."""
        for variant, targets in groups.items():
            if targets:
                tags = self._tags_for(variant, now, msgid, client_tags, account)
                self._actions.append(Send(targets, build(command, params, source, tags)))

    def _tags_for(
        self,
        variant: int,
        now: float,
        msgid: str | None,
        client_tags: Mapping[str, str] | None,
        account: str | None = None,
    ) -> dict[str, str] | None:
        if not variant:
            return None
        tags: dict[str, str] = {}
        if variant & VARIANT_ACCOUNT and account:
            tags["account"] = account
        if variant & VARIANT_TAGS:
            if msgid:
                tags["msgid"] = msgid
            if client_tags:
                tags.update(client_tags)
        if variant & VARIANT_TIME:
            tags["time"] = format_server_time(now)
        return tags or None

    def broadcast_to_room(
        self, room: Room, command: str, params: Sequence[str], source: str, now: float
    ) -> None:
        """A room event (PART, TOPIC, KICK, MODE) to every member, through the room's
        recipient cache like a message, with a msgid of its own."""
        groups = room.targets_by_variant()
        self.broadcast_groups(groups, command, params, source, now, msgid=self.new_msgid())


def _client_tags_too_long(raw: bytes) -> bool:
    """IRCv3 message-tags "Size limit": a client's tag data (after '@', before the space)
    over 4094 bytes is rejected with 417, the connection kept."""
    if not raw.startswith(b"@"):
        return False
    space = raw.find(b" ")
    return (len(raw) if space == -1 else space) - 1 > MAX_CLIENT_TAG_DATA


def _is_utf8(raw: bytes) -> bool:
    if raw.isascii():  # the common case, without a decode
        return True
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
