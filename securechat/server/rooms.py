"""Rooms (IRC channels) and the room manager, keyed by casefolded room name and nickname.

A room exists while it has members: the first member of a new room is its
operator (RFC 2812 §3.2.1 / Modern IRC "JOIN"); the room disappears when the
last member leaves. Membership is recorded on both sides (room.members and
session.rooms) and only changed through this module, so the two never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from securechat.protocol.names import casefold
from securechat.server.state import Session

OP = "o"
VOICE = "v"
PREFIX_MODES = "ov"  # highest rank first, as in ISUPPORT PREFIX=(ov)@+
PREFIX_SYMBOLS = "@+"
BOOL_MODES = "nt"  # room modes without parameters that this server supports


class Member:
    __slots__ = ("modes", "session")

    def __init__(self, session: Session, modes: str = "") -> None:
        self.session = session
        self.modes = modes

    def prefixes(self, all_of_them: bool) -> str:
        """Status symbols, highest first; every one of them with multi-prefix."""
        symbols = "".join(
            symbol
            for mode, symbol in zip(PREFIX_MODES, PREFIX_SYMBOLS, strict=True)
            if mode in self.modes
        )
        return symbols if all_of_them else symbols[:1]

    @property
    def is_op(self) -> bool:
        return OP in self.modes


class Room:
    __slots__ = (
        "created_at",
        "members",
        "modes",
        "name",
        "name_cf",
        "topic",
        "topic_set_at",
        "topic_set_by",
    )

    def __init__(self, name: str, now: float) -> None:
        self.name = name
        self.name_cf = casefold(name)
        self.members: dict[str, Member] = {}  # casefolded nick -> member
        self.modes = set(BOOL_MODES)  # +nt by default, as most networks do
        self.topic = ""
        self.topic_set_by = ""
        self.topic_set_at = 0.0
        self.created_at = now

    def member(self, session: Session) -> Member | None:
        return self.members.get(session.nick_cf)

    def sessions(self) -> Iterator[Session]:
        for member in self.members.values():
            yield member.session

    def mode_string(self) -> str:
        return "+" + "".join(sorted(self.modes))


class RoomManager:
    """All rooms by casefolded name, and every membership change."""

    __slots__ = ("_rooms",)

    def __init__(self) -> None:
        self._rooms: dict[str, Room] = {}

    def get(self, name: str) -> Room | None:
        return self._rooms.get(casefold(name))

    def __len__(self) -> int:
        return len(self._rooms)

    def __iter__(self) -> Iterator[Room]:
        return iter(list(self._rooms.values()))

    def join(self, session: Session, name: str, now: float) -> Room:
        """Add ``session`` to room ``name``, creating it (with them as operator) if new."""
        room = self._rooms.get(casefold(name))
        modes = ""
        if room is None:
            room = Room(name, now)
            self._rooms[room.name_cf] = room
            modes = OP
        room.members[session.nick_cf] = Member(session, modes)
        session.rooms[room.name_cf] = room
        return room

    def leave(self, session: Session, room: Room) -> None:
        room.members.pop(session.nick_cf, None)
        session.rooms.pop(room.name_cf, None)
        if not room.members:
            del self._rooms[room.name_cf]

    def leave_all(self, session: Session) -> None:
        for room in list(session.rooms.values()):
            self.leave(session, room)

    def rename(self, session: Session, old_nick_cf: str) -> None:
        """Re-key the session's memberships after a nick change."""
        for room in session.rooms.values():
            member = room.members.pop(old_nick_cf)
            room.members[session.nick_cf] = member

    def peers(self, session: Session) -> list[Session]:
        """Everyone who shares at least one room with ``session``, once each, without them."""
        seen: dict[int, Session] = {}
        for room in session.rooms.values():
            for member in room.members.values():
                seen[member.session.conn] = member.session
        seen.pop(session.conn, None)
        return list(seen.values())

    def shared_with(self, a: Session, b: Session) -> bool:
        return any(room_cf in b.rooms for room_cf in a.rooms)


def members_of(rooms: Iterable[Room]) -> set[Session]:
    return {member.session for room in rooms for member in room.members.values()}
