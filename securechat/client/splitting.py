"""Long messages split into pieces that each fit one protocol line, losing nothing.

Rules:
- A line is at most 512 bytes with CRLF (RFC 1459 §2.3), and the server relays
  our text as ``:nick!user@host PRIVMSG target :text``: the room for text is what
  that relayed line leaves, so the server never has to cut it.
- Pieces end at the last space that fits (the space itself is not sent), else at
  the last whole UTF-8 character that fits: a character is never cut in half.
"""

from __future__ import annotations

from securechat.protocol.message import MAX_BODY_BYTES, truncate_utf8

MIN_PIECE_BYTES = 4  # the longest UTF-8 character: smaller pieces could make no progress
ACTION_OVERHEAD = len("\x01ACTION \x01")


def text_budget(source: str, command: str, target: str) -> int:
    """Bytes of text that fit in ``:source COMMAND target :text\\r\\n``."""
    overhead = len(f":{source} {command} {target} :".encode()) + 2
    return max(MIN_PIECE_BYTES, MAX_BODY_BYTES - overhead)


def split_text(text: str, limit: int) -> list[str]:
    """``text`` in pieces of at most ``limit`` UTF-8 bytes, cut between words where possible."""
    limit = max(limit, MIN_PIECE_BYTES)
    pieces: list[str] = []
    while len(text.encode()) > limit:
        head = truncate_utf8(text, limit)
        cut = head.rfind(" ")
        if cut > 0:
            pieces.append(head[:cut])
            text = text[cut + 1 :]
        else:
            pieces.append(head)
            text = text[len(head) :]
    pieces.append(text)
    return pieces
