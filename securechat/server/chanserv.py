"""ChanServ: registered rooms keep their topic, modes, founder and operators across restarts.

Rules kept here:

- ``REGISTER #room``: a logged-in operator of the room registers it; their account becomes
  its founder. ``DROP #room``: the founder unregisters it. ``INFO #room``: anyone.
- The operator list is managed explicitly by the founder with ``OP #room <account|nick>`` and
  ``DEOP #room <account|nick>``. A ``MODE +o`` given in the room stays a one-time grant and is
  not added to the list: who gets operator status back after a restart is a decision the
  founder makes, not a side effect of a mode change.
- When the founder or a listed operator is in the room and logged in (on join, or when they
  log in later) ChanServ gives them ``+o``, announced as ``MODE #room +o nick`` from
  ``ChanServ!ChanServ@services.<server>``.
- A registered room outlives its members (``RoomManager.keep``); someone joining it while it
  is empty is not made operator, since the room is not new.
- Every change of a registered room's topic, flags, key, limit, bans or operator list is saved
  as a whole ``RoomRecord`` with ``StoreCall``. The in-memory record is updated first and
  saves run in submission order on the store thread, so the last save always carries the
  latest state. At start the network layer loads ``Store.load_rooms()`` before it listens and
  hands the records to ``restore``.
- Account names in records are casefolded (as the store keeps them).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from securechat.logs import event
from securechat.protocol.masks import mask_problem
from securechat.protocol.names import casefold, is_room_name
from securechat.server.core import StoreCall
from securechat.server.rooms import BOOL_MODES, OP, PREFIX_MODES, Ban
from securechat.server.services import (
    CHANSERV,
    dispatch,
    notice,
    service_source,
    split_command,
)
from securechat.server.store import Account, RoomRecord

if TYPE_CHECKING:
    from securechat.server.core import Outcome, ServerCore
    from securechat.server.rooms import Room
    from securechat.server.state import Session

log = logging.getLogger("securechat.server")


class RoomRegistry:
    """Registered rooms by casefolded name, as last saved (or being saved)."""

    __slots__ = ("records",)

    def __init__(self) -> None:
        self.records: dict[str, RoomRecord] = {}

    def get(self, room: Room) -> RoomRecord | None:
        return self.records.get(room.name_cf)


# ---- restoring and saving ---------------------------------------------------------------------


def restore(core: ServerCore, records: Sequence[RoomRecord], now: float) -> None:
    for record in records:
        room = core.rooms.keep(record.name, now)
        room.created_at = record.registered_at
        room.topic = record.topic or ""
        room.topic_set_by = record.topic_set_by or ""
        room.topic_set_at = record.topic_set_at or 0.0
        room.modes = {letter for letter in record.modes if letter in BOOL_MODES}
        room.key = record.key or ""
        room.limit = record.limit or 0
        _restore_bans(core, room, record)
        core.registry.records[room.name_cf] = record


def _restore_bans(core: ServerCore, room: Room, record: RoomRecord) -> None:
    """Saved bans come back, except ones too complex for today's mask limits (a ban saved
    before the limits existed could otherwise cost every JOIN dearly)."""
    config = core.config
    for mask in record.bans:
        problem = mask_problem(mask, config.max_mask_length, config.max_mask_wildcards)
        if problem is None:
            room.add_ban(Ban(mask, service_source(core, CHANSERV), record.registered_at))
        else:
            event(log, "ban_skipped", room=room.name, mask=mask, reason=problem)


def room_changed(core: ServerCore, room: Room) -> None:
    """Call after a topic or mode change: a registered room saves its new state."""
    if core.registry.get(room) is not None:
        save(core, room)


def save(
    core: ServerCore,
    room: Room,
    then: Callable[[Outcome, float], None] | None = None,
    client: int | None = None,
) -> None:
    """``client``: who waits for ``then``'s reply (``StoreCall.client``)."""
    record = _snapshot(core.registry.records[room.name_cf], room)
    core.registry.records[room.name_cf] = record
    job = StoreCall(lambda store: store.save_room(record), then or _log_failure, client=client)
    core.perform(job)


def _snapshot(record: RoomRecord, room: Room) -> RoomRecord:
    return dataclasses.replace(
        record,
        name=room.name,
        topic=room.topic or None,
        topic_set_by=room.topic_set_by or None,
        topic_set_at=room.topic_set_at or None,
        modes="+" + "".join(sorted(room.modes)),
        key=room.key or None,
        limit=room.limit or None,
        bans=tuple(ban.mask for ban in room.bans),
    )


def _log_failure(outcome: Outcome, now: float) -> None:
    if isinstance(outcome, BaseException):
        log.error("saving a registered room failed: %s", outcome)


def forget_account(core: ServerCore, account: str, now: float) -> None:
    """The account was dropped (the store cascaded): forget its rooms and operator entries."""
    account_cf = casefold(account)
    for name_cf, record in list(core.registry.records.items()):
        if record.founder == account_cf:
            del core.registry.records[name_cf]
            room = core.rooms.get(name_cf)
            if room is not None:
                core.rooms.unkeep(room)
        elif account_cf in record.operators:
            operators = tuple(op for op in record.operators if op != account_cf)
            core.registry.records[name_cf] = dataclasses.replace(record, operators=operators)


# ---- operator status --------------------------------------------------------------------------


def is_privileged(record: RoomRecord, account: str | None) -> bool:
    if account is None:
        return False
    account_cf = casefold(account)
    return account_cf == record.founder or account_cf in record.operators


def on_join(core: ServerCore, session: Session, room: Room, now: float) -> None:
    """Re-op the founder and listed operators when they join (logged in)."""
    record = core.registry.get(room)
    if record is not None and is_privileged(record, session.account):
        give_op(core, room, session, now)


def reop_everywhere(core: ServerCore, session: Session, now: float) -> None:
    """After a login: op the user in the registered rooms they are in and are listed for."""
    for room in list(session.rooms.values()):
        on_join(core, session, room, now)


def give_op(core: ServerCore, room: Room, session: Session, now: float) -> None:
    member = room.member(session)
    if member is None or member.is_op:
        return
    member.modes = "".join(m for m in PREFIX_MODES if m in member.modes or m == OP)
    core.broadcast_to_room(
        room, "MODE", [room.name, "+" + OP, session.nick], service_source(core, CHANSERV), now
    )


# ---- the ChanServ service ---------------------------------------------------------------------

ChanServCommand = Callable[["ServerCore", "Session", list[str], float], None]

HELP = (
    "ChanServ keeps a room's topic, modes and operators across restarts. Commands:",
    "REGISTER #room          register a room you are operator of (you must be logged in)",
    "INFO #room              about a registered room",
    "OP #room <account|nick> add an operator (founder only); DEOP removes one",
    "DROP #room              unregister a room (founder only)",
)


def handle_chanserv(core: ServerCore, session: Session, text: str, now: float) -> None:
    """``PRIVMSG ChanServ :<command> [args]`` (or the CHANSERV / CS command)."""
    found = dispatch(core, session, CHANSERV, CHANSERV_COMMANDS, text, now)
    if found is None:
        return
    handler, args = found
    if handler is not _help and (not args or not is_room_name(args[0])):
        _say(core, session, f"Syntax: {split_command(text)[0]} #room ...; try HELP")
        return
    handler(core, session, args, now)


def _say(core: ServerCore, session: Session, text: str) -> None:
    notice(core, session, CHANSERV, text)


def _help(core: ServerCore, session: Session, args: list[str], now: float) -> None:
    for line in HELP:
        _say(core, session, line)


# REGISTER #room
def _register(core: ServerCore, session: Session, args: list[str], now: float) -> None:
    room = core.rooms.get(args[0])
    member = room.member(session) if room is not None else None
    if session.account is None:
        _say(core, session, "Log in first (/msg NickServ IDENTIFY <password>)")
    elif room is None or member is None or not member.is_op:
        _say(core, session, f"You must be an operator of {args[0]} to register it")
    elif core.registry.get(room) is not None:
        _say(core, session, f"{room.name} is already registered")
    else:
        _register_room(core, session, room, session.account, now)


def _register_room(
    core: ServerCore, session: Session, room: Room, account: str, now: float
) -> None:
    core.registry.records[room.name_cf] = RoomRecord(room.name, casefold(account), now)
    core.rooms.keep(room.name, now)

    def saved(outcome: Outcome, now: float) -> None:
        if isinstance(outcome, BaseException):
            log.error("registering %s failed: %s", room.name, outcome)
            core.registry.records.pop(room.name_cf, None)
            core.rooms.unkeep(room)
            _say_if_alive(core, session, f"{room.name} could not be registered; try again later")
        else:
            _say_if_alive(core, session, f"{room.name} is registered to {account}")

    save(core, room, saved, client=session.conn)


def _say_if_alive(core: ServerCore, session: Session, text: str) -> None:
    if core.sessions.get(session.conn) is session:
        _say(core, session, text)


# INFO #room
def _info(core: ServerCore, session: Session, args: list[str], now: float) -> None:
    room = core.rooms.get(args[0])
    record = core.registry.get(room) if room is not None else None
    if room is None or record is None:
        _say(core, session, f"{args[0]} is not registered")
        return
    since = datetime.fromtimestamp(record.registered_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    _say(core, session, f"{room.name} is registered to {record.founder} since {since}")
    _say(core, session, f"Operators: {', '.join(record.operators) or '(founder only)'}")


# DROP #room
def _drop(core: ServerCore, session: Session, args: list[str], now: float) -> None:
    room = _founded_room(core, session, args[0])
    if room is None:
        return
    del core.registry.records[room.name_cf]
    core.rooms.unkeep(room)
    core.perform(StoreCall(lambda store: store.drop_room(room.name), _log_failure))
    _say(core, session, f"{room.name} is no longer registered")


def _founded_room(core: ServerCore, session: Session, name: str) -> Room | None:
    room = core.rooms.get(name)
    record = core.registry.get(room) if room is not None else None
    if room is None or record is None:
        _say(core, session, f"{name} is not registered")
        return None
    if session.account is None or casefold(session.account) != record.founder:
        _say(core, session, f"Only the founder of {room.name} can do that")
        return None
    return room


# OP #room <account | nick>
def _op(core: ServerCore, session: Session, args: list[str], now: float) -> None:
    room = _founded_room(core, session, args[0])
    if room is None:
        return
    if len(args) < 2:
        _say(core, session, "Syntax: OP #room <account|nick>")
        return
    account = _account_named(core, args[1])

    def found(outcome: Outcome, now: float) -> None:
        record = core.registry.get(room)
        if record is None:
            return
        if not isinstance(outcome, Account):
            _say_if_alive(core, session, f"{account} is not a registered account")
            return
        operators = tuple(sorted({*record.operators, outcome.name_cf}))
        core.registry.records[room.name_cf] = dataclasses.replace(record, operators=operators)
        save(core, room)
        _say_if_alive(core, session, f"{outcome.name} is now an operator of {room.name}")
        for member in list(room.members.values()):
            if member.session.account and casefold(member.session.account) == outcome.name_cf:
                give_op(core, room, member.session, now)

    core.perform(StoreCall(lambda store: store.get_account(account), found, client=session.conn))


# DEOP #room <account | nick>
def _deop(core: ServerCore, session: Session, args: list[str], now: float) -> None:
    room = _founded_room(core, session, args[0])
    if room is None:
        return
    if len(args) < 2:
        _say(core, session, "Syntax: DEOP #room <account|nick>")
        return
    account_cf = casefold(_account_named(core, args[1]))
    record = core.registry.records[room.name_cf]
    if account_cf not in record.operators:
        _say(core, session, f"{args[1]} is not on the operator list of {room.name}")
        return
    operators = tuple(op for op in record.operators if op != account_cf)
    core.registry.records[room.name_cf] = dataclasses.replace(record, operators=operators)
    save(core, room)
    _say(core, session, f"{args[1]} is no longer an operator of {room.name}")


def _account_named(core: ServerCore, word: str) -> str:
    """An online, logged-in nick stands for its account; anything else is an account name."""
    holder = core.nicks.get(word)
    return holder.account if holder is not None and holder.account else word


CHANSERV_COMMANDS: dict[str, ChanServCommand] = {
    "HELP": _help,
    "REGISTER": _register,
    "INFO": _info,
    "DROP": _drop,
    "OP": _op,
    "DEOP": _deop,
}
