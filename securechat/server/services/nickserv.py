"""NickServ: accounts as a service user (``PRIVMSG NickServ :<command>``, ``NS <command>``).

Rules kept here (the shared ones — throttles, nick protection — are in accounts.py):

- An account is named after the nick it is registered from (``REGISTER <password>``), as on
  ergo and Atheme. Without a store every command answers that accounts are not available.
- REGISTER creates the account through account_creation.py, the path the IRCv3 ``REGISTER``
  command shares: the same throttles, quotas and hashing lane (review M2, L7).
- GHOST and REGAIN (ergo's names) let the owner of a registered nick — logged in to that
  account, or giving its password — take it back (review H4). ``GHOST <nick>`` disconnects
  the client holding it; ``REGAIN <nick>`` renames that client to GuestNNNNN (disconnecting
  it only if it may not rename) and gives the nick to the caller; with a password, REGAIN
  also logs the caller in, since they are about to hold the account's nick.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from securechat.logs import event
from securechat.protocol.names import NICKLEN, casefold, is_valid_nick
from securechat.protocol.services import MIN_PASSWORD_LENGTH, NICKSERV
from securechat.server import account_creation, room_registry
from securechat.server.accounts import (
    GUEST_PREFIX,
    LoginOutcome,
    alive,
    check_password,
    login,
    logout,
    next_guest_nick,
    refusal_text,
    rename_or_close,
)
from securechat.server.actions import IrcError, StoreCall
from securechat.server.device_welcome import welcome_device
from securechat.server.nicks import change_nick
from securechat.server.presence_accounts import (
    accounts_connections,
    always_on_refusal,
    forget_account,
    identity,
    is_always_on,
    login_refusal,
    may_log_out,
    set_always_on,
    siblings,
)
from securechat.server.records import Account, CertfpInUse, normalize_certfp
from securechat.server.service_nicks import notice
from securechat.server.services import ServiceCommand, dispatch

if TYPE_CHECKING:
    from securechat.server.actions import Outcome
    from securechat.server.core import ServerCore
    from securechat.server.state import Session

log = logging.getLogger("securechat.server")

CERTFP_HEX_DIGITS = 64  # SHA-256
ALWAYS_ON_VALUES = {"ON": True, "TRUE": True, "OFF": False, "FALSE": False}
SHARED_TEXT = "Your other connections share this user: disconnect them first (or QUIT from them)"

HELP = (
    "NickServ lets you own your nickname. Commands:",
    "REGISTER <password>          register your current nick as an account",
    "IDENTIFY [account] <password> log in (clients can also use SASL)",
    "LOGOUT                        log out",
    "GHOST <nick> [password]       disconnect the client using your registered nick",
    "REGAIN <nick> [password]      rename the client using your nick and take it back",
    "INFO [account]                about an account",
    "CERT ADD [fingerprint]        log in with this TLS client certificate (SASL EXTERNAL)",
    "CERT DEL <fingerprint> | CERT LIST",
    "DROP <password>               delete your account, its certificates and private history",
    "SET ALWAYS-ON ON|OFF          stay in your rooms, and keep your messages, while offline",
    f"Passwords have at least {MIN_PASSWORD_LENGTH} characters. After a few wrong passwords "
    "each further attempt must wait longer (2, 4, 8 ... seconds).",
)


def handle_nickserv(core: ServerCore, session: Session, text: str, now: float) -> None:
    """``PRIVMSG NickServ :<command> [args]`` (or the NICKSERV / NS command)."""
    found = dispatch(core, session, NICKSERV, NICKSERV_COMMANDS, text, now)
    if found is not None:
        command, args = found
        command.handler(core, session, args, now)


def _say(core: ServerCore, session: Session, text: str) -> None:
    notice(core, session, NICKSERV, text)


def _help(core: ServerCore, session: Session, args: list[str], now: float) -> None:
    for line in HELP:
        _say(core, session, line)


def _busy(core: ServerCore, session: Session) -> bool:
    if session.auth_pending:
        _say(core, session, "Another login is in progress; wait for its answer")
    return session.auth_pending


def _may_log_in(core: ServerCore, session: Session, args: list[str], syntax: str) -> bool:
    """REGISTER and IDENTIFY: not when logged in already, and not without a password."""
    if session.account is not None:
        _say(core, session, f"You are already logged in as {session.account}")
        return False
    if not args:
        _say(core, session, f"Syntax: {syntax}")
        return False
    return True


# REGISTER <password> [<email, ignored>]
def _register(core: ServerCore, session: Session, args: list[str], now: float) -> None:
    if not _may_log_in(core, session, args, "REGISTER <password>"):
        return
    name, password = session.nick, args[0]
    if name.lower().startswith(GUEST_PREFIX.lower()):
        _say(core, session, "Guest nicks cannot be registered; pick another nick first")
        return
    if len(password) < MIN_PASSWORD_LENGTH:
        _say(core, session, f"Passwords have at least {MIN_PASSWORD_LENGTH} characters")
        return
    if _busy(core, session):
        return
    refused = account_creation.refusal(core, session, now)
    if refused is not None:
        _say(core, session, refused)
        return
    account_creation.create(
        core, session, name, password, now, lambda created, now: _say(core, session, created.text)
    )


# IDENTIFY [<account>] <password>
def _identify(core: ServerCore, session: Session, args: list[str], now: float) -> None:
    if not _may_log_in(core, session, args, "IDENTIFY [account] <password>"):
        return
    name, password = (args[0], args[1]) if len(args) > 1 else (session.nick, args[0])
    if _busy(core, session):
        return

    def done(outcome: LoginOutcome, now: float) -> None:
        if outcome.account is None:
            _say(core, session, refusal_text(outcome))
            return
        refusal = login_refusal(core, outcome.account)  # max_connections_per_account
        if refusal is not None:
            _say(core, session, f"Not logged in: {refusal}")
            return
        _say(core, session, f"You are now identified for {outcome.account}")
        if login(core, session, outcome.account, now):  # attached to the account's user
            welcome_device(core, session, now)

    check_password(core, session, name, password, now, done)


# GHOST <nick> [<password>]
def _ghost(core: ServerCore, session: Session, args: list[str], now: float) -> None:
    _reclaim(core, session, args, now, regain=False)


# REGAIN <nick> [<password>]
def _regain(core: ServerCore, session: Session, args: list[str], now: float) -> None:
    _reclaim(core, session, args, now, regain=True)


def _reclaim(core: ServerCore, session: Session, args: list[str], now: float, regain: bool) -> None:
    """GHOST and REGAIN: check that the caller owns the nick, then act on its holder."""
    command = "REGAIN" if regain else "GHOST"
    if not args or not is_valid_nick(args[0], NICKLEN):
        _say(core, session, f"Syntax: {command} <nick> [password]")
        return
    nick = args[0]
    if core.nicks.get(nick) is identity(session):
        _say(core, session, f"{nick} is already your nick")
        return
    if session.account is not None and casefold(session.account) == casefold(nick):
        _reclaimed(core, session, nick, regain, now)
        return
    if len(args) < 2:
        _say(
            core,
            session,
            f"Log in to {nick} first, or give its password: {command} {nick} <password>",
        )
        return
    if _busy(core, session):
        return

    def done(outcome: LoginOutcome, now: float) -> None:
        if outcome.account is None:
            _say(core, session, refusal_text(outcome))
            return
        _reclaimed(core, session, nick, regain, now)
        if regain and session.account is None:  # it holds the account's nick now
            login(core, session, outcome.account, now)

    check_password(core, session, nick, args[1], now, done)


def _reclaimed(core: ServerCore, session: Session, nick: str, regain: bool, now: float) -> None:
    """The caller owns ``nick``: disconnect (GHOST) or rename (REGAIN) its holder."""
    holder = core.nicks.get(nick)
    if holder is not None and holder.devices is not None and holder is not identity(session):
        # your own user, on other devices or always-on: join it rather than fight it
        _say(core, session, f"{nick} is your user on other devices; IDENTIFY to attach to it")
        return
    if holder is not None and holder is not identity(session):
        event(log, "ghost" if not regain else "regain", by=session.nick, nick=holder.nick)
        if regain:
            notice(core, holder, NICKSERV, f"{holder.nick} was taken back by its owner")
            rename_or_close(core, holder, next_guest_nick(core), f"REGAIN by {session.nick}", now)
        else:
            core.close(holder, f"GHOST command used by {session.nick}", now)
        _say(core, session, f"{nick} has been {'regained' if regain else 'ghosted'}")
    elif not regain:
        _say(core, session, f"{nick} is not online")
    if regain and core.nicks.get(nick) is None:
        try:
            change_nick(core, session, nick)
        except IrcError:
            _say(core, session, f"You may not change your nick to {nick} now (banned in a room)")


# LOGOUT
def _logout(core: ServerCore, session: Session, args: list[str], now: float) -> None:
    if session.account is None:
        _say(core, session, "You are not logged in")
        return
    if not may_log_out(core, session):
        _say(core, session, SHARED_TEXT)
        return
    logout(core, session, now)


# INFO [<account>]
def _info(core: ServerCore, session: Session, args: list[str], now: float) -> None:
    name = args[0] if args else (session.account or session.nick)

    def show(outcome: Outcome, now: float) -> None:
        if not alive(core, session):
            return
        if not isinstance(outcome, Account):
            _say(core, session, f"{name} is not registered")
            return
        for line in _describe(core, session, outcome):
            _say(core, session, line)

    core.perform(StoreCall(lambda store: store.get_account(name), show, client=session.conn))


def _describe(core: ServerCore, session: Session, account: Account) -> list[str]:
    registered = datetime.fromtimestamp(account.created_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    online = sorted({identity(s).nick for s in accounts_connections(core, account.name)})
    lines = [f"Account {account.name}, registered {registered}"]
    lines.append(f"Logged in now as: {', '.join(online)}" if online else "Not logged in now")
    home = core.presences.homes.get(account.name_cf)
    if home is not None:
        devices = len(home.devices or ())
        lines.append(
            f"On as {home.nick} from {devices} device(s)"
            + (", always-on" if is_always_on(core, account.name) else "")
        )
    if session.account is not None and casefold(session.account) == account.name_cf:
        lines.append(f"Client certificates: {len(account.certfps)}")
    return lines


# DROP <password>
def _drop(core: ServerCore, session: Session, args: list[str], now: float) -> None:
    account = session.account
    if account is None:
        _say(core, session, "Log in to the account you want to drop first")
        return
    if not args:
        _say(core, session, "Syntax: DROP <password>  (this deletes your account)")
        return
    if _busy(core, session):
        return
    if siblings(session):
        _say(core, session, SHARED_TEXT)
        return

    def dropped(outcome: Outcome, now: float) -> None:
        if isinstance(outcome, BaseException):
            log.error("account drop failed: %s", outcome)
            if alive(core, session):
                _say(core, session, "The account could not be dropped; try again later")
            return
        room_registry.forget_account(core, account, now)
        forget_account(core, account)
        for other in [s for s in core.sessions.values() if s.account == account]:
            if may_log_out(core, other):
                logout(core, other, now)
        event(log, "account_dropped", account=account)
        if alive(core, session):
            _say(core, session, f"Account {account} dropped")

    def done(outcome: LoginOutcome, now: float) -> None:
        if outcome.account is None:
            _say(core, session, refusal_text(outcome))
            return
        core.perform(StoreCall(lambda store: store.drop_account(account), dropped))

    check_password(core, session, account, args[0], now, done)


# SET ALWAYS-ON ON|OFF
def _set(core: ServerCore, session: Session, args: list[str], now: float) -> None:
    account, setting, value = session.account, args[0].upper(), args[1].upper()
    if account is None:
        _say(core, session, "Log in first")
        return
    if setting != "ALWAYS-ON" or value not in ALWAYS_ON_VALUES:
        _say(core, session, "Syntax: SET ALWAYS-ON ON|OFF")
        return
    on = ALWAYS_ON_VALUES[value]
    refusal = always_on_refusal(core, session, on)
    if refusal is not None:
        _say(core, session, refusal)
        return
    answer = set_always_on(core, session, on)

    def saved(outcome: Outcome, now: float) -> None:
        if not alive(core, session):
            return
        if isinstance(outcome, BaseException):
            log.error("saving ALWAYS-ON failed: %s", outcome)
            _say(core, session, "The setting could not be saved; try again later")
        else:
            _say(core, session, answer)

    job = StoreCall(lambda store: store.set_always_on(account, on), saved, client=session.conn)
    core.perform(job)


# CERT ADD [<fingerprint>] | CERT DEL <fingerprint> | CERT LIST
def _cert(core: ServerCore, session: Session, args: list[str], now: float) -> None:
    account = session.account
    if account is None:
        _say(core, session, "Log in first")
        return
    action = args[0].upper() if args else ""
    if action == "LIST":
        _cert_list(core, session, account)
        return
    given = args[1] if len(args) > 1 else (session.certfp if action == "ADD" else None)
    if action not in ("ADD", "DEL") or given is None:
        _say(core, session, "Syntax: CERT ADD [fingerprint] | CERT DEL <fingerprint> | CERT LIST")
        return
    fingerprint = _certfp_or_none(given)
    if fingerprint is None:
        _say(core, session, "A fingerprint is the certificate's SHA-256: 64 hex digits")
        return
    if action == "ADD":
        _cert_add(core, session, account, fingerprint)
    else:
        _cert_del(core, session, account, fingerprint)


def _certfp_or_none(text: str) -> str | None:
    try:
        fingerprint = normalize_certfp(text)
    except ValueError:
        return None
    return fingerprint if len(fingerprint) == CERTFP_HEX_DIGITS else None


def _cert_add(core: ServerCore, session: Session, account: str, fingerprint: str) -> None:
    def added(outcome: Outcome, now: float) -> None:
        if not alive(core, session):
            return
        if isinstance(outcome, CertfpInUse):
            _say(core, session, "That certificate already belongs to another account")
        elif isinstance(outcome, BaseException):
            _say(core, session, "The certificate could not be added; try again later")
        else:
            _say(core, session, f"Certificate {fingerprint} added to {account}")

    core.perform(
        StoreCall(lambda store: store.add_certfp(account, fingerprint), added, client=session.conn)
    )


def _cert_del(core: ServerCore, session: Session, account: str, fingerprint: str) -> None:
    def removed(outcome: Outcome, now: float) -> None:
        if alive(core, session):
            found = outcome is True
            _say(core, session, f"Certificate {fingerprint} {'removed' if found else 'not found'}")

    core.perform(
        StoreCall(
            lambda store: store.remove_certfp(account, fingerprint), removed, client=session.conn
        )
    )


def _cert_list(core: ServerCore, session: Session, account: str) -> None:
    def listed(outcome: Outcome, now: float) -> None:
        if not alive(core, session):
            return
        fingerprints: Any = outcome if isinstance(outcome, tuple) else ()
        _say(core, session, f"Certificates of {account}: {len(fingerprints)}")
        for fingerprint in fingerprints:
            _say(core, session, f"  {fingerprint}")

    core.perform(StoreCall(lambda store: store.list_certfps(account), listed, client=session.conn))


NICKSERV_COMMANDS: dict[str, ServiceCommand] = {
    "HELP": ServiceCommand(_help),
    "REGISTER": ServiceCommand(_register),
    "IDENTIFY": ServiceCommand(_identify),
    "LOGIN": ServiceCommand(_identify),
    "LOGOUT": ServiceCommand(_logout),
    "GHOST": ServiceCommand(_ghost),
    "REGAIN": ServiceCommand(_regain),
    "INFO": ServiceCommand(_info),
    "DROP": ServiceCommand(_drop),
    "CERT": ServiceCommand(_cert),
    "SET": ServiceCommand(_set, 2, "ALWAYS-ON ON|OFF"),
}
