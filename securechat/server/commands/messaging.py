"""PRIVMSG and NOTICE to rooms and nicknames.

RFC 2812 §3.3: NOTICE works like PRIVMSG but must never trigger an automatic
reply, so a NOTICE earns no RPL_AWAY. CTCP (ACTION for /me) is opaque text to
the server and passes through untouched. With echo-message the sender gets its
own message back, tagged like everyone else's (IRCv3 echo-message).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from securechat.protocol import numerics as n
from securechat.protocol.message import Message, safe_param
from securechat.protocol.names import is_room_name
from securechat.protocol.tags import client_only_tags
from securechat.server import reactions
from securechat.server.actions import IrcError
from securechat.server.commands.services import message_service
from securechat.server.history import message_time, record_private_message, record_room_message
from securechat.server.offline_messages import keep, keeps_offline, to_unknown_nick
from securechat.server.presence_accounts import siblings

if TYPE_CHECKING:
    from securechat.server.core import ServerCore
    from securechat.server.rooms import Room
    from securechat.server.state import Session


# PRIVMSG <target>{,<target>} <text>
def handle_privmsg(core: ServerCore, session: Session, message: Message, now: float) -> None:
    for error in _deliver(core, session, message, now):
        core.reply(session, error.numeric, *error.params)


# NOTICE <target>{,<target>} <text>
def handle_notice(core: ServerCore, session: Session, message: Message, now: float) -> None:
    """RFC 2812 §3.3.2 / Modern IRC NOTICE: never an automatic reply, so no error either
    (401/403/404/411/412/407): a bot answering notices cannot loop on the server's errors."""
    with contextlib.suppress(IrcError):
        _deliver(core, session, message, now)  # and the refused targets it returns: dropped


def _deliver(core: ServerCore, session: Session, message: Message, now: float) -> list[IrcError]:
    """Deliver to every target; raises for an unusable line, returns why targets were refused
    (one bad target must not stop delivery to the others)."""
    if not message.params or not message.params[0]:
        raise IrcError(n.ERR_NORECIPIENT, f"No recipient given ({message.command})")
    if len(message.params) < 2 or not message.params[1]:
        raise IrcError(n.ERR_NOTEXTTOSEND, "No text to send")
    targets = message.params[0].split(",")
    if "" in targets:  # "#a,,#b" or a trailing comma: rare, so no comprehension per line
        targets = [t for t in targets if t]
    if len(targets) > core.config.max_targets:
        raise IrcError(n.ERR_TOOMANYTARGETS, safe_param(message.params[0]), "Too many recipients")
    session.last_message_at = now
    tags = client_only_tags(message.tags) if message.tags else None
    problem = reactions.tag_problem(core, tags) if tags else None
    if problem is not None:  # issue 16: replies, reactions, typing
        if message.command == "PRIVMSG":  # never a reply to a NOTICE
            reactions.refuse(core, session, "PRIVMSG", message.params[0], problem)
        return []
    if session.bot:  # IRCv3 bot mode: a bot's messages carry the ``bot`` tag
        tags = {**(tags or {}), "bot": ""}
    refused = []
    for target in targets:
        try:
            if is_room_name(target):
                _to_room(core, session, message, target, tags, now)
            else:
                _to_nick(core, session, message, target, tags, now)
        except IrcError as error:
            refused.append(error)
    return refused


def _to_room(
    core: ServerCore,
    session: Session,
    message: Message,
    name: str,
    tags: dict[str, str] | None,
    now: float,
) -> None:
    room = core.rooms.get(name)
    if room is None:
        raise IrcError(n.ERR_NOSUCHCHANNEL, safe_param(name), "No such channel")
    check_can_speak(session, room)
    core.room_activity[room.name] += 1
    msgid, now = core.new_msgid(), message_time(now)
    text = message.params[1]
    record_room_message(core, session, room, message.command, text, msgid, now, tags)  # durable 1st
    core.broadcast_groups(
        _room_targets(room, session),
        message.command,
        [room.name, text],
        session.source,
        now,
        client_tags=tags,
        msgid=msgid,
        account=session.account,
    )


def _room_targets(room: Room, session: Session) -> Mapping[int, Sequence[int]]:
    """The room's recipients by tag variant; the sender only with echo-message."""
    groups = room.targets_by_variant()
    own = groups.get(session.tag_variant)
    if "echo-message" in session.caps or own is None or session.conn not in own:
        return groups
    without_sender = dict(groups)
    # Two C-level slices around the sender, not a comprehension that runs Python per member:
    # this runs for every message to a room (BENCHMARKS.md, "Fourth round"). A connection is
    # in its room's list once.
    at = own.index(session.conn)
    without_sender[session.tag_variant] = [*own[:at], *own[at + 1 :]]
    return without_sender


def check_can_speak(session: Session, room: Room) -> None:
    """404 unless allowed: +n keeps outsiders out; +m and bans silence all but voice and ops.

    Runs per message: voiced members and ops return before any ban matching,
    and Room.is_banned is free for a room without bans and cached for members.
    """
    member = room.member(session)
    if member is not None and member.modes:
        return
    outsider_refused = member is None and "n" in room.modes
    if outsider_refused or "m" in room.modes or room.is_banned(session):
        raise IrcError(n.ERR_CANNOTSENDTOCHAN, room.name, "Cannot send to channel")


def _to_nick(
    core: ServerCore,
    session: Session,
    message: Message,
    nick: str,
    tags: dict[str, str] | None,
    now: float,
) -> None:
    if message_service(core, session, message.command, nick, message.params[1], now):
        return
    target = core.nicks.get(nick)
    text = message.params[1]
    if target is None or not target.registered:  # a registered account's messages are kept
        to_unknown_nick(core, session, message.command, nick, text, tags, now)
        return
    recipients = [target, *siblings(session)]  # the sender's other devices see it too
    if "echo-message" in session.caps and target is not session:
        recipients.append(session)
    msgid, now = core.new_msgid(), message_time(now)
    record_private_message(core, session, target, message.command, text, msgid, now, tags)
    if target.devices == [] and target.account is not None and keeps_offline(core):
        # an always-on user with no device connected: kept for its return
        sent = (msgid, now)
        keep(core, session, message.command, target.account, target.nick, text, tags, now, sent)
    core.broadcast(
        recipients,
        message.command,
        [target.nick, text],
        session.source,
        now,
        client_tags=tags,
        msgid=msgid,
        account=session.account,
    )
    if target.away is not None and message.command == "PRIVMSG":
        core.reply(session, n.RPL_AWAY, target.nick, target.away)
