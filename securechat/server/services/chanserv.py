"""The ChanServ service: ``PRIVMSG ChanServ :<command> #room ...`` (or ``CS <command>``).

Rules kept here (the records and what they do are room_registry.py's):

- ``REGISTER #room``: a logged-in operator of the room registers it; their account becomes
  its founder. ``DROP #room``: the founder unregisters it. ``INFO #room``: anyone.
- The operator list is managed explicitly by the founder with ``OP #room <account|nick>`` and
  ``DEOP #room <account|nick>``; a ``MODE +o`` given in the room is not added to it.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from securechat.protocol.names import casefold, is_room_name
from securechat.protocol.services import CHANSERV
from securechat.server.actions import StoreCall
from securechat.server.records import Account, RoomExists, RoomRecord
from securechat.server.room_registry import give_op, log_save_failure, save
from securechat.server.service_nicks import notice
from securechat.server.services import ServiceCommand, dispatch

if TYPE_CHECKING:
    from securechat.server.actions import Outcome
    from securechat.server.core import ServerCore
    from securechat.server.rooms import Room
    from securechat.server.state import Session

log = logging.getLogger("securechat.server")


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
    command, args = found
    if command.min_params and not is_room_name(args[0]):
        _say(core, session, f"Syntax: {text.split()[0].upper()} {command.syntax}; try HELP")
        return
    command.handler(core, session, args, now)


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
            core.registry.records.pop(room.name_cf, None)
            core.rooms.unkeep(room)
            if isinstance(outcome, RoomExists):  # registered through another server process
                _say_if_alive(core, session, f"{room.name} is already registered")
                return
            log.error("registering %s failed: %s", room.name, outcome)
            _say_if_alive(core, session, f"{room.name} could not be registered; try again later")
        else:
            _say_if_alive(core, session, f"{room.name} is registered to {account}")

    save(core, room, saved, client=session.conn, new=True)


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
    core.perform(StoreCall(lambda store: store.drop_room(room.name), log_save_failure))
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


def _founded_room_with_account(
    core: ServerCore, session: Session, args: list[str], command: str
) -> Room | None:
    """OP and DEOP: the room when the caller founded it and named an account, else None (said)."""
    room = _founded_room(core, session, args[0])
    if room is not None and len(args) < 2:
        _say(core, session, f"Syntax: {command} #room <account|nick>")
        return None
    return room


# OP #room <account | nick>
def _op(core: ServerCore, session: Session, args: list[str], now: float) -> None:
    room = _founded_room_with_account(core, session, args, "OP")
    if room is None:
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
    room = _founded_room_with_account(core, session, args, "DEOP")
    if room is None:
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


ROOM_SYNTAX = "#room ..."
CHANSERV_COMMANDS: dict[str, ServiceCommand] = {
    "HELP": ServiceCommand(_help),
    "REGISTER": ServiceCommand(_register, min_params=1, syntax=ROOM_SYNTAX),
    "INFO": ServiceCommand(_info, min_params=1, syntax=ROOM_SYNTAX),
    "DROP": ServiceCommand(_drop, min_params=1, syntax=ROOM_SYNTAX),
    "OP": ServiceCommand(_op, min_params=1, syntax=ROOM_SYNTAX),
    "DEOP": ServiceCommand(_deop, min_params=1, syntax=ROOM_SYNTAX),
}
