"""WHO, with masks and WHOX (Modern IRC "WHO message", IRCv3 WHOX; ISUPPORT ``WHOX``).

``WHO <mask> [<o>][%<fields>[,<token>]]``:

- a room name: its members, if the asker may see them (server.rooms); a member with user
  mode +i only to those in the room;
- a nick without wildcards: that user;
- ``*`` or ``0``: every user the asker may see; any other mask is a glob (``*``, ``?``)
  matched case-insensitively against nick, user, host, server name and realname.
  "May see": not +i, or sharing a room with the asker, or the asker itself or an operator
  (Modern IRC: invisible users are shown only to those who share a channel).
- ``o`` in the options lists server operators only.

Each match is one 352, or with ``%`` one 354 holding the requested fields in the order the
WHOX spec fixes (``tcuihsnfdlaor``); the end is always one 315 with the mask.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from securechat.protocol import numerics as n
from securechat.protocol.masks import mask_problem
from securechat.protocol.message import Message, safe_param
from securechat.protocol.names import casefold, compile_folded, is_room_name
from securechat.server.commands.user_modes import BOT_MODE
from securechat.server.presence_accounts import identity, users

if TYPE_CHECKING:
    from securechat.server.core import ServerCore
    from securechat.server.rooms import Member, Room
    from securechat.server.state import Session

RPL_WHOSPCRPL = n.RPL_WHOSPCRPL
WHOX_FIELDS = "tcuihsnfdlaor"  # the order 354 fields are sent in, whatever order was asked
_TOKEN_RE = re.compile(r"[0-9]{1,3}")  # WHOX: "a token of up to three digits"

Row = tuple["Session", "Room | None", "Member | None"]


def handle_who(core: ServerCore, session: Session, message: Message, now: float) -> None:
    mask = message.params[0]
    options, _, whox = message.param(1).partition("%")
    fields, _, token = whox.partition(",")
    for target, room, member in _rows(core, session, mask):
        if "o" in options and not target.oper:
            continue
        if whox:
            _whox_reply(core, session, target, room, member, fields, token, now)
        else:
            _who_reply(core, session, target, room, member)
    core.reply(session, n.RPL_ENDOFWHO, safe_param(mask), "End of WHO list")


def _rows(core: ServerCore, asker: Session, mask: str) -> Iterator[Row]:
    if is_room_name(mask):
        room = core.rooms.get(mask)
        if room is None or not room.members_visible_to(asker):
            return
        inside = room.member(asker) is not None
        for member in list(room.members.values()):
            if inside or not member.session.invisible:
                yield member.session, room, member
        return
    if "*" not in mask and "?" not in mask and mask != "0":
        target = core.nicks.get(mask)
        if target is not None and target.registered:
            yield target, None, None
        return
    config = core.config
    if mask_problem(mask, config.max_mask_length, config.max_mask_wildcards) is not None:
        return  # too complex to match (the same bound as bans): nothing matches
    glob = None if mask in ("*", "0") else compile_folded(mask)
    peers = {identity(s).conn for s in core.rooms.peers(asker)}
    # users, not connections: a user on several devices once, a detached always-on one too
    for target in users(core, [s for s in core.sessions.values() if s.registered]):
        if target.invisible and not (
            asker.oper or target is identity(asker) or target.conn in peers
        ):
            continue
        if glob is None or any(glob.matches(casefold(text)) for text in _fields(core, target)):
            yield target, None, None


def _fields(core: ServerCore, target: Session) -> tuple[str, ...]:
    return target.nick, target.user, target.host, core.server_of(target), target.realname


def _flags(asker: Session, target: Session, member: Member | None) -> str:
    """``H`` here or ``G`` away, ``*`` operator, ``B`` bot, then the member's prefix(es)."""
    flags = "G" if target.away is not None else "H"
    if target.oper:
        flags += "*"
    if target.bot:
        flags += BOT_MODE  # IRCv3 bot mode
    if member is not None:
        flags += member.prefixes("multi-prefix" in asker.caps)
    return flags


def _who_reply(
    core: ServerCore, asker: Session, target: Session, room: Room | None, member: Member | None
) -> None:
    core.reply(
        asker,
        n.RPL_WHOREPLY,
        room.name if room else "*",
        target.user,
        target.host,
        core.server_of(target),  # cluster mode: the user's node
        target.nick,
        _flags(asker, target, member),
        f"0 {target.realname}",
    )


def _whox_reply(
    core: ServerCore,
    asker: Session,
    target: Session,
    room: Room | None,
    member: Member | None,
    fields: str,
    token: str,
    now: float,
) -> None:
    values = {
        "t": token if _TOKEN_RE.fullmatch(token) else "0",
        "c": room.name if room else "*",
        "u": target.user,
        "i": target.host,
        "h": target.host,
        "s": core.server_of(target),
        "n": target.nick,
        "f": _flags(asker, target, member),
        "d": "0",
        "l": str(max(0, int(now - target.last_message_at))),
        "a": target.account or "0",
        "o": "n/a",
        "r": target.realname,
    }
    params = [values[field] for field in WHOX_FIELDS if field in fields]
    core.reply(asker, RPL_WHOSPCRPL, *params)
