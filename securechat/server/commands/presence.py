"""Who is online, cheaply: USERHOST and ISON (Modern IRC; RFC 2812 §4.8, §4.9)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from securechat.protocol import numerics as n
from securechat.protocol.message import Message

if TYPE_CHECKING:
    from securechat.server.core import ServerCore
    from securechat.server.state import Session

USERHOST_MAX = 5  # RFC 2812 §4.8: "a list of up to 5 nicknames"
ISON_LINE_BUDGET = 400  # bytes of nicks per 303 line, leaving room for the prefix


# USERHOST <nickname>{ <nickname>}
def handle_userhost(core: ServerCore, session: Session, message: Message, now: float) -> None:
    """302 with ``nick[*]=(+|-)user@host`` per online nick: ``*`` an operator, ``-`` away."""
    replies = []
    for nick in message.params[:USERHOST_MAX]:
        target = core.nicks.get(nick)
        if target is None or not target.registered:
            continue
        oper = "*" if target.oper else ""
        here = "-" if target.away is not None else "+"
        replies.append(f"{target.nick}{oper}={here}{target.user}@{target.host}")
    core.reply(session, n.RPL_USERHOST, " ".join(replies))


# ISON <nickname>{ <nickname>}
def handle_ison(core: ServerCore, session: Session, message: Message, now: float) -> None:
    """303 with the online ones among the nicks asked (spread over parameters or spaces),
    spelt as their owners spell them. The 512-byte line bounds how many are asked; the
    answer is split over several 303 lines if it would not fit in one."""
    asked = [nick for param in message.params for nick in param.split(" ") if nick]
    line: list[str] = []
    size = 0
    for nick in asked:
        target = core.nicks.get(nick)
        if target is None or not target.registered:
            continue
        if line and size + len(target.nick) + 1 > ISON_LINE_BUDGET:
            core.reply(session, n.RPL_ISON, " ".join(line))
            line, size = [], 0
        line.append(target.nick)
        size += len(target.nick) + 1
    core.reply(session, n.RPL_ISON, " ".join(line))
