"""Room membership and room state: JOIN, PART, TOPIC, NAMES, LIST, KICK, INVITE."""

from __future__ import annotations

from typing import TYPE_CHECKING

from securechat.protocol import numerics as n
from securechat.protocol.message import Message, build, safe_param
from securechat.protocol.names import CHANNELLEN, is_room_name, room_name_problem
from securechat.server import read_markers, room_registry
from securechat.server.accounts import announce_join
from securechat.server.actions import IrcError
from securechat.server.history import note_left, replay_on_join
from securechat.server.presence_accounts import room_limit, siblings
from securechat.server.room_replies import send_names, send_topic
from securechat.server.rooms import Room

if TYPE_CHECKING:
    from securechat.server.core import ServerCore
    from securechat.server.state import Session


# JOIN <room>{,<room>} [<key>{,<key>}]  |  JOIN 0
def handle_join(core: ServerCore, session: Session, message: Message, now: float) -> None:
    if message.params[0] == "0":
        for room in list(session.rooms.values()):
            part(core, session, room, "Left all channels", now)
        return
    keys = message.param(1).split(",")  # the Nth key goes with the Nth room
    for index, name in enumerate(message.params[0].split(",")):
        if name:
            _join_one(core, session, name, now, keys[index] if index < len(keys) else "")


def _join_one(core: ServerCore, session: Session, name: str, now: float, key: str = "") -> None:
    try:
        room = _joinable_room(core, session, name, key)
        if room is not None and room.member(session) is not None:
            return  # already there: Modern IRC says ignore
        room = core.rooms.join(session, name, now)
    except IrcError as error:  # one bad room in a list must not stop the others
        core.reply(session, error.numeric, *error.params)
        return
    announce_join(core, session, room, now)
    if session.away is not None:  # IRCv3 away-notify: an away joiner's AWAY after its JOIN
        watchers = [s for s in room.sessions() if "away-notify" in s.caps and s is not session]
        core.send_many(watchers, build("AWAY", [session.away], session.source))
    room_registry.on_join(core, session, room, now)
    for device in (session, *siblings(session)):  # every device shows the room (ergo)
        if room.topic:
            send_topic(core, device, room)
        read_markers.send_on_join(core, device, room)  # before 366 (draft/read-marker)
        send_names(core, device, room)
    replay_on_join(core, session, room, now)


def _joinable_room(core: ServerCore, session: Session, name: str, key: str) -> Room | None:
    """The existing room (None if new) after the checks; bans, +i, +k, +l: see server.rooms."""
    problem = room_name_problem(name, CHANNELLEN)
    if problem is not None:  # Modern IRC "JOIN": ERR_BADCHANMASK for a name that is not valid
        raise IrcError(n.ERR_BADCHANMASK, safe_param(name), f"Bad Channel Mask: {problem}")
    room = core.rooms.get(name)
    if room is not None and room.member(session) is not None:
        return room
    if len(session.rooms) >= room_limit(core, session):
        raise IrcError(n.ERR_TOOMANYCHANNELS, name, "You have joined too many channels")
    refusal = room.refusal(session, key) if room is not None else None
    if room is not None and refusal is not None:
        raise IrcError(refusal[0], room.name, refusal[1])
    return room


# PART <room>{,<room>} [<reason>]
def handle_part(core: ServerCore, session: Session, message: Message, now: float) -> None:
    reason = message.param(1)
    for name in message.params[0].split(","):
        if not name:
            continue
        try:
            room = member_room(core, session, name)
        except IrcError as error:
            core.reply(session, error.numeric, *error.params)
            continue
        part(core, session, room, reason, now)


def part(core: ServerCore, session: Session, room: Room, reason: str, now: float) -> None:
    params = [room.name, reason] if reason else [room.name]
    core.broadcast_to_room(room, "PART", params, session.source, now)
    note_left(core, session, room, now)
    core.rooms.leave(session, room)


def existing_room(core: ServerCore, name: str) -> Room:
    room = core.rooms.get(name) if is_room_name(name) else None
    if room is None:
        raise IrcError(n.ERR_NOSUCHCHANNEL, safe_param(name), "No such channel")
    return room


def member_room(core: ServerCore, session: Session, name: str) -> Room:
    room = existing_room(core, name)
    if room.member(session) is None:
        raise IrcError(n.ERR_NOTONCHANNEL, room.name, "You're not on that channel")
    return room


def require_op(session: Session, room: Room) -> None:
    member = room.member(session)
    if member is None:
        raise IrcError(n.ERR_NOTONCHANNEL, room.name, "You're not on that channel")
    if not member.is_op:
        raise IrcError(n.ERR_CHANOPRIVSNEEDED, room.name, "You're not channel operator")


# TOPIC <room> [<topic>]
def handle_topic(core: ServerCore, session: Session, message: Message, now: float) -> None:
    room = existing_room(core, message.params[0])
    if len(message.params) < 2:
        if not room.topic_visible_to(session):  # +s / +p: RFC 2811 §4.2.6
            raise IrcError(n.ERR_NOTONCHANNEL, room.name, "You're not on that channel")
        send_topic(core, session, room)
        return
    if "t" in room.modes:
        require_op(session, room)
    elif room.member(session) is None:
        raise IrcError(n.ERR_NOTONCHANNEL, room.name, "You're not on that channel")
    room.topic = message.params[1][: core.config.topic_length]
    room.topic_set_by = session.source
    room.topic_set_at = now
    core.broadcast_to_room(room, "TOPIC", [room.name, room.topic], session.source, now)
    room_registry.room_changed(core, room)


# NAMES [<room>{,<room>}]
def handle_names(core: ServerCore, session: Session, message: Message, now: float) -> None:
    if not message.params:
        core.reply(session, n.RPL_ENDOFNAMES, "*", "End of /NAMES list")
        return
    for name in message.params[0].split(",")[:1]:
        room = core.rooms.get(name) if is_room_name(name) else None
        if room is not None:
            send_names(core, session, room)
        else:
            core.reply(session, n.RPL_ENDOFNAMES, safe_param(name), "End of /NAMES list")


# LIST [<room>{,<room>}]   (+s rooms only for members; +s and +p topics likewise)
def handle_list(core: ServerCore, session: Session, message: Message, now: float) -> None:
    if message.params and message.params[0]:
        rooms = [r for r in map(core.rooms.get, message.params[0].split(",")) if r is not None]
    else:
        rooms = list(core.rooms)
    core.reply(session, n.RPL_LISTSTART, "Channel", "Users  Name")
    for room in rooms:
        if room.listed_for(session):
            topic = room.topic if room.topic_visible_to(session) else ""
            core.reply(session, n.RPL_LIST, room.name, str(len(room.members)), topic)
    core.reply(session, n.RPL_LISTEND, "End of /LIST")


# KICK <room> <nick>{,<nick>} [<reason>]
def handle_kick(core: ServerCore, session: Session, message: Message, now: float) -> None:
    room = existing_room(core, message.params[0])
    require_op(session, room)
    reason = (message.param(2) or session.nick)[: core.config.kick_length]
    for nick in message.params[1].split(",")[:1]:
        target = core.nicks.get(nick)
        member = room.member(target) if target is not None else None
        if target is None or member is None:
            core.reply(
                session,
                n.ERR_USERNOTINCHANNEL,
                safe_param(nick),
                room.name,
                "They aren't on that channel",
            )
            continue
        core.broadcast_to_room(room, "KICK", [room.name, target.nick, reason], session.source, now)
        note_left(core, target, room, now)
        core.rooms.leave(target, room)


# INVITE <nick> <room>
def handle_invite(core: ServerCore, session: Session, message: Message, now: float) -> None:
    nick, name = message.params[0], message.params[1]
    target = core.nicks.get(nick)
    if target is None or not target.registered:
        raise IrcError(n.ERR_NOSUCHNICK, safe_param(nick), "No such nick/channel")
    room = member_room(core, session, name)
    if "i" in room.modes:  # Modern IRC "INVITE": +i rooms need an operator to invite
        require_op(session, room)
    if room.member(target) is not None:
        raise IrcError(n.ERR_USERONCHANNEL, target.nick, room.name, "is already on channel")
    core.rooms.invite(room, target)
    core.reply(session, n.RPL_INVITING, target.nick, room.name)
    core.send(target, build("INVITE", [target.nick, room.name], session.source))
    watchers = _invite_watchers(room, session)
    core.broadcast(watchers, "INVITE", [target.nick, room.name], session.source, now)


def _invite_watchers(room: Room, inviter: Session) -> list[Session]:
    """IRCv3 invite-notify: members with the cap who may invite too (ops; all if not +i)."""
    everyone = "i" not in room.modes
    return [
        member.session
        for member in room.members.values()
        if "invite-notify" in member.session.caps
        and member.session is not inviter
        and (everyone or member.is_op)
    ]
