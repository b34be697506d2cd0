"""Connected clients (sessions) and the nickname registry.

A session is created per connection and registered once NICK, USER (and
CAP END, when negotiation started) are in. Nicknames are unique under the
advertised casemapping; the registry stores casefolded keys and the session
keeps the display form (ergo keeps both side by side the same way).
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING

from securechat.protocol.names import casefold

if TYPE_CHECKING:
    from securechat.server.rooms import Room

# Bits of Session.tag_variant: which message tags a recipient understands.
# A broadcast is serialized once per variant, never once per recipient.
VARIANT_PLAIN = 0
VARIANT_TIME = 1  # server-time only
VARIANT_TAGS = 2  # message-tags (msgid, client-only tags); time added when server-time too
VARIANT_ACCOUNT = 4  # account-tag: the sender's account on its messages
NO_CAPS: frozenset[str] = frozenset()


class Session:
    """One connection's protocol state. ``conn`` is the id the network layer uses."""

    __slots__ = (
        "account",
        "auth_pending",
        "away",
        "bot",
        "cap_negotiating",
        "cap_version",
        "caps",
        "certfp",
        "conn",
        "connected_at",
        "devices",
        "flood_exempt",
        "flood_tokens",
        "flood_updated",
        "host",
        "invisible",
        "last_activity",
        "last_message_at",
        "nick",
        "nick_cf",
        "oper",
        "oper_failures",
        "password_ok",
        "ping_sent_at",
        "principal",
        "realname",
        "registered",
        "remote",
        "rooms",
        "sasl_buffer",
        "sasl_mechanism",
        "secure",
        "tag_variant",
        "user",
        "wallops",
    )

    def __init__(self, conn: int, host: str, now: float) -> None:
        self.conn = conn
        self.host = host
        self.nick = "*"
        self.nick_cf = ""
        self.user = ""
        self.realname = ""
        self.registered = False
        # Cluster mode: a session held by another node (docs/CLUSTER.md); never sent to here
        self.remote = False
        self.caps: frozenset[str] = NO_CAPS  # shared while empty: most clients never ask
        self.cap_negotiating = False
        self.cap_version = 0
        self.password_ok = False
        self.account: str | None = None
        self.away: str | None = None
        self.invisible = False
        self.wallops = False  # user mode +w: receives WALLOPS (commands/user_modes.py)
        self.bot = False  # user mode +B: marked as a bot (IRCv3 bot mode)
        self.oper = False
        self.oper_failures = 0
        self.secure = True  # every listener is TLS (DESIGN.md §2.1)
        self.rooms: dict[str, Room] = {}
        self.connected_at = now
        self.last_activity = now
        self.last_message_at = now
        self.ping_sent_at: float | None = None
        self.tag_variant = VARIANT_PLAIN
        # accounts (accounts.py, commands/sasl.py)
        self.certfp: str | None = None  # SHA-256 of the TLS client certificate, lowercase hex
        self.auth_pending = False  # a password check or certificate lookup is in flight
        self.sasl_mechanism: str | None = None  # an AUTHENTICATE exchange is collecting data
        self.sasl_buffer = ""
        self.flood_exempt = False
        self.flood_tokens = 0.0  # set to the burst by the core on connect
        self.flood_updated = now
        # Several connections of one account as one user (presence_accounts.py): a device
        # attached to a shared identity points at it (``principal``); the identity, a session
        # with no connection of its own, lists its connected devices (``devices``, [] while
        # an always-on user is detached). Both None for every other session.
        self.principal: Session | None = None
        self.devices: list[Session] | None = None

    @property
    def source(self) -> str:
        principal = self.principal
        if principal is not None:  # every device speaks with the one user's mask
            return principal.source
        return f"{self.nick}!{self.user or '*'}@{self.host}"

    def set_caps(self, caps: AbstractSet[str]) -> None:
        caps = self.caps = frozenset(caps)
        variant = VARIANT_PLAIN
        if "message-tags" in caps:
            variant = VARIANT_TAGS | (VARIANT_TIME if "server-time" in caps else 0)
        elif "server-time" in caps:
            variant = VARIANT_TIME
        if "account-tag" in caps:
            variant |= VARIANT_ACCOUNT
        if variant != self.tag_variant:
            for room in self.rooms.values():
                room.forget_targets()  # its cached recipients are grouped by variant
        self.tag_variant = variant

    def __repr__(self) -> str:
        return f"<Session conn={self.conn} nick={self.nick!r}>"


class NickRegistry:
    """Casefolded nickname -> session, for registered and registering clients alike."""

    __slots__ = ("_by_nick",)

    def __init__(self) -> None:
        self._by_nick: dict[str, Session] = {}

    def get(self, nick: str) -> Session | None:
        return self._by_nick.get(casefold(nick))

    def is_taken(self, nick: str, by: Session | None = None) -> bool:
        owner = self._by_nick.get(casefold(nick))
        return owner is not None and owner is not by

    def claim(self, session: Session, nick: str) -> None:
        """Give ``nick`` to ``session``, releasing its previous nick. Caller checked is_taken."""
        self.release(session)
        session.nick = nick
        session.nick_cf = casefold(nick)
        self._by_nick[session.nick_cf] = session

    def release(self, session: Session) -> None:
        if session.nick_cf and self._by_nick.get(session.nick_cf) is session:
            del self._by_nick[session.nick_cf]

    def __len__(self) -> int:
        return len(self._by_nick)

    def __iter__(self) -> Iterator[Session]:
        return iter(list(self._by_nick.values()))
