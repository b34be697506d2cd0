"""Modern chat on IRCv3: read markers, replies, reactions, typing, redactions, multiline.

Rules:
- Read markers (``draft/read-marker``, extensions/read-marker.md): a ``MARKREAD
  <target> timestamp=…`` from the server moves the buffer's marker (it only
  ever moves forward) and recounts its unread messages from it, so reading on
  one device clears the count on every other. Showing a buffer, a live message
  in the shown buffer and ``/markread`` send the newest message's time.
- Replies (``+draft/reply``, also ``+reply``), reactions (``+draft/react`` /
  ``+draft/unreact`` on TAGMSG) and typing (``+typing``) ride on client-only
  tags; reactions are counted per message (reactions.py), typing follows
  typing.py's throttle and expiry.
- Redactions (``draft/message-redaction``): ``REDACT <target> <msgid> [reason]``
  of a message we hold blanks its text and marks it; of a reaction, removes
  it; of anything else, is ignored (the spec says so). An edit is a REDACT of
  our message followed by the corrected text as a reply to it (no edit spec has
  landed): a message replying to a redacted message by the same author is shown
  as that message, edited.
- Multiline (``draft/multiline``): the lines of a batch become one message, joined
  by line feeds except where ``draft/multiline-concat`` says to join directly; the
  batch's own tags (msgid, time, reply) are the message's.
- On connecting, conversations that had messages since we last saw anything are
  listed (``CHATHISTORY TARGETS``) and their latest page fetched, so private
  messages sent while we were away appear.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from securechat.client import commands, splitting
from securechat.client.buffers import Buffer, Kind, Line, Style, format_timestamp, printable
from securechat.client.history import History
from securechat.client.message_commands import Act, Ref
from securechat.client.reactions import Reactions, summary
from securechat.client.session_base import Batch, nick_of, reply_of, server_time
from securechat.protocol.message import Message, build, build_exact
from securechat.protocol.names import casefold, is_room_name

REACT, UNREACT, TYPING = "+draft/react", "+draft/unreact", "+typing"
MULTILINE_BATCH = "draft/multiline"
CONCAT_TAG = "draft/multiline-concat"
TARGETS_BATCH = "draft/chathistory-targets"
FIRST_LOOKBACK = timedelta(days=7)  # what a fresh start asks about private conversations
# A busy room on screen must not make us send a MARKREAD per line (flood control would
# drop us): live lines mark the buffer read at most this often; tick() sends what waits.
MARKREAD_INTERVAL = timedelta(seconds=3)


def parse_marker(value: str) -> datetime | None:
    """``timestamp=2026-01-02T12:00:00.000Z`` -> a datetime; ``*`` or junk -> None."""
    stamp = value.removeprefix("timestamp=")
    if stamp == value or not stamp:
        return None
    try:
        parsed = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def join_multiline(messages: list[Message]) -> str:
    """The combined text of a multiline batch (multiline.md "combined message value")."""
    text = ""
    for index, message in enumerate(messages):
        glue = "" if index == 0 or CONCAT_TAG in message.tags else "\n"
        text += glue + message.param(1)
    return text


class Features(History):
    """Handlers and actions for the IRCv3 chat features (the tables are session.py's)."""

    # ---- read markers -------------------------------------------------------------------

    # MARKREAD <target> <timestamp=… | *>
    def _on_markread(self, message: Message, now: datetime) -> list[bytes]:
        buffer = self.buffer(message.param(0))
        marker = parse_marker(message.param(1))
        if buffer is None or marker is None:
            return []
        if buffer.read_marker is None or marker > buffer.read_marker:
            buffer.read_marker = marker
            buffer.recount(now_shown=buffer is self.shown)
            buffer.generation += 1  # the status shows it: redraw
        # A buffer on screen is read up to its newest line, whatever another device says.
        return self.read_lines(buffer) if buffer is self.shown else []

    def read_lines(self, buffer: Buffer) -> list[bytes]:
        """``MARKREAD`` for the newest message of ``buffer`` when the server has not got it."""
        if "draft/read-marker" not in self.caps or not self.registered or self.account is None:
            return []  # markers are kept per account: without one, ACCOUNT_REQUIRED
        if buffer.kind is Kind.SERVER:
            return []
        latest = buffer.latest_time()
        if latest is None or (buffer.read_marker is not None and latest <= buffer.read_marker):
            return []
        buffer.read_marker = latest  # the server confirms it; do not ask twice meanwhile
        return [build("MARKREAD", [buffer.name, f"timestamp={format_timestamp(latest)}"])]

    def read_soon(self, buffer: Buffer, now: datetime) -> list[bytes]:
        """A live line in the shown buffer: MARKREAD now, or on a tick within the interval."""
        last = self._read_sent.get(buffer.key)
        if last is not None and now - last < MARKREAD_INTERVAL:
            self._read_waiting.add(buffer.key)
            return []
        sent = self.read_lines(buffer)
        if sent:
            self._read_sent[buffer.key] = now
        return sent

    def _reads_due(self, now: datetime) -> list[bytes]:
        """Delayed MARKREADs whose interval has passed (for the buffer still on screen)."""
        sent: list[bytes] = []
        for key in list(self._read_waiting):
            last = self._read_sent.get(key)
            if last is not None and now - last < MARKREAD_INTERVAL:
                continue
            self._read_waiting.discard(key)
            buffer = self.buffers.get(key)
            if buffer is not None and buffer is self.shown:
                lines = self.read_lines(buffer)
                sent += lines
                if lines:
                    self._read_sent[key] = now
        return sent

    def show(self, buffer: Buffer) -> None:
        """Showing a buffer reads it, on every device."""
        self._separate_unread(buffer)
        super().show(buffer)
        self.outbox += self.read_lines(buffer)

    def drain_outbox(self) -> list[bytes]:
        lines, self.outbox = self.outbox, []
        return lines

    def _separate_unread(self, buffer: Buffer) -> None:
        """``── N unread messages since 09:14 ──`` where the read marker is (one per buffer)."""
        found = buffer.unread_since()
        if found is None:
            return
        count, since = found
        local = since.astimezone()
        newest = (buffer.latest_time() or since).astimezone()
        when = local.strftime("%H:%M" if local.date() == newest.date() else "%a %d %b %H:%M")
        noun = "message" if count == 1 else "messages"
        text = f"── {count} unread {noun} since {when} ──"
        line = Line(since + timedelta(microseconds=1), Style.INFO, text)
        buffer.place_separator(line)
        self.new_lines.append((buffer, line))

    # ---- tags: typing, reactions --------------------------------------------------------

    def _conversation(self, target: str, sender: str, own: bool) -> Buffer | None:
        """The buffer a TAGMSG or REDACT belongs to; None when we have none for it."""
        if is_room_name(target):
            return self.buffer(target)
        return self.buffer(target if own else sender)

    # TAGMSG <target>   (+typing, +draft/react, +draft/unreact)
    def _on_tagmsg(self, message: Message, now: datetime) -> list[bytes]:
        sender = nick_of(message.source)
        own = self.is_me(message.source)
        buffer = self._conversation(message.param(0), sender, own)
        if buffer is None:
            return []
        typing = message.tags.get(TYPING)
        if typing and not own:
            buffer.typing.update(sender, typing, now)
        self._apply_reaction(buffer, message)
        return []

    def _apply_reaction(self, buffer: Buffer, message: Message) -> bool:
        """A react or unreact tag on ``message``: count it; True when something changed."""
        parent = reply_of(message)
        react, unreact = message.tags.get(REACT), message.tags.get(UNREACT)
        if not parent or not (react or unreact):
            return False
        sender = nick_of(message.source)
        if unreact:
            found = buffer.reactions.get(parent)
            changed = found is not None and found.remove(sender, unreact)
        else:
            if not buffer.holds(parent):
                return False  # only for messages we hold: bounded by the scrollback
            reactions = buffer.reactions.setdefault(parent, Reactions())
            changed = reactions.add(sender, react or "", message.tags.get("msgid", ""))
        if changed:
            buffer.generation += 1
            self._say_reaction(buffer, parent, sender, react or unreact or "", bool(unreact))
        return changed

    def _say_reaction(self, buffer: Buffer, msgid: str, who: str, text: str, taken: bool) -> None:
        """For line mode: ``bob reacted 👍 to alice's message from 14:02 (👍 2)``."""
        line = buffer.find(msgid)
        if line is None:
            return
        found = buffer.reactions.get(msgid)
        counts = summary(found.counts(self.nick)) if found is not None else ""
        verb = "took back" if taken else "reacted"
        stamp = line.time.astimezone().strftime("%H:%M")
        event = f"{who} {verb} {text} to {line.nick}'s message from {stamp}"
        event += f" ({counts})" if counts else ""
        self.new_lines.append((buffer, Line(line.time, Style.EVENT, printable(event))))

    def _shown_target(self) -> str | None:
        shown = self.shown
        return None if shown.kind is Kind.SERVER else shown.name

    def typed(self, text: str, now: datetime) -> list[bytes]:
        """The input line changed: a ``+typing`` TAGMSG when the throttle says one is due."""
        target = self._shown_target()
        if target is None or "message-tags" not in self.caps or not self.registered:
            return []
        state = self.typing_throttle.edited(target, text, now)
        return [_typing_line(target, state)] if state else []

    def typing_over(self) -> None:
        """The input was sent: typing ends without a notification."""
        target = self._shown_target()
        if target is not None:
            self.typing_throttle.sent_message(target)

    def tick(self, now: datetime) -> tuple[list[bytes], bool]:
        """A second passed: due typing notifications and delayed MARKREADs, and whether anyone
        stopped typing."""
        lines = self._reads_due(now)
        if "message-tags" in self.caps and self.registered:
            for key, state in self.typing_throttle.tick(now):
                buffer = self.buffers.get(key)
                if buffer is not None:
                    lines.append(_typing_line(buffer.name, state))
        changed = any(buffer.typing.expire(now) for buffer in list(self.buffers.values()))
        return lines, changed

    # ---- redaction ----------------------------------------------------------------------

    # REDACT <target> <msgid> [:<reason>]
    def _on_redact(self, message: Message, now: datetime) -> list[bytes]:
        sender = nick_of(message.source)
        buffer = self._conversation(message.param(0), sender, self.is_me(message.source))
        if buffer is not None:
            self._redact(buffer, message.param(1), sender, message.param(2), now)
        return []

    def _redact(self, buffer: Buffer, msgid: str, by: str, reason: str, now: datetime) -> None:
        line = buffer.find(msgid)
        if line is None:
            for reactions in buffer.reactions.values():
                if reactions.remove_msgid(msgid):
                    buffer.generation += 1
                    return
            return  # not a message we hold: ignored, as the spec says
        if line.redacted:
            return
        who = "" if casefold(by) == casefold(line.nick) or not by else f" by {by}"
        text = f"(message deleted{who}{': ' + reason if reason else ''})"
        buffer.change(line, replace(line, text=text, redacted=True))
        buffer.reactions.pop(msgid, None)
        # Line mode prints what happened; the screen shows the line changed in place.
        stamp = line.time.astimezone().strftime("%H:%M")
        whose = "a" if not who else f"{line.nick}'s"
        event = f"{by or line.nick} deleted {whose} message from {stamp}"
        event += f": {reason}" if reason else ""
        self.new_lines.append((buffer, Line(now, Style.EVENT, event)))

    # ---- multiline and history extras --------------------------------------------------

    def _open_batch(self, message: Message) -> None:
        reference = message.param(0)[1:]
        batch = Batch(message.param(1), message.param(2), opened_by=message)
        batch.parent = message.tags.get("batch", "")
        self._batches[reference] = batch

    def _combine_multiline(self, batch: Batch, now: datetime) -> tuple[Message, datetime] | None:
        """A closed ``draft/multiline`` batch as one PRIVMSG with the batch's tags and time."""
        opener = batch.opened_by
        lines = [m for m, _ in batch.messages if m.command == "PRIVMSG"]
        if opener is None or not lines:
            return None
        tags = {k: v for k, v in opener.tags.items() if k != "batch"}
        combined = Message("PRIVMSG", (batch.target, join_multiline(lines)), opener.source, tags)
        return combined, server_time(opener, now)

    def _apply_history_extras(self, buffer: Buffer, batch: Batch, now: datetime) -> None:
        """Reactions and redactions inside a history batch, once its messages are merged."""
        for message, _ in batch.messages:
            if message.command == "REDACT":
                by = nick_of(message.source)
                self._redact(buffer, message.param(1), by, message.param(2), now)
            elif message.command in ("TAGMSG", "PRIVMSG"):
                self._apply_reaction(buffer, message)

    # ---- acting on a message ------------------------------------------------------------

    def _resolve(self, buffer: Buffer, ref: Ref) -> Line | str:
        """The line a reference names, or why there is none."""
        said = [line for line in buffer.lines if line.msgid and line.nick and not line.redacted]
        if ref.own:
            mine = [line for line in said if line.own]
            return mine[-1] if mine else "You have not said anything here that can be changed."
        if ref.position:
            if ref.position > len(said):
                return f"There are only {len(said)} messages here."
            return said[-ref.position]
        theirs = [line for line in said if casefold(line.nick) == casefold(ref.nick)]
        return theirs[-1] if theirs else f"No message from {ref.nick} here."

    def act(self, act: Act, now: datetime) -> list[bytes]:
        """/reply, /react, /unreact, /edit, /delete, /markread and /register
        (the register act is here because the server's caps decide how it is sent)."""
        if act.kind == "register":
            return self._register(act.text, now)
        buffer = self.shown
        if act.kind == "markread":
            sent = self.read_lines(buffer)
            self.note("Marked read." if sent else "Nothing new to mark read.", now)
            return sent
        found = self._resolve(buffer, act.ref)
        if isinstance(found, str):
            self.note(found, now, error=True)
            return []
        return self._act_on(buffer, found, act, now)

    def _act_on(self, buffer: Buffer, line: Line, act: Act, now: datetime) -> list[bytes]:
        needs = {"reply": "message-tags", "react": "message-tags", "unreact": "message-tags"}
        cap = needs.get(act.kind, "draft/message-redaction")
        if cap not in self.caps:
            self.note(f"This server does not offer {cap}: that was not sent.", now, error=True)
            return []
        if act.kind in ("react", "unreact"):
            tags = {"+draft/reply": line.msgid, REACT if act.kind == "react" else UNREACT: act.text}
            return [build_exact("TAGMSG", [buffer.name], tags=tags)]
        if act.kind == "reply":
            return self._say_reply(buffer, line.msgid, act.text, now)
        if act.kind == "edit" and not line.own:
            self.note("You can only edit your own messages.", now, error=True)
            return []
        # An edit's redaction says so (the README's convention); a delete's reason is the user's.
        reason = ["edited"] if act.kind == "edit" else [act.text] if act.text else []
        redact = build_exact("REDACT", [buffer.name, line.msgid, *reason])
        if act.kind == "delete":
            return [redact]
        return [redact, *self._say_reply(buffer, line.msgid, act.text, now)]

    def _say_reply(self, buffer: Buffer, msgid: str, text: str, now: datetime) -> list[bytes]:
        """``text`` replying to ``msgid``, split like any long message; the first piece replies."""
        limit = splitting.text_budget(self.source, "PRIVMSG", buffer.name)
        pieces = splitting.split_text(text, limit)
        replies = [msgid] + [""] * (len(pieces) - 1)
        tagged = [{"+draft/reply": r} if r else None for r in replies]
        sent = [
            build_exact("PRIVMSG", [buffer.name, p], tags=t)
            for p, t in zip(pieces, tagged, strict=True)
        ]
        self.typing_throttle.sent_message(buffer.name)
        if "echo-message" not in self.caps:
            for piece, reply in zip(pieces, replies, strict=True):
                own = Line(now, Style.MESSAGE, piece, nick=self.nick, own=True, reply_to=reply)
                self.add(buffer, own)
        return sent

    def _register(self, words: str, now: datetime) -> list[bytes]:
        """IRCv3 REGISTER where offered (``draft/account-registration``), else NickServ."""
        password, _, email = words.partition(" ")
        if "draft/account-registration" in self.caps:
            return [build_exact("REGISTER", [self.nick, email or "*", password])]
        return [commands.register_via_nickserv(password)]

    # REGISTER SUCCESS|VERIFICATION_REQUIRED <account> :<message>  /  VERIFY SUCCESS …
    def _on_register_reply(self, message: Message, now: datetime) -> list[bytes]:
        outcome, account, text = message.param(0), message.param(1), message.params[-1]
        if outcome == "VERIFICATION_REQUIRED":
            text = f"{text} Then type /verify {account} CODE."
        elif outcome == "SUCCESS":
            self.account = account or self.account
        self.note(text, now)
        return []

    # ---- missed conversations -----------------------------------------------------------

    def _ask_missed_targets(self, now: datetime) -> list[bytes]:
        """After welcome: which conversations had messages since we last saw one."""
        if not self.can_fetch_history():
            return []
        times = [t for b in self.buffers.values() if (t := b.latest_time()) is not None]
        since = max(times) if times else now - FIRST_LOOKBACK
        params = ["TARGETS", f"timestamp={format_timestamp(since)}"]
        params += [f"timestamp={format_timestamp(now)}", str(self.chathistory_limit)]
        return [build("CHATHISTORY", params)]

    def _finish_targets(self, batch: Batch) -> list[bytes]:
        """``CHATHISTORY TARGETS <target> <time>`` lines: fetch each private conversation."""
        sent = []
        for message, _ in batch.messages:
            target = message.param(1)
            if message.command != "CHATHISTORY" or not target or is_room_name(target):
                continue  # rooms: their history comes with the join
            buffer = self._open(target, Kind.PRIVATE)
            sent += self._fetch_latest(buffer)
            if "draft/read-marker" in self.caps and self.account is not None:
                sent.append(build("MARKREAD", [buffer.name]))  # private markers are asked for
        return sent


def _typing_line(target: str, state: str) -> bytes:
    return build("TAGMSG", [target], tags={TYPING: state})
