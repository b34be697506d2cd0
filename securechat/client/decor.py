"""How a line is shown beside the others: the quote it replies to, edits, deletions, reactions.

Pure: both the full-screen client and line mode ask here, so they agree.

Rules:
- A reply shows the start of the message it answers (``↪ bob: the original…``); an
  answer to a message we do not hold says so rather than guessing.
- An edit is a message that replies to a deleted message by the same author (the
  edit is sent as REDACT plus a reply-linked resend): it is marked "edited", shows no
  quote, and the deleted original is not shown at all. Any other deleted message
  stays in place, marked deleted, without its text.
- Reactions are summed per text under the message they answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from securechat.client.buffers import Buffer, Line
from securechat.client.reactions import summary
from securechat.protocol.names import casefold

QUOTE_CHARS = 60  # of the original shown in a reply's quote


@dataclass(slots=True, frozen=True)
class Decor:
    quote: str = ""  # "bob: the original…" for a reply
    edited: bool = False
    hidden: bool = False  # a deleted original whose edit is shown instead
    reactions: str = ""  # "👍 2  🎉 1"
    mine: tuple[str, ...] = ()  # reaction texts we gave (the UI can take them back)


def same_author(a: Line, b: Line) -> bool:
    if a.account and b.account:
        return a.account == b.account
    return casefold(a.nick) == casefold(b.nick)


def shorten(text: str, limit: int = QUOTE_CHARS) -> str:
    first = text.split("\n", 1)[0]
    cut = first if len(first) <= limit else first[: limit - 1].rstrip() + "…"
    return cut + (" …" if "\n" in text and cut == first else "")


class Decorator:
    """Decorations for the lines of one buffer, computed once per drawing."""

    def __init__(self, buffer: Buffer, me: str) -> None:
        self.buffer = buffer
        self.me = me
        self.by_msgid = {line.msgid: line for line in buffer.lines if line.msgid}
        self.replaced = {
            line.reply_to for line in buffer.lines if line.reply_to and self._edits(line)
        }

    def _edits(self, line: Line) -> bool:
        parent = self.by_msgid.get(line.reply_to)
        return parent is not None and parent.redacted and same_author(parent, line)

    def decor(self, line: Line) -> Decor:
        if line.redacted:
            return Decor(hidden=line.msgid in self.replaced)
        quote = ""
        edited = False
        if line.reply_to:
            parent = self.by_msgid.get(line.reply_to)
            if parent is None:
                quote = "an earlier message"
            elif self._edits(line):
                edited = True
            elif parent.redacted:
                quote = "a deleted message"
            else:
                quote = f"{parent.nick}: {shorten(parent.text)}"
        found = self.buffer.reactions.get(line.msgid) if line.msgid else None
        counts = found.counts(self.me) if found is not None else []
        mine = tuple(c.text for c in counts if c.mine)
        return Decor(quote, edited, False, summary(counts), mine)
