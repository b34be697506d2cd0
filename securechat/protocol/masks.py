"""Glob masks (``nick!user@host`` bans, ``user@host`` K-lines and operator hosts),
matched in linear time.

Rules kept here:

- ``*`` matches any run of characters (also none), ``?`` exactly one; every other
  character is literal. There are no escapes: ``\\`` is a nick character (RFC 2812
  §2.3.1), so a mask cannot ask for a literal ``*`` or ``?`` (as in most ircds).
- Matching here is exact; casefolding under the server's CASEMAPPING is the caller's
  (``names.mask_matches`` and ``names.compile_folded`` fold mask and text alike), so
  this module needs nothing from the rest of the protocol package.
- Repeated ``*`` collapse into one (``a**b`` is ``a*b``): they mean the same and
  would only cost time.
- A mask is never turned into a regular expression. ``*a*a*a*b`` as a backtracking
  regex costs exponential time against ``aaaa…`` (security review C1: one JOIN froze
  the server for 43 s). Here the mask is split at ``*`` into segments; the first must
  match at the start of the text, the last at its end, and each one between is taken
  at its earliest place after the previous one. Earliest is always right: a later
  place leaves less room for the rest and never helps, so no choice is ever undone.
  Finding a segment moves a candidate place forward through the text from where the
  previous one ended, and each candidate costs at most one ``str.find`` per literal
  run of the segment (``_find``), so a match costs at most
  (len(text) + 1) * (wildcards + 1) such steps.
- How complex a mask may be (length, wildcards) is the caller's setting;
  ``mask_problem`` says why one is refused.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Segment:
    """A run of the mask between two ``*``: its length and its literal pieces, the
    (offset, text) of its maximal runs without ``?``, longest (likely rarest) first."""

    length: int
    pieces: tuple[tuple[int, str], ...]

    @classmethod
    def parse(cls, text: str) -> Segment:
        pieces: list[tuple[int, str]] = []
        start = 0
        for index, char in enumerate([*text, "?"]):
            if char == "?":
                if index > start:
                    pieces.append((start, text[start:index]))
                start = index + 1
        pieces.sort(key=lambda piece: -len(piece[1]))
        return cls(len(text), tuple(pieces))


@dataclass(frozen=True, slots=True)
class Glob:
    """A compiled mask. ``matches`` answers; ``cost`` counts the comparisons it takes."""

    mask: str  # with repeated "*" collapsed
    head: Segment  # before the first "*" (the whole mask when there is none)
    middle: tuple[Segment, ...]  # between stars, in order
    tail: Segment | None  # after the last "*"; None when the mask has no "*"

    def matches(self, text: str) -> bool:
        return self._run(text)[0]

    def cost(self, text: str) -> int:
        """Steps (``str.find`` or slice comparisons) one match of ``text`` takes (for
        tests of the bound)."""
        return self._run(text)[1]

    def _run(self, text: str) -> tuple[bool, int]:
        size = len(text)
        steps = len(self.head.pieces)
        if self.tail is None:
            return size == self.head.length and _at(self.head, text, 0), steps
        if size < self.head.length or not _at(self.head, text, 0):
            return False, steps
        pos = self.head.length
        for segment in self.middle:
            found, tried = _find(segment, text, pos)
            steps += tried
            if found < 0:
                return False, steps
            pos = found + segment.length
        end = size - self.tail.length
        steps += len(self.tail.pieces)
        return end >= pos and _at(self.tail, text, end), steps


def _at(segment: Segment, text: str, pos: int) -> bool:
    """Whether ``segment`` matches ``text`` at ``pos`` (the caller checked the length)."""
    return all(text.startswith(piece, pos + offset) for offset, piece in segment.pieces)


def _find(segment: Segment, text: str, start: int) -> tuple[int, int]:
    """The earliest place at or after ``start`` where ``segment`` matches (or -1), and
    the comparisons made.

    Each piece is looked for with ``str.find`` from where it would sit for the current
    candidate place. Found there: the next piece is checked. Found later: no place
    before that one can have the piece where it belongs, so the candidate jumps forward
    to it. Not found: the segment is not in the text. Candidates only move forward, so
    there are at most len(text) of them, each costing at most one find per piece.
    """
    last = len(text) - segment.length  # the latest place the segment still fits
    steps = 0
    pos = start
    while pos <= last:
        for offset, piece in segment.pieces:
            steps += 1
            hit = text.find(piece, pos + offset, last + offset + len(piece))
            if hit < 0:
                return -1, steps
            if hit != pos + offset:
                pos = hit - offset
                break
        else:
            return pos, steps
    return -1, steps


def collapse_stars(mask: str) -> str:
    while "**" in mask:
        mask = mask.replace("**", "*")
    return mask


def count_wildcards(mask: str) -> int:
    collapsed = collapse_stars(mask)
    return collapsed.count("*") + collapsed.count("?")


@functools.lru_cache(maxsize=4096)
def compile_mask(mask: str) -> Glob:
    """The matcher for ``mask``; cached, since the same bans and K-lines come back."""
    collapsed = collapse_stars(mask)
    parts = collapsed.split("*")
    if len(parts) == 1:
        return Glob(collapsed, Segment.parse(collapsed), (), None)
    middle = tuple(Segment.parse(part) for part in parts[1:-1] if part)
    return Glob(collapsed, Segment.parse(parts[0]), middle, Segment.parse(parts[-1]))


def mask_problem(mask: str, max_length: int, max_wildcards: int) -> str | None:
    """Why ``mask`` is too complex to accept, in words for the client; None if it is fine."""
    if len(mask) > max_length:
        return f"Mask is longer than {max_length} characters"
    if count_wildcards(mask) > max_wildcards:
        return f"Mask has more than {max_wildcards} wildcards (* and ?)"
    return None
