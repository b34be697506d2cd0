"""Split a byte stream into IRC lines, bounding how much one line may hold.

Lines end in LF, optionally preceded by CR (Modern IRC "Messages": servers
accept a bare LF). A line whose tag section exceeds 8191 bytes or whose body
exceeds 512 bytes (CRLF included) is not delivered: it is reported as
``TOO_LONG`` so the server can answer 417 ERR_INPUTTOOLONG and go on. Bytes of
an overlong line are discarded as they arrive, so a peer that never sends LF
cannot make the buffer grow past the limit.
"""

from __future__ import annotations

from typing import Final

from securechat.protocol.message import MAX_BODY_BYTES, MAX_TAGS_BYTES

TOO_LONG: Final = b""  # marker in place of an overlong line; a real line is never empty
MAX_LINE_BYTES = MAX_TAGS_BYTES + MAX_BODY_BYTES


class LineBuffer:
    """Incremental line splitter: ``feed(data)`` returns the complete lines so far."""

    __slots__ = ("_discarding", "_partial")

    def __init__(self) -> None:
        # The unfinished line, as immutable bytes: b"" (one shared object) between lines,
        # so an idle connection holds no buffer of its own.
        self._partial = b""
        self._discarding = False

    def feed(self, data: bytes) -> list[bytes]:
        lines: list[bytes] = []
        if self._partial:
            data = self._partial + data
        start = 0
        while (end := data.find(b"\n", start)) != -1:
            self._take(data[start:end], lines)
            start = end + 1
        partial = data[start:] if start else bytes(data)
        if len(partial) > MAX_LINE_BYTES:
            partial = b""
            self._discarding = True
        self._partial = partial
        return lines

    def _take(self, line: bytes, lines: list[bytes]) -> None:
        if self._discarding:
            self._discarding = False
            lines.append(TOO_LONG)
            return
        line = line[:-1] if line.endswith(b"\r") else line  # one CR: CRLF, not CR*LF
        # Length first: an overlong blank line is TOO_LONG whether it arrived whole or was
        # already being discarded, so the result never depends on how TCP chunked it.
        if is_too_long(line):
            lines.append(TOO_LONG)
        elif line.strip():  # Modern IRC: empty lines are silently ignored
            lines.append(line)


def is_too_long(line: bytes) -> bool:
    body = line
    if line.startswith(b"@"):
        space = line.find(b" ")
        tags_len = len(line) + 1 if space == -1 else space + 1
        if tags_len > MAX_TAGS_BYTES:
            return True
        body = b"" if space == -1 else line[space + 1 :]
    return len(body) + 2 > MAX_BODY_BYTES
