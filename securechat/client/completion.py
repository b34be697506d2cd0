"""Tab completion of the input line: nicks (most recent speaker first), commands, rooms.

Rules (as irssi and WeeChat users expect):
- The word before the cursor is completed; pressing Tab again cycles through
  the other candidates; any other edit starts over.
- A nick completed at the start of the line gets ``": "`` after it, elsewhere a
  space. A command (``/jo``) or a room (``#lo``) gets a space.
- Candidates are ordered: nicks who spoke most recently first, then the rest of
  the room alphabetically. Comparison is case-insensitive (CASEMAPPING=ascii).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from securechat.protocol.names import casefold

NICK_SUFFIX = ": "


@dataclass(slots=True, frozen=True)
class Edit:
    """The input line after a completion step."""

    text: str
    cursor: int


@dataclass(slots=True)
class _Cycle:
    start: int  # where the word being completed begins
    candidates: list[str]
    index: int
    result: Edit


def word_before(text: str, cursor: int) -> tuple[int, str]:
    """The start index and text of the word that ends at the cursor."""
    start = text.rfind(" ", 0, cursor) + 1
    return start, text[start:cursor]


def rank(prefix: str, names: Sequence[str], recent: Sequence[str] = ()) -> list[str]:
    """Names starting with ``prefix``: recent ones in their order first, then alphabetical."""
    folded = casefold(prefix)
    seen: set[str] = set()
    ordered: list[str] = []
    for name in [*recent, *sorted(names, key=casefold)]:
        key = casefold(name)
        if key.startswith(folded) and key not in seen:
            seen.add(key)
            ordered.append(name)
    return ordered


class Completer:
    """Keeps the cycle between Tab presses; feed it the line and cursor each time."""

    def __init__(self) -> None:
        self._cycle: _Cycle | None = None

    def reset(self) -> None:
        self._cycle = None

    def complete(
        self,
        text: str,
        cursor: int,
        nicks: Sequence[str],
        recent: Sequence[str],
        commands: Sequence[str],
        rooms: Sequence[str],
    ) -> Edit | None:
        cycle = self._cycle
        if cycle is not None and cycle.result == Edit(text, cursor):
            cycle.index = (cycle.index + 1) % len(cycle.candidates)
            return self._apply(text, cursor, cycle)
        start, word = word_before(text, cursor)
        candidates = self._candidates(word, start, nicks, recent, commands, rooms)
        if not candidates:
            self._cycle = None
            return None
        cycle = _Cycle(start, candidates, 0, Edit(text, cursor))
        self._cycle = cycle
        return self._apply(text, cursor, cycle)

    def _candidates(
        self,
        word: str,
        start: int,
        nicks: Sequence[str],
        recent: Sequence[str],
        commands: Sequence[str],
        rooms: Sequence[str],
    ) -> list[str]:
        if start == 0 and word.startswith("/"):
            return ["/" + c for c in rank(word[1:], commands)]
        if word.startswith("#"):
            return rank(word, rooms)
        if not word:
            return []
        suffix = NICK_SUFFIX if start == 0 else " "
        return [nick + suffix for nick in rank(word, nicks, recent)]

    def _apply(self, text: str, cursor: int, cycle: _Cycle) -> Edit:
        # The word (or the previous candidate) occupies text[cycle.start:cursor]: replace it.
        candidate = cycle.candidates[cycle.index]
        if not candidate.endswith(" "):
            candidate += " "
        new_text = text[: cycle.start] + candidate + text[cursor:]
        edit = Edit(new_text, cycle.start + len(candidate))
        cycle.result = edit
        return edit
