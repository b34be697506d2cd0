"""MODE for rooms (o v b k l i m n p s t, and the query forms) and for users (i).

Modern IRC "MODE" and "Channel Modes": a mode string is a run of ``+``/``-``
and letters. Parameters, one each, at most MODES=4 per command, go to
type A (``b``: a ban mask; without one, the ban list is sent), type B
(``k``: required to set; optional to unset, its value ignored, announced as
``*``) and type C (``l``: when set; a positive whole number) letters, and to
the prefix modes ``o``/``v``. Changes are applied in order, each validated
before it mutates; the ones that took effect are announced in one MODE line.
A letter we do not know earns 472, a missing parameter 461, a bad one 696
(also a ban mask longer than ``max_mask_length`` or with more than
``max_mask_wildcards`` wildcards: see ``protocol.masks``), a full ban list 478,
and the rest still apply. ``+p`` and ``+s`` exclude each other (RFC 2811
§4.2.6): setting one unsets the other, and both changes are announced. Only
room operators change modes; anyone may query the modes (the key shows as
``*`` to non-members) and the ban list.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from securechat.protocol import numerics as n
from securechat.protocol.masks import mask_problem
from securechat.protocol.message import Message, safe_param
from securechat.protocol.names import casefold, is_room_name
from securechat.server import room_registry
from securechat.server.actions import IrcError
from securechat.server.commands.rooms import existing_room, require_op
from securechat.server.commands.user_modes import change as change_user_modes
from securechat.server.commands.user_modes import mode_string
from securechat.server.rooms import (
    BOOL_MODES,
    KEYLEN,
    LIST_MODES,
    PREFIX_MODES,
    SECRECY_MODES,
    Ban,
)

if TYPE_CHECKING:
    from securechat.server.core import ServerCore
    from securechat.server.rooms import Room
    from securechat.server.state import Session

MAX_PARAM_MODES = 4  # ISUPPORT MODES=4
PARAM_LETTERS = "bklov"
# A key is one printable word without "," (JOIN separates keys with it) and not starting with ":".
_KEY_RE = re.compile(rf"[^\s,:\x00-\x1f\x7f][^\s,\x00-\x1f\x7f]{{0,{KEYLEN - 1}}}")
_MASK_RE = re.compile(r"[^\s,:\x00-\x1f\x7f][^\s,\x00-\x1f\x7f]*")  # its size: mask_problem
_LIMIT_RE = re.compile(r"[0-9]{1,9}")


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
        is_member = room.member(session) is not None
        core.reply(session, n.RPL_CHANNELMODEIS, room.name, *room.mode_params(is_member))
        core.reply(session, n.RPL_CREATIONTIME, room.name, str(int(room.created_at)))
        return
    modestring, args = message.params[1], list(message.params[2:])
    letters = modestring.replace("+", "").replace("-", "")
    if letters and not args and set(letters) <= set(LIST_MODES):
        send_ban_list(core, session, room)
        return
    require_op(session, room)
    change = RoomModeChange(core, session, room, now)
    applied, applied_args = change.apply(modestring, args)
    if applied:
        core.broadcast_to_room(
            room, "MODE", [room.name, applied, *applied_args], session.source, now
        )
        room_registry.room_changed(core, room)  # a registered room saves its new modes


def send_ban_list(core: ServerCore, session: Session, room: Room) -> None:
    """RPL_BANLIST (mask, setter, time) per ban, then RPL_ENDOFBANLIST."""
    for ban in room.bans:
        core.reply(session, n.RPL_BANLIST, room.name, ban.mask, ban.set_by, str(int(ban.set_at)))
    core.reply(session, n.RPL_ENDOFBANLIST, room.name, "End of channel ban list")


class RoomModeChange:
    """One MODE command from an operator: its letters applied to one room, in order."""

    def __init__(self, core: ServerCore, session: Session, room: Room, now: float) -> None:
        self.core = core
        self.session = session
        self.room = room
        self.now = now
        self.changes: list[tuple[str, str]] = []  # (sign + letter, argument or "")
        self.listed_bans = False

    def apply(self, modestring: str, args: list[str]) -> tuple[str, list[str]]:
        sign, used = "+", 0
        for letter in modestring:
            if letter in "+-":
                sign = letter
            elif letter in BOOL_MODES or (letter == "l" and sign == "-"):
                self._flag(letter, sign == "+")
            elif letter not in PARAM_LETTERS:
                self._reply(n.ERR_UNKNOWNMODE, safe_param(letter), "is unknown mode char to me")
            elif used >= MAX_PARAM_MODES:
                continue  # beyond MODES=4: ignored, as the ISUPPORT token promises
            elif args:
                used += 1
                self._with_arg(letter, sign == "+", args.pop(0))
            else:
                self._without_arg(letter, sign == "+")
        return _compact(self.changes)

    def _reply(self, numeric: str, *params: str) -> None:
        self.core.reply(self.session, numeric, *params)

    def _changed(self, letter: str, on: bool, arg: str = "") -> None:
        self.changes.append((("+" if on else "-") + letter, arg))

    def _flag(self, letter: str, on: bool) -> None:
        if letter == "l":
            if self.room.limit:
                self.room.limit = 0
                self._changed(letter, on)
        elif _set_flag(self.room, letter, on):
            self._changed(letter, on)
            if on and letter in SECRECY_MODES:
                other = SECRECY_MODES.replace(letter, "")
                if _set_flag(self.room, other, False):
                    self._changed(other, False)

    def _without_arg(self, letter: str, on: bool) -> None:
        if letter == "b":
            if not self.listed_bans:
                self.listed_bans = True
                send_ban_list(self.core, self.session, self.room)
        elif letter == "k" and not on:
            self._key(on, "*")
        else:
            self._reply(n.ERR_NEEDMOREPARAMS, "MODE", "Not enough parameters")

    def _with_arg(self, letter: str, on: bool, arg: str) -> None:
        if letter == "b":
            self._ban(on, arg)
        elif letter == "k":
            self._key(on, arg)
        elif letter == "l":
            self._limit(arg)
        else:
            self._prefix(letter, on, arg)

    def _invalid(self, letter: str, arg: str, text: str) -> None:
        self._reply(n.ERR_INVALIDMODEPARAM, self.room.name, letter, safe_param(arg), text)

    def _key(self, on: bool, key: str) -> None:
        if not on:  # -k takes a parameter for symmetry; its value does not matter
            if self.room.key:
                self.room.key = ""
                self._changed("k", on, "*")
        elif _KEY_RE.fullmatch(key) is None:
            self._invalid("k", key, f"Key must be one word of at most {KEYLEN} characters")
        elif key != self.room.key:
            self.room.key = key
            self._changed("k", on, key)

    def _limit(self, text: str) -> None:
        if _LIMIT_RE.fullmatch(text) is None or int(text) < 1:
            self._invalid("l", text, "Limit must be a positive whole number")
        elif int(text) != self.room.limit:
            self.room.limit = int(text)
            self._changed("l", True, str(self.room.limit))

    def _ban(self, on: bool, text: str) -> None:
        mask = normalize_mask(text)
        if _MASK_RE.fullmatch(mask) is None:
            self._invalid("b", text, "Invalid ban mask")
        elif not on:
            removed = self.room.remove_ban(mask)
            if removed is not None:
                self._changed("b", on, removed.mask)
        elif self.room.find_ban(mask) is None:
            self._add_ban(text, mask)

    def _add_ban(self, text: str, mask: str) -> None:
        config = self.core.config
        problem = mask_problem(mask, config.max_mask_length, config.max_mask_wildcards)
        if problem is not None:
            self._invalid("b", text, problem)
        elif len(self.room.bans) >= config.max_bans_per_room:
            self._reply(n.ERR_BANLISTFULL, self.room.name, mask, "Channel ban list is full")
        else:
            self.room.add_ban(Ban(mask, self.session.source, self.now))
            self._changed("b", True, mask)

    def _prefix(self, letter: str, on: bool, nick: str) -> None:
        member = self.room.members.get(casefold(nick))
        if member is None and self.core.nicks.get(nick) is None:
            # Modern IRC (MODE, channel membership prefixes): 401 for a nick that does not
            # exist; 441 is for an existing one who is not in the room.
            self._reply(n.ERR_NOSUCHNICK, safe_param(nick), "No such nick/channel")
            return
        if member is None:
            text = "They aren't on that channel"
            self._reply(n.ERR_USERNOTINCHANNEL, safe_param(nick), self.room.name, text)
            return
        if (letter in member.modes) == on:
            return
        kept = member.modes.replace(letter, "")
        member.modes = "".join(m for m in PREFIX_MODES if m in kept or (on and m == letter))
        self._changed(letter, on, member.session.nick)


def normalize_mask(mask: str) -> str:
    """Complete a ban mask to nick!user@host: "bob" -> "bob!*@*", "*@h" -> "*!*@h"."""
    nick, bang, rest = mask.partition("!")
    if not bang:
        nick, rest = ("*", mask) if "@" in mask else (mask, "")
    user, _, host = rest.partition("@")
    return f"{nick or '*'}!{user or '*'}@{host or '*'}"


def _set_flag(room: Room, letter: str, on: bool) -> bool:
    if (letter in room.modes) == on:
        return False
    if on:
        room.modes.add(letter)
    else:
        room.modes.discard(letter)
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
        core.reply(session, n.RPL_UMODEIS, mode_string(session))
        return
    change_user_modes(core, session, message.params[1])
