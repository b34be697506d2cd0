"""Connection registration: PASS, NICK, USER, and the welcome burst.

Modern IRC "Connection Registration": the client sends (CAP LS 302,) PASS,
NICK and USER in any order; registration completes when NICK and USER are
in and capability negotiation, if started, has ended with CAP END. Then
001-005, LUSERS and MOTD (or 422) follow.
"""

from __future__ import annotations

import hmac
import logging
from typing import TYPE_CHECKING

from securechat.logs import event
from securechat.protocol import numerics as n
from securechat.protocol.message import Message, safe_param
from securechat.protocol.names import CASEMAPPING, CHANNELLEN, NICK_RULE, NICKLEN, is_valid_nick
from securechat.server import monitor
from securechat.server.accounts import (
    abort_sasl,
    check_nick_ownership,
    grace_ran_out,
    suggest_regain,
)
from securechat.server.actions import IrcError
from securechat.server.commands.oper import active_kline, ban
from securechat.server.commands.user_modes import BOT_MODE, USER_MODES
from securechat.server.device_welcome import welcome_device
from securechat.server.nicks import change_nick
from securechat.server.offline_messages import deliver_offline
from securechat.server.presence_accounts import attach_on_register, identity, settle, users
from securechat.server.rooms import (
    BOOL_MODES,
    KEY_MODES,
    KEYLEN,
    LIMIT_MODES,
    LIST_MODES,
    PREFIX_MODES,
    PREFIX_SYMBOLS,
)
from securechat.server.service_nicks import service_named

if TYPE_CHECKING:
    from securechat.server.core import ServerCore
    from securechat.server.state import Session

log = logging.getLogger("securechat.server")

VERSION = "securechat-0.1"
USERLEN = 18


# PASS <password>
def handle_pass(core: ServerCore, session: Session, message: Message, now: float) -> None:
    if session.registered:
        raise IrcError(n.ERR_ALREADYREGISTERED, "You may not reregister")
    expected = core.config.password
    session.password_ok = expected is not None and _same_secret(message.params[0], expected)


# NICK <nickname>
def handle_nick(core: ServerCore, session: Session, message: Message, now: float) -> None:
    nick = message.params[0]
    if not nick:
        raise IrcError(n.ERR_NONICKNAMEGIVEN, "No nickname given")
    if not is_valid_nick(nick, NICKLEN):
        raise IrcError(n.ERR_ERRONEUSNICKNAME, safe_param(nick), f"Erroneous nickname: {NICK_RULE}")
    if core.nicks.is_taken(nick, by=identity(session)) or service_named(nick) is not None:
        core.reply(session, n.ERR_NICKNAMEINUSE, nick, "Nickname is already in use")
        suggest_regain(core, session, nick)
        return
    if nick == session.nick:
        return
    if session.registered and grace_ran_out(core, session, nick, now):
        core.reply(session, n.ERR_NICKNAMEINUSE, nick, "Nickname is registered: log in first")
        return
    if not session.registered:
        core.nicks.claim(session, nick)
        try_register(core, session, now)
        return
    change_nick(core, session, nick)
    check_nick_ownership(core, session, now)


# USER <username> <mode> <unused> :<realname>
def handle_user(core: ServerCore, session: Session, message: Message, now: float) -> None:
    if session.registered:
        raise IrcError(n.ERR_ALREADYREGISTERED, "You may not reregister")
    username = message.params[0]
    realname = message.params[3]
    if not username or not realname:  # Modern IRC, USER: an empty parameter is 461 too
        raise IrcError(n.ERR_NEEDMOREPARAMS, "USER", "Not enough parameters")
    # RFC 2812 §3.1.3: the user name must not contain spaces, '@' or control characters.
    session.user = "~" + "".join(c for c in username if c.isprintable() and c not in "@ ")[:USERLEN]
    session.realname = realname
    try_register(core, session, now)


def try_register(core: ServerCore, session: Session, now: float) -> None:
    if session.registered or session.cap_negotiating or not session.user or not session.nick_cf:
        return
    if session.auth_pending:  # a SASL check is in flight: its answer calls us again
        return
    abort_sasl(core, session)
    if core.config.password is not None and not session.password_ok:
        core.reply(session, n.ERR_PASSWDMISMATCH, "Password incorrect")
        core.close(session, "Bad password", now)
        return
    kline = active_kline(core, session, now)
    if kline is not None:
        ban(core, session, kline, now)
        return
    session.registered = True
    session.last_activity = now
    core.metrics.registrations += 1
    event(
        log, "register", conn=session.conn, nick=session.nick, user=session.user, host=session.host
    )
    attached = attach_on_register(core, session, now)  # SASL into a user that is on already
    send_welcome(core, session)
    if attached:
        welcome_device(core, session, now)
        return
    monitor.signed_on(core, session)
    check_nick_ownership(core, session, now)
    settle(core, session)
    deliver_offline(core, session)


def send_welcome(core: ServerCore, session: Session) -> None:
    config = core.config
    core.reply(
        session, n.RPL_WELCOME, f"Welcome to the {config.network} IRC Network {session.source}"
    )
    core.reply(session, n.RPL_YOURHOST, f"Your host is {config.name}, running version {VERSION}")
    core.reply(session, n.RPL_CREATED, "This server was created at start-up")
    room_modes = "".join(sorted(LIST_MODES + KEY_MODES + LIMIT_MODES + BOOL_MODES + PREFIX_MODES))
    with_param = "".join(sorted(LIST_MODES + KEY_MODES + LIMIT_MODES + PREFIX_MODES))
    core.reply(session, n.RPL_MYINFO, config.name, VERSION, USER_MODES, room_modes, with_param)
    for tokens in _chunks(isupport_tokens(core), 12):
        core.reply(session, n.RPL_ISUPPORT, *tokens, "are supported by this server")
    send_lusers(core, session)
    send_motd(core, session)


def isupport_tokens(core: ServerCore) -> list[str]:
    """RPL_ISUPPORT tokens (https://modern.ircdocs.horse/#rplisupport-parameters)."""
    config = core.config
    targets = config.max_targets
    return [
        f"AWAYLEN={config.away_length}",
        f"BOT={BOT_MODE}",  # IRCv3 bot mode
        f"CASEMAPPING={CASEMAPPING}",
        f"CHANLIMIT=#:{config.max_rooms_per_user}",
        f"CHANMODES={LIST_MODES},{KEY_MODES},{LIMIT_MODES},{BOOL_MODES}",
        f"CHANNELLEN={CHANNELLEN}",
        "CHANTYPES=#",
        "ELIST=",
        f"KEYLEN={KEYLEN}",
        f"KICKLEN={config.kick_length}",
        f"MAXLIST={LIST_MODES}:{config.max_bans_per_room}",
        "MODES=4",
        f"NETWORK={config.network}",
        f"NICKLEN={NICKLEN}",
        f"PREFIX=({PREFIX_MODES}){PREFIX_SYMBOLS}",
        f"TARGMAX=PRIVMSG:{targets},NOTICE:{targets},JOIN:,PART:,KICK:1,WHOIS:1,NAMES:1",
        f"TOPICLEN={config.topic_length}",
        f"USERLEN={USERLEN}",
        "UTF8ONLY",
        "WHOX",  # WHO <mask> %<fields>[,<token>] (commands/who.py)
        f"MONITOR={config.monitor_limit}",  # IRCv3 monitor
        *_history_tokens(core),
    ]


def _history_tokens(core: ServerCore) -> list[str]:
    """draft/chathistory: the most messages per request, and the selectors we accept."""
    if not core.persistent:
        return []
    return [f"CHATHISTORY={core.config.chathistory_limit}", "MSGREFTYPES=timestamp,msgid"]


def send_lusers(core: ServerCore, session: Session) -> None:
    registered = [s for s in core.sessions.values() if s.registered]
    unknown = len(core.sessions) - len(registered)
    registered = users(core, registered)  # one user however many devices (and always-on)
    invisible = sum(1 for s in registered if s.invisible)
    total = str(len(registered))
    # Every registration passes here (the welcome sends LUSERS), so the peak is exact.
    core.max_users = peak = max(core.max_users, len(registered))
    core.reply(
        session,
        n.RPL_LUSERCLIENT,
        f"There are {len(registered) - invisible} users and {invisible} invisible on 1 servers",
    )
    core.reply(
        session, n.RPL_LUSEROP, str(sum(1 for s in registered if s.oper)), "operator(s) online"
    )
    if unknown:
        core.reply(session, n.RPL_LUSERUNKNOWN, str(unknown), "unknown connection(s)")
    core.reply(session, n.RPL_LUSERCHANNELS, str(len(core.rooms)), "channels formed")
    core.reply(session, n.RPL_LUSERME, f"I have {total} clients and 0 servers")
    # Modern IRC 265/266: "<client> [<u> <m>] :Current local users <u>, max <m>"
    text = f"{total}, max {peak}"
    core.reply(session, n.RPL_LOCALUSERS, total, str(peak), f"Current local users {text}")
    core.reply(session, n.RPL_GLOBALUSERS, total, str(peak), f"Current global users {text}")


def send_motd(core: ServerCore, session: Session) -> None:
    if core.motd is None:
        core.reply(session, n.ERR_NOMOTD, "MOTD File is missing")
        return
    core.reply(session, n.RPL_MOTDSTART, f"- {core.config.name} Message of the day - ")
    for line in core.motd:
        core.reply(session, n.RPL_MOTD, f"- {line}")
    core.reply(session, n.RPL_ENDOFMOTD, "End of /MOTD command.")


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _same_secret(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
