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

from collections.abc import Callable
from datetime import datetime

from securechat.client import commands, splitting
from securechat.client.buffers import (
    Kind,
    Line,
    Style,
)
from securechat.client.completion import Edit
from securechat.client.events import Events
from securechat.client.features import MULTILINE_BATCH, TARGETS_BATCH
from securechat.client.registration import Registration
from securechat.client.replies import describe
from securechat.client.session_base import (
    Batch,
    SessionBase,
    _cap_values,
    fallback_nick,
    nick_of,
    server_time,
)
from securechat.protocol import numerics as n
from securechat.protocol.message import Message, build, parse
from securechat.protocol.names import casefold, is_room_name
from securechat.protocol.tags import CHATHISTORY_BATCH

# The parts live in session_base.py, registration.py, history.py and events.py; importers
# may take the public names from here.
__all__ = ["Batch", "Session", "SessionBase", "fallback_nick", "nick_of", "server_time"]


class Session(Registration, Events):
    """All protocol and display state of one client, across reconnects."""

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
        for target, _, _ in outcome.said:
            self.typing_throttle.sent_message(target)
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
        if any(len(t.encode()) > budget for t in texts) or not any(t.strip() for t in texts):
            return None  # too long for one line each, or nothing but blank lines
        self._multiline_refs += 1
        reference = f"ml{self._multiline_refs}"
        sent = [build("BATCH", [f"+{reference}", "draft/multiline", target])]
        tags = {"batch": reference}
        # A blank line goes as one (multiline.md: "Servers MUST NOT reject blank lines").
        sent += [build("PRIVMSG", [target, text], tags=tags) for text in texts]
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
        if outcome.act is not None:
            return self.act(outcome.act, now)
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

    # ---- what the server sends ----------------------------------------------------------

    def receive(self, raw: bytes | str, now: datetime) -> list[bytes]:
        """One line from the server: update state, return any lines to send back."""
        message = parse(raw)
        if message is None:
            return []
        when = server_time(message, now)
        batch = self._batches.get(message.tags.get("batch", ""))
        collected = (CHATHISTORY_BATCH, MULTILINE_BATCH, TARGETS_BATCH)
        if batch is not None and batch.kind in collected and message.command != "BATCH":
            batch.messages.append((message, when))
            return []
        return self._dispatch(message, when)

    def _dispatch(self, message: Message, when: datetime) -> list[bytes]:
        handler = _HANDLERS.get(message.command)
        if handler is not None:
            return handler(self, message, when)
        if message.command.isdigit():
            return self._numeric(message, when)
        return []

    # BATCH +<ref> <kind> [<params>...]  /  BATCH -<ref>
    def _on_batch(self, message: Message, now: datetime) -> list[bytes]:
        reference = message.param(0)
        if reference.startswith("+"):
            self._open_batch(message)
            return []
        batch = self._batches.pop(reference[1:], None) if reference.startswith("-") else None
        if batch is None:
            return []
        if batch.kind == CHATHISTORY_BATCH and batch.target:
            return self._history_closed(batch, now)
        if batch.kind == MULTILINE_BATCH:
            combined = self._combine_multiline(batch, now)
            parent = self._batches.get(batch.parent)
            if combined is None:
                return []
            if parent is not None:  # a multiline message inside history
                parent.messages.append(combined)
                return []
            return self._dispatch(*combined)
        if batch.kind == TARGETS_BATCH:
            return self._finish_targets(batch)
        return []

    def _history_closed(self, batch: Batch, now: datetime) -> list[bytes]:
        buffer, request = self._finish_history(batch, now)
        self._apply_history_extras(buffer, batch, now)
        shown = buffer is self.shown
        if buffer.read_marker is None:
            return self.read_lines(buffer) if shown else []
        buffer.recount(now_shown=shown)
        if request is not None and not request.paging:
            self._separate_unread(buffer)  # what was missed, from the marker
        return self.read_lines(buffer) if shown else []

    def _numeric(self, message: Message, now: datetime) -> list[bytes]:
        special = _NUMERIC_HANDLERS.get(message.command)
        send = special(self, message, now) if special is not None else []
        reply = describe(message)
        if reply is not None:
            self._show_reply(reply, now)
        return send


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
    "TAGMSG": Session._on_tagmsg,
    "REDACT": Session._on_redact,
    "MARKREAD": Session._on_markread,
    "REGISTER": Session._on_register_reply,
    "VERIFY": Session._on_register_reply,
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
