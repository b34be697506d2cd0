"""Reactions to one message (IRCv3 ``+draft/react`` / ``+draft/unreact``), counted. Pure data.

Rules:
- A reaction is a TAGMSG (or PRIVMSG) carrying ``+draft/react=<text>`` and
  ``+draft/reply=<msgid>`` of the message it reacts to; ``+draft/unreact``
  takes one back (client-tags/react.md). One person reacting twice with the same
  text counts once; taking it back removes it.
- A reaction's own msgid is kept: a REDACT of that msgid removes the reaction
  (message-redaction.md names "removing a +draft/react" as a use).
- Bounded: at most ``MAX_REACTIONS`` reactions per message and ``MAX_REACTION_BYTES``
  bytes per reaction (our server's ``max_reaction_bytes``) are kept; the rest is ignored,
  never shown cut. Emoji sequences (ZWJ, variation selectors) are reactions; control
  characters are not.
- Counts are listed in the order each reaction text first appeared (stable on
  screen as people add more).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from securechat.protocol.names import casefold

MAX_REACTIONS = 100  # per message: a flood of reactions cannot grow a buffer without bound
MAX_REACTION_BYTES = 64  # UTF-8: an emoji sequence or a short word; longer is not a reaction
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(slots=True, frozen=True)
class Reaction:
    nick: str
    text: str
    msgid: str = ""  # the reaction's own msgid, for a REDACT of it


@dataclass(slots=True, frozen=True)
class Count:
    text: str
    count: int
    nicks: tuple[str, ...]  # who reacted, in order
    mine: bool  # we are one of them (the UI offers to take it back)


def valid_reaction(text: str) -> bool:
    """A reaction worth showing: some visible text, short, one line."""
    stripped = text.strip()
    fits = len(text.encode()) <= MAX_REACTION_BYTES
    return bool(stripped) and fits and _CONTROL.search(text) is None


@dataclass(slots=True)
class Reactions:
    """Everyone's reactions to one message."""

    items: list[Reaction] = field(default_factory=list)

    def add(self, nick: str, text: str, msgid: str = "") -> bool:
        """Record a reaction; False when it is not new, not valid, or over the bound."""
        if not valid_reaction(text) or len(self.items) >= MAX_REACTIONS:
            return False
        if self._index(nick, text) is not None or (msgid and self._by_msgid(msgid) is not None):
            return False
        self.items.append(Reaction(nick, text, msgid))
        return True

    def remove(self, nick: str, text: str) -> bool:
        """``+draft/unreact``: take back this person's reaction; False when there was none."""
        index = self._index(nick, text)
        if index is None:
            return False
        del self.items[index]
        return True

    def remove_msgid(self, msgid: str) -> bool:
        """A REDACT of a reaction's own msgid; False when no reaction has it."""
        index = self._by_msgid(msgid)
        if index is None:
            return False
        del self.items[index]
        return True

    def rename(self, old: str, new: str) -> None:
        folded = casefold(old)
        self.items = [
            Reaction(new, r.text, r.msgid) if casefold(r.nick) == folded else r for r in self.items
        ]

    def counts(self, me: str) -> list[Count]:
        """One entry per reaction text, in order of first appearance."""
        order: dict[str, list[str]] = {}
        for reaction in self.items:
            order.setdefault(reaction.text, []).append(reaction.nick)
        mine = casefold(me)
        return [
            Count(text, len(nicks), tuple(nicks), any(casefold(n) == mine for n in nicks))
            for text, nicks in order.items()
        ]

    def has(self, nick: str, text: str) -> bool:
        return self._index(nick, text) is not None

    def _index(self, nick: str, text: str) -> int | None:
        folded = casefold(nick)
        for index, reaction in enumerate(self.items):
            if reaction.text == text and casefold(reaction.nick) == folded:
                return index
        return None

    def _by_msgid(self, msgid: str) -> int | None:
        for index, reaction in enumerate(self.items):
            if reaction.msgid == msgid:
                return index
        return None


def summary(counts: list[Count]) -> str:
    """``👍 2  🎉 1`` for a line under the message."""
    return "  ".join(f"{c.text} {c.count}" for c in counts)
