"""Message history: recording, replay on join, draft/chathistory, retention.

Rules kept here:

- **What is kept.** Every PRIVMSG and NOTICE to a room, and every one between two logged-in
  accounts, becomes one ``HistoryRecord`` carrying the msgid and server time its broadcast
  carries, the sender's source and account. CTCP requests other than ACTION (``/me``) are
  not kept: they are machine traffic. Messages to services are never kept (passwords).
- **Durable before delivered** (DESIGN.md §6). The record is emitted as ``AppendHistory``
  *before* the broadcast's ``Send`` actions; the network layer holds the rest of that line's
  actions (and later output for the same recipients) until the commit returned, so no client
  sees a message a crash could lose. The record is built once per message, whatever the
  number of recipients. A failed commit (disk full) **fails closed**: the message is delivered
  to no one, the sender of a PRIVMSG gets ``FAIL PRIVMSG TEMPORARILY_UNAVAILABLE`` (a NOTICE
  gets no reply, RFC 2812 §3.3.2), and operators and the log hear of it at most once per
  ``history_failure_report_seconds``; the first commit that succeeds again says so.
- **Whose history** (README "Whose history is it?"). Rows sent while a room was public are
  readable by every member of a room of that name, across restarts and empty spells: anyone
  could have joined and read them then. Rows sent while the room was +i or +k belong to its
  incarnation (``current_epoch``: an unregistered room's ends with the room, a registered
  room's runs from its registration) and are readable only from the reader's join on, except
  by a registered room's founder and ChanServ operators.
- **Times** are cut to whole milliseconds before use (``message_time``), so the ``time`` tag a
  client sees, the stored time and a ``timestamp=`` the client sends back all agree exactly.
- **Replay on join**: the last ``history_on_join`` messages of the room. Clients that
  negotiated ``batch`` and ``server-time`` get them as they were sent, inside
  ``BATCH +id chathistory #room`` with their original ``time`` and ``msgid`` tags; other
  clients get one NOTICE per message from the server to the room, ``[HH:MM:SS] <nick> text``
  (UTC; the date is added for messages from an earlier day), which every client displays in
  the room's window: at most ``history_on_join_notices`` of them, and on a rejoin only those
  sent after that connection left the room (it saw the rest, replayed or live): irssi and
  WeeChat 3.8 would show the same notices again on every rejoin. Clients that
  negotiated ``draft/chathistory`` get no automatic replay: they ask with ``CHATHISTORY
  LATEST`` for exactly what they are missing (the spec lets the server "act differently when
  delivering message history on connection").
- **draft/chathistory** (https://ircv3.net/specs/extensions/chathistory): LATEST, BEFORE,
  AFTER, AROUND, BETWEEN and TARGETS, answered inside a ``chathistory`` (or
  ``draft/chathistory-targets``) batch when ``batch`` was negotiated. A room can be read only
  by its members; a nick target reads the private conversation between the asker's account
  and that nick's account (the nick's current account when online and logged in, else the
  nick taken as an account name), so nobody reads anyone else's messages. Errors are
  standard replies: ``FAIL CHATHISTORY INVALID_PARAMS | INVALID_TARGET | MESSAGE_ERROR``.
- **Retention**: every ``PRUNE_INTERVAL_SECONDS`` the core's timer deletes messages older than
  ``history_max_age_days`` and beyond ``history_max_per_target`` per target (0: no limit).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from securechat.logs import event
from securechat.protocol.message import (
    MAX_BODY_BYTES,
    build,
    format_tags,
    safe_param,
    truncate_utf8,
)
from securechat.protocol.names import casefold, is_room_name
from securechat.protocol.tags import CHATHISTORY_BATCH, format_server_time
from securechat.server.actions import AppendHistory, StoreCall
from securechat.server.history_lines import REDACTED_TEXT, history_lines
from securechat.server.records import (
    PRIVATE_EPOCH,
    Anchor,
    HistoryRecord,
    View,
    private_peer,
    private_target,
    room_epoch,
)
from securechat.server.room_registry import is_privileged

if TYPE_CHECKING:
    from securechat.protocol.message import Message
    from securechat.server.actions import Continuation, Outcome
    from securechat.server.core import ServerCore
    from securechat.server.rooms import Room
    from securechat.server.state import Session
    from securechat.server.store import Store

log = logging.getLogger("securechat.server")

PRUNE_INTERVAL_SECONDS = 300.0
_NEVER = 1e12  # a join time no message reaches (year 33658): for a reader who is no member
TARGETS_BATCH = "draft/chathistory-targets"
_TIMESTAMP_FORMATS = ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ")
# Parameters after the subcommand (draft/chathistory "CHATHISTORY Command").
_ARITY = {"LATEST": 3, "BEFORE": 3, "AFTER": 3, "AROUND": 3, "BETWEEN": 4, "TARGETS": 3}


def message_time(now: float) -> float:
    """``now`` cut to whole milliseconds, the precision of server-time and of the store."""
    return int(now * 1000) / 1000


# ---- recording --------------------------------------------------------------------------------


def record_room_message(
    core: ServerCore,
    session: Session,
    room: Room,
    command: str,
    text: str,
    msgid: str,
    now: float,
    tags: Mapping[str, str] | None = None,
    lines: tuple[tuple[str, bool], ...] = (),
) -> None:
    """Queue the message for the store; call it *before* broadcasting it. ``tags``: its
    client-only tags (kept but ``+typing``); ``lines``: a multiline message's composition."""
    if core.persistent and _worth_keeping(text):
        record = HistoryRecord(
            msgid,
            room.name_cf,
            room.name,
            session.source,
            session.account,
            now,
            command,
            text,
            current_epoch(core, room),
            is_restricted(room),
            stored_tags(tags),
            lines,
        )
        core.perform(AppendHistory((record,), _on_commit(core, session, command, room.name)))


def record_private_message(
    core: ServerCore,
    session: Session,
    target: Session,
    command: str,
    text: str,
    msgid: str,
    now: float,
    tags: Mapping[str, str] | None = None,
    lines: tuple[tuple[str, bool], ...] = (),
) -> None:
    """Queue a private message for the store when both sides are logged in."""
    if not core.persistent or session.account is None or target.account is None:
        return
    if _worth_keeping(text):
        key = private_target(session.account, target.account)
        record = HistoryRecord(
            msgid,
            key,
            target.nick,
            session.source,
            session.account,
            now,
            command,
            text,
            tags=stored_tags(tags),
            lines=lines,
        )
        core.perform(AppendHistory((record,), _on_commit(core, session, command, target.nick)))


def stored_tags(tags: Mapping[str, str] | None) -> str:
    """The client-only tags kept with a message (``+draft/reply`` …): all but ``+typing``,
    which says something about that moment only (IRCv3 typing)."""
    if not tags:
        return ""
    return format_tags({k: v for k, v in tags.items() if k.startswith("+") and k != "+typing"})


def _worth_keeping(text: str) -> bool:
    return not text.startswith("\x01") or text.startswith("\x01ACTION")


# ---- who reads what: room incarnations --------------------------------------------------------


def current_epoch(core: ServerCore, room: Room) -> int:
    """The room's incarnation: a registered room keeps one (its registration time) across
    restarts and empty spells; an unregistered one gets a new one each time it is created."""
    record = core.registry.get(room)
    return room_epoch(record.registered_at if record is not None else room.created_at)


def is_restricted(room: Room) -> bool:
    """Only invited or key-holding users could read along when this message was sent."""
    return "i" in room.modes or bool(room.key)


def room_view(core: ServerCore, session: Session, room: Room) -> View:
    """What ``session`` (a member) may read of ``room``: every message sent while it was
    public, and of this incarnation's messages sent while it was +i or +k only the ones since
    it joined, unless it is the
    founder or a ChanServ operator of a registered room (they hold the room's keys anyway)."""
    record = core.registry.get(room)
    member = room.member(session)
    if record is not None and member is not None and is_privileged(record, session.account):
        return View(current_epoch(core, room), None)
    return View(current_epoch(core, room), member.joined_at if member is not None else _NEVER)


# ---- when history cannot be written (disk full, I/O errors) -----------------------------------


@dataclass(slots=True)
class HistoryHealth:
    """Whether commits fail, and what has not been reported yet (reports are rate-limited:
    one log line and one operator notice per ``history_failure_report_seconds``)."""

    failing: bool = False
    unreported: int = 0  # messages refused since the last report
    reported_at: float = float("-inf")


def _on_commit(core: ServerCore, session: Session, command: str, target: str) -> Continuation:
    def committed(outcome: Outcome, now: float) -> None:
        if outcome is None:
            _recovered(core, now)
            return
        _write_failed(core, outcome, now)
        # Fail closed (README "History and durability"): the message was not delivered, so
        # the sender hears why. Never for NOTICE: no error reply to a NOTICE (RFC 2812 §3.3.2).
        if command == "PRIVMSG" and core.sessions.get(session.conn) is session:
            text = "Message not delivered: the server cannot store history now; try again later"
            params = ["PRIVMSG", "TEMPORARILY_UNAVAILABLE", safe_param(target), text]
            core.send(session, build("FAIL", params, core.config.name))

    return committed


def _write_failed(core: ServerCore, error: BaseException, now: float) -> None:
    health = core.history_health
    core.metrics.history_write_failures += 1
    health.failing = True
    health.unreported += 1
    if now - health.reported_at < core.config.history_failure_report_seconds:
        return
    event(
        log,
        "history_write_failed",
        level=logging.ERROR,
        refused=health.unreported,
        error=str(error),
    )
    _tell_opers(
        core,
        f"History cannot be stored ({health.unreported} message(s) refused since the last "
        "notice): messages to rooms and logged-in users are refused; see the server log",
    )
    health.unreported, health.reported_at = 0, now


def _recovered(core: ServerCore, now: float) -> None:
    health = core.history_health
    if not health.failing:
        return
    health.failing = False
    event(log, "history_write_recovered", level=logging.WARNING, refused=health.unreported)
    _tell_opers(core, "History is stored again: messages are delivered normally")
    health.unreported, health.reported_at = 0, float("-inf")


def _tell_opers(core: ServerCore, text: str) -> None:
    for session in core.sessions.values():
        if session.oper:
            core.server_notice(session, f"*** {text}")


# ---- sending history to one client ------------------------------------------------------------


def send_batch(
    core: ServerCore,
    session: Session,
    target: str,
    records: Sequence[HistoryRecord],
    room_name: str | None,
) -> None:
    """Records as they were sent, inside a chathistory batch when the client has ``batch``."""
    reference = _open_batch(core, session, CHATHISTORY_BATCH, target)
    for record in records:
        for line in history_lines(core, session, record, reference, room_name):
            core.send(session, line)
    _close_batch(core, session, reference)


def _open_batch(core: ServerCore, session: Session, kind: str, *params: str) -> str | None:
    if "batch" not in session.caps:
        return None
    reference = core.new_msgid()
    core.send(session, build("BATCH", ["+" + reference, kind, *params], core.config.name))
    return reference


def _close_batch(core: ServerCore, session: Session, reference: str | None) -> None:
    if reference is not None:
        core.send(session, build("BATCH", ["-" + reference], core.config.name))


def notice_line(core: ServerCore, room: Room, record: HistoryRecord, now: float) -> bytes:
    """A replayed message for clients without batch + server-time: a stamped NOTICE."""
    stamp = datetime.fromtimestamp(record.time, UTC)
    today = datetime.fromtimestamp(now, UTC).date()
    when = stamp.strftime("%H:%M:%S" if stamp.date() == today else "%Y-%m-%d %H:%M:%S")
    nick = record.sender.split("!", 1)[0]
    text = REDACTED_TEXT if record.redaction is not None else record.text
    if text.startswith("\x01ACTION"):
        said = f"* {nick}{text[7:].rstrip(chr(1))}"
    elif record.command == "NOTICE":
        said = f"-{nick}- {text}"
    else:
        said = f"<{nick}> {text}"
    return build("NOTICE", [room.name, _fit(core, room, f"[{when}] {said}")], core.config.name)


def _fit(core: ServerCore, room: Room, text: str) -> str:
    """The stamp makes a long message too long for one NOTICE: cut it visibly, with […]."""
    room_for_text = MAX_BODY_BYTES - len(f":{core.config.name} NOTICE {room.name} :\r\n".encode())
    if len(text.encode()) <= room_for_text:
        return text
    return truncate_utf8(text, room_for_text - len(CUT_MARK.encode())) + CUT_MARK


CUT_MARK = " […]"  # ends a replayed notice that had to be shortened

# ---- replay on join ---------------------------------------------------------------------------


def replay_on_join(core: ServerCore, session: Session, room: Room, now: float) -> None:
    count = core.config.history_on_join
    if not core.persistent or count == 0 or "draft/chathistory" in session.caps:
        return

    def replay(outcome: Outcome, now: float) -> None:
        if isinstance(outcome, BaseException):
            log.warning("history replay for %s failed: %s", room.name, outcome)
            core.metrics.history_read_failures += 1
            return
        if core.sessions.get(session.conn) is not session or room.member(session) is None:
            return
        if {"batch", "server-time"} <= session.caps:
            if outcome:
                send_batch(core, session, room.name, outcome, room.name)
            return
        for record in _not_yet_replayed(core, session, room_cf, outcome):
            core.send(session, notice_line(core, room, record, now))

    room_cf, view = room.name_cf, room_view(core, session, room)
    if not {"batch", "server-time"} <= session.caps:
        count = min(count, core.config.history_on_join_notices)
        if count == 0:
            return
    job: Callable[[Store], list[HistoryRecord]] = lambda store: store.latest(  # noqa: E731
        room_cf, count, view=view
    )
    core.perform(StoreCall(job, replay, reader=session.conn))


def _marks(core: ServerCore, session: Session) -> dict[str, float]:
    return core.replay_marks.setdefault(session.conn, {})


def note_left(core: ServerCore, session: Session, room: Room, now: float) -> None:
    """A client without batch left a room (PART, KICK): it saw everything said there until
    now, live, so a rejoin on this connection replays only what came after."""
    if core.persistent and not {"batch", "server-time"} <= session.caps:
        # Just below the millisecond of the part: a message stamped with that millisecond may
        # have come after it, and showing one twice beats losing one.
        _marks(core, session)[room.name_cf] = message_time(now) - 0.0005


def _not_yet_replayed(
    core: ServerCore, session: Session, room_cf: str, records: Sequence[HistoryRecord]
) -> list[HistoryRecord]:
    """The records newer than what this connection has seen; remembers the newest."""
    marks = _marks(core, session)
    newest = marks.get(room_cf)
    fresh = [r for r in records if newest is None or r.time > newest]
    if fresh:
        marks[room_cf] = max(r.time for r in fresh)
    return fresh


# ---- CHATHISTORY ------------------------------------------------------------------------------


class HistoryFail(Exception):
    """A standard reply ``FAIL CHATHISTORY <code> <context...> :<description>``."""

    def __init__(self, code: str, context: Sequence[str], description: str) -> None:
        super().__init__(code)
        self.code = code
        self.context = tuple(context)
        self.description = description


# CHATHISTORY LATEST <target> <* | selector> <limit>
# CHATHISTORY BEFORE | AFTER | AROUND <target> <selector> <limit>
# CHATHISTORY BETWEEN <target> <selector> <selector> <limit>
# CHATHISTORY TARGETS <timestamp> <timestamp> <limit>
#   selector: msgid=<id> | timestamp=YYYY-MM-DDThh:mm:ss.sssZ
def handle_chathistory(core: ServerCore, session: Session, message: Message, now: float) -> None:
    subcommand = message.param(0).upper()
    args = list(message.params[1:])
    try:
        _check_shape(core, subcommand, args)
        if subcommand == "TARGETS":
            _targets(core, session, args)
        else:
            _messages(core, session, subcommand, args)
    except HistoryFail as fail:
        params = ["CHATHISTORY", fail.code, *fail.context, fail.description]
        core.send(session, build("FAIL", params, core.config.name))


def _check_shape(core: ServerCore, subcommand: str, args: list[str]) -> None:
    shown = safe_param(subcommand) or "*"
    arity = _ARITY.get(subcommand)
    if arity is None:
        raise HistoryFail("INVALID_PARAMS", [shown], "Unknown command")
    if len(args) < arity:
        raise HistoryFail("INVALID_PARAMS", [shown], "Insufficient parameters")
    if len(args) > arity:
        raise HistoryFail("INVALID_PARAMS", [shown], "Too many parameters")
    if not core.persistent:
        target = safe_param(args[0]) if subcommand != "TARGETS" else "*"
        raise HistoryFail("MESSAGE_ERROR", [shown, target], "History is not kept on this server")


def _messages(core: ServerCore, session: Session, subcommand: str, args: list[str]) -> None:
    key, shown, room_name, view = _readable_target(core, session, subcommand, args[0])
    limit = _limit(core, subcommand, args[-1])
    selectors = [_selector(subcommand, text, star=subcommand == "LATEST") for text in args[1:-1]]
    job = _query(subcommand, key, selectors, limit, view)

    def answer(outcome: Outcome, now: float) -> None:
        if core.sessions.get(session.conn) is not session:
            return
        if isinstance(outcome, BaseException):
            log.warning("CHATHISTORY %s failed: %s", subcommand, outcome)
            core.metrics.history_read_failures += 1
            fail = ["CHATHISTORY", "MESSAGE_ERROR", subcommand, shown]
            text = "Messages could not be retrieved"
            core.send(session, build("FAIL", [*fail, text], core.config.name))
            return
        send_batch(core, session, shown, outcome, room_name)

    core.perform(StoreCall(job, answer, reader=session.conn))


def _query(
    subcommand: str, key: str, selectors: list[Anchor | None], limit: int, view: View
) -> Callable[[Store], list[HistoryRecord]]:
    first = selectors[0]
    if subcommand == "LATEST":
        return lambda store: store.latest(key, limit, after=first, view=view)
    assert first is not None  # only LATEST accepts "*"
    if subcommand == "BEFORE":
        return lambda store: store.before(key, first, limit, view=view)
    if subcommand == "AFTER":
        return lambda store: store.after(key, first, limit, view=view)
    if subcommand == "AROUND":
        return lambda store: store.around(key, first, limit, view=view)
    last = selectors[1]
    assert last is not None
    return lambda store: store.between(key, first, last, limit, view=view)


def _readable_target(
    core: ServerCore, session: Session, subcommand: str, target: str
) -> tuple[str, str, str | None, View]:
    """(store key, name to show, room display name or None, what the client may see of it)
    of a target the client may read."""
    refused = HistoryFail(
        "INVALID_TARGET", [subcommand, safe_param(target)], "Messages could not be retrieved"
    )
    if is_room_name(target):
        room = session.rooms.get(casefold(target))
        if room is None:  # only members read a room's history
            raise refused
        return room.name_cf, room.name, room.name, room_view(core, session, room)
    holder = core.nicks.get(target)
    peer = holder.account if holder is not None and holder.account else target
    if session.account is None:
        raise refused
    try:
        key = private_target(session.account, peer)
    except ValueError:
        raise refused from None
    return key, safe_param(target), None, View(PRIVATE_EPOCH)


def _limit(core: ServerCore, subcommand: str, text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise HistoryFail("INVALID_PARAMS", [subcommand, safe_param(text)], "Invalid limit")
    return min(int(text), core.config.chathistory_limit)


def _selector(subcommand: str, text: str, star: bool) -> Anchor | None:
    if star and text == "*":
        return None
    kind, _, value = text.partition("=")
    if kind == "msgid" and value:
        return Anchor.at_msgid(value)
    if kind == "timestamp":
        return Anchor.at_time(_timestamp(subcommand, text, value))
    raise HistoryFail("INVALID_PARAMS", [subcommand, safe_param(text)], "Invalid message reference")


def _timestamp(subcommand: str, text: str, value: str) -> float:
    for layout in _TIMESTAMP_FORMATS:
        try:
            return datetime.strptime(value, layout).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    raise HistoryFail("INVALID_PARAMS", [subcommand, safe_param(text)], "Invalid timestamp")


def _targets(core: ServerCore, session: Session, args: list[str]) -> None:
    start, end = (_timestamp_selector(text) for text in args[:2])
    limit = _limit(core, "TARGETS", args[2])
    rooms = {key: room_view(core, session, room) for key, room in session.rooms.items()}
    account, most = session.account, core.config.chathistory_max_private_targets

    def answer(outcome: Outcome, now: float) -> None:
        if core.sessions.get(session.conn) is not session:
            return
        if isinstance(outcome, BaseException):
            log.warning("CHATHISTORY TARGETS failed: %s", outcome)
            core.metrics.history_read_failures += 1
            fail = ["CHATHISTORY", "MESSAGE_ERROR", "TARGETS", "*", "Targets could not be listed"]
            core.send(session, build("FAIL", fail, core.config.name))
            return
        found: Any = outcome
        reference = _open_batch(core, session, TARGETS_BATCH)
        for key, latest in found:
            name = _target_name(core, key, account)
            line = ["TARGETS", name, format_server_time(latest)]
            tags = {"batch": reference} if reference else None
            core.send(session, build("CHATHISTORY", line, core.config.name, tags))
        _close_batch(core, session, reference)

    job: Callable[[Store], list[tuple[str, float]]] = lambda store: store.targets(  # noqa: E731
        rooms, account, start, end, limit, most
    )
    core.perform(StoreCall(job, answer, reader=session.conn))


def _timestamp_selector(text: str) -> float:
    kind, _, value = text.partition("=")
    if kind != "timestamp":
        raise HistoryFail("INVALID_PARAMS", ["TARGETS", safe_param(text)], "Invalid timestamp")
    return _timestamp("TARGETS", text, value)


def _target_name(core: ServerCore, key: str, account: str | None) -> str:
    room = core.rooms.get(key) if is_room_name(key) else None
    if room is not None:
        return room.name
    peer = private_peer(key, account) if account else None
    return peer or key


# ---- retention --------------------------------------------------------------------------------


def prune_periodically(core: ServerCore, now: float) -> None:
    """Timer: apply the retention limits every PRUNE_INTERVAL_SECONDS."""
    if not core.persistent or now - core.history_pruned_at < PRUNE_INTERVAL_SECONDS:
        return
    core.history_pruned_at = now
    config = core.config
    max_age = config.history_max_age_days * 86400 or None
    max_count = config.history_max_per_target or None
    if max_age is None and max_count is None:
        return

    batch = config.history_prune_batch_rows
    _prune(core, lambda store: store.prune_history(now, max_age, max_count, batch), batch, 0)


def _prune(core: ServerCore, job: Callable[[Store], int], batch: int, so_far: int) -> None:
    """One bounded chunk; the next one is queued behind whatever the writer got meanwhile, so
    a large first clean-up never holds the messages of the moment behind one long commit."""

    def pruned(outcome: Outcome, now: float) -> None:
        if isinstance(outcome, BaseException):
            log.error("history retention failed: %s", outcome)
        elif outcome >= batch:
            _prune(core, job, batch, so_far + outcome)
        elif so_far + outcome:
            log.info("event=history_pruned deleted=%d", so_far + outcome)

    core.perform(StoreCall(job, pruned))
