"""What the client shows: buffers of lines, their members and counts. Pure data.

Rules:
- A buffer is the server's, a room's or a private conversation's; it keeps its
  last ``SCROLLBACK_LINES`` lines, who is in it (rooms), the topic, who spoke
  recently (for completion) and its unread and mention counts.
- ``appended`` and ``generation`` let a UI draw only what is new: lines past
  ``appended`` since it last looked, everything again when ``generation`` moved.
- Text from the network goes through ``printable`` before it is stored, so no
  escape sequence from a peer ever reaches a terminal.
- Reactions are kept per message the buffer holds (they go when it scrolls out);
  the read marker (``draft/read-marker``) recounts unread messages: what others
  said after it. A line changed in place (a redaction) moves ``generation``.
- History (lines replayed by the server) is merged in by time, never appended
  blindly: a line whose ``msgid`` the buffer already holds is dropped, so a
  reconnect that replays what was already seen shows nothing twice. A merge
  moves ``generation`` (older lines appear above what the UI drew).
"""

from __future__ import annotations

import heapq
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from securechat.client.reactions import Reactions
from securechat.client.typing import Typing
from securechat.protocol.names import casefold

SCROLLBACK_LINES = 2000


class Kind(StrEnum):
    SERVER = "server"
    ROOM = "room"
    PRIVATE = "private"


class Style(StrEnum):
    MESSAGE = "message"  # <nick> text
    ACTION = "action"  # * nick text
    NOTICE = "notice"  # -nick- text
    EVENT = "event"  # joins, parts, nick changes, topics: -!- text
    INFO = "info"  # replies from the server and the client's own notes
    ERROR = "error"  # something went wrong: a hint or an error numeric


@dataclass(slots=True, frozen=True)
class Line:
    time: datetime
    style: Style
    text: str
    nick: str = ""
    highlight: bool = False  # mentions our nick, or a private message to us
    own: bool = False  # we said it
    msgid: str = ""  # the server's id for the message (IRCv3 message-tags), for de-duplication
    history: bool = False  # replayed by the server (chathistory), not said while we watched
    reply_to: str = ""  # the msgid this message answers (+draft/reply)
    redacted: bool = False  # deleted (draft/message-redaction): the text is gone, the fact stays
    account: str = ""  # the sender's account (account-tag), to tell an edit from a reply

    @property
    def counts(self) -> bool:
        """Someone else said something here: it counts as unread until read."""
        return not self.own and self.style in (Style.MESSAGE, Style.ACTION) and bool(self.nick)


@dataclass(slots=True)
class Member:
    nick: str
    prefixes: str = ""  # e.g. "@+": every status the member has, highest first
    account: str = ""  # the account the member is logged in to (extended-join, account-notify)


@dataclass(slots=True)
class Buffer:
    name: str
    kind: Kind
    lines: deque[Line] = field(default_factory=lambda: deque(maxlen=SCROLLBACK_LINES))
    unread: int = 0
    mentions: int = 0
    topic: str = ""
    members: dict[str, Member] = field(default_factory=dict)  # casefolded nick -> member
    recent: list[str] = field(default_factory=list)  # speakers, most recent first
    joined: bool = False  # the server confirmed we are in the room
    wanted: bool = False  # we want to be in the room (rejoined after a reconnect)
    appended: int = 0  # lines ever added: the UI renders lines past what it has seen
    generation: int = 0  # changes on /clear and history merges: the UI redraws from scratch
    msgids: set[str] = field(default_factory=set)  # msgids of the lines held, for dedup
    history: HistoryState = field(default_factory=lambda: HistoryState())
    reactions: dict[str, Reactions] = field(default_factory=dict)  # parent msgid -> reactions
    read_marker: datetime | None = None  # draft/read-marker: read up to here (every device)
    typing: Typing = field(default_factory=lambda: Typing())  # who is typing here
    separator: Line | None = None  # "N unread since …" where the read marker was

    @property
    def key(self) -> str:
        return casefold(self.name)

    def holds(self, msgid: str) -> bool:
        return bool(msgid) and msgid in self.msgids

    def add(self, line: Line) -> None:
        if len(self.lines) == self.lines.maxlen:
            gone = self.lines[0].msgid  # about to scroll out of the deque
            self.msgids.discard(gone)
            self.reactions.pop(gone, None)
        self.lines.append(line)
        self.msgids.add(line.msgid)
        self.appended += 1

    def merge(self, lines: Iterable[Line], older: bool = False) -> list[Line]:
        """Merge replayed lines (oldest first) in by time; the ones that were new.

        ``older``: the lines come from before what the buffer holds (a page back), so on
        equal times (a burst within one millisecond) they go first.
        """
        fresh = [line for line in _unique(lines) if not self.holds(line.msgid)]
        if not fresh:
            return []
        # heapq.merge keeps each side's own order (what is shown is never reordered), and
        # on equal keys takes from the first iterable first.
        sides = (fresh, self.lines) if older else (self.lines, fresh)
        merged = list(heapq.merge(*sides, key=lambda line: line.time))
        self.lines = deque(merged, maxlen=SCROLLBACK_LINES)
        self.msgids = {line.msgid for line in self.lines}
        self.reactions = {k: v for k, v in self.reactions.items() if k in self.msgids}
        self.appended += len(fresh)
        self.generation += 1
        return fresh

    def find(self, msgid: str) -> Line | None:
        """The line with this msgid, if the buffer holds it."""
        if not self.holds(msgid):
            return None
        return next((line for line in reversed(self.lines) if line.msgid == msgid), None)

    def change(self, old: Line, new: Line) -> None:
        """Replace a line in place (a redaction); the UI redraws the buffer."""
        self.lines = deque((new if line is old else line for line in self.lines), SCROLLBACK_LINES)
        self.generation += 1

    def place_separator(self, line: Line) -> None:
        """Put the unread separator at its time, instead of the one shown before."""
        old = self.separator
        if old is not None:
            self.lines = deque((x for x in self.lines if x is not old), SCROLLBACK_LINES)
        self.separator = line
        self.merge([line])

    def recount(self, now_shown: bool) -> None:
        """Unread and mentions from the read marker: what others said after it (or 0 if shown)."""
        if now_shown or self.read_marker is None:
            if now_shown:
                self.unread = self.mentions = 0
            return
        marker = self.read_marker
        fresh = [line for line in self.lines if line.counts and line.time > marker]
        self.unread = len(fresh)
        self.mentions = sum(1 for line in fresh if line.highlight)

    def unread_since(self) -> tuple[int, datetime] | None:
        """``(N, marker)`` when others said N things after the read marker."""
        marker = self.read_marker
        if marker is None:
            return None
        count = sum(1 for line in self.lines if line.counts and line.time > marker)
        return (count, marker) if count else None

    def latest_time(self) -> datetime | None:
        """The time of the newest message (the read marker's value once it is read)."""
        return next((line.time for line in reversed(self.lines) if line.msgid), None)

    def clear(self) -> None:
        self.lines.clear()
        self.msgids.clear()
        self.generation += 1

    def spoke(self, nick: str) -> None:
        folded = casefold(nick)
        self.recent = [nick, *[r for r in self.recent if casefold(r) != folded][:49]]


@dataclass(slots=True, frozen=True)
class HistoryRequest:
    limit: int
    paging: bool  # the user asked for older messages (not the page fetched on join)


@dataclass(slots=True)
class HistoryState:
    """How far back a buffer's history has been fetched (draft/chathistory paging)."""

    oldest: Line | None = None  # the oldest message known: the next page ends before it
    exhausted: bool = False  # the server has nothing older
    end_shown: bool = False  # "no more history" was said (it is said once)
    pending: deque[HistoryRequest] = field(default_factory=deque)  # not answered yet

    def saw(self, line: Line) -> None:
        """Remember ``line`` as the oldest known message when it is older than the last one."""
        if self.oldest is None or line.time < self.oldest.time:
            self.oldest = line

    def reference(self) -> str | None:
        """``msgid=…`` (or ``timestamp=…`` without a msgid) of the oldest message known."""
        if self.oldest is None:
            return None
        if self.oldest.msgid:
            return f"msgid={self.oldest.msgid}"
        return f"timestamp={format_timestamp(self.oldest.time)}"


def format_timestamp(when: datetime) -> str:
    """IRCv3 server-time layout, ``2026-01-02T12:00:00.000Z`` (UTC, milliseconds)."""
    stamp = when.astimezone(UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def _unique(lines: Iterable[Line]) -> list[Line]:
    """``lines`` without repeated msgids (a server may send one twice in a batch)."""
    seen: set[str] = set()
    kept = []
    for line in lines:
        if not line.msgid or line.msgid not in seen:
            kept.append(line)
            seen.add(line.msgid)
    return kept


@dataclass(slots=True)
class Prefixes:
    """ISUPPORT PREFIX: which room modes give which nick prefix, highest first."""

    modes: str = "ov"
    symbols: str = "@+"

    @classmethod
    def parse(cls, value: str) -> Prefixes:
        match = re.fullmatch(r"\(([^)]*)\)(.*)", value)
        if match is None or len(match[1]) != len(match[2]):
            return cls()
        return cls(match[1], match[2])

    def split(self, name: str) -> tuple[str, str]:
        """``@+bob`` -> (``@+``, ``bob``) (several prefixes with multi-prefix)."""
        stripped = name.lstrip(self.symbols)
        return name[: len(name) - len(stripped)], stripped

    def rank(self, prefixes: str) -> int:
        return min((self.symbols.index(p) for p in prefixes), default=len(self.symbols))


# mIRC formatting (colours \x03NN,NN and \x04RRGGBB, bold, italics…) is dropped, and so is
# every other control character: text from the network must never reach the terminal as
# an escape sequence.
_FORMATTING = re.compile(r"\x03(\d{1,2}(,\d{1,2})?)?|\x04([0-9A-Fa-f]{6}(,[0-9A-Fa-f]{6})?)?")
_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Text from the network made safe to display: no formatting or control characters."""
    return _CONTROLS.sub("", _FORMATTING.sub("", text)).replace("\t", " ")


def printable_block(text: str) -> str:
    """``printable`` for each line of a multiline message (draft/multiline), kept apart.

    Only the line feeds that join the lines of one batch survive: a single protocol
    line cannot carry one, so nothing else can add a line break on screen.
    """
    return "\n".join(printable(part) for part in text.split("\n"))
