"""What the client shows: buffers of lines, their members and counts. Pure data.

Rules:
- A buffer is the server's, a room's or a private conversation's; it keeps its
  last ``SCROLLBACK_LINES`` lines, who is in it (rooms), the topic, who spoke
  recently (for completion) and its unread and mention counts.
- ``appended`` and ``generation`` let a UI draw only what is new: lines past
  ``appended`` since it last looked, everything again when ``generation`` moved.
- Text from the network goes through ``printable`` before it is stored, so no
  escape sequence from a peer ever reaches a terminal.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

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


@dataclass(slots=True)
class Member:
    nick: str
    prefixes: str = ""  # e.g. "@+": every status the member has, highest first


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
    generation: int = 0  # changes on /clear: the UI redraws from scratch

    @property
    def key(self) -> str:
        return casefold(self.name)

    def add(self, line: Line) -> None:
        self.lines.append(line)
        self.appended += 1

    def clear(self) -> None:
        self.lines.clear()
        self.generation += 1

    def spoke(self, nick: str) -> None:
        folded = casefold(nick)
        self.recent = [nick, *[r for r in self.recent if casefold(r) != folded][:49]]


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
