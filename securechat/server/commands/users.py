"""Queries about users and the connection itself: WHOIS, AWAY, LUSERS, MOTD,
PING, PONG, QUIT."""

from __future__ import annotations

from typing import TYPE_CHECKING

from securechat.protocol import numerics as n
from securechat.protocol.message import Message, build, safe_param
from securechat.server.actions import IrcError
from securechat.server.commands.registration import send_lusers, send_motd
from securechat.server.monitor import extended_watchers
from securechat.server.service_nicks import service_host, service_named

if TYPE_CHECKING:
    from securechat.server.core import ServerCore
    from securechat.server.state import Session


# WHOIS [<server>] <nick>
def handle_whois(core: ServerCore, session: Session, message: Message, now: float) -> None:
    nick = message.params[-1].split(",")[0]
    target = core.nicks.get(nick)
    service = service_named(nick)
    if service is not None:
        _whois_service(core, session, service)
        return
    if target is None or not target.registered:
        core.reply(session, n.ERR_NOSUCHNICK, safe_param(nick), "No such nick/channel")
        core.reply(session, n.RPL_ENDOFWHOIS, safe_param(nick), "End of /WHOIS list")
        return
    core.reply(
        session, n.RPL_WHOISUSER, target.nick, target.user, target.host, "*", target.realname
    )
    rooms = _visible_rooms(session, target)
    if rooms:
        core.reply(session, n.RPL_WHOISCHANNELS, target.nick, " ".join(rooms))
    core.reply(session, n.RPL_WHOISSERVER, target.nick, core.server_of(target), core.config.network)
    if target.oper:
        core.reply(session, n.RPL_WHOISOPERATOR, target.nick, "is an IRC operator")
    if target.bot:
        core.reply(session, n.RPL_WHOISBOT, target.nick, "is a bot")
    if target.account:
        core.reply(session, n.RPL_WHOISACCOUNT, target.nick, target.account, "is logged in as")
    if target.away is not None:
        core.reply(session, n.RPL_AWAY, target.nick, target.away)
    if target.secure:
        core.reply(session, n.RPL_WHOISSECURE, target.nick, "is using a secure connection")
    core.reply(
        session,
        n.RPL_WHOISIDLE,
        target.nick,
        str(int(now - target.last_message_at)),
        str(int(target.connected_at)),
        "seconds idle, signon time",
    )
    core.reply(session, n.RPL_ENDOFWHOIS, target.nick, "End of /WHOIS list")


def _whois_service(core: ServerCore, session: Session, service: str) -> None:
    """A service pseudo-user: who it is and where it lives; it is in no room."""
    host = service_host(core)
    core.reply(session, n.RPL_WHOISUSER, service, service, host, "*", f"{service} service")
    core.reply(session, n.RPL_WHOISSERVER, service, core.config.name, core.config.network)
    core.reply(session, n.RPL_ENDOFWHOIS, service, "End of /WHOIS list")


def _visible_rooms(asker: Session, target: Session) -> list[str]:
    """RPL_WHOISCHANNELS: the target's rooms, less the +s, +p, +i and +k ones the asker is
    not in (RFC 2811 §4.2.6 for +s and +p; the same privacy for +i and +k)."""
    multi = "multi-prefix" in asker.caps
    names = []
    for room in target.rooms.values():
        if not room.members_visible_to(asker):
            continue
        member = room.member(target)
        names.append((member.prefixes(multi) if member else "") + room.name)
    return names


# AWAY [<text>]
def handle_away(core: ServerCore, session: Session, message: Message, now: float) -> None:
    text = message.param(0)
    if text:
        session.away = text[: core.config.away_length]
        core.reply(session, n.RPL_NOWAWAY, "You have been marked as being away")
    else:
        session.away = None
        core.reply(session, n.RPL_UNAWAY, "You are no longer marked as being away")
    notify_away(core, session)


def notify_away(core: ServerCore, session: Session) -> None:
    """IRCv3 away-notify: ``AWAY [:text]`` from the user to those sharing a room with it
    that negotiated the capability (the user itself gets the numerics above)."""
    params = [session.away] if session.away is not None else []
    watchers = [peer for peer in core.rooms.peers(session) if "away-notify" in peer.caps]
    watchers += extended_watchers(core, session, "away-notify")  # IRCv3 extended-monitor
    core.send_many(watchers, build("AWAY", params, session.source))


# LUSERS
def handle_lusers(core: ServerCore, session: Session, message: Message, now: float) -> None:
    send_lusers(core, session)


# MOTD
def handle_motd(core: ServerCore, session: Session, message: Message, now: float) -> None:
    send_motd(core, session)


# PING <token>
def handle_ping(core: ServerCore, session: Session, message: Message, now: float) -> None:
    if not message.params or not message.params[0]:
        raise IrcError(n.ERR_NOORIGIN, "No origin specified")
    core.send(session, build("PONG", [core.config.name, message.params[0]], core.config.name))


# PONG <token>  (liveness is already refreshed by any line the client sends)
def handle_pong(core: ServerCore, session: Session, message: Message, now: float) -> None:
    return None


# QUIT [<reason>]
def handle_quit(core: ServerCore, session: Session, message: Message, now: float) -> None:
    reason = message.param(0)
    core.close(session, f"Quit: {reason}" if reason else "Quit", now)
