"""Accounts: the NickServ service, logging in and out, nick protection, login throttling.

Rules kept here:

- An account is named after the nick it is registered from (``REGISTER <password>``), as on
  ergo and Atheme. Passwords are hashed and checked with scrypt (passwords.py) in a worker
  thread (``Offload``), never on the event loop or the store thread; the store is read and
  written with ``StoreCall``. Without a store every command answers that accounts are not
  available.
- Wrong passwords are throttled per connection and per account. The first
  ``login_free_failures - 1`` cost nothing; from the ``login_free_failures``-th on, each one
  doubles a wait (2, 4, 8 ... seconds, at most ``login_max_delay_seconds``) during which no
  password is even checked and the reply says how long to wait. A success clears both
  counters. One check runs at a time per connection, so pipelining guesses gains nothing.
  A failed check does not say whether the account exists.
- Nick protection: a client that holds a registered nick without being logged into that
  account gets a NOTICE and ``nick_grace_seconds`` to log in; then it is renamed
  ``GuestNNNNN``. Logging in to that account during the grace period cancels it; logging in
  to another account (IDENTIFY <account> <password> under another nick) is fine and leaves
  the nick's own protection running.
- IRCv3 account-notify: logging in sends ``ACCOUNT <name>`` and logging out ``ACCOUNT *`` to
  every peer (someone sharing a room) that negotiated account-notify. The user gets
  RPL_LOGGEDIN 900 / RPL_LOGGEDOUT 901 (IRCv3 SASL numerics, used for NickServ logins too).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from securechat.logs import event
from securechat.protocol import numerics as n
from securechat.protocol.message import build
from securechat.protocol.names import casefold
from securechat.server import chanserv
from securechat.server.core import IrcError, Offload, StoreCall
from securechat.server.passwords import MIN_PASSWORD_LENGTH, hash_password, verify_password
from securechat.server.services import NICKSERV, dispatch, notice
from securechat.server.store import Account, AccountExists, CertfpInUse, normalize_certfp

if TYPE_CHECKING:
    from securechat.server.core import Outcome, ServerCore
    from securechat.server.rooms import Room
    from securechat.server.state import Session

log = logging.getLogger("securechat.server")

GUEST_PREFIX = "Guest"
FIRST_DELAY_SECONDS = 2.0
MAX_THROTTLED_ACCOUNTS = 10_000  # expired entries are dropped beyond this many
CERTFP_HEX_DIGITS = 64  # SHA-256


@dataclass(slots=True)
class Throttle:
    failures: int = 0
    blocked_until: float = 0.0


class AccountState:
    """What the core remembers about accounts between commands (nothing persistent)."""

    __slots__ = ("grace", "guest_counter", "throttles")

    def __init__(self) -> None:
        self.throttles: dict[str, Throttle] = {}  # casefolded account -> wrong passwords
        self.grace: dict[int, tuple[str, float]] = {}  # conn -> (protected nick_cf, deadline)
        self.guest_counter = 0


@dataclass(frozen=True, slots=True)
class LoginOutcome:
    account: str | None = None  # the account's registered name, on success
    retry_after: float = 0.0  # > 0: refused without checking (throttled)
    error: bool = False  # the store failed


LoginDone = Callable[[LoginOutcome, float], None]


def alive(core: ServerCore, session: Session) -> bool:
    """Is ``session`` still connected? Continuations run later and must check."""
    return core.sessions.get(session.conn) is session


def owns_nick(session: Session) -> bool:
    return session.account is not None and casefold(session.account) == session.nick_cf


# ---- checking a password (NickServ IDENTIFY/DROP, SASL PLAIN) ---------------------------------


def check_password(
    core: ServerCore, session: Session, name: str, password: str, now: float, done: LoginDone
) -> None:
    """Look ``name`` up, verify ``password`` off the loop, then call ``done`` on the core."""
    wait = throttle_wait(core, session, name, now)
    if wait > 0:
        done(LoginOutcome(retry_after=wait), now)
        return
    session.auth_pending = True

    def verify(outcome: Outcome, now: float) -> None:
        if isinstance(outcome, BaseException):
            log.error("account lookup failed: %s", outcome)
            session.auth_pending = False
            done(LoginOutcome(error=True), now)
            return
        account = outcome if isinstance(outcome, Account) else None
        stored = account.password_hash if account is not None else None
        core.perform(
            Offload(
                lambda: verify_password(password, stored), _verified(core, session, account, done)
            )
        )

    core.perform(StoreCall(lambda store: store.get_account(name), verify))


def _verified(
    core: ServerCore, session: Session, account: Account | None, done: LoginDone
) -> Callable[[Outcome, float], None]:
    def verified(matches: Outcome, now: float) -> None:
        session.auth_pending = False
        if not alive(core, session):
            return
        if matches is True and account is not None:
            _clear_throttles(core, session, account.name)
            done(LoginOutcome(account=account.name), now)
            return
        record_failure(core, session, account.name if account else None, now)
        done(LoginOutcome(), now)

    return verified


def delay_after(core: ServerCore, failures: int) -> float:
    """Seconds to wait after ``failures`` wrong passwords: 0, then 2, 4, 8 ... capped."""
    extra = failures - core.config.login_free_failures
    if extra < 0:
        return 0.0
    doubled = FIRST_DELAY_SECONDS * float(2 ** min(extra, 30))
    return min(doubled, core.config.login_max_delay_seconds)


def throttle_wait(core: ServerCore, session: Session, name: str, now: float) -> float:
    throttle = core.accounts.throttles.get(casefold(name))
    blocked_until = max(session.login_blocked_until, throttle.blocked_until if throttle else 0.0)
    return max(blocked_until - now, 0.0)


def record_failure(core: ServerCore, session: Session, account: str | None, now: float) -> None:
    session.login_failures += 1
    session.login_blocked_until = now + delay_after(core, session.login_failures)
    if account is None:
        return  # no per-account state for names that do not exist: nothing to protect
    throttles = core.accounts.throttles
    if len(throttles) >= MAX_THROTTLED_ACCOUNTS:
        for key in [k for k, t in throttles.items() if t.blocked_until <= now]:
            del throttles[key]
    throttle = throttles.setdefault(casefold(account), Throttle())
    throttle.failures += 1
    throttle.blocked_until = now + delay_after(core, throttle.failures)
    event(log, "login_failed", conn=session.conn, account=account, failures=throttle.failures)


def _clear_throttles(core: ServerCore, session: Session, account: str) -> None:
    session.login_failures = 0
    session.login_blocked_until = 0.0
    core.accounts.throttles.pop(casefold(account), None)


def refusal_text(outcome: LoginOutcome) -> str:
    if outcome.error:
        return "Accounts are temporarily unavailable; try again later"
    if outcome.retry_after > 0:
        seconds = max(int(outcome.retry_after + 0.999), 1)
        return f"Too many failed attempts; try again in {seconds} seconds"
    return "Invalid account name or password"


# ---- logging in and out -----------------------------------------------------------------------


def login(core: ServerCore, session: Session, account: str, now: float) -> None:
    session.account = account
    core.reply(
        session, n.RPL_LOGGEDIN, session.source, account, f"You are now logged in as {account}"
    )
    event(log, "login", conn=session.conn, nick=session.nick, account=account)
    if owns_nick(session):
        core.accounts.grace.pop(session.conn, None)
    if session.registered:
        _notify_account(core, session, account)
        chanserv.reop_everywhere(core, session, now)


def logout(core: ServerCore, session: Session, now: float) -> None:
    session.account = None
    core.reply(session, n.RPL_LOGGEDOUT, session.source, "You are now logged out")
    _notify_account(core, session, "*")
    check_nick_ownership(core, session, now)


def _notify_account(core: ServerCore, session: Session, account: str) -> None:
    """IRCv3 account-notify: ``:nick!user@host ACCOUNT <account | *>`` to interested peers."""
    peers = [p for p in core.rooms.peers(session) if "account-notify" in p.caps]
    core.send_many(peers, build("ACCOUNT", [account], session.source))


# ---- nick protection --------------------------------------------------------------------------


def check_nick_ownership(core: ServerCore, session: Session, now: float) -> None:
    """After registration or a nick change: start the grace period if the nick is someone's."""
    core.accounts.grace.pop(session.conn, None)
    if not core.persistent or not session.registered or owns_nick(session):
        return
    nick_cf = session.nick_cf

    def found(outcome: Outcome, now: float) -> None:
        if not isinstance(outcome, Account) or not alive(core, session):
            return
        if session.nick_cf != nick_cf or owns_nick(session):
            return
        grace = core.config.nick_grace_seconds
        core.accounts.grace[session.conn] = (nick_cf, now + grace)
        notice(
            core,
            session,
            NICKSERV,
            f"{session.nick} is a registered nickname. Log in within {int(grace)} seconds "
            "(/msg NickServ IDENTIFY <password>) or you will be renamed.",
        )

    core.perform(StoreCall(lambda store: store.get_account(nick_cf), found))


def rename_expired_guests(core: ServerCore, now: float) -> None:
    """Timer: rename whoever still holds a protected nick when its grace period ran out."""
    grace = core.accounts.grace
    expired = [conn for conn, (_, deadline) in grace.items() if deadline <= now]
    for conn in expired:
        nick_cf, _ = grace.pop(conn)
        session = core.sessions.get(conn)
        if session is not None and session.nick_cf == nick_cf and not owns_nick(session):
            _rename_to_guest(core, session, now)


def _rename_to_guest(core: ServerCore, session: Session, now: float) -> None:
    from securechat.server.commands.registration import change_nick  # it imports this module

    guest = next_guest_nick(core)
    notice(core, session, NICKSERV, f"{session.nick} is registered; you are now {guest}.")
    try:
        change_nick(core, session, guest)
    except IrcError:  # renaming is refused while banned in a room: the nick cannot stay
        core.close(session, "Nickname is registered to another account", now)


def next_guest_nick(core: ServerCore) -> str:
    while True:
        core.accounts.guest_counter = core.accounts.guest_counter % 99_999 + 1
        nick = f"{GUEST_PREFIX}{core.accounts.guest_counter:05d}"
        if not core.nicks.is_taken(nick):
            return nick


# ---- NickServ ---------------------------------------------------------------------------------

NickServCommand = Callable[["ServerCore", "Session", list[str], float], None]

HELP = (
    "NickServ lets you own your nickname. Commands:",
    "REGISTER <password>          register your current nick as an account",
    "IDENTIFY [account] <password> log in (clients can also use SASL)",
    "LOGOUT                        log out",
    "INFO [account]                about an account",
    "CERT ADD [fingerprint]        log in with this TLS client certificate (SASL EXTERNAL)",
    "CERT DEL <fingerprint> | CERT LIST",
    "DROP <password>               delete your account, its certificates and private history",
    f"Passwords have at least {MIN_PASSWORD_LENGTH} characters. After a few wrong passwords "
    "each further attempt must wait longer (2, 4, 8 ... seconds).",
)


def handle_nickserv(core: ServerCore, session: Session, text: str, now: float) -> None:
    """``PRIVMSG NickServ :<command> [args]`` (or the NICKSERV / NS command)."""
    found = dispatch(core, session, NICKSERV, NICKSERV_COMMANDS, text, now)
    if found is not None:
        handler, args = found
        handler(core, session, args, now)


def _say(core: ServerCore, session: Session, text: str) -> None:
    notice(core, session, NICKSERV, text)


def _help(core: ServerCore, session: Session, args: list[str], now: float) -> None:
    for line in HELP:
        _say(core, session, line)


def _busy(core: ServerCore, session: Session) -> bool:
    if session.auth_pending:
        _say(core, session, "Another login is in progress; wait for its answer")
    return session.auth_pending


# REGISTER <password> [<email, ignored>]
def _register(core: ServerCore, session: Session, args: list[str], now: float) -> None:
    if session.account is not None:
        _say(core, session, f"You are already logged in as {session.account}")
        return
    if not args:
        _say(core, session, "Syntax: REGISTER <password>")
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
    session.auth_pending = True

    def store_account(hashed: Outcome, now: float) -> None:
        if isinstance(hashed, BaseException):
            session.auth_pending = False
            _say(core, session, "Registration failed; try again later")
            return
        core.perform(StoreCall(lambda store: store.create_account(name, hashed, now), created))

    def created(outcome: Outcome, now: float) -> None:
        session.auth_pending = False
        if not alive(core, session):
            return
        if isinstance(outcome, AccountExists):
            _say(core, session, f"{name} is already registered")
        elif isinstance(outcome, BaseException):
            log.error("account creation failed: %s", outcome)
            _say(core, session, "Registration failed; try again later")
        else:
            event(log, "account_registered", conn=session.conn, account=name)
            _say(core, session, f"Account {name} registered; you are logged in")
            login(core, session, name, now)

    core.perform(Offload(lambda: hash_password(password), store_account))


# IDENTIFY [<account>] <password>
def _identify(core: ServerCore, session: Session, args: list[str], now: float) -> None:
    if session.account is not None:
        _say(core, session, f"You are already logged in as {session.account}")
        return
    if not args:
        _say(core, session, "Syntax: IDENTIFY [account] <password>")
        return
    name, password = (args[0], args[1]) if len(args) > 1 else (session.nick, args[0])
    if _busy(core, session):
        return

    def done(outcome: LoginOutcome, now: float) -> None:
        if outcome.account is None:
            _say(core, session, refusal_text(outcome))
            return
        _say(core, session, f"You are now identified for {outcome.account}")
        login(core, session, outcome.account, now)

    check_password(core, session, name, password, now, done)


# LOGOUT
def _logout(core: ServerCore, session: Session, args: list[str], now: float) -> None:
    if session.account is None:
        _say(core, session, "You are not logged in")
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

    core.perform(StoreCall(lambda store: store.get_account(name), show))


def _describe(core: ServerCore, session: Session, account: Account) -> list[str]:
    registered = datetime.fromtimestamp(account.created_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    online = sorted(s.nick for s in core.sessions.values() if s.account == account.name)
    lines = [f"Account {account.name}, registered {registered}"]
    lines.append(f"Logged in now as: {', '.join(online)}" if online else "Not logged in now")
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

    def dropped(outcome: Outcome, now: float) -> None:
        if isinstance(outcome, BaseException):
            log.error("account drop failed: %s", outcome)
            if alive(core, session):
                _say(core, session, "The account could not be dropped; try again later")
            return
        chanserv.forget_account(core, account, now)
        for other in [s for s in core.sessions.values() if s.account == account]:
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

    core.perform(StoreCall(lambda store: store.add_certfp(account, fingerprint), added))


def _cert_del(core: ServerCore, session: Session, account: str, fingerprint: str) -> None:
    def removed(outcome: Outcome, now: float) -> None:
        if alive(core, session):
            found = outcome is True
            _say(core, session, f"Certificate {fingerprint} {'removed' if found else 'not found'}")

    core.perform(StoreCall(lambda store: store.remove_certfp(account, fingerprint), removed))


def _cert_list(core: ServerCore, session: Session, account: str) -> None:
    def listed(outcome: Outcome, now: float) -> None:
        if not alive(core, session):
            return
        fingerprints: Any = outcome if isinstance(outcome, tuple) else ()
        _say(core, session, f"Certificates of {account}: {len(fingerprints)}")
        for fingerprint in fingerprints:
            _say(core, session, f"  {fingerprint}")

    core.perform(StoreCall(lambda store: store.list_certfps(account), listed))


NICKSERV_COMMANDS: dict[str, NickServCommand] = {
    "HELP": _help,
    "REGISTER": _register,
    "IDENTIFY": _identify,
    "LOGIN": _identify,
    "LOGOUT": _logout,
    "INFO": _info,
    "DROP": _drop,
    "CERT": _cert,
}


def abort_sasl(core: ServerCore, session: Session) -> None:
    """Registration completed mid-exchange: IRCv3 sasl-3.1 says abort it with 906."""
    if session.sasl_mechanism is not None:
        session.sasl_mechanism = None
        session.sasl_buffer = ""
        core.reply(session, n.ERR_SASLABORTED, "SASL authentication aborted")


def announce_join(core: ServerCore, session: Session, room: Room, now: float) -> None:
    """JOIN to the room; IRCv3 extended-join adds the account (or ``*``) and the real name."""
    extended = [s for s in room.sessions() if "extended-join" in s.caps]
    plain = [s for s in room.sessions() if "extended-join" not in s.caps]
    msgid = core.new_msgid()
    source, account = session.source, session.account
    core.broadcast(plain, "JOIN", [room.name], source, now, msgid=msgid, account=account)
    params = [room.name, account or "*", session.realname]
    core.broadcast(extended, "JOIN", params, source, now, msgid=msgid, account=account)
