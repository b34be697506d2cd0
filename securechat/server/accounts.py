"""Accounts: checking passwords, logging in and out, nick protection, login throttling.

NickServ's commands live in nickserv.py; this module owns the rules they (and SASL) share.

Rules kept here:

- Passwords are hashed and checked with scrypt (passwords.py) in a worker thread of the
  ``login`` hashing lane (hashing.py), never on the event loop or the store thread; the store is
  read and written with ``StoreCall``. One check runs at a time per connection.
- Wrong passwords are throttled so that an attacker costs only themselves (review M1):
  - per (account, source address): ``login_free_failures`` free, then a doubling wait (2, 4,
    8 ... s, at most ``login_max_delay_seconds``) during which that address's attempts on that
    account are refused unchecked;
  - per source address, across accounts: the same after ``login_address_free_failures``;
  - per account, across addresses: beyond ``login_account_free_failures`` every wrong password
    is *answered late* (at most ``login_account_max_hold_seconds``) while the connection waits,
    so guesses from many addresses slow down; a right password is checked first and always
    answered at once. Nobody's failures ever refuse someone else's right password.
  A success clears its (account, address) entry only: logging into one's own account does not
  wash an address's failures on others. Names that do not exist are throttled like names that
  do, and a failure never says which it was. Failures are forgotten after
  ``login_failure_memory_seconds`` of quiet; the tables are bounded (throttle.py).
- Nick protection (review H4): a client that holds a registered nick without being logged into
  that account gets ``nick_grace_seconds`` to log in; then it is renamed ``GuestNNNNN``. The
  deadline belongs to the (connection, casefolded nick) pair and is kept for
  ``nick_grace_memory_seconds`` after it ran out: changing only the case, or leaving the nick
  and taking it back, never restarts it (taking it back after the deadline renames at once).
  Logging in to that account cancels it; logging in to another account leaves it running.
  The owner takes the nick back with NickServ ``REGAIN`` or ``GHOST``.
- IRCv3 account-notify: logging in sends ``ACCOUNT <name>`` and logging out ``ACCOUNT *`` to
  every peer (someone sharing a room) that negotiated account-notify. The user gets
  RPL_LOGGEDIN 900 / RPL_LOGGEDOUT 901 (IRCv3 SASL numerics, used for NickServ logins too).
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from securechat.logs import event
from securechat.protocol import numerics as n
from securechat.protocol.message import build
from securechat.protocol.names import casefold
from securechat.protocol.services import NICKSERV
from securechat.server import read_markers, room_registry
from securechat.server.actions import IrcError, StoreCall
from securechat.server.config import ServerConfig
from securechat.server.hashing import BUSY_TEXT, LOGIN, HashingLanes, offload
from securechat.server.monitor import extended_watchers
from securechat.server.nicks import change_nick
from securechat.server.offline_messages import deliver_offline
from securechat.server.passwords import verify_password
from securechat.server.presence_accounts import home_of, logged_in, logged_out
from securechat.server.records import Account
from securechat.server.service_nicks import notice
from securechat.server.throttle import Backoff, Quota, source_key

if TYPE_CHECKING:
    from securechat.server.actions import Outcome
    from securechat.server.core import ServerCore
    from securechat.server.rooms import Room
    from securechat.server.state import Session

log = logging.getLogger("securechat.server")

GUEST_PREFIX = "Guest"
PRUNE_SECONDS = 60.0  # how often expired throttle entries are swept (they also go lazily)
_held_order = itertools.count()  # ties in the held-replies heap never compare the callables


class AccountState:
    """What the core remembers about accounts between commands (nothing persistent)."""

    __slots__ = (
        "by_account",
        "by_account_source",
        "by_source",
        "config",
        "created_by_source",
        "deadlines",
        "grace",
        "guest_counter",
        "hashing",
        "held",
        "next_prune",
        "oper_by_source",
        "register_by_conn",
        "register_by_source",
    )

    def __init__(self, config: ServerConfig) -> None:
        self.grace: dict[int, tuple[str, float]] = {}  # conn -> (protected nick_cf, deadline)
        self.deadlines: dict[tuple[int, str], float] = {}  # (conn, nick_cf) -> deadline
        self.held: list[tuple[float, int, int, HeldReply]] = []  # heap: (due, seq, conn, reply)
        self.guest_counter = 0
        self.hashing = HashingLanes()
        self.next_prune = 0.0
        # failures, keyed by (account_cf, source), source, account_cf, source (throttle.py)
        self.by_account_source, self.by_source = Backoff(), Backoff()
        self.by_account, self.oper_by_source = Backoff(), Backoff()
        # attempts, keyed by conn, source, source
        self.register_by_conn, self.register_by_source = Quota(), Quota()
        self.created_by_source = Quota()
        self.config = config
        self.configure(config)  # the tables' settings

    def configure(self, config: ServerConfig) -> None:
        """Apply (re)loaded settings to every table; their entries are kept."""
        self.config = config
        memory, bound = config.login_failure_memory_seconds, config.throttle_max_entries
        for table, free, cap in (
            (self.by_account_source, config.login_free_failures, config.login_max_delay_seconds),
            (self.by_source, config.login_address_free_failures, config.login_max_delay_seconds),
            (
                self.by_account,
                config.login_account_free_failures,
                config.login_account_max_hold_seconds,
            ),
            (self.oper_by_source, config.oper_free_failures, config.login_max_delay_seconds),
        ):
            table.reconfigure(free, cap, memory, bound)
        window = config.register_window_seconds
        for quota, limit, span in (
            (self.register_by_conn, config.register_per_connection, window),
            (self.register_by_source, config.register_per_address, window),
            (
                self.created_by_source,
                config.accounts_per_address,
                config.accounts_per_address_window_seconds,
            ),
        ):
            quota.limit, quota.window, quota.max_entries = limit, span, bound

    def prune(self, now: float) -> None:
        for table in (self.by_account_source, self.by_source, self.by_account, self.oper_by_source):
            table.prune(now)
        for quota in (self.register_by_conn, self.register_by_source, self.created_by_source):
            quota.prune(now)


def state(core: ServerCore) -> AccountState:
    """The core's account state, with the current config applied (REHASH may replace it)."""
    accounts = core.accounts
    if accounts.config is not core.config:
        accounts.configure(core.config)
    return accounts


@dataclass(frozen=True, slots=True)
class LoginOutcome:
    account: str | None = None  # the account's registered name, on success
    retry_after: float = 0.0  # > 0: refused without checking (throttled)
    error: bool = False  # the store failed
    busy: bool = False  # the hashing lane was full: refused without checking


LoginDone = Callable[[LoginOutcome, float], None]
HeldReply = Callable[[float], None]


def alive(core: ServerCore, session: Session) -> bool:
    """Is ``session`` still connected? Continuations run later and must check."""
    return core.sessions.get(session.conn) is session


def owns_nick(session: Session) -> bool:
    return session.account is not None and casefold(session.account) == session.nick_cf


# ---- checking a password (NickServ IDENTIFY/DROP/GHOST/REGAIN, SASL PLAIN) ------------------


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
        then = _verified(core, session, name, account, done)
        if not offload(core, LOGIN, lambda: verify_password(password, stored), then):
            session.auth_pending = False
            done(LoginOutcome(busy=True), now)

    core.perform(StoreCall(lambda store: store.get_account(name), verify, client=session.conn))


def _verified(
    core: ServerCore, session: Session, name: str, account: Account | None, done: LoginDone
) -> Callable[[Outcome, float], None]:
    def verified(matches: Outcome, now: float) -> None:
        if matches is True and account is not None:
            session.auth_pending = False
            state(core).by_account_source.clear((account.name_cf, source_key(session.host)))
            if alive(core, session):
                done(LoginOutcome(account=account.name), now)
            return
        hold = record_failure(core, session, name, now)  # counted even if it hung up meanwhile
        if not alive(core, session):
            return
        if hold <= 0:
            session.auth_pending = False
            done(LoginOutcome(), now)
        else:  # the account is under attack from many sides: answer this failure late
            _hold_reply(core, session, now + hold, lambda now: done(LoginOutcome(), now))

    return verified


def throttle_wait(core: ServerCore, session: Session, name: str, now: float) -> float:
    """Seconds before this address may try a password on ``name`` (0: it may now)."""
    accounts, source = state(core), source_key(session.host)
    return max(
        accounts.by_source.wait(source, now),
        accounts.by_account_source.wait((casefold(name), source), now),
    )


def record_failure(core: ServerCore, session: Session, name: str, now: float) -> float:
    """Count a wrong password everywhere it counts; return how long to hold its answer."""
    accounts, source, name_cf = state(core), source_key(session.host), casefold(name)
    accounts.by_source.fail(source, now)
    accounts.by_account_source.fail((name_cf, source), now)
    hold = accounts.by_account.fail(name_cf, now)
    failures = accounts.by_account.failures(name_cf, now)
    event(
        log, "login_failed", conn=session.conn, peer=session.host, account=name, failures=failures
    )
    return hold


def _hold_reply(core: ServerCore, session: Session, due: float, reply: HeldReply) -> None:
    """Answer at ``due`` (a timer tick): the connection stays busy until then."""
    heapq.heappush(core.accounts.held, (due, next(_held_order), session.conn, reply))


def release_held_replies(core: ServerCore, now: float) -> None:
    held = core.accounts.held
    while held and held[0][0] <= now:
        _, _, conn, reply = heapq.heappop(held)
        session = core.sessions.get(conn)
        if session is not None:
            session.auth_pending = False
            reply(now)


def refusal_text(outcome: LoginOutcome) -> str:
    if outcome.error:
        return "Accounts are temporarily unavailable; try again later"
    if outcome.busy:
        return BUSY_TEXT
    if outcome.retry_after > 0:
        return (
            f"Too many failed attempts; try again in {whole_seconds(outcome.retry_after)} seconds"
        )
    return "Invalid account name or password"


def whole_seconds(seconds: float) -> int:
    return max(int(seconds + 0.999), 1)


# ---- logging in and out -----------------------------------------------------------------------


def login(core: ServerCore, session: Session, account: str, now: float) -> bool:
    """True when the (registered) client attached to its account's user, already on from
    another connection (presence_accounts.py): the caller then sends it the user's rooms."""
    session.account = account
    core.reply(
        session, n.RPL_LOGGEDIN, session.source, account, f"You are now logged in as {account}"
    )
    event(log, "login", conn=session.conn, nick=session.nick, account=account)
    read_markers.logged_in(core, session)
    if logged_in(core, session, now):
        return True
    if owns_nick(session):
        core.accounts.grace.pop(session.conn, None)
        core.accounts.deadlines.pop((session.conn, session.nick_cf), None)
    elif core.nicks.is_taken(account, by=session) and home_of(core, session, account) is None:
        suggest_regain(core, session, account)  # e.g. SASL after a 433 for that nick
    if session.registered:
        _notify_account(core, session, account)
        room_registry.reop_everywhere(core, session, now)
        deliver_offline(core, session)
    return False


def logout(core: ServerCore, session: Session, now: float) -> None:
    logged_out(core, session)
    session.account = None
    core.reply(session, n.RPL_LOGGEDOUT, session.source, "You are now logged out")
    _notify_account(core, session, "*")
    check_nick_ownership(core, session, now)


def _notify_account(core: ServerCore, session: Session, account: str) -> None:
    """IRCv3 account-notify: ``:nick!user@host ACCOUNT <account | *>`` to interested peers."""
    peers = [p for p in core.rooms.peers(session) if "account-notify" in p.caps]
    peers += extended_watchers(core, session, "account-notify")  # IRCv3 extended-monitor
    core.send_many(peers, build("ACCOUNT", [account], session.source))


# ---- nick protection --------------------------------------------------------------------------


def check_nick_ownership(core: ServerCore, session: Session, now: float) -> None:
    """After registration or a nick change: start (or resume) the grace period if the nick is
    someone's. The deadline is per (connection, casefolded nick), never restarted."""
    core.accounts.grace.pop(session.conn, None)
    if not core.persistent or not session.registered or owns_nick(session):
        return
    nick_cf = session.nick_cf

    def found(outcome: Outcome, now: float) -> None:
        if not isinstance(outcome, Account) or not alive(core, session):
            return
        if session.nick_cf != nick_cf or owns_nick(session):
            return
        deadline = _deadline(core, session.conn, nick_cf, now)
        if deadline <= now:
            _rename_to_guest(core, session, now)
            return
        core.accounts.grace[session.conn] = (nick_cf, deadline)
        notice(
            core,
            session,
            NICKSERV,
            f"{session.nick} is a registered nickname. Log in within "
            f"{whole_seconds(deadline - now)} seconds (/msg NickServ IDENTIFY <password>) "
            "or you will be renamed.",
        )

    core.perform(StoreCall(lambda store: store.get_account(nick_cf), found))


def grace_ran_out(core: ServerCore, session: Session, nick: str, now: float) -> bool:
    """This connection already held ``nick`` (someone's registered nick) past its deadline.
    Taking it again is refused on the spot: waiting for the store to say whose it is would let
    lines sent right behind the NICK go out under the owner's name."""
    nick_cf = casefold(nick)
    deadline = core.accounts.deadlines.get((session.conn, nick_cf))
    if deadline is None or (session.account is not None and casefold(session.account) == nick_cf):
        return False
    return deadline <= now < deadline + core.config.nick_grace_memory_seconds


def _deadline(core: ServerCore, conn: int, nick_cf: str, now: float) -> float:
    """This connection's deadline for this nick: the remembered one, or a new one."""
    accounts = state(core)
    deadlines = accounts.deadlines
    known = deadlines.get((conn, nick_cf))
    if known is not None:
        return known
    if len(deadlines) >= accounts.config.throttle_max_entries:
        _forget_deadlines(core, now)
        while len(deadlines) >= accounts.config.throttle_max_entries:
            del deadlines[next(iter(deadlines))]  # the oldest
    deadline = now + accounts.config.nick_grace_seconds
    deadlines[(conn, nick_cf)] = deadline
    return deadline


def _forget_deadlines(core: ServerCore, now: float) -> None:
    """Drop deadlines of closed connections and those past their memory."""
    memory = core.config.nick_grace_memory_seconds
    deadlines, sessions = core.accounts.deadlines, core.sessions
    for key in [k for k, d in deadlines.items() if k[0] not in sessions or d + memory <= now]:
        del deadlines[key]


def rename_expired_guests(core: ServerCore, now: float) -> None:
    """Rename whoever still holds a protected nick when its grace period ran out."""
    grace = core.accounts.grace
    expired = [conn for conn, (_, deadline) in grace.items() if deadline <= now]
    for conn in expired:
        nick_cf, _ = grace.pop(conn)
        session = core.sessions.get(conn)
        if session is not None and session.nick_cf == nick_cf and not owns_nick(session):
            _rename_to_guest(core, session, now)


def account_timers(core: ServerCore, now: float) -> None:
    """The core's timer (about once a second): renames, late answers, sweeping tables."""
    rename_expired_guests(core, now)
    release_held_replies(core, now)
    accounts = state(core)
    if now >= accounts.next_prune:
        accounts.next_prune = now + PRUNE_SECONDS
        accounts.prune(now)
        _forget_deadlines(core, now)


def _rename_to_guest(core: ServerCore, session: Session, now: float) -> None:
    guest = next_guest_nick(core)
    notice(core, session, NICKSERV, f"{session.nick} is registered; you are now {guest}.")
    rename_or_close(core, session, guest, "Nickname is registered to another account", now)


def rename_or_close(core: ServerCore, session: Session, nick: str, why: str, now: float) -> None:
    """Rename ``session``; if it may not rename (banned in a room), it cannot stay."""
    try:
        change_nick(core, session, nick)
    except IrcError:
        core.close(session, why, now)


def next_guest_nick(core: ServerCore) -> str:
    while True:
        core.accounts.guest_counter = core.accounts.guest_counter % 99_999 + 1
        nick = f"{GUEST_PREFIX}{core.accounts.guest_counter:05d}"
        if not core.nicks.is_taken(nick):
            return nick


def suggest_regain(core: ServerCore, session: Session, nick: str) -> None:
    """After 433, or on logging in while someone else holds the account's nick: the owner
    learns how to take it back."""
    if session.account is not None and casefold(session.account) == casefold(nick):
        notice(
            core,
            session,
            NICKSERV,
            f"{nick} is your registered nick; take it back with /msg NickServ REGAIN {nick}",
        )


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
