"""One account, one user, several connections ("multiclient"), and always-on users.

ergo's "multiclient" and "always-on" are the model (ergo docs/USERGUIDE.md, "Always-on" and
"Multiclient"); this module owns every rule of it, with narrow hooks into the core (``send``,
``broadcast``, ``_remove``, ``close``, ``tick``, ``_run_command``), the rooms (``join``,
``targets_by_variant``, ``sessions``, ``peers``) and the login and registration paths. The state
is in ``AccountPresences``, one per core: a cluster would replicate that and nothing else.

- **A shared identity** is a ``Session`` with no connection of its own (a negative ``conn`` the
  network layer never sees: only identities have negative ids, which the fan-out helpers use
  to skip expanding in one ``min``) and a ``devices`` list. The nick registry and the rooms hold it;
  whatever is sent to it goes to each device. A device is an ordinary connection session whose
  ``principal`` is the identity: its nick, user, real name, away, modes and rooms (the very same
  dict) follow the identity's, while its capabilities, labels, flood budget and PING timer stay
  its own. A lone client is never shared: sharing starts when a second connection of the
  account attaches, or when a connection of an always-on user registers.
- **Attaching** (ergo: multiclient): a connection that logs in (SASL, or NickServ IDENTIFY) to an
  account whose user is on already, as a shared identity or as a client holding the account's
  own nick and logged into it, becomes one more device of that user. Logging in during
  registration, the device simply gets the user's nick (001 says which); logging in later, it
  first leaves its own rooms (PART) and is told its new nick (NICK). Either way it gets a JOIN,
  topic and names for each of the user's rooms, the join replay, and its kept private messages
  (device_welcome.py). ``multiclient = false`` turns attaching off (a login then behaves as
  before: the nick holder stays, the newcomer keeps its own nick).
- **Echo**: what one device sends, the others see as if they had negotiated echo-message: room
  messages reach every device through the room's recipients (the sender itself only with
  echo-message), private messages by adding the siblings; JOIN, PART, KICK, NICK reach every
  device. Other users see one user, with the identity's ``nick!user@host``.
- **Leaving**: a device's QUIT or lost connection is seen by nobody but itself while the user
  has another device or is always-on. The last device of a user that is not always-on quits it.
- **Always-on** (``NickServ SET ALWAYS-ON ON|OFF``; server default ``always_on_default``) applies
  to the user holding the account's own nick (the nick named like the account). With no device
  connected the user stays on: in the nick registry, in its rooms (NAMES, WHOIS), and away with
  ``AUTO_AWAY`` unless it set an away text of its own (ergo's auto-away: a private message's
  sender gets RPL_AWAY). Private messages to it are kept (offline_messages.py). Its nick, rooms
  and own away are saved within a second of a change (``presence_timers``), so a restart brings
  it back; ``always_on_expire_days`` after its last device left, it quits.
- **Limits**: ``max_connections_per_account`` connections logged into one account (one more is
  refused at login: 904 for SASL, a NickServ notice for IDENTIFY); an always-on user is in at
  most ``always_on_max_rooms`` rooms (405 ERR_TOOMANYCHANNELS beyond).
- LOGOUT and DROP from a device of a user with other devices are refused (log the others out by
  disconnecting them); from its only device they first make the user a plain client again.
  An operator's KILL (or GHOST) of the user closes every device and quits it, always-on or not;
  NickServ GHOST/REGAIN of one's own shared user is answered with "IDENTIFY to attach to it".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import TYPE_CHECKING

from securechat.logs import event
from securechat.protocol.message import build
from securechat.protocol.names import casefold
from securechat.server import room_registry
from securechat.server.actions import StoreCall
from securechat.server.monitor import signed_off
from securechat.server.records import PresenceRecord, StoredPresences
from securechat.server.state import Session

if TYPE_CHECKING:
    from securechat.server.actions import Outcome
    from securechat.server.core import ServerCore
    from securechat.server.store import Store

log = logging.getLogger("securechat.server")

AUTO_AWAY = "Detached: messages are kept for later"  # the away of an always-on user with no device
EXPIRED = "Always-on presence expired"
DAY_SECONDS = 86400.0


class AccountPresences:
    """Per account: its shared identity, its logged-in connections, its always-on setting."""

    __slots__ = (
        "always_on",
        "auto_away",
        "by_account",
        "detached_at",
        "homes",
        "next_conn",
        "saved",
    )

    def __init__(self) -> None:
        # casefolded account -> its shared identity; mutated, never replaced: the core's
        # RoomManager and fan-out helpers look at this very dict to know if any exists
        self.homes: dict[str, Session] = {}
        self.by_account: dict[str, list[Session]] = {}  # casefolded account -> logged-in conns
        self.always_on: dict[str, bool] = {}  # explicit settings; others: always_on_default
        self.auto_away: set[str] = set()  # accounts whose away is the automatic one
        self.detached_at: dict[str, float] = {}  # accounts with no device: since when
        self.saved: dict[str, PresenceRecord] = {}  # what the store holds
        self.next_conn = 0  # identities get -1, -2, ...: never a network connection id


# ---- questions the rest of the server asks ----------------------------------------------------


def identity(session: Session) -> Session:
    """The user ``session`` acts as: its shared identity, or itself."""
    return session.principal or session


def connections(session: Session) -> list[Session]:
    """Every connection of the user ``session`` is (or is a device of)."""
    user = identity(session)
    return list(user.devices) if user.devices is not None else [user]


def siblings(session: Session) -> list[Session]:
    """The other devices of the user ``session`` is a device of."""
    principal = session.principal
    if principal is None or principal.devices is None:
        return []
    return [device for device in principal.devices if device is not session]


def accounts_connections(core: ServerCore, account: str) -> list[Session]:
    """Every connection logged into ``account`` (any case), attached or not: for state that
    follows an account onto all its devices (read markers)."""
    return list(core.presences.by_account.get(casefold(account), ()))


def expand(sessions: Iterable[Session]) -> list[Session]:
    """Recipients with each shared identity replaced by its devices, each connection once."""
    listed = sessions if isinstance(sessions, list) else list(sessions)
    if not listed or min([session.conn for session in listed]) >= 0:  # no identity among them
        return listed
    seen: dict[int, Session] = {}
    for session in listed:
        for connection in session.devices if session.devices is not None else (session,):
            seen.setdefault(connection.conn, connection)
    return list(seen.values())


def connection_ids(sessions: Iterable[Session]) -> list[int]:
    """``expand`` as connection ids (send_many: QUIT, NICK to every peer). Identities are
    the only negative ids, so one ``min`` says whether there is anything to expand."""
    listed = sessions if isinstance(sessions, list) else list(sessions)
    ids = [session.conn for session in listed]
    if not ids or min(ids) >= 0:
        return ids
    return [session.conn for session in expand(listed)]


def users(core: ServerCore, registered: list[Session]) -> list[Session]:
    """The users behind these registered connections: each shared identity once (detached
    always-on ones included), each device dropped (LUSERS counts users, not connections)."""
    homes = core.presences.homes
    if not homes:
        return registered
    return [s for s in registered if s.principal is None] + list(homes.values())


def forget_account(core: ServerCore, account: str) -> None:
    """The account was dropped: its setting goes (the store's rows went with it)."""
    account_cf = casefold(account)
    core.presences.always_on.pop(account_cf, None)
    core.presences.saved.pop(account_cf, None)


def is_always_on(core: ServerCore, account: str) -> bool:
    return core.presences.always_on.get(casefold(account), core.config.always_on_default)


def room_limit(core: ServerCore, session: Session) -> int:
    """How many rooms the user may be in: fewer for an always-on one (it stays in them)."""
    limit = core.config.max_rooms_per_user
    if session.account is not None and is_always_on(core, session.account):
        return min(limit, core.config.always_on_max_rooms)
    return limit


def login_refusal(core: ServerCore, account: str) -> str | None:
    """Why one more connection may not log into ``account`` (None: it may)."""
    limit = core.config.max_connections_per_account
    if len(core.presences.by_account.get(casefold(account), ())) >= limit:
        return f"{account} already has {limit} connections logged in"
    return None


def home_of(core: ServerCore, session: Session, account: str) -> Session | None:
    """The user on line for ``account`` that ``session`` would attach to, or None."""
    if not core.config.multiclient:
        return None
    account_cf = casefold(account)
    home = core.presences.homes.get(account_cf)
    if home is None:
        holder = core.nicks.get(account)
        if holder is not None and holder.registered and holder.account is not None:
            home = holder if casefold(holder.account) == account_cf else None
    return None if home is None or home is identity(session) else home


# ---- logging in and registering ---------------------------------------------------------------


def logged_in(core: ServerCore, session: Session, now: float) -> bool:
    """After ``accounts.login``: index the connection; a registered one (IDENTIFY) attaches to
    the account's user if it is on (True: the caller sends the device its welcome)."""
    account = session.account
    assert account is not None
    core.presences.by_account.setdefault(casefold(account), []).append(session)
    if not session.registered:
        return False  # attach_on_register decides, once the client is registered
    home = home_of(core, session, account)
    if home is None:
        settle(core, session)
        return False
    _leave_own_identity(core, session, home, now)
    _attach(core, _shared(core, home), session, now)
    return True


def logged_out(core: ServerCore, session: Session) -> None:
    if session.account is not None:
        _unindex(core, session, session.account)


def may_log_out(core: ServerCore, session: Session) -> bool:
    """LOGOUT and DROP: not from one device of several; from the only one, it is made a plain
    client again first."""
    principal = session.principal
    if principal is None:
        return True
    if siblings(session):
        return False
    _unshare(core, principal)
    return True


def attach_on_register(core: ServerCore, session: Session, now: float) -> bool:
    """Registration is completing for a client logged in (SASL) to an account whose user is on:
    it becomes a device of that user and takes its nick (True)."""
    home = home_of(core, session, session.account) if session.account else None
    if home is None:
        return False
    _attach(core, _shared(core, home), session, now)
    return True


def settle(core: ServerCore, session: Session) -> None:
    """A logged-in client that did not attach: the account's own nick on an always-on account
    makes it a shared identity at once, so its leaving never quits it."""
    account = session.account
    if account is None or session.principal is not None or not core.config.multiclient:
        return
    if session.nick_cf == casefold(account) and is_always_on(core, account):
        _shared(core, session)


def always_on_refusal(core: ServerCore, session: Session, on: bool) -> str | None:
    """Why NickServ SET ALWAYS-ON ON may not be set now (None: it may)."""
    rooms, most = len(identity(session).rooms), core.config.always_on_max_rooms
    if on and rooms > most:
        return f"You are in {rooms} rooms; an always-on user may be in at most {most}"
    return None


def set_always_on(core: ServerCore, session: Session, on: bool) -> str:
    """NickServ SET ALWAYS-ON: apply the setting (the caller stores it); the answer."""
    account = session.account
    assert account is not None
    user = identity(session)
    core.presences.always_on[casefold(account)] = on
    if not on:
        return "Always-on is OFF: you quit when your last connection leaves"
    settle(core, session)
    if user.nick_cf != casefold(account):
        return f"Always-on is ON; it applies while you use your account's nick {account}"
    return "Always-on is ON: you stay in your rooms while no client is connected"


# ---- a connection leaving ---------------------------------------------------------------------


def stays(core: ServerCore, session: Session, reason: str, now: float) -> bool:
    """``session``'s connection is gone (core._remove). True when its user stays: another device
    is connected, or it is always-on; nobody but the connection itself sees it leave."""
    if session.account is not None:
        _unindex(core, session, session.account)
    principal = session.principal
    if principal is None or principal.devices is None:
        return False
    _detach_device(principal, session)
    if principal.devices:
        return True
    account = principal.account or ""
    if is_always_on(core, account) and principal.nick_cf == casefold(account):
        _went_detached(core, principal, now)
    else:
        quit_identity(core, principal, reason, now)
    return True


def close_identity(core: ServerCore, user: Session, reason: str, now: float) -> None:
    """KILL or GHOST of a shared identity: every device is closed and the user quits."""
    assert user.devices is not None
    for device in list(user.devices):
        _detach_device(user, device)
        device.registered = False  # its QUIT is the user's, sent once below
        core.close(device, reason, now)
    quit_identity(core, user, reason, now)


def quit_identity(core: ServerCore, user: Session, reason: str, now: float) -> None:
    """The user leaves the server: QUIT to those sharing a room, its rooms and nick freed."""
    core.send_many(core.rooms.peers(user), build("QUIT", [reason], user.source))
    event(log, "quit", conn=user.conn, nick=user.nick, reason=reason)
    signed_off(core, user, user.nick)
    core.whowas.record(core, user, user.nick, now)
    core.rooms.leave_all(user)
    core.nicks.release(user)
    core.replay_marks.pop(user.conn, None)  # a KICK of the user marked its (virtual) id
    account_cf = casefold(user.account or "")
    presences = core.presences
    if presences.homes.get(account_cf) is user:
        del presences.homes[account_cf]
    presences.auto_away.discard(account_cf)
    presences.detached_at.pop(account_cf, None)


# ---- after a device's command -----------------------------------------------------------------


def mirror(core: ServerCore, device: Session) -> None:
    """A device's command may have changed what belongs to the user (AWAY, SETNAME, user
    modes): the identity and the other devices follow."""
    user = device.principal
    if user is None or user.devices is None:
        return
    user.away, user.realname = device.away, device.realname
    user.invisible, user.bot = device.invisible, device.bot
    user.last_message_at = max(user.last_message_at, device.last_message_at)
    for other in user.devices:
        _copy_identity(user, other)


# ---- timers: expiry and saving ----------------------------------------------------------------


def presence_timers(core: ServerCore, now: float) -> None:
    """Once a second: quit always-on users detached too long, save what changed."""
    _expire(core, now)
    if core.persistent:
        _save(core)


def _expire(core: ServerCore, now: float) -> None:
    days = core.config.always_on_expire_days
    presences = core.presences
    if days <= 0 or not presences.detached_at:
        return
    for account_cf, since in list(presences.detached_at.items()):
        user = presences.homes.get(account_cf)
        if user is not None and not user.devices and now - since >= days * DAY_SECONDS:
            event(log, "always_on_expired", account=user.account, nick=user.nick)
            quit_identity(core, user, EXPIRED, now)


def save_now(core: ServerCore) -> None:
    """At shutdown: what changed since the last tick is saved too."""
    if core.persistent:
        _save(core)


def _save(core: ServerCore) -> None:
    presences = core.presences
    current = {
        account_cf: _record(core, user)
        for account_cf, user in presences.homes.items()
        if is_always_on(core, account_cf) and user.nick_cf == account_cf
    }
    for account_cf, record in current.items():
        if presences.saved.get(account_cf) != record:
            _store(core, partial(_save_one, record))
    for account_cf in [cf for cf in presences.saved if cf not in current]:
        _store(core, partial(_drop_one, account_cf))
    presences.saved = current


def _save_one(record: PresenceRecord, store: Store) -> None:
    store.save_presence(record)


def _drop_one(account_cf: str, store: Store) -> None:
    store.drop_presence(account_cf)


def _store(core: ServerCore, job: Callable[[Store], object]) -> None:
    def done(outcome: Outcome, now: float) -> None:
        if isinstance(outcome, BaseException):
            log.error("saving an always-on user failed: %s", outcome)

    core.perform(StoreCall(job, done))


def _record(core: ServerCore, user: Session) -> PresenceRecord:
    account_cf = casefold(user.account or "")
    presences = core.presences
    away = None if account_cf in presences.auto_away else user.away
    return PresenceRecord(
        account=user.account or "",
        nick=user.nick,
        user=user.user,
        realname=user.realname,
        host=user.host,
        away=away,
        rooms=tuple(room.name for room in user.rooms.values()),
        detached_at=presences.detached_at.get(account_cf),
    )


# ---- start-up ---------------------------------------------------------------------------------


def restore(core: ServerCore, stored: StoredPresences, now: float) -> None:
    """Bring the saved always-on users back, detached, into their rooms (no client is
    connected yet, so nobody is told). One whose nick is taken, or no longer always-on, is
    dropped from the store by the next save."""
    presences = core.presences
    presences.always_on = dict(stored.always_on)
    for record in stored.presences:
        account_cf = casefold(record.account)
        presences.saved[account_cf] = record
        if not is_always_on(core, account_cf) or core.nicks.get(record.nick) is not None:
            continue
        user = _identity_from(core, record, now)
        for name in record.rooms[: core.config.always_on_max_rooms]:
            room = core.rooms.join(user, name, now)
            room_registry.on_join(core, user, room, now)
        presences.homes[account_cf] = user
        presences.detached_at[account_cf] = record.detached_at or now
        if user.away is None:
            user.away = AUTO_AWAY
            presences.auto_away.add(account_cf)
    event(log, "presences_restored", count=len(presences.homes))


def _identity_from(core: ServerCore, record: PresenceRecord, now: float) -> Session:
    presences = core.presences
    presences.next_conn -= 1
    user = Session(presences.next_conn, record.host, now)
    user.user, user.realname, user.account = record.user, record.realname, record.account
    user.away, user.registered, user.devices = record.away, True, []
    core.nicks.claim(user, record.nick)
    return user


# ---- changing who is what ---------------------------------------------------------------------


def _shared(core: ServerCore, holder: Session) -> Session:
    """``holder``'s user as a shared identity (made from the plain client if need be)."""
    if holder.devices is not None:
        return holder
    presences = core.presences
    presences.next_conn -= 1
    user = Session(presences.next_conn, holder.host, holder.connected_at)
    _copy_identity(holder, user)
    user.registered, user.last_message_at = True, holder.last_message_at
    user.rooms, user.devices = holder.rooms, [holder]
    holder.principal = user
    core.nicks.claim(user, holder.nick)
    _rebind_members(user, user)
    presences.homes[casefold(user.account or "")] = user
    return user


def _unshare(core: ServerCore, user: Session) -> None:
    """The user's only device becomes the plain client it was (LOGOUT, DROP)."""
    assert user.devices is not None and len(user.devices) == 1
    device = user.devices[0]
    _detach_device(user, device)
    device.rooms = user.rooms
    _copy_identity(user, device)
    core.nicks.claim(device, user.nick)
    _rebind_members(user, device)
    account_cf = casefold(user.account or "")
    core.presences.homes.pop(account_cf, None)
    core.presences.detached_at.pop(account_cf, None)


def _attach(core: ServerCore, user: Session, device: Session, now: float) -> None:
    assert user.devices is not None
    core.nicks.release(device)  # the nick it registered with, if any: it is the user's now
    _copy_identity(user, device)
    device.rooms, device.principal = user.rooms, user
    user.devices.append(device)
    for room in user.rooms.values():
        room.forget_targets()
    presences, account_cf = core.presences, casefold(user.account or "")
    presences.detached_at.pop(account_cf, None)
    if account_cf in presences.auto_away:  # back from detached: the automatic away ends
        presences.auto_away.discard(account_cf)
        user.away = device.away = None
        _notify_away(core, user)
    event(log, "attach", conn=device.conn, nick=user.nick, devices=len(user.devices))


def _detach_device(user: Session, device: Session) -> None:
    assert user.devices is not None
    if device in user.devices:
        user.devices.remove(device)
    device.principal = None
    device.rooms = {}
    for room in user.rooms.values():
        room.forget_targets()


def _went_detached(core: ServerCore, user: Session, now: float) -> None:
    presences, account_cf = core.presences, casefold(user.account or "")
    presences.detached_at[account_cf] = now
    if user.away is None:
        user.away = AUTO_AWAY
        presences.auto_away.add(account_cf)
        _notify_away(core, user)
    event(log, "detached", nick=user.nick, account=user.account)


def _leave_own_identity(core: ServerCore, session: Session, home: Session, now: float) -> None:
    """A registered client attaching (IDENTIFY): its own rooms see it leave, and it learns the
    user's nick it now has."""
    reason = f"Attached to {home.nick}"
    for room in list(session.rooms.values()):
        core.broadcast_to_room(room, "PART", [room.name, reason], session.source, now)
    core.rooms.leave_all(session)  # its rooms, and the invites its old nick held
    signed_off(core, session, session.nick)
    core.whowas.record(core, session, session.nick, now)
    core.send(session, build("NICK", [home.nick], session.source))


def _unindex(core: ServerCore, session: Session, account: str) -> None:
    by_account = core.presences.by_account
    account_cf = casefold(account)
    listed = by_account.get(account_cf)
    if listed is not None and session in listed:
        listed.remove(session)
        if not listed:
            del by_account[account_cf]


def _rebind_members(user: Session, member_session: Session) -> None:
    for room in user.rooms.values():
        member = room.members.get(user.nick_cf)
        if member is not None:
            member.session = member_session
        room.forget_targets()


def _copy_identity(source: Session, target: Session) -> None:
    target.nick, target.nick_cf = source.nick, source.nick_cf
    target.user, target.realname, target.account = source.user, source.realname, source.account
    target.away, target.invisible, target.bot = source.away, source.invisible, source.bot


def _notify_away(core: ServerCore, user: Session) -> None:
    """IRCv3 away-notify for a change nobody's AWAY command made."""
    params: Sequence[str] = [user.away] if user.away is not None else []
    watchers = [peer for peer in core.rooms.peers(user) if "away-notify" in peer.caps]
    core.send_many(watchers, build("AWAY", list(params), user.source))
