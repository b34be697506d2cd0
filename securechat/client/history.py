"""History: ``chathistory`` batches merged into their buffers, and asking for pages."""

from __future__ import annotations

from datetime import datetime, timedelta

from securechat.client import commands
from securechat.client.buffers import (
    Buffer,
    HistoryRequest,
    Kind,
    Line,
    Style,
    printable,
    printable_block,
)
from securechat.client.session_base import (
    Batch,
    SessionBase,
    _mentions,
    _message_style,
    nick_of,
    reply_of,
)
from securechat.protocol.message import Message, build
from securechat.protocol.names import is_room_name


class History(SessionBase):
    """Collects chathistory batches and requests pages (draft/chathistory)."""

    # ---- history ------------------------------------------------------------------------

    def _finish_history(self, batch: Batch, now: datetime) -> tuple[Buffer, HistoryRequest | None]:
        """Merge a closed ``chathistory`` batch; its buffer and the request it answered."""
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
        return buffer, request

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
            printable_block(text),
            nick=printable(sender),
            highlight=highlight,
            own=own,
            msgid=msgid,
            history=True,
            reply_to=reply_of(message),
            account=account or "",
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
