"""Server operator commands: OPER, KILL, KLINE, UNKLINE, STATS, WALLOPS, REHASH.

Operators are configured as ``[opers.NAME]`` blocks with a scrypt hash
(``securechat hash-password``) and ``user@host`` masks. The password check
runs off the event loop (the ``bulk`` hashing lane, hashing.py); three wrong
passwords on one connection close it, and wrong passwords from one address (across
reconnects) start a doubling wait after ``oper_free_failures`` (review L2).
K-lines ban ``user@host`` masks server-wide: they are kept in the store when
there is one (so they survive restarts) and can also be listed in the config
(``klines``), which always apply.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

from securechat.logs import event
from securechat.protocol import numerics as n
from securechat.protocol.masks import mask_problem
from securechat.protocol.message import Message, build, safe_param
from securechat.protocol.names import casefold, mask_matches
from securechat.server.accounts import state, whole_seconds
from securechat.server.actions import IrcError, Outcome, Reload, StoreCall
from securechat.server.hashing import BULK, BUSY_TEXT, offload
from securechat.server.passwords import verify_password
from securechat.server.records import KLine
from securechat.server.throttle import source_key

if TYPE_CHECKING:
    from securechat.server.core import ServerCore
    from securechat.server.state import Session

log = logging.getLogger("securechat.server")

MAX_OPER_FAILURES = 3  # per connection; failures also count per address (oper_free_failures)


def require_oper(session: Session) -> None:
    if not session.oper:
        raise IrcError(n.ERR_NOPRIVILEGES, "Permission Denied- You're not an IRC operator")


def user_host(session: Session) -> str:
    return f"{session.user or '*'}@{session.host}"


# OPER <name> <password>
def handle_oper(core: ServerCore, session: Session, message: Message, now: float) -> None:
    """Modern IRC (OPER): ERR_NOOPERHOST 491 when the name's block does not allow the
    client's host, ERR_PASSWDMISMATCH 464 for a wrong password (issue 13). Every refusal
    comes after the same scrypt work (a dummy hash when the name or host does not match), so
    the timing tells nothing (review L2), and an unknown name answers 464 like a wrong
    password; the log keeps the real reason."""
    name, password = message.params[0], message.params[1]
    source = source_key(session.host)
    wait = state(core).oper_by_source.wait(source, now)
    if wait > 0:
        text = f"Too many failed attempts; try again in {whole_seconds(wait)} seconds"
        raise IrcError(n.RPL_TRYAGAIN, "OPER", text)
    if session.auth_pending:
        raise IrcError(n.RPL_TRYAGAIN, "OPER", "A password check is in progress; wait for it")
    block = core.config.opers.get(name)
    host_ok = block is not None and any(mask_matches(m, user_host(session)) for m in block.hosts)
    stored = block.password_hash if block is not None and host_ok else None
    reason = "bad password" if host_ok else "no such block" if block is None else "wrong host"
    check = functools.partial(verify_password, password, stored)
    then = functools.partial(_oper_checked, core, session, name, reason)
    if not offload(core, BULK, check, then, client=session.conn):
        raise IrcError(n.RPL_TRYAGAIN, "OPER", BUSY_TEXT)
    session.auth_pending = True


def _oper_checked(
    core: ServerCore, session: Session, name: str, reason: str, outcome: Outcome, now: float
) -> None:
    session.auth_pending = False
    if outcome is not True:
        state(core).oper_by_source.fail(source_key(session.host), now)  # even if it hung up
    if core.sessions.get(session.conn) is not session:
        return
    if outcome is True:
        session.oper = True
        core.reply(session, n.RPL_YOUREOPER, "You are now an IRC operator")
        core.send(session, build("MODE", [session.nick, "+o"], session.source))
        event(log, "oper", conn=session.conn, nick=session.nick, name=name)
        return
    session.oper_failures += 1
    event(log, "oper_refused", conn=session.conn, name=name, reason=reason)
    if reason == "wrong host":
        core.reply(session, n.ERR_NOOPERHOST, "No O-lines for your host")
    else:
        core.reply(session, n.ERR_PASSWDMISMATCH, "Password incorrect")
    if session.oper_failures >= MAX_OPER_FAILURES:
        core.close(session, "Too many failed OPER attempts", now)


# KILL <nick> [<reason>]
def handle_kill(core: ServerCore, session: Session, message: Message, now: float) -> None:
    require_oper(session)
    target = core.nicks.get(message.params[0])
    if target is None:
        raise IrcError(n.ERR_NOSUCHNICK, safe_param(message.params[0]), "No such nick/channel")
    reason = message.param(1) or "No reason given"
    event(log, "kill", by=session.nick, nick=target.nick, reason=reason)
    core.metrics.kills += 1
    # Modern IRC (KILL): the victim's rooms see "QUIT :Killed (<killer> (<reason>))".
    core.close(target, f"Killed ({session.nick} ({reason}))", now)


# KLINE [<minutes>] <user@host> [<reason>]
def handle_kline(core: ServerCore, session: Session, message: Message, now: float) -> None:
    require_oper(session)
    params = list(message.params)
    minutes = float(params.pop(0)) if params[0].isdigit() and len(params) > 1 else 0.0
    mask = params[0]
    if "@" not in mask or " " in mask:
        raise IrcError(n.ERR_NEEDMOREPARAMS, "KLINE", "The mask must look like user@host")
    problem = mask_problem(mask, core.config.max_mask_length, core.config.max_mask_wildcards)
    if problem is not None:
        raise IrcError(n.ERR_NEEDMOREPARAMS, "KLINE", problem)
    reason = params[1] if len(params) > 1 else "Banned"
    kline = KLine(mask, reason, session.nick, now, now + minutes * 60 if minutes else None)
    core.klines[casefold(mask)] = kline
    if core.persistent:
        core.perform(StoreCall(lambda store: store.save_kline(kline)))
    event(log, "kline", by=session.nick, mask=mask, minutes=minutes, reason=reason)
    core.server_notice(session, f"Added K-line for {mask} ({reason})")
    for victim in list(core.sessions.values()):
        if mask_matches(mask, user_host(victim)):
            ban(core, victim, kline, now)


def ban(core: ServerCore, session: Session, kline: KLine, now: float) -> None:
    core.metrics.kills += 1
    core.reply(session, n.ERR_YOUREBANNEDCREEP, f"You are banned from this server: {kline.reason}")
    core.close(session, f"K-lined: {kline.reason}", now)


def active_kline(core: ServerCore, session: Session, now: float) -> KLine | None:
    """The K-line (stored or configured) that matches the session, if any."""
    mask_host = user_host(session)
    for kline in core.klines.values():
        if (kline.expires_at is None or kline.expires_at > now) and mask_matches(
            kline.mask, mask_host
        ):
            return kline
    for mask in core.config.klines:
        if mask_matches(mask, mask_host):
            return KLine(mask, "Banned", "config", 0.0)
    return None


# UNKLINE <user@host>
def handle_unkline(core: ServerCore, session: Session, message: Message, now: float) -> None:
    require_oper(session)
    mask = message.params[0]
    if core.klines.pop(casefold(mask), None) is None:
        core.server_notice(session, f"No K-line for {mask}")
        return
    if core.persistent:
        core.perform(StoreCall(lambda store: store.drop_kline(mask)))
    event(log, "unkline", by=session.nick, mask=mask)
    core.server_notice(session, f"Removed K-line for {mask}")


# STATS [<letter>]   u: uptime, k: K-lines, anything else: connection counts
def handle_stats(core: ServerCore, session: Session, message: Message, now: float) -> None:
    require_oper(session)
    letter = message.param(0, "c")[:1] or "c"
    if letter == "u":
        _stats_uptime(core, session, now)
    elif letter == "k":
        for kline in core.klines.values():
            core.reply(session, n.RPL_STATSKLINE, "K", kline.mask, "*", kline.reason)
    else:
        _stats_counts(core, session)
    core.reply(session, n.RPL_ENDOFSTATS, safe_param(letter), "End of /STATS report")


def _stats_uptime(core: ServerCore, session: Session, now: float) -> None:
    seconds = int(now - core.started_at)
    days, rest = divmod(seconds, 86400)
    clock = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    core.reply(session, n.RPL_STATSUPTIME, f"Server Up {days} days {clock}")


def _stats_counts(core: ServerCore, session: Session) -> None:
    registered = sum(1 for s in core.sessions.values() if s.registered)
    core.server_notice(
        session,
        f"connections={len(core.sessions)} registered={registered} "
        f"unregistered={len(core.sessions) - registered} rooms={len(core.rooms)}",
    )
    busiest = core.addresses.open_by_address.most_common(5)
    if busiest:
        listing = " ".join(f"{host}={count}" for host, count in busiest)
        core.server_notice(session, f"busiest addresses: {listing}")
    counters = " ".join(f"{k}={v}" for k, v in core.metrics.snapshot().items())
    core.server_notice(session, f"counters: {counters}")


# WALLOPS <text>   (reaches every operator)
def handle_wallops(core: ServerCore, session: Session, message: Message, now: float) -> None:
    require_oper(session)
    # Modern IRC WALLOPS: to every user with user mode +w (commands/user_modes.py).
    readers = [s for s in core.sessions.values() if s.wallops and s.registered]
    core.send_many(readers, build("WALLOPS", [message.params[0]], session.source))


# REHASH   (re-read the config file and certificate; the network layer does the reading)
def handle_rehash(core: ServerCore, session: Session, message: Message, now: float) -> None:
    require_oper(session)
    event(log, "rehash", by=session.nick)
    core.perform(Reload(session.conn))
