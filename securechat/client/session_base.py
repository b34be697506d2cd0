"""The client core's state: buffers, lines and the connection's life (session.py has the rules)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from securechat.client import commands, sasl
from securechat.client.buffers import (
    Buffer,
    Kind,
    Line,
    Member,
    Prefixes,
    Style,
    printable,
    printable_block,
)
from securechat.client.completion import Completer
from securechat.client.typing import Throttle
from securechat.protocol.message import Message, build
from securechat.protocol.names import NICKLEN, casefold

WANTED_CAPS = (
    "account-notify",
    "account-tag",
    "batch",
    "cap-notify",
    "draft/account-registration",
    "draft/chathistory",
    "draft/message-redaction",
    "draft/multiline",
    "draft/read-marker",
    "echo-message",
    "extended-join",
    "message-tags",
    "multi-prefix",
    "server-time",
)


DEFAULT_CHATHISTORY_LIMIT = 100  # until ISUPPORT CHATHISTORY says otherwise
MAX_NICK_ATTEMPTS = 8  # fallback nicks tried during registration before giving up


def server_time(message: Message, now: datetime) -> datetime:
    """The ``time`` tag (IRCv3 server-time) when valid, else ``now``."""
    stamp = message.tags.get("time")
    if stamp:
        try:
            parsed = datetime.fromisoformat(stamp)
        except ValueError:
            return now
        # Lines are ordered by time: a naive stamp must still compare with aware ones.
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return now


REPLY_TAGS = ("+draft/reply", "+reply")  # the draft name, then the ratified one


def reply_of(message: Message) -> str:
    """The msgid a message replies to (``+draft/reply``, or ``+reply``)."""
    return next((message.tags[t] for t in REPLY_TAGS if message.tags.get(t)), "")


def nick_of(source: str | None) -> str:
    return (source or "").split("!", 1)[0]


def _mentions(text: str, nick: str) -> bool:
    if not nick:
        return False
    word = r"[A-Za-z0-9_\-\[\]\\`^{|}]"
    pattern = rf"(?<!{word}){re.escape(nick)}(?!{word})"
    return re.search(pattern, text, flags=re.IGNORECASE) is not None


def fallback_nick(wanted: str, attempt: int) -> str:
    """``alice`` -> ``alice_``, ``alice__``, then ``alice1``… within NICKLEN."""
    suffix = "_" * attempt if attempt <= 2 else str(attempt - 2)
    return wanted[: NICKLEN - len(suffix)] + suffix


@dataclass(slots=True)
class Batch:
    """An open ``BATCH +ref <kind> [target]``; history lines wait here until it closes."""

    kind: str
    target: str
    messages: list[tuple[Message, datetime]] = field(default_factory=list)
    opened_by: Message | None = None  # the BATCH + line: a multiline message's tags and source
    parent: str = ""  # the batch this one is nested in (a multiline message in history)


# NickServ's own syntax in its notices; our client says it with its own command.
_IDENTIFY_HINT = re.compile(r"/msg NickServ IDENTIFY <password>", re.IGNORECASE)


def _cap_values(text: str) -> dict[str, str | None]:
    """``sasl=PLAIN,EXTERNAL batch`` -> ``{"sasl": "PLAIN,EXTERNAL", "batch": None}``."""
    values: dict[str, str | None] = {}
    for item in text.split():
        name, equals, value = item.partition("=")
        values[name] = value if equals else None
    return values


def _from_server(message: Message) -> bool:
    """A message from the server itself (no nick!user@host source), e.g. a connect notice."""
    return not message.source or "!" not in message.source


def _cap_end() -> list[bytes]:
    return [build("CAP", ["END"])]


def _userhost(source: str | None) -> str:
    return (source or "").partition("!")[2] or "?"


def _message_style(text: str, notice: bool) -> tuple[Style | None, str]:
    """The style and text of a PRIVMSG or NOTICE; CTCP other than ACTION is not shown."""
    if text.startswith("\x01"):
        body = text.strip("\x01")
        command, _, rest = body.partition(" ")
        if command.upper() == "ACTION":
            return Style.ACTION, rest
        return None, ""
    return (Style.NOTICE if notice else Style.MESSAGE), text


class SessionBase:
    """The state of one client across reconnects: buffers, lines, the connection's life.
    ``Session`` (session.py) is this plus what the server sends and what the user types."""

    def __init__(
        self,
        nick: str,
        *,
        username: str | None = None,
        realname: str | None = None,
        rooms: Iterable[str] = (),
        server_label: str = "server",
        credentials: sasl.Credentials | None = None,
    ) -> None:
        self.wanted_nick = nick
        self.nick = nick
        self.username = username or nick
        self.realname = realname or nick
        self.registered = False
        self.credentials = credentials or sasl.Credentials()
        self.account: str | None = None  # the account we are logged in to (900 / 901)
        self.away = False  # the server marked us away (306) / back (305)
        self.userhost: str | None = None  # our user@host as others see it, once the server says
        self.alerts: list[tuple[Buffer, Line]] = []  # new mentions and private messages; UI drains
        self.reconnect_requested = False  # /reconnect: the network shell reconnects at once
        self._closing_reason = ""  # the server's ERROR text: why the link is closing
        self.caps: set[str] = set()
        self.chathistory_limit = DEFAULT_CHATHISTORY_LIMIT
        self.prefixes = Prefixes()
        self.chanmodes = ("beI", "k", "l")  # ISUPPORT CHANMODES types A, B, C (take params)
        self.buffers: dict[str, Buffer] = {}
        self.server = self._open(server_label, Kind.SERVER)
        self.current = self.server.key
        self.quitting = False  # the user asked to quit: do not reconnect
        self.closed_by_server = False  # the server sent ERROR (it confirms our QUIT)
        self.new_lines: list[tuple[Buffer, Line]] = []  # for line-mode output; drained by it
        self.completer = Completer()
        self._nick_attempt = 0
        self._names: dict[str, dict[str, Member]] = {}  # NAMES replies being collected
        self._cap_ls: dict[str, str | None] = {}  # offered caps and their CAP 302 values
        self._sasl_left: list[str] = []  # mechanisms still to try while registering
        self._sasl_mechanism: str | None = None  # the exchange in progress
        self._sasl_tried = False  # SASL ran on this connection: never start it twice
        self._multiline_refs = 0  # draft/multiline batches sent (each needs its own reference)
        self._batches: dict[str, Batch] = {}
        self.typing_throttle = Throttle()  # our +typing notifications (typing.py)
        self._read_sent: dict[str, datetime] = {}  # buffer key -> when we last sent MARKREAD
        self._read_waiting: set[str] = set()  # buffers whose MARKREAD waits for the interval
        self.outbox: list[bytes] = []  # lines a UI action needs sent (MARKREAD on showing a buffer)
        for room in rooms:
            self._want_room(commands.room_name(room), show=True)

    # ---- buffers ------------------------------------------------------------------------

    def _open(self, name: str, kind: Kind) -> Buffer:
        key = casefold(name)
        buffer = self.buffers.get(key)
        if buffer is None:
            buffer = self.buffers[key] = Buffer(name, kind)
        return buffer

    def buffer(self, name: str) -> Buffer | None:
        return self.buffers.get(casefold(name))

    @property
    def shown(self) -> Buffer:
        return self.buffers[self.current]

    @property
    def ordered(self) -> list[Buffer]:
        """Buffers in the order the buffer list shows them (and Alt-1…9 count them)."""
        return list(self.buffers.values())

    def show(self, buffer: Buffer) -> None:
        self.current = buffer.key
        buffer.unread = buffer.mentions = 0

    def show_index(self, index: int) -> bool:
        """Alt-1…9: show the buffer at this 0-based position; False when there is none."""
        ordered = self.ordered
        if not 0 <= index < len(ordered):
            return False
        self.show(ordered[index])
        return True

    def show_next(self, step: int) -> None:
        """Ctrl-N / Ctrl-P: the next or previous buffer, wrapping around."""
        ordered = self.ordered
        position = ordered.index(self.shown)
        self.show(ordered[(position + step) % len(ordered)])

    def show_active(self) -> bool:
        """Alt-a: the next buffer with mentions, else with unread messages."""
        ordered = self.ordered
        start = ordered.index(self.shown)
        rotated = ordered[start + 1 :] + ordered[: start + 1]
        active = [b for b in rotated if b.mentions] or [b for b in rotated if b.unread]
        if not active:
            return False
        self.show(active[0])
        return True

    def move(self, buffer: Buffer, position: int) -> None:
        """``/window move N``: the buffer takes the 1-based position N; the others keep order."""
        others = [(k, b) for k, b in self.buffers.items() if b is not buffer]
        index = max(0, min(position - 1, len(others)))
        others.insert(index, (buffer.key, buffer))
        self.buffers = dict(others)

    def close(self, buffer: Buffer) -> None:
        if buffer.kind is Kind.SERVER:
            return
        if self.current == buffer.key:
            self.show_next(-1)
        del self.buffers[buffer.key]

    def rooms_to_join(self) -> list[str]:
        return [b.name for b in self.buffers.values() if b.kind is Kind.ROOM and b.wanted]

    def _want_room(self, name: str, show: bool) -> Buffer:
        buffer = self._open(name, Kind.ROOM)
        buffer.wanted = True
        if show:
            self.show(buffer)
        return buffer

    # ---- adding lines -------------------------------------------------------------------

    def add(self, buffer: Buffer, line: Line, activity: bool = False) -> None:
        """Add a line; ``activity`` is True when someone said something (counts as unread)."""
        line = replace(line, text=printable_block(line.text), nick=printable(line.nick))
        buffer.add(line)
        self.new_lines.append((buffer, line))
        if line.highlight and not line.own and not line.history:
            self.alerts.append((buffer, line))
        if buffer.key == self.current or line.own:
            return
        if activity or line.highlight:
            buffer.unread += 1
        if line.highlight:
            buffer.mentions += 1

    def note(
        self, text: str, now: datetime, buffer: Buffer | None = None, error: bool = False
    ) -> None:
        """A line from the client itself (hints, status) in a buffer, the shown one by default."""
        style = Style.ERROR if error else Style.INFO
        self.add(buffer or self.shown, Line(now, style, text))

    def drain(self) -> list[tuple[Buffer, Line]]:
        lines, self.new_lines = self.new_lines, []
        return lines

    def drain_alerts(self) -> list[tuple[Buffer, Line]]:
        """Mentions and private messages since the last call (for a bell or a notification)."""
        alerts, self.alerts = self.alerts, []
        return alerts

    @property
    def source(self) -> str:
        """Our ``nick!user@host`` as the server relays it (a long guess until it tells us)."""
        return f"{self.nick}!{self.userhost or commands.UNKNOWN_USERHOST}"

    # ---- connection life ----------------------------------------------------------------

    def connection_made(self) -> list[bytes]:
        """Start registration: ask for capabilities, then NICK and USER."""
        self.registered = False
        self.closed_by_server = False
        self.caps.clear()
        self._cap_ls.clear()
        self._names.clear()
        self._batches.clear()
        self.outbox.clear()  # meant for the connection that is gone
        self._read_waiting.clear()
        self._sasl_left, self._sasl_mechanism, self._sasl_tried = [], None, False
        self.account = None
        self.away = False
        self.userhost = None
        self._closing_reason = ""
        for buffer in self.buffers.values():
            buffer.history.pending.clear()  # answers to the last connection's requests are lost
        self._nick_attempt = 0
        self.nick = self.wanted_nick
        return [
            build("CAP", ["LS", "302"]),
            build("NICK", [self.nick]),
            build("USER", [self.username, "0", "*", self.realname]),
        ]

    def connection_lost(self, reason: str, now: datetime) -> None:
        """The connection is gone: forget who is in which room, keep which rooms we want."""
        self.registered = False
        for buffer in self.buffers.values():
            if buffer.kind is Kind.ROOM and buffer.joined:
                buffer.joined = False
                buffer.members.clear()
        # The server's own reason (a shutdown, a kill) says more than "the connection closed".
        reason = self._closing_reason or reason
        for buffer in self._connection_buffers():
            self.add(buffer, Line(now, Style.ERROR, f"Disconnected: {reason}"))

    def trust_failed(self, warning: str, now: datetime) -> None:
        """Reconnecting met a certificate we do not trust: say it where the user looks."""
        buffers = [self.server] if self.shown is self.server else [self.server, self.shown]
        for buffer in buffers:
            for text in warning.splitlines():
                self.add(buffer, Line(now, Style.ERROR, text.strip()))
            self.add(buffer, Line(now, Style.ERROR, "Not reconnecting. /quit to leave."))

    def status(self, text: str, now: datetime) -> None:
        """A connection status line (connecting, reconnecting in…) for the server buffer."""
        self.add(self.server, Line(now, Style.INFO, text))

    def _connection_buffers(self) -> Iterator[Buffer]:
        yield self.server
        yield from (b for b in self.buffers.values() if b.kind is Kind.ROOM and b.wanted)

    def is_me(self, source: str | None) -> bool:
        return casefold(nick_of(source)) == casefold(self.nick)

    def sorted_members(self, buffer: Buffer) -> list[Member]:
        """The nick list: operators first, then voiced, then everyone, alphabetically."""
        return sorted(
            buffer.members.values(),
            key=lambda m: (self.prefixes.rank(m.prefixes), casefold(m.nick)),
        )
