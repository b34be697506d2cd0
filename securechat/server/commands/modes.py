"""MODE for rooms (o v n t, and the query forms) and for users (i).

Modern IRC "MODE": a mode string is a run of ``+``/``-`` and letters; type-B
modes (o, v) take a parameter each, at most MODES=4 of them per command.
Changes are applied in order and the ones that took effect are announced in
one MODE line; a letter we do not know earns 472 and the rest still apply.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from securechat.protocol import numerics as n
from securechat.protocol.message import Message, build, safe_param
from securechat.protocol.names import casefold, is_room_name
from securechat.server.commands.rooms import existing_room, require_op
from securechat.server.core import IrcError
from securechat.server.rooms import BOOL_MODES, PREFIX_MODES

if TYPE_CHECKING:
    from securechat.server.core import ServerCore
    from securechat.server.rooms import Room
    from securechat.server.state import Session

MAX_PARAM_MODES = 4
LIST_MODES = "b"  # answered as (empty) lists so clients that ask on join get an end marker


# MODE <target> [<modestring> [<mode arguments>...]]
def handle_mode(core: ServerCore, session: Session, message: Message, now: float) -> None:
    target = message.params[0]
    if is_room_name(target):
        _room_mode(core, session, existing_room(core, target), message, now)
    else:
        _user_mode(core, session, target, message)


def _room_mode(
    core: ServerCore, session: Session, room: Room, message: Message, now: float
) -> None:
    if len(message.params) < 2:
        core.reply(session, n.RPL_CHANNELMODEIS, room.name, room.mode_string())
        core.reply(session, n.RPL_CREATIONTIME, room.name, str(int(room.created_at)))
        return
    modestring, args = message.params[1], list(message.params[2:])
    if modestring.strip("+-") in LIST_MODES:
        core.reply(session, n.RPL_ENDOFBANLIST, room.name, "End of channel ban list")
        return
    require_op(session, room)
    applied, applied_args = _apply_room_modes(core, session, room, modestring, args)
    if applied:
        core.broadcast(
            room.sessions(),
            "MODE",
            [room.name, applied, *applied_args],
            session.source,
            now,
            msgid=core.new_msgid(),
        )


def _apply_room_modes(
    core: ServerCore, session: Session, room: Room, modestring: str, args: list[str]
) -> tuple[str, list[str]]:
    changes: list[tuple[str, str]] = []  # (sign + letter, argument or "")
    sign = "+"
    param_modes = 0
    for letter in modestring:
        if letter in "+-":
            sign = letter
        elif letter in BOOL_MODES:
            if _set_flag(room, letter, sign == "+"):
                changes.append((sign + letter, ""))
        elif letter in PREFIX_MODES:
            param_modes += 1
            if param_modes > MAX_PARAM_MODES or not args:
                continue
            nick = args.pop(0)
            if _set_prefix(core, session, room, letter, sign == "+", nick):
                changes.append((sign + letter, room.members[casefold(nick)].session.nick))
        else:
            core.reply(session, n.ERR_UNKNOWNMODE, safe_param(letter), "is unknown mode char to me")
    return _compact(changes)


def _set_flag(room: Room, letter: str, on: bool) -> bool:
    if (letter in room.modes) == on:
        return False
    if on:
        room.modes.add(letter)
    else:
        room.modes.discard(letter)
    return True


def _set_prefix(
    core: ServerCore, session: Session, room: Room, letter: str, on: bool, nick: str
) -> bool:
    member = room.members.get(casefold(nick))
    if member is None:
        core.reply(
            session,
            n.ERR_USERNOTINCHANNEL,
            safe_param(nick),
            room.name,
            "They aren't on that channel",
        )
        return False
    if (letter in member.modes) == on:
        return False
    kept = member.modes.replace(letter, "")
    member.modes = "".join(m for m in PREFIX_MODES if m in kept or (on and m == letter))
    return True


def _compact(changes: list[tuple[str, str]]) -> tuple[str, list[str]]:
    """["+o","+t","-v"] -> "+ot-v": the sign is written only when it changes."""
    text, sign = "", ""
    for change, _ in changes:
        if change[0] != sign:
            sign = change[0]
            text += sign
        text += change[1]
    return text, [arg for _, arg in changes if arg]


def _user_mode(core: ServerCore, session: Session, nick: str, message: Message) -> None:
    target = core.nicks.get(nick)
    if target is None:
        raise IrcError(n.ERR_NOSUCHNICK, safe_param(nick), "No such nick/channel")
    if target is not session:
        raise IrcError(n.ERR_USERSDONTMATCH, "Can't change mode for other users")
    if len(message.params) < 2:
        core.reply(session, n.RPL_UMODEIS, "+i" if session.invisible else "+")
        return
    applied = ""
    sign = "+"
    for letter in message.params[1]:
        if letter in "+-":
            sign = letter
        elif letter == "i":
            if session.invisible != (sign == "+"):
                session.invisible = sign == "+"
                applied += sign + letter
        else:
            core.reply(session, n.ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag")
    if applied:
        core.send(session, build("MODE", [session.nick, applied], session.source))
