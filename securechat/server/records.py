"""What the store keeps, as plain values: errors, records, and the names of private targets
and room incarnations. No SQLite here (store/ is the SQLite layer and re-exports all of it).

- **Private messages** are stored under ``private_target(account_a, account_b)``: the two
  casefolded account names, sorted, joined by a comma, e.g. ``"alice,bob"``. A comma is valid
  in neither a nick, an account nor a room name, so the key never collides with a room (which
  starts with ``#``) and splits back into its two parties unambiguously.
- **Room incarnations.** A room message carries the ``epoch`` of the room it was sent in
  (``room_epoch``); a ``View`` says which epoch, and from when its +i/+k rows, one reader sees.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from securechat.protocol.names import casefold, is_room_name

PRIVATE_SEPARATOR = ","
PRIVATE_EPOCH = 0  # private conversations have no incarnations
# Rows sent while a room was public belong to no incarnation: anyone could have joined and
# read them then, so every later member of a room of that name may read them (history
# survives the room emptying and a restart). Only +i/+k rows carry their incarnation.
PUBLIC_EPOCH = 0


# --- errors ------------------------------------------------------------------------------------


class StoreError(Exception):
    """A persistence failure, phrased as one line for an operator or a log."""


class AccountExists(StoreError):
    """An account with that casefolded name is already registered."""


class UnknownAccount(StoreError):
    """The operation names an account that is not registered."""


class CertfpInUse(StoreError):
    """The certificate fingerprint already belongs to another account."""


# --- records -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Account:
    name: str  # as registered
    password_hash: str  # passwords.hash_password() output
    created_at: float  # epoch seconds
    certfps: tuple[str, ...] = ()  # normalized (see normalize_certfp), sorted

    @property
    def name_cf(self) -> str:
        return casefold(self.name)


@dataclass(frozen=True, slots=True)
class RoomRecord:
    """A registered room. Account names (founder, operators) are stored casefolded."""

    name: str  # display name, e.g. "#Python"
    founder: str
    registered_at: float
    topic: str | None = None
    topic_set_by: str | None = None
    topic_set_at: float | None = None
    modes: str = "+nt"  # mode letters without parameters
    key: str | None = None  # +k parameter
    limit: int | None = None  # +l parameter
    operators: tuple[str, ...] = ()
    bans: tuple[str, ...] = ()  # masks, in the order they were set

    @property
    def name_cf(self) -> str:
        return casefold(self.name)


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    msgid: str
    target: str  # casefolded room name, or private_target(sender_account, recipient_account)
    display_target: str  # the target as the sender wrote it: "#Python" or a recipient nick
    sender: str  # nick!user@host source of the original line
    account: str | None  # sender's account, for account-tag
    time: float  # server time, epoch seconds (kept at millisecond precision)
    command: str  # "PRIVMSG" or "NOTICE"
    text: str
    epoch: int = PRIVATE_EPOCH  # the room incarnation it was sent in (see room_epoch);
    # stored as PUBLIC_EPOCH unless restricted
    restricted: bool = False  # sent while the room was invite-only (+i) or keyed (+k)
    tags: str = ""  # the client-only tags it carried (+draft/reply ...), as on the wire
    lines: tuple[tuple[str, bool], ...] = ()  # a draft/multiline message: (line, concat) each
    redaction: Redaction | None = None  # set once redacted: the text is gone, the fact stays
    reactions: tuple[Reaction, ...] = ()  # filled by history reads: the reactions it received


@dataclass(frozen=True, slots=True)
class Redaction:
    """Who redacted a message (draft/message-redaction), when, and why."""

    by: str  # nick!user@host of the redactor
    time: float
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Reaction:
    """A stored ``+draft/react`` TAGMSG, kept with the message it points to (``parent``)."""

    msgid: str  # the TAGMSG's own msgid
    target: str  # the same key as the parent's HistoryRecord.target
    parent: str  # msgid of the message reacted to
    sender: str  # nick!user@host
    account: str | None
    time: float
    reaction: str  # the +draft/react value

    @property
    def reactor(self) -> str:
        """Who reacted, for "one reaction of each kind per person": the casefolded account,
        else the source (unauthenticated users react as their connection)."""
        return casefold(self.account) if self.account else "!" + self.sender


@dataclass(frozen=True, slots=True)
class View:
    """What one reader may see of a target: every unrestricted row (public when sent), and
    of the rows marked ``restricted`` only those of one ``epoch`` (room incarnation) sent
    from ``since`` (epoch seconds) on. ``since`` None: every restricted row of the epoch."""

    epoch: int = 0
    since: float | None = None


@dataclass(frozen=True, slots=True)
class KLine:
    """A server ban on ``user@host`` (glob mask); ``expires_at`` None means permanent."""

    mask: str
    reason: str
    set_by: str
    set_at: float
    expires_at: float | None = None


@dataclass(frozen=True, slots=True)
class Anchor:
    """A draft/chathistory message selector: exactly one of ``msgid=`` or ``timestamp=``."""

    msgid: str | None = None
    time: float | None = None

    def __post_init__(self) -> None:
        if (self.msgid is None) == (self.time is None):
            raise ValueError("an Anchor has exactly one of msgid or time")

    @classmethod
    def at_msgid(cls, msgid: str) -> Anchor:
        return cls(msgid=msgid)

    @classmethod
    def at_time(cls, time: float) -> Anchor:
        return cls(time=time)


@dataclass(frozen=True, slots=True)
class PresenceRecord:
    """An always-on user as the store keeps it (presence_accounts.py): what a restart brings
    back. ``away`` is the user's own away text (never the automatic one of a detached user);
    ``detached_at`` when its last connection left (None: connected when saved)."""

    account: str  # casefolded account name
    nick: str
    user: str
    realname: str
    host: str
    away: str | None
    rooms: tuple[str, ...]  # display names, in joining order
    detached_at: float | None = None


@dataclass(frozen=True, slots=True)
class StoredPresences:
    """Everything presence_accounts needs at start: the always-on users, and every account's
    explicit ALWAYS-ON setting (accounts without one follow the server default)."""

    presences: tuple[PresenceRecord, ...] = ()
    always_on: tuple[tuple[str, bool], ...] = ()  # (casefolded account, setting)


# --- names -------------------------------------------------------------------------------------


def private_target(account_a: str, account_b: str) -> str:
    """The history target of a private conversation; the same whichever party is first."""
    parties = sorted((casefold(account_a), casefold(account_b)))
    if any(not party or PRIVATE_SEPARATOR in party for party in parties):
        raise ValueError("account names must be non-empty and contain no comma")
    return PRIVATE_SEPARATOR.join(parties)


def private_parties(target: str) -> tuple[str, str] | None:
    """The two casefolded accounts of a private target, or None for a room."""
    first, separator, second = target.partition(PRIVATE_SEPARATOR)
    if (
        is_room_name(target)
        or not separator
        or not first
        or not second
        or PRIVATE_SEPARATOR in second
    ):
        return None
    return first, second


def private_peer(target: str, account: str) -> str | None:
    """The other party of a private target that ``account`` takes part in, else None."""
    parties = private_parties(target)
    me = casefold(account)
    if parties is None or me not in parties:
        return None
    return parties[1] if parties[0] == me else parties[0]


def room_epoch(created_or_registered_at: float) -> int:
    """A room incarnation's id: its creation (or, registered, its registration) time in
    microseconds. The same formula is used in SQL by migration v4."""
    return int(created_or_registered_at * 1_000_000)


def normalize_certfp(fingerprint: str) -> str:
    """Lowercase hex without colons. Raises ValueError for anything that is not hex."""
    compact = fingerprint.replace(":", "").lower()
    if not compact or any(char not in string.hexdigits for char in compact):
        raise ValueError("a certificate fingerprint is hexadecimal, optionally colon-separated")
    return compact
