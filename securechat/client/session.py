"""The client core: what the client knows about the server, with no sockets and no UI.

Rules:
- The network shell calls ``connection_made``, ``receive`` (one line from the
  server) and ``connection_lost``; the UI calls ``submit`` (one line the user
  typed) and the navigation methods. Each returns the protocol lines to send,
  in order. Time is passed in as an aware ``datetime``; a ``server-time`` tag
  wins over it.
- State lives in buffers: one for the server, one per room, one per private
  conversation, keyed by casefolded name (CASEMAPPING=ascii) with the display
  name kept alongside. The UI renders buffers and never changes them directly.
- A line added to a buffer that is not shown counts as unread when someone
  said something, and as a mention when it names us or is a private message;
  showing a buffer clears both counts.
- Rooms the user wants to be in (joined, or asked to join) are joined again
  after a reconnect; a part or a kick removes the wish.
- Registration falls back to another nick when ours is taken (433), and tries
  the wanted nick first again on the next connection.
- With a password or a client certificate, registration logs in with SASL
  (``sasl.py``) and sends ``CAP END`` only once the exchange is over (903, or
  904 for every mechanism); a failed login is said in a sentence and the
  client carries on without an account. 900/901 keep ``account`` current.
- History: messages inside a ``chathistory`` batch are collected and merged
  into their buffer when the batch ends, marked ``history``, by their server
  time and without repeating a msgid the buffer holds; they never count as
  unread or mentions. With ``draft/chathistory`` the client asks for the
  latest page on every join and pages back (``/history``, PageUp) from the
  oldest message it knows; a page shorter than asked for means there is no
  more, which is said once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from securechat.client import commands, sasl, splitting
from securechat.client.buffers import (
    Buffer,
    HistoryRequest,
    Kind,
    Line,
    Member,
    Prefixes,
    Style,
    printable,
)
from securechat.client.completion import Completer, Edit
from securechat.client.replies import CURRENT, SERVER, Reply, describe
from securechat.protocol import numerics as n
from securechat.protocol.message import Message, build, parse
from securechat.protocol.names import NICKLEN, casefold, is_room_name
from securechat.protocol.services import NICKSERV
from securechat.protocol.tags import CHATHISTORY_BATCH

WANTED_CAPS = (
    "account-notify",
    "account-tag",
    "batch",
    "cap-notify",
    "draft/chathistory",
    "draft/multiline",
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


class Session:
    """All protocol and display state of one client, across reconnects."""

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
        line = replace(line, text=printable(line.text), nick=printable(line.nick))
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

    # ---- what the user types ------------------------------------------------------------

    def context(self) -> commands.Context:
        shown = self.shown
        if shown.kind is Kind.ROOM:
            return commands.Context(room=shown.name, source=self.source)
        if shown.kind is Kind.PRIVATE:
            return commands.Context(query=shown.name, source=self.source)
        return commands.Context(source=self.source)

    def submit(self, text: str, now: datetime) -> list[bytes]:
        """One line the user typed: the protocol lines to send, after local effects."""
        outcome = commands.interpret(text, self.context())
        for note in outcome.notes:
            self.note(note, now, error=outcome.error)
        if outcome.reconnect:
            self.reconnect_requested = True
            return []
        if outcome.send and not self.registered and not outcome.quit:
            self.note("Not connected yet: that was not sent.", now, error=True)
            return []
        if self._talking_outside(text):
            name = self.shown.name
            self.note(f"You are not in {name}: /join {name} to talk there.", now, error=True)
            return []
        return outcome.send + self._apply(outcome, now)

    def _talking_outside(self, text: str) -> bool:
        """Plain text typed in a room we left or were kicked from (not one we are joining)."""
        plain = text.startswith("//") or not text.startswith("/")
        shown = self.shown
        left = shown.kind is Kind.ROOM and not (shown.joined or shown.wanted)
        return plain and bool(text.strip()) and left

    def submit_paste(self, lines: list[str], now: datetime) -> list[bytes]:
        """Pasted lines: one draft/multiline message when the server takes it, else one by one."""
        batch = self._multiline(lines, now)
        if batch is not None:
            return batch
        sent: list[bytes] = []
        for text in lines:
            sent += self.submit(text, now)
        return sent

    def _multiline(self, lines: list[str], now: datetime) -> list[bytes] | None:
        """IRCv3 draft/multiline: the lines as one message in a batch, within the server's limits.

        None when it does not apply: no such cap, commands among the lines, not talking in a
        room or conversation, or over ``max-lines`` / ``max-bytes``.
        """
        target = self.context().target
        plain = all(not t.startswith("/") or t.startswith("//") for t in lines)
        if "draft/multiline" not in self.caps or not self.registered or target is None or not plain:
            return None
        if self._talking_outside(lines[0]):
            return None
        texts = [t.removeprefix("/") for t in lines]
        limits = _cap_values((self._cap_ls.get("draft/multiline") or "").replace(",", " "))
        max_lines = int(limits.get("max-lines") or 0) or len(texts)
        max_bytes = int(limits.get("max-bytes") or 0) or 4096
        budget = splitting.text_budget(self.source, "PRIVMSG", target)
        if len(texts) > max_lines or sum(len(t.encode()) for t in texts) > max_bytes:
            return None
        if any(len(t.encode()) > budget for t in texts):
            return None
        self._multiline_refs += 1
        reference = f"ml{self._multiline_refs}"
        sent = [build("BATCH", [f"+{reference}", "draft/multiline", target])]
        tags = {"batch": reference}
        sent += [build("PRIVMSG", [target, text or " "], tags=tags) for text in texts]
        sent.append(build("BATCH", [f"-{reference}"]))
        if "echo-message" not in self.caps:
            for text in texts:
                self._echo(target, Style.MESSAGE, text, now)
        return sent

    def _apply(self, outcome: commands.Outcome, now: datetime) -> list[bytes]:
        """Carry out the local effects; any further protocol lines they need."""
        shown = self.shown
        for index, room in enumerate(outcome.join):
            self._want_room(room, show=index == 0)
        if outcome.query is not None:
            query = self._open(outcome.query, Kind.PRIVATE)
            if outcome.switch_to_query:
                self.show(query)
        if "echo-message" not in self.caps:
            for target, style, text in outcome.said:
                self._echo(target, Style(style), text, now)
        for target, _, text in outcome.said:
            if casefold(target) != shown.key and target.lower() != "nickserv":
                # irssi's "-> *bob* text": what was sent elsewhere, where the user is looking.
                self.add(shown, Line(now, Style.INFO, f"-> *{target}* {text}"))
        if outcome.move_to is not None:
            self.move(shown, outcome.move_to)
        if outcome.clear:
            shown.clear()
        if outcome.close:
            self.close(shown)
        if outcome.quit:
            self.quitting = True
        if outcome.history is not None:
            return self.request_history(now, outcome.history)
        return []

    def _echo(self, target: str, style: Style, text: str, now: datetime) -> None:
        """Show what we said when the server will not echo it back (no echo-message)."""
        kind = Kind.ROOM if is_room_name(target) else Kind.PRIVATE
        buffer = self.buffer(target) or self._open(target, kind)
        self.add(buffer, Line(now, style, text, nick=self.nick, own=True))

    def complete(self, text: str, cursor: int) -> Edit | None:
        """Tab in the input line."""
        shown = self.shown
        nicks = [m.nick for m in shown.members.values()]
        if shown.kind is Kind.PRIVATE:
            nicks.append(shown.name)
        rooms = [b.name for b in self.buffers.values() if b.kind is Kind.ROOM]
        names = list(commands.COMMANDS)
        return self.completer.complete(text, cursor, nicks, shown.recent, names, rooms)

    def sorted_members(self, buffer: Buffer) -> list[Member]:
        """The nick list: operators first, then voiced, then everyone, alphabetically."""
        return sorted(
            buffer.members.values(),
            key=lambda m: (self.prefixes.rank(m.prefixes), casefold(m.nick)),
        )

    # ---- what the server sends ----------------------------------------------------------

    def receive(self, raw: bytes | str, now: datetime) -> list[bytes]:
        """One line from the server: update state, return any lines to send back."""
        message = parse(raw)
        if message is None:
            return []
        when = server_time(message, now)
        batch = self._batches.get(message.tags.get("batch", ""))
        if batch is not None and batch.kind == CHATHISTORY_BATCH:
            batch.messages.append((message, when))
            return []
        handler = _HANDLERS.get(message.command)
        if handler is not None:
            return handler(self, message, when)
        if message.command.isdigit():
            return self._numeric(message, when)
        return []

    def is_me(self, source: str | None) -> bool:
        return casefold(nick_of(source)) == casefold(self.nick)

    def _on_ping(self, message: Message, now: datetime) -> list[bytes]:
        return [build("PONG", list(message.params[:1]) or ["ping"])]

    def _on_error(self, message: Message, now: datetime) -> list[bytes]:
        self.closed_by_server = True
        self._closing_reason = message.param(0)
        if self.quitting:  # the server confirms our QUIT: nothing went wrong
            self.add(self.server, Line(now, Style.INFO, f"Left the server: {message.param(0)}"))
        else:
            text = f"The server closed the link: {message.param(0)}"
            self.add(self.server, Line(now, Style.ERROR, text))
        return []

    # CAP <nick> LS|ACK|NAK|NEW|DEL [*] :<caps>
    def _on_cap(self, message: Message, now: datetime) -> list[bytes]:
        subcommand = message.param(1).upper()
        more = message.param(2) == "*" and len(message.params) > 3
        values = _cap_values(message.params[-1] if len(message.params) > 2 else "")
        names = set(values)
        if subcommand == "LS":
            self._cap_ls.update(values)
            if more:
                return []
            return self._request_caps(set(self._cap_ls), now)
        if subcommand == "NEW":
            self._cap_ls.update(values)
            return self._request_caps(names, now)
        if subcommand == "ACK":
            self.caps |= {c for c in names if not c.startswith("-")}
            self.caps -= {c[1:] for c in names if c.startswith("-")}
        elif subcommand == "DEL":
            self.caps -= names
        if self.registered or subcommand not in ("ACK", "NAK"):
            return []
        return self._start_sasl(now)

    def _request_caps(self, offered: set[str], now: datetime) -> list[bytes]:
        wanted = [c for c in self._wanted_caps() if c in offered and c not in self.caps]
        if wanted:
            return [build("CAP", ["REQ", " ".join(wanted)])]
        return [] if self.registered else self._start_sasl(now)

    def _wanted_caps(self) -> tuple[str, ...]:
        # sasl only while registering, and only with something to log in with.
        login = self.credentials.any and not self.registered
        return (*WANTED_CAPS, "sasl") if login else WANTED_CAPS

    # ---- SASL ---------------------------------------------------------------------------

    def _start_sasl(self, now: datetime) -> list[bytes]:
        """Capabilities settled: log in with SASL when we can, else end negotiation."""
        if self._sasl_mechanism is not None:
            return []  # an exchange is under way; it ends negotiation when it is over
        if not self.credentials.any or self._sasl_tried:
            return _cap_end()
        self._sasl_tried = True
        if "sasl" not in self.caps:
            self.status("This server does not offer SASL: connecting without logging in.", now)
            return _cap_end()
        self._sasl_left = sasl.mechanisms(self.credentials, self._cap_ls.get("sasl"))
        return self._next_mechanism(now)

    def _next_mechanism(self, now: datetime) -> list[bytes]:
        if not self._sasl_left:
            self._sasl_mechanism = None
            if self.account is None:
                text = "Continuing without logging in; type /login PASSWORD to try again."
                self.status(text, now)
            return _cap_end()
        self._sasl_mechanism = self._sasl_left.pop(0)
        self.status(f"Logging in with SASL {self._sasl_mechanism}…", now)
        return [build("AUTHENTICATE", [self._sasl_mechanism])]

    # AUTHENTICATE +   (the server is ready for our payload)
    def _on_authenticate(self, message: Message, now: datetime) -> list[bytes]:
        if self._sasl_mechanism is None or message.param(0) != "+":
            return []
        data = sasl.payload(self._sasl_mechanism, self.credentials, self.nick)
        # The last parameter must not become a trailing ":+" (build() makes it one).
        return [f"AUTHENTICATE {chunk}\r\n".encode() for chunk in sasl.chunks(data)]

    # 903 RPL_SASLSUCCESS / 907 ERR_SASLALREADY / 906 ERR_SASLABORTED: the exchange is over
    def _on_sasl_done(self, message: Message, now: datetime) -> list[bytes]:
        if self._sasl_mechanism is None or self.registered:
            return []
        self._sasl_left.clear()
        return self._next_mechanism(now)

    # 904 ERR_SASLFAIL / 905 ERR_SASLTOOLONG / 902 ERR_NICKLOCKED: try the next mechanism
    def _on_sasl_failed(self, message: Message, now: datetime) -> list[bytes]:
        if self._sasl_mechanism is None or self.registered:
            return []
        return self._next_mechanism(now)

    # 900 <nick> <nick!user@host> <account> :You are now logged in as <account>
    def _on_logged_in(self, message: Message, now: datetime) -> list[bytes]:
        self.account = message.param(2) or None
        self._learn_userhost(message.param(1))
        return []

    def _learn_userhost(self, mask: str) -> None:
        if "!" in mask and "@" in mask:
            self.userhost = mask.split("!", 1)[1]

    # 396 <nick> <host> :is now your displayed host
    def _on_visible_host(self, message: Message, now: datetime) -> list[bytes]:
        user = (self.userhost or f"{self.username}@").split("@", 1)[0]
        if message.param(1):
            self.userhost = f"{user}@{message.param(1)}"
        return []

    # 306 RPL_NOWAWAY / 305 RPL_UNAWAY
    def _on_away_state(self, message: Message, now: datetime) -> list[bytes]:
        self.away = message.command == n.RPL_NOWAWAY
        return []

    # 901 <nick> <nick!user@host> :You are now logged out
    def _on_logged_out(self, message: Message, now: datetime) -> list[bytes]:
        self.account = None
        return []

    # ---- numerics -----------------------------------------------------------------------

    def _numeric(self, message: Message, now: datetime) -> list[bytes]:
        special = _NUMERIC_HANDLERS.get(message.command)
        send = special(self, message, now) if special is not None else []
        reply = describe(message)
        if reply is not None:
            self._show_reply(reply, now)
        return send

    def _show_reply(self, reply: Reply, now: datetime) -> None:
        if reply.about == SERVER:
            buffer = self.server
        elif reply.about == CURRENT:
            buffer = self.shown
        else:
            buffer = self.buffer(reply.about) or self.shown
        style = Style.ERROR if reply.error else Style.INFO
        self.add(buffer, Line(now, style, reply.text), activity=reply.error)
        if reply.error and buffer is not self.shown and buffer is not self.server:
            self.add(self.shown, Line(now, style, reply.text))  # where the user is looking

    def _on_welcome(self, message: Message, now: datetime) -> list[bytes]:
        self.registered = True
        self.nick = message.param(0) or self.nick
        return [build("JOIN", [room]) for room in self.rooms_to_join()]

    def _on_isupport(self, message: Message, now: datetime) -> list[bytes]:
        for token in message.params[1:-1]:
            key, _, value = token.partition("=")
            if key == "PREFIX":
                self.prefixes = Prefixes.parse(value)
            elif key == "CHANMODES":
                types = [*value.split(","), "", "", ""]
                self.chanmodes = (types[0], types[1], types[2])
            elif key == "CHATHISTORY" and value.isdigit() and int(value) > 0:
                self.chathistory_limit = int(value)
        return []

    def _on_nick_refused(self, message: Message, now: datetime) -> list[bytes]:
        """433 while registering: try the next fallback nick; later, the error says it all."""
        if self.registered:
            return []
        self._nick_attempt += 1
        if self._nick_attempt > MAX_NICK_ATTEMPTS:
            return [build("QUIT", ["No usable nickname"])]
        self.nick = fallback_nick(self.wanted_nick, self._nick_attempt)
        self.status(f"Trying the nick {self.nick} instead.", now)
        return [build("NICK", [self.nick])]

    # 353 <nick> <symbol> <room> :[prefix]<nick>{ [prefix]<nick>}
    def _on_names(self, message: Message, now: datetime) -> list[bytes]:
        collected = self._names.setdefault(casefold(message.param(2)), {})
        for item in message.params[-1].split():
            prefixes, name = self.prefixes.split(item.split("!", 1)[0])
            if name:
                collected[casefold(name)] = Member(name, prefixes)
        return []

    # 366 <nick> <room> :End of /NAMES list
    def _on_end_of_names(self, message: Message, now: datetime) -> list[bytes]:
        members = self._names.pop(casefold(message.param(1)), {})
        buffer = self.buffer(message.param(1))
        if buffer is None or buffer.kind is not Kind.ROOM:
            return []
        buffer.members = members
        listing = " ".join(m.prefixes[:1] + m.nick for m in self.sorted_members(buffer))
        count = len(members)
        noun = "person" if count == 1 else "people"
        self.add(buffer, Line(now, Style.INFO, f"{count} {noun} in {buffer.name}: {listing}"))
        return []

    # 332 <nick> <room> :<topic>  /  331 <nick> <room> :No topic is set
    def _on_topic_reply(self, message: Message, now: datetime) -> list[bytes]:
        buffer = self.buffer(message.param(1))
        if buffer is not None:
            buffer.topic = message.param(2) if message.command == n.RPL_TOPIC else ""
        return []

    # ---- messages and events ------------------------------------------------------------

    # PRIVMSG|NOTICE <target> :<text>
    def _on_message(self, message: Message, now: datetime) -> list[bytes]:
        target, text = message.param(0), message.param(1)
        sender = nick_of(message.source)
        own = self.is_me(message.source)
        notice = message.command == "NOTICE"
        if _from_server(message):
            # A server notice to a room (history replayed as "[12:00:00] <bob> hi" to
            # clients without batch) belongs in that room; other server notices do not.
            room = self.buffer(target) if is_room_name(target) else None
            if room is None and casefold(sender) == casefold(NICKSERV):
                self._nickserv_notice(text, now)
                return []
            line = Line(now, Style.NOTICE, text, nick=sender or "server")
            self.add(room or self.server, line)
            return []
        if own and message.source and "!" in message.source:
            self.userhost = message.source.split("!", 1)[1]  # echo-message shows our prefix
        style, text = _message_style(text, notice)
        if style is None:
            return []
        buffer = self._buffer_for_message(target, sender, own, notice)
        if buffer.holds(message.tags.get("msgid", "")):
            return []  # already fetched as history (a page that raced a live message)
        private = buffer.kind is Kind.PRIVATE and not own
        highlight = not own and (private or _mentions(text, self.nick))
        if not own:
            buffer.spoke(sender)
        msgid = message.tags.get("msgid", "")
        line = Line(now, style, text, nick=sender, highlight=highlight, own=own, msgid=msgid)
        self.add(buffer, line, activity=not notice or private)
        if buffer.kind is not Kind.SERVER:
            buffer.history.saw(line)
        return []

    def _nickserv_notice(self, text: str, now: datetime) -> None:
        """Account replies go where the user is looking; a rename warning as loud as a mention."""
        text = _IDENTIFY_HINT.sub("type /login PASSWORD", text)
        urgent = "registered nickname" in text.lower()
        line = Line(now, Style.NOTICE, text, nick=NICKSERV, highlight=urgent)
        self.add(self.shown, line, activity=True)
        if self.shown is not self.server:
            self.add(self.server, replace(line, highlight=False))  # one alert is enough

    def _buffer_for_message(self, target: str, sender: str, own: bool, notice: bool) -> Buffer:
        if is_room_name(target):
            return self._open(target, Kind.ROOM)
        other = target if own else sender
        existing = self.buffer(other)
        if notice and existing is None:
            return self.shown  # a notice does not open a conversation (irssi does the same)
        return existing or self._open(other, Kind.PRIVATE)

    # JOIN <room> [account realname]   (extended-join adds the last two)
    def _on_join(self, message: Message, now: datetime) -> list[bytes]:
        room = message.param(0)
        sender = nick_of(message.source)
        if self.is_me(message.source):
            if message.source and "!" in message.source:
                self.userhost = message.source.split("!", 1)[1]  # how others see us
            is_new = self.buffer(room) is None  # e.g. /quote JOIN: show it, as /join would
            buffer = self._open(room, Kind.ROOM)
            if is_new:
                self.show(buffer)
            buffer.joined = buffer.wanted = True
            buffer.members.clear()
            self.add(buffer, Line(now, Style.EVENT, f"You joined {buffer.name}", nick=sender))
            return self._fetch_latest(buffer)
        found = self.buffer(room)
        if found is None:
            return []
        account = message.param(1) if len(message.params) > 2 else ""  # extended-join
        found.members[casefold(sender)] = Member(sender, account="" if account == "*" else account)
        text = f"{sender} ({_userhost(message.source)}) joined {found.name}"
        self.add(found, Line(now, Style.EVENT, text, nick=sender))
        return []

    # ACCOUNT <account | *>   (account-notify)
    def _on_account(self, message: Message, now: datetime) -> list[bytes]:
        account = message.param(0)
        folded = casefold(nick_of(message.source))
        for buffer in self.buffers.values():
            member = buffer.members.get(folded)
            if member is not None:
                member.account = "" if account == "*" else account
        return []

    # PART <room> [:<reason>]
    def _on_part(self, message: Message, now: datetime) -> list[bytes]:
        buffer = self.buffer(message.param(0))
        if buffer is None:
            return []
        sender = nick_of(message.source)
        reason = f" ({message.param(1)})" if message.param(1) else ""
        if self.is_me(message.source):
            buffer.joined = buffer.wanted = False
            buffer.members.clear()
            text = f"You left {buffer.name}{reason}"
        else:
            buffer.members.pop(casefold(sender), None)
            text = f"{sender} left {buffer.name}{reason}"
        self.add(buffer, Line(now, Style.EVENT, text, nick=sender))
        return []

    # KICK <room> <nick> [:<reason>]
    def _on_kick(self, message: Message, now: datetime) -> list[bytes]:
        buffer = self.buffer(message.param(0))
        if buffer is None:
            return []
        kicked, by = message.param(1), nick_of(message.source)
        reason = f" ({message.param(2)})" if message.param(2) else ""
        if casefold(kicked) == casefold(self.nick):
            buffer.joined = buffer.wanted = False
            buffer.members.clear()
            text = f"You were kicked from {buffer.name} by {by}{reason}"
            self.add(buffer, Line(now, Style.ERROR, text, highlight=True))
            return []
        buffer.members.pop(casefold(kicked), None)
        self.add(buffer, Line(now, Style.EVENT, f"{kicked} was kicked by {by}{reason}"))
        return []

    # QUIT [:<reason>]
    def _on_quit(self, message: Message, now: datetime) -> list[bytes]:
        sender = nick_of(message.source)
        folded = casefold(sender)
        reason = f" ({message.param(0)})" if message.param(0) else ""
        for buffer in list(self.buffers.values()):
            if buffer.members.pop(folded, None) is not None or buffer.key == folded:
                self.add(buffer, Line(now, Style.EVENT, f"{sender} quit{reason}", nick=sender))
        return []

    # NICK <newnick>
    def _on_nick(self, message: Message, now: datetime) -> list[bytes]:
        old, new = nick_of(message.source), message.param(0)
        if not new:
            return []
        if self.is_me(message.source):
            self.nick = self.wanted_nick = new
            text = f"You are now known as {new}"
            self.add(self.server, Line(now, Style.EVENT, text))
        else:
            text = f"{old} is now known as {new}"
        self._rename(old, new, text, now)
        return []

    def _rename(self, old: str, new: str, text: str, now: datetime) -> None:
        folded = casefold(old)
        for buffer in list(self.buffers.values()):
            member = buffer.members.pop(folded, None)
            if member is not None:
                buffer.members[casefold(new)] = Member(new, member.prefixes)
                buffer.recent = [new if casefold(r) == folded else r for r in buffer.recent]
            if buffer.kind is Kind.PRIVATE and buffer.key == folded:
                self._rename_private(buffer, new)
            if member is not None or buffer.key == casefold(new):
                self.add(buffer, Line(now, Style.EVENT, text))

    def _rename_private(self, buffer: Buffer, new: str) -> None:
        if casefold(new) in self.buffers:
            return  # a conversation with the new nick is already open: keep both
        was_shown = self.current == buffer.key
        old_key = buffer.key
        buffer.name = new
        # Rebuilt in the same order: buffer numbers (Alt-1…9) never move on a nick change.
        self.buffers = {
            (buffer.key if key == old_key else key): b for key, b in self.buffers.items()
        }
        if was_shown:
            self.current = buffer.key

    # TOPIC <room> :<topic>
    def _on_topic(self, message: Message, now: datetime) -> list[bytes]:
        buffer = self.buffer(message.param(0))
        if buffer is None:
            return []
        buffer.topic = message.param(1)
        who = nick_of(message.source)
        text = f"{who} changed the topic to: {buffer.topic}" if buffer.topic else ""
        self.add(buffer, Line(now, Style.EVENT, text or f"{who} cleared the topic"))
        return []

    # MODE <target> <modes> [args...]
    def _on_mode(self, message: Message, now: datetime) -> list[bytes]:
        target = message.param(0)
        who = nick_of(message.source) or "The server"
        change = " ".join(message.params[1:])
        buffer = self.buffer(target) if is_room_name(target) else self.server
        if buffer is None:
            return []
        if buffer.kind is Kind.ROOM:
            self._apply_room_modes(buffer, message.params[1:])
        self.add(buffer, Line(now, Style.EVENT, f"{who} sets mode {change} on {target}"))
        return []

    def _apply_room_modes(self, buffer: Buffer, params: tuple[str, ...]) -> None:
        """Follow +o/-o/+v/-v (PREFIX modes) so the nick list shows who is what."""
        if not params:
            return
        arguments = iter(params[1:])
        adding = True
        type_a, type_b, type_c = self.chanmodes
        for mode in params[0]:
            if mode in "+-":
                adding = mode == "+"
            elif mode in self.prefixes.modes:
                self._set_prefix(buffer, next(arguments, ""), mode, adding)
            elif mode in type_a + type_b or (mode in type_c and adding):
                next(arguments, None)  # a mode with a parameter we do not track

    def _set_prefix(self, buffer: Buffer, nick: str, mode: str, adding: bool) -> None:
        member = buffer.members.get(casefold(nick))
        if member is None:
            return
        symbol = self.prefixes.symbols[self.prefixes.modes.index(mode)]
        held = set(member.prefixes) | {symbol} if adding else set(member.prefixes) - {symbol}
        member.prefixes = "".join(s for s in self.prefixes.symbols if s in held)

    # INVITE <nick> <room>
    def _on_invite(self, message: Message, now: datetime) -> list[bytes]:
        who, room = nick_of(message.source), message.param(1)
        text = f"{who} invites you to {room} (type /join {room})"
        self.add(self.shown, Line(now, Style.EVENT, text, highlight=True))
        return []

    # FAIL <command> <code> [<context>...] :<description>   (IRCv3 standard replies)
    def _on_fail(self, message: Message, now: datetime) -> list[bytes]:
        command, description = message.param(0), message.params[-1]
        buffer = self.shown
        if command == "CHATHISTORY":
            # context: <subcommand> <target> when the failure is about one target; else
            # it answers a request made from the shown buffer. Either way it is answered.
            found = self.buffer(message.param(3)) if len(message.params) > 4 else None
            buffer = found or self.shown
            if buffer.history.pending:
                buffer.history.pending.popleft()
            text = f"History is not available here: {description}"
        else:
            text = f"{command} failed: {description}"
        self.add(buffer, Line(now, Style.ERROR, text))
        return []

    # ---- history ------------------------------------------------------------------------

    # BATCH +<ref> <kind> [<params>...]  /  BATCH -<ref>
    def _on_batch(self, message: Message, now: datetime) -> list[bytes]:
        reference = message.param(0)
        if reference.startswith("+"):
            self._batches[reference[1:]] = Batch(message.param(1), message.param(2))
        elif reference.startswith("-"):
            batch = self._batches.pop(reference[1:], None)
            if batch is not None and batch.kind == CHATHISTORY_BATCH and batch.target:
                self._finish_history(batch, now)
        return []

    def _finish_history(self, batch: Batch, now: datetime) -> None:
        kind = Kind.ROOM if is_room_name(batch.target) else Kind.PRIVATE
        buffer = self.buffer(batch.target) or self._open(batch.target, kind)
        state = buffer.history
        request = state.pending.popleft() if state.pending else None
        lines = [line for m, when in batch.messages if (line := self._history_line(m, when))]
        for line in lines[:1]:  # a batch is oldest first
            state.saw(line)
        older = request is not None and request.paging
        for line in buffer.merge(lines, older=older):
            self.new_lines.append((buffer, line))
        if request is not None and len(batch.messages) < request.limit:
            state.exhausted = True
            if request.paging:
                self._say_history_end(buffer, now)

    def _history_line(self, message: Message, when: datetime) -> Line | None:
        """A replayed PRIVMSG or NOTICE as a history line; None for anything else."""
        if message.command not in ("PRIVMSG", "NOTICE"):
            return None
        style, text = _message_style(message.param(1), message.command == "NOTICE")
        if style is None:
            return None
        sender = nick_of(message.source)
        account = message.tags.get("account")
        own = self.is_me(message.source) or (account is not None and account == self.account)
        highlight = not own and _mentions(text, self.nick)  # shown, never counted
        msgid = message.tags.get("msgid", "")
        return Line(
            when,
            style,
            printable(text),
            nick=printable(sender),
            highlight=highlight,
            own=own,
            msgid=msgid,
            history=True,
        )

    def _say_history_end(self, buffer: Buffer, now: datetime) -> None:
        """Say there is no more history, once per buffer, above the oldest line."""
        state = buffer.history
        if state.end_shown:
            return
        state.end_shown = True
        first = buffer.lines[0].time - timedelta(microseconds=1) if buffer.lines else now
        text = f"No more history in {buffer.name}."
        for line in buffer.merge([Line(first, Style.INFO, text, history=True)]):
            self.new_lines.append((buffer, line))

    def can_fetch_history(self) -> bool:
        # Without batch, nothing would mark where an answer ends (or that it was empty).
        return {"batch", "draft/chathistory"} <= self.caps

    def _fetch_latest(self, buffer: Buffer) -> list[bytes]:
        """On join, with draft/chathistory: ask for the latest page (the server sends none)."""
        if not self.can_fetch_history():
            return []
        limit = min(commands.HISTORY_PAGE, self.chathistory_limit)
        buffer.history.pending.append(HistoryRequest(limit, paging=False))
        return [build("CHATHISTORY", ["LATEST", buffer.name, "*", str(limit)])]

    def request_history(self, now: datetime, limit: int = 0) -> list[bytes]:
        """``/history [N]`` or PageUp at the top: the page before the oldest known message."""
        buffer = self.shown
        if buffer.kind is Kind.SERVER:
            self.note("History is kept for rooms and conversations: use this in one.", now)
            return []
        if not self.registered:
            self.note("Not connected yet: no history to fetch.", now, error=True)
            return []
        if not self.can_fetch_history():
            text = "This server does not offer history (draft/chathistory)."
            self.note(text, now, error=True)
            return []
        state = buffer.history
        if state.exhausted:
            self._say_history_end(buffer, now)
            return []
        if state.pending:
            return []  # one page at a time: PageUp held down must not flood the server
        limit = min(limit or commands.HISTORY_PAGE, self.chathistory_limit)
        state.pending.append(HistoryRequest(limit, paging=True))
        reference = state.reference()
        if reference is None:
            return [build("CHATHISTORY", ["LATEST", buffer.name, "*", str(limit)])]
        return [build("CHATHISTORY", ["BEFORE", buffer.name, reference, str(limit)])]


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


Handler = Callable[[Session, Message, datetime], list[bytes]]

_HANDLERS: dict[str, Handler] = {
    "PING": Session._on_ping,
    "ERROR": Session._on_error,
    "CAP": Session._on_cap,
    "PRIVMSG": Session._on_message,
    "NOTICE": Session._on_message,
    "JOIN": Session._on_join,
    "PART": Session._on_part,
    "KICK": Session._on_kick,
    "QUIT": Session._on_quit,
    "NICK": Session._on_nick,
    "TOPIC": Session._on_topic,
    "MODE": Session._on_mode,
    "INVITE": Session._on_invite,
    "AUTHENTICATE": Session._on_authenticate,
    "BATCH": Session._on_batch,
    "FAIL": Session._on_fail,
    "ACCOUNT": Session._on_account,
}

_NUMERIC_HANDLERS: dict[str, Handler] = {
    n.RPL_WELCOME: Session._on_welcome,
    n.RPL_ISUPPORT: Session._on_isupport,
    n.ERR_NICKNAMEINUSE: Session._on_nick_refused,
    n.RPL_NAMREPLY: Session._on_names,
    n.RPL_ENDOFNAMES: Session._on_end_of_names,
    n.RPL_TOPIC: Session._on_topic_reply,
    n.RPL_NOTOPIC: Session._on_topic_reply,
    n.RPL_LOGGEDIN: Session._on_logged_in,
    n.RPL_NOWAWAY: Session._on_away_state,
    n.RPL_UNAWAY: Session._on_away_state,
    "396": Session._on_visible_host,  # RPL_VISIBLEHOST (not in numerics.py)
    n.RPL_LOGGEDOUT: Session._on_logged_out,
    n.RPL_SASLSUCCESS: Session._on_sasl_done,
    n.ERR_SASLALREADY: Session._on_sasl_done,
    n.ERR_SASLABORTED: Session._on_sasl_done,
    n.ERR_SASLFAIL: Session._on_sasl_failed,
    n.ERR_SASLTOOLONG: Session._on_sasl_failed,
    n.ERR_NICKLOCKED: Session._on_sasl_failed,
}
