"""Changing a registered client's nick: the one domain action NICK, NickServ's REGAIN and the
guest renamer share (as ergo's ``performNickChange``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from securechat.protocol import numerics as n
from securechat.protocol.message import build, safe_param
from securechat.server import monitor
from securechat.server.actions import IrcError
from securechat.server.presence_accounts import connections, identity

if TYPE_CHECKING:
    from securechat.server.core import ServerCore
    from securechat.server.state import Session


def change_nick(core: ServerCore, session: Session, nick: str) -> None:
    """Rename a registered client; everyone who shares a room sees it, once."""
    banned_in = core.rooms.banned_in(session)
    if banned_in is not None:  # as solanum: a ban is not escaped by renaming
        text = "Cannot change nickname while banned on channel"
        raise IrcError(n.ERR_BANONCHAN, safe_param(nick), banned_in.name, text)
    session = identity(session)  # a device renames its user, and every device sees it
    line = build("NICK", [nick], session.source)
    old_cf, old_nick = session.nick_cf, session.nick
    core.nicks.claim(session, nick)
    for device in connections(session):
        device.nick, device.nick_cf = session.nick, session.nick_cf
    core.rooms.rename(session, old_cf)
    core.send_many([*connections(session), *core.rooms.peers(session)], line)
    if old_cf != session.nick_cf:  # MONITOR: the old nick went offline, the new one came on
        monitor.signed_off(core, session, old_nick)
        monitor.signed_on(core, session)
        # WHOWAS: the old nick was left now (last_activity: the time of the line renaming)
        core.whowas.record(core, session, old_nick, session.last_activity)
