"""Registered rooms (ChanServ's records) keep topic, modes, founder and operators across restarts.

Rules kept here:

- The ChanServ service (services/chanserv.py) registers, describes and drops rooms and edits
  their operator lists; this module keeps the records and acts on them. A ``MODE +o`` given
  in the room stays a one-time grant and is not added to the list: who gets operator status
  back after a restart is a decision the founder makes, not a side effect of a mode change.
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
from typing import TYPE_CHECKING

from securechat.logs import event
from securechat.protocol.masks import mask_problem
from securechat.protocol.names import casefold
from securechat.protocol.services import CHANSERV
from securechat.server.actions import StoreCall
from securechat.server.records import RoomRecord
from securechat.server.rooms import BOOL_MODES, OP, PREFIX_MODES, Ban
from securechat.server.service_nicks import service_source

if TYPE_CHECKING:
    from securechat.server.actions import Outcome
    from securechat.server.core import ServerCore
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
    new: bool = False,
) -> None:
    """``client``: who waits for ``then``'s reply (``StoreCall.client``). ``new``: a
    registration, which the store refuses (RoomExists) if the name is taken there."""
    record = _snapshot(core.registry.records[room.name_cf], room)
    core.registry.records[room.name_cf] = record
    job = StoreCall(
        lambda store: store.save_room(record, new=new), then or log_save_failure, client=client
    )
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


def log_save_failure(outcome: Outcome, now: float) -> None:
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
