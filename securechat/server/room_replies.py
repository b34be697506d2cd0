"""Replies that show a room to one client: its topic (332/333 or 331) and its names (353/366),
sent on JOIN, TOPIC, NAMES and to a device attaching to its user (device_welcome.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from securechat.protocol import numerics as n
from securechat.protocol.message import MAX_BODY_BYTES

if TYPE_CHECKING:
    from securechat.server.core import ServerCore
    from securechat.server.rooms import Room
    from securechat.server.state import Session


def send_topic(core: ServerCore, session: Session, room: Room) -> None:
    if not room.topic:
        core.reply(session, n.RPL_NOTOPIC, room.name, "No topic is set")
        return
    core.reply(session, n.RPL_TOPIC, room.name, room.topic)
    core.reply(
        session, n.RPL_TOPICWHOTIME, room.name, room.topic_set_by, str(int(room.topic_set_at))
    )


def send_names(core: ServerCore, session: Session, room: Room) -> None:
    """RPL_NAMREPLY lines packed to fit 512 bytes, then RPL_ENDOFNAMES. An outsider asking
    about a +s, +p, +i or +k room gets RPL_ENDOFNAMES alone (see server.rooms)."""
    if room.members_visible_to(session):
        _send_names_lines(core, session, room)
    core.reply(session, n.RPL_ENDOFNAMES, room.name, "End of /NAMES list")


def _send_names_lines(core: ServerCore, session: Session, room: Room) -> None:
    is_member = room.member(session) is not None
    multi = "multi-prefix" in session.caps
    full = "userhost-in-names" in session.caps  # IRCv3 userhost-in-names: nick!user@host
    names = [
        member.prefixes(multi) + (member.session.source if full else member.session.nick)
        for member in room.members.values()
        if is_member or not member.session.invisible
    ]
    limit = core.config.max_names_per_reply
    if limit:
        names = names[:limit]
    symbol = names_symbol(room)
    head = f":{core.config.name} {n.RPL_NAMREPLY} {session.nick} {symbol} {room.name} :"
    budget = MAX_BODY_BYTES - 2 - len(head.encode())
    for chunk in pack_words(names, budget):
        core.reply(session, n.RPL_NAMREPLY, symbol, room.name, chunk)


def names_symbol(room: Room) -> str:
    """RPL_NAMREPLY's room status (Modern IRC): "@" secret, "*" private, "=" public."""
    return "@" if "s" in room.modes else "*" if "p" in room.modes else "="


def pack_words(words: list[str], budget: int) -> list[str]:
    """Join words with spaces into as few lines as fit in ``budget`` bytes each."""
    lines: list[str] = []
    current = ""
    for word in words:
        candidate = f"{current} {word}" if current else word
        if current and len(candidate.encode()) > budget:
            lines.append(current)
            candidate = word
        current = candidate
    if current:
        lines.append(current)
    return lines
