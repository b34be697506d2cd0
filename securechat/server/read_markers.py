"""Read markers: IRCv3 ``draft/read-marker`` (https://ircv3.net/specs/extensions/read-marker).

Rules kept here:

- A marker belongs to an **account** and a target (a room, or a nick for a private
  conversation), stored casefolded. It is the ``time`` of the last message the user read and
  only ever moves forward: a ``MARKREAD`` at or before the stored time is answered with the
  stored time and changes nothing ("Read timestamp notes"); a time in the future is clamped to
  now ("Implementation Considerations").
- A change goes to **every connection logged in to the account** that negotiated the cap,
  the sender included; nobody else ever sees it ("Security Considerations").
- After the ``JOIN`` of a client with the cap, ``MARKREAD <room> <timestamp | *>`` comes
  before its ``RPL_ENDOFNAMES`` ("Command flows"): so the markers of an account are held in
  memory from its login on (loaded from the store then; the client's next lines wait for the
  load), and a JOIN never waits for the disk. Writes go to the store's writer behind.
- Bounds: ``max_read_markers`` per account (the oldest go first, in memory and stored); a
  room target must be one the client is in, a nick target a valid nick.
- Errors are the spec's standard replies: ``FAIL MARKREAD NEED_MORE_PARAMS``,
  ``INVALID_PARAMS`` (bad target or timestamp), ``INTERNAL_ERROR``; a client that is not
  logged in gets ``FAIL MARKREAD ACCOUNT_REQUIRED`` (markers are kept per account).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from securechat.protocol.message import Message, build, safe_param
from securechat.protocol.names import NICKLEN, casefold, is_room_name, is_valid_nick
from securechat.protocol.tags import format_server_time
from securechat.server.actions import StoreCall
from securechat.server.history import message_time
from securechat.server.presence_accounts import accounts_connections
from securechat.server.standard_replies import fail

if TYPE_CHECKING:
    from securechat.server.actions import Outcome
    from securechat.server.core import ServerCore
    from securechat.server.rooms import Room
    from securechat.server.state import Session

log = logging.getLogger("securechat.server")

CAP = "draft/read-marker"
_TIMESTAMP_FORMATS = ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ")


class ReadMarkers:
    """Markers of the accounts logged in now: casefolded account -> casefolded target -> time."""

    __slots__ = ("by_account",)

    def __init__(self) -> None:
        self.by_account: dict[str, dict[str, float]] = {}

    def get(self, account: str, target: str) -> float | None:
        return self.by_account.get(casefold(account), {}).get(casefold(target))

    def advance(self, account: str, target: str, time: float, most: int) -> bool:
        """Move the marker to ``time`` if that is later; False if it was not."""
        markers = self.by_account.setdefault(casefold(account), {})
        key = casefold(target)
        known = markers.get(key)
        if known is not None and time <= known:
            return False
        markers[key] = time
        while len(markers) > most:
            del markers[min(markers, key=markers.__getitem__)]  # the oldest
        return True

    def merge(self, account: str, loaded: dict[str, float]) -> list[str]:
        """Markers read from the store: the later of each wins (a MARKREAD may have come in
        while they were loading). Returns the targets whose marker moved."""
        markers = self.by_account.setdefault(casefold(account), {})
        moved = []
        for target, time in loaded.items():
            known = markers.get(target)
            if known is None or time > known:
                markers[target] = time
                moved.append(target)
        return moved

    def forget_idle(self, core: ServerCore) -> None:
        """Drop the markers of accounts with no connection left (they are in the store)."""
        active = {casefold(s.account) for s in core.sessions.values() if s.account}
        for account in [a for a in self.by_account if a not in active]:
            del self.by_account[account]


def logged_in(core: ServerCore, session: Session) -> None:
    """Load the account's markers; the client's next lines wait until they are in."""
    markers = core.read_markers
    if len(markers.by_account) > core.config.throttle_max_entries:
        markers.forget_idle(core)
    account = session.account
    if not core.persistent or account is None:
        return
    most = core.config.max_read_markers

    def loaded(outcome: Outcome, now: float) -> None:
        if isinstance(outcome, BaseException):
            log.error("read markers of %s could not be loaded: %s", account, outcome)
            return
        # A room joined before the markers were in (a device attached to its account's
        # user at login) was shown "*": its marker goes out now, as a change.
        for target in markers.merge(account, outcome):
            room = session.rooms.get(target)
            if room is not None and core.sessions.get(session.conn) is session:
                _broadcast(core, account, _markread(core, room.name, outcome[target]))

    job = lambda store: store.read_markers(account, most)  # noqa: E731
    core.perform(StoreCall(job, loaded, client=session.conn))


def send_on_join(core: ServerCore, session: Session, room: Room) -> None:
    """After JOIN and before RPL_ENDOFNAMES, for clients with the cap ("Command flows")."""
    if CAP in session.caps:
        time = core.read_markers.get(session.account, room.name) if session.account else None
        core.send(session, _markread(core, room.name, time))


# MARKREAD <target> [timestamp=YYYY-MM-DDThh:mm:ss.sssZ]
def handle_markread(core: ServerCore, session: Session, message: Message, now: float) -> None:
    if not message.params or not message.params[0]:
        fail(core, session, "MARKREAD", "NEED_MORE_PARAMS", text="Missing parameters")
        return
    target = message.params[0]
    shown = _shown_target(core, session, target)
    if shown is None:
        fail(core, session, "MARKREAD", "INVALID_PARAMS", target, text="Invalid target")
        return
    if session.account is None:
        text = "Log in to an account to keep read markers"
        fail(core, session, "MARKREAD", "ACCOUNT_REQUIRED", target, text=text)
        return
    if len(message.params) < 2:  # the "get" command
        core.send(session, _markread(core, shown, core.read_markers.get(session.account, target)))
        return
    time = _timestamp(message.params[1])
    if time is None:
        fail(
            core, session, "MARKREAD", "INVALID_PARAMS", message.params[1], text="Invalid timestamp"
        )
        return
    _set(core, session, shown, min(time, message_time(now)))


def _set(core: ServerCore, session: Session, target: str, time: float) -> None:
    account = session.account
    assert account is not None
    markers = core.read_markers
    if not markers.advance(account, target, time, core.config.max_read_markers):
        core.send(session, _markread(core, target, markers.get(account, target)))
        return
    line = _markread(core, target, time)
    if CAP not in session.caps:
        core.send(session, line)  # it asked: it is answered, cap or not
    _broadcast(core, account, line)
    if core.persistent:
        most = core.config.max_read_markers

        def saved(outcome: Outcome, now: float) -> None:
            if isinstance(outcome, BaseException):
                log.error("read marker of %s could not be stored: %s", account, outcome)
                if core.sessions.get(session.conn) is session:
                    text = "The read timestamp could not be set"
                    fail(core, session, "MARKREAD", "INTERNAL_ERROR", target, text=text)

        job = lambda store: store.save_read_marker(account, target, time, most)  # noqa: E731
        core.perform(StoreCall(job, saved))


def _broadcast(core: ServerCore, account: str, line: bytes) -> None:
    """To every connection of the account that negotiated the cap ("Command flows")."""
    core.send_many([s for s in accounts_connections(core, account) if CAP in s.caps], line)


def _shown_target(core: ServerCore, session: Session, target: str) -> str | None:
    """The target as it is shown (a room's own spelling), or None when it is not one a
    marker may be kept for: a room the client is not in, or not a nick."""
    if is_room_name(target):
        room = session.rooms.get(casefold(target))
        return room.name if room is not None else None
    return target if is_valid_nick(target, NICKLEN) else None


def _timestamp(text: str) -> float | None:
    kind, _, value = text.partition("=")
    if kind != "timestamp":
        return None
    for layout in _TIMESTAMP_FORMATS:
        try:
            return datetime.strptime(value, layout).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    return None


def _markread(core: ServerCore, target: str, time: float | None) -> bytes:
    stamp = "*" if time is None else "timestamp=" + format_server_time(time)
    return build("MARKREAD", [safe_param(target), stamp], core.config.name)
