"""TAGMSG: a message with tags and no text (IRCv3 message-tags, "The TAGMSG tag-only
message"), e.g. ``@+typing=active TAGMSG #room`` or ``@+draft/react=👍;+reply=<msgid>``.

It reaches only recipients that negotiated ``message-tags`` (for anyone else it would be an
empty line with nothing to show), carries the sender's client-only tags with a msgid, and
comes back to the sender with ``echo-message``. Typing notifications are not stored;
reactions are, with the message they point to (reactions.py). Errors are those of PRIVMSG
(401, 403, 404), and ``FAIL TAGMSG INVALID_TAG`` for a reply, reaction or typing tag that breaks
its spec.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING

from securechat.protocol import numerics as n
from securechat.protocol.message import Message, safe_param
from securechat.protocol.names import is_room_name
from securechat.protocol.tags import client_only_tags
from securechat.server import reactions
from securechat.server.actions import IrcError
from securechat.server.commands.messaging import check_can_speak
from securechat.server.presence_accounts import expand, identity, siblings
from securechat.server.state import VARIANT_TAGS

if TYPE_CHECKING:
    from securechat.server.core import ServerCore
    from securechat.server.state import Session


# TAGMSG <target>{,<target>}
def handle_tagmsg(core: ServerCore, session: Session, message: Message, now: float) -> None:
    targets = [t for t in message.params[0].split(",") if t]
    if len(targets) > core.config.max_targets:
        raise IrcError(n.ERR_TOOMANYTARGETS, safe_param(message.params[0]), "Too many recipients")
    tags = client_only_tags(message.tags)
    problem = reactions.tag_problem(core, tags)
    if problem is not None:  # issue 16: replies, reactions, typing
        reactions.refuse(core, session, "TAGMSG", message.params[0], problem)
        return
    if session.bot:
        tags["bot"] = ""  # IRCv3 bot mode
    for target in targets:
        try:
            _recipients(core, session, target)
        except IrcError as error:  # one bad target must not stop the others
            core.reply(session, error.numeric, *error.params)
            continue
        msgid = core.new_msgid()
        relay = partial(_relay, core, session, target, tags, msgid, now)
        if not reactions.keep_then_relay(core, session, target, tags, msgid, now, relay):
            relay()


def _relay(
    core: ServerCore, session: Session, target: str, tags: dict[str, str], msgid: str, now: float
) -> None:
    """To the target's recipients as they are now (a stored reaction is relayed after its
    commit, and someone may have left meanwhile)."""
    try:
        groups = _recipients(core, session, target)
    except IrcError:
        return  # the room is gone: told nobody, like a message to an empty room
    core.broadcast_groups(
        groups,
        "TAGMSG",
        [_display(core, target)],
        session.source,
        now,
        client_tags=tags,
        msgid=msgid,
        account=session.account,
    )


def _recipients(core: ServerCore, session: Session, target: str) -> Mapping[int, Sequence[int]]:
    """The message-tags recipients by tag variant; the sender only with echo-message."""
    echo = "echo-message" in session.caps
    if is_room_name(target):
        room = core.rooms.get(target)
        if room is None:
            raise IrcError(n.ERR_NOSUCHCHANNEL, safe_param(target), "No such channel")
        check_can_speak(session, room)
        groups = room.targets_by_variant()
    else:
        user = core.nicks.get(target)
        if user is None or not user.registered:
            raise IrcError(n.ERR_NOSUCHNICK, safe_param(target), "No such nick/channel")
        recipients = [user, *siblings(session)]  # a shared user's devices, and the sender's
        if echo and user is not identity(session):
            recipients.append(session)
        by_variant: dict[int, list[int]] = {}
        for device in expand(recipients):
            by_variant.setdefault(device.tag_variant, []).append(device.conn)
        groups = by_variant
    return {
        variant: [c for c in conns if echo or c != session.conn]
        for variant, conns in groups.items()
        if variant & VARIANT_TAGS
    }


def _display(core: ServerCore, target: str) -> str:
    room = core.rooms.get(target) if is_room_name(target) else None
    if room is not None:
        return room.name
    user = core.nicks.get(target)
    return user.nick if user is not None else target
