"""Rooms (IRC channels) and the room manager, keyed by casefolded room name and nickname.

A room exists while it has members: the first member of a new room is its
operator (RFC 2812 §3.2.1 / Modern IRC "JOIN"); the room disappears when the
last member leaves. Membership is recorded on both sides (room.members and
session.rooms) and only changed through this module, so the two never disagree.

Admission (Modern IRC "JOIN", RFC 2812 §3.2.1, checked in this order):
a matching ban refuses with 474; +i without an invite, 473; +k without the
right key, 475; +l with the room full, 471. An invite also lets its holder
past +l (as solanum does), never past a ban or a key. Invites are kept per room
by casefolded nick until the invitee joins, quits or the room empties, and
follow the invitee across nick changes.

Bans (``nick!user@host`` masks with ``*``/``?``) are changed only through
Room.add_ban / remove_ban, which bump a version number: a member's "am I
banned" answer is cached against that version and their current mask, so
sending to a room matches masks once per ban-list or nick change, not once
per message. Each ban carries its compiled matcher (``protocol.masks``:
linear time, never a regex), and how complex a mask may be is checked where
masks come in (MODE +b, and ChanServ's restore at start).

What outsiders (not members, not server operators) see of a room (Modern IRC
"Secret Channel Mode", RFC 2811 §4.2.6; security review L6):

- members (NAMES, WHO, the room in WHOIS): nothing of a +s, +p, +i or +k room;
  an invite-only or keyed room keeps its members to itself like a secret one;
- LIST: every room but +s ones, with its member count;
- the topic (LIST, TOPIC): not of a +s or +p room.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from securechat.protocol import numerics as n
from securechat.protocol.masks import Glob
from securechat.protocol.names import casefold, compile_folded
from securechat.server.state import Session

OP = "o"
VOICE = "v"
PREFIX_MODES = "ov"  # highest rank first, as in ISUPPORT PREFIX=(ov)@+
PREFIX_SYMBOLS = "@+"
# ISUPPORT CHANMODES=A,B,C,D (Modern IRC "CHANMODES"): A lists, B always a
# parameter, C a parameter only when set, D flags.
LIST_MODES = "b"
KEY_MODES = "k"
LIMIT_MODES = "l"
BOOL_MODES = "imnpst"
SECRECY_MODES = "ps"  # RFC 2811 §4.2.6: never both; setting one unsets the other
CLOSED_MODES = "ikps"  # rooms whose members outsiders do not see
DEFAULT_MODES = "nt"  # +nt for a new room, as most networks do
KEYLEN = 23  # the common ircd default; advertised as ISUPPORT KEYLEN


@dataclass(frozen=True, slots=True)
class Ban:
    mask: str  # normalized nick!user@host glob, as set (display case)
    set_by: str  # source of the operator who set it
    set_at: float
    glob: Glob = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "glob", compile_folded(self.mask))


class Member:
    __slots__ = ("ban_key", "banned", "joined_at", "modes", "session")

    def __init__(self, session: Session, modes: str = "", joined_at: float = 0.0) -> None:
        self.session = session
        self.modes = modes
        self.joined_at = joined_at  # history of a +i/+k room is readable from here on
        self.ban_key: tuple[int, str] | None = None  # (ban-list version, source) of `banned`
        self.banned = False

    def prefixes(self, all_of_them: bool) -> str:
        """Status symbols, highest first; every one of them with multi-prefix."""
        if not self.modes:  # most members: NAMES asks this for each of a room's hundreds
            return ""
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
        "_ban_version",
        "_targets",
        "bans",
        "created_at",
        "invited",
        "key",
        "limit",
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
        self.modes = set(DEFAULT_MODES)  # flags only; key and limit live below
        self.key = ""  # +k when not empty
        self.limit = 0  # +l when above 0
        self.bans: list[Ban] = []  # read freely; change with add_ban / remove_ban
        self._ban_version = 0
        self.invited: set[str] = set()  # casefolded nicks; change through RoomManager
        self.topic = ""
        self.topic_set_by = ""
        self.topic_set_at = 0.0
        self.created_at = now
        self._targets: dict[int, list[int]] | None = None  # see targets_by_variant

    def member(self, session: Session) -> Member | None:
        return self.members.get(session.nick_cf)

    def targets_by_variant(self) -> dict[int, list[int]]:
        """Member connection ids grouped by tag variant, in member order: what a message to
        the room is sent to, without a walk over the members per message. Cached until
        ``forget_targets`` (a join, a part, or a member's capabilities changing)."""
        targets = self._targets
        if targets is None:
            targets = {}
            for member in self.members.values():
                session = member.session
                if session.devices is None:
                    if not session.remote:  # cluster mode: another node sends to its own
                        targets.setdefault(session.tag_variant, []).append(session.conn)
                else:  # a shared identity: each of its connected devices, by its own tags
                    for device in session.devices:
                        if not device.remote:
                            targets.setdefault(device.tag_variant, []).append(device.conn)
            self._targets = targets
        return targets

    def forget_targets(self) -> None:
        self._targets = None

    def sessions(self) -> Iterator[Session]:
        """The members' connections (a shared identity's devices in its place)."""
        for member in self.members.values():
            session = member.session
            if session.devices is None:
                yield session
            else:
                yield from session.devices

    def mode_params(self, show_key: bool) -> list[str]:
        """RPL_CHANNELMODEIS parameters: "+klnt", then the key ("*" if hidden) and limit."""
        letters = set(self.modes)
        args = {}
        if self.key:
            letters.add("k")
            args["k"] = self.key if show_key else "*"
        if self.limit:
            letters.add("l")
            args["l"] = str(self.limit)
        ordered = sorted(letters)
        return ["+" + "".join(ordered), *(args[m] for m in ordered if m in args)]

    # ---- bans ---------------------------------------------------------------------------

    def find_ban(self, mask: str) -> Ban | None:
        folded = casefold(mask)
        return next((ban for ban in self.bans if casefold(ban.mask) == folded), None)

    def add_ban(self, ban: Ban) -> None:
        self.bans.append(ban)
        self._ban_version += 1

    def remove_ban(self, mask: str) -> Ban | None:
        ban = self.find_ban(mask)
        if ban is not None:
            self.bans.remove(ban)
            self._ban_version += 1
        return ban

    def is_banned(self, session: Session) -> bool:
        """Whether a ban matches the session's nick!user@host; cached for members."""
        if not self.bans:
            return False
        member = self.members.get(session.nick_cf)
        if member is None:
            return self._matches_a_ban(session.source)
        key = (self._ban_version, session.source)
        if member.ban_key != key:
            member.ban_key, member.banned = key, self._matches_a_ban(session.source)
        return member.banned

    def _matches_a_ban(self, source: str) -> bool:
        folded = casefold(source)
        return any(ban.glob.matches(folded) for ban in self.bans)

    # ---- visibility ---------------------------------------------------------------------

    @property
    def is_closed(self) -> bool:
        """+s, +p, +i or +k: outsiders do not see who is in it."""
        return bool(self.key) or not self.modes.isdisjoint(CLOSED_MODES)

    def members_visible_to(self, session: Session) -> bool:
        return not self.is_closed or self._insider(session)

    def listed_for(self, session: Session) -> bool:
        """Whether LIST shows the room to ``session``."""
        return "s" not in self.modes or self._insider(session)

    def topic_visible_to(self, session: Session) -> bool:
        return self.modes.isdisjoint(SECRECY_MODES) or self._insider(session)

    def _insider(self, session: Session) -> bool:
        return session.oper or self.member(session) is not None

    # ---- admission ----------------------------------------------------------------------

    def refusal(self, session: Session, key: str) -> tuple[str, str] | None:
        """(numeric, text) refusing a JOIN by ``session`` with ``key``, or None to let it in."""
        invited = session.nick_cf in self.invited
        if self.is_banned(session):
            return n.ERR_BANNEDFROMCHAN, "Cannot join channel (+b)"
        if "i" in self.modes and not invited:
            return n.ERR_INVITEONLYCHAN, "Cannot join channel (+i)"
        if self.key and not hmac.compare_digest(key.encode(), self.key.encode()):
            return n.ERR_BADCHANNELKEY, "Cannot join channel (+k)"
        if self.limit and len(self.members) >= self.limit and not invited:
            return n.ERR_CHANNELISFULL, "Cannot join channel (+l)"
        return None


class RoomManager:
    """All rooms by casefolded name, and every membership change."""

    __slots__ = ("_invites", "_rooms", "identities", "kept")

    def __init__(self) -> None:
        # Every shared identity (presence_accounts.AccountPresences.homes, set by the core):
        # while there is none, peers() has nothing to expand and skips looking.
        self.identities: Mapping[str, Session] = {}
        self._rooms: dict[str, Room] = {}
        self.kept: set[str] = set()  # casefolded names of registered rooms: they outlive members
        self._invites: dict[str, set[str]] = {}  # casefolded nick -> casefolded room names

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
        # A device joins for the user it is a device of (its rooms dict is the identity's).
        member_session = session.principal or session
        room.members[session.nick_cf] = Member(member_session, modes, now)
        room.forget_targets()
        session.rooms[room.name_cf] = room
        self._uninvite(room, session.nick_cf)
        return room

    def leave(self, session: Session, room: Room) -> None:
        room.members.pop(session.nick_cf, None)
        room.forget_targets()
        session.rooms.pop(room.name_cf, None)
        if not room.members and room.name_cf not in self.kept:
            for nick_cf in list(room.invited):
                self._uninvite(room, nick_cf)
            del self._rooms[room.name_cf]

    def keep(self, name: str, now: float) -> Room:
        """Make room ``name`` (created empty if need be) outlive its members (ChanServ)."""
        room = self._rooms.get(casefold(name))
        if room is None:
            room = Room(name, now)
            self._rooms[room.name_cf] = room
        self.kept.add(room.name_cf)
        return room

    def unkeep(self, room: Room) -> None:
        """The room is no longer registered: it goes now if nobody is in it."""
        self.kept.discard(room.name_cf)
        if not room.members and self._rooms.get(room.name_cf) is room:
            for nick_cf in list(room.invited):
                self._uninvite(room, nick_cf)
            del self._rooms[room.name_cf]

    def leave_all(self, session: Session) -> None:
        """The client is leaving the server: its rooms, and its pending invites, go."""
        for room in list(session.rooms.values()):
            self.leave(session, room)
        for room_cf in self._invites.pop(session.nick_cf, set()):
            self._rooms[room_cf].invited.discard(session.nick_cf)

    def rename(self, session: Session, old_nick_cf: str) -> None:
        """Re-key the session's memberships and invites after a nick change."""
        for room in session.rooms.values():
            member = room.members.pop(old_nick_cf)
            room.members[session.nick_cf] = member
        for room_cf in self._invites.pop(old_nick_cf, set()):
            room = self._rooms[room_cf]
            room.invited.discard(old_nick_cf)
            self.invite(room, session)

    def invite(self, room: Room, session: Session) -> None:
        room.invited.add(session.nick_cf)
        self._invites.setdefault(session.nick_cf, set()).add(room.name_cf)

    def _uninvite(self, room: Room, nick_cf: str) -> None:
        room.invited.discard(nick_cf)
        rooms = self._invites.get(nick_cf)
        if rooms is not None:
            rooms.discard(room.name_cf)
            if not rooms:
                del self._invites[nick_cf]

    def banned_in(self, session: Session) -> Room | None:
        """A room where ``session`` is banned and has no voice or op (it may not rename)."""
        for room in session.rooms.values():
            member = room.member(session)
            if member is not None and not member.modes and room.is_banned(session):
                return room
        return None

    def peers(self, session: Session) -> list[Session]:
        """Every connection that shares at least one room with ``session``, once each, without
        the user's own (all devices of a shared identity are left out)."""
        seen: dict[int, Session] = {}
        for room in session.rooms.values():
            for member in room.members.values():
                seen[member.session.conn] = member.session
        own = session.principal or session
        seen.pop(own.conn, None)
        if not self.identities or min(seen, default=0) >= 0:  # no identity (negative id) here
            return list(seen.values())
        # a device belongs to one identity only, so nothing repeats
        expanded = [peer for peer in seen.values() if peer.devices is None]
        for peer in seen.values():
            if peer.devices:
                expanded.extend(peer.devices)
        return expanded
