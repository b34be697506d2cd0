"""IRC message wire format: parse and serialize one line, with IRCv3 tags.

Rules (RFC 1459 §2.3.1, Modern IRC "Messages", IRCv3 message-tags):

- A line is ``[@tags SPACE] [:source SPACE] COMMAND [params] [SPACE :trailing]``.
- The body (everything after the tags) is at most 512 bytes including CRLF; the
  tag section at most 8191 bytes including the leading ``@`` and trailing space.
  Framing enforces both (it hands over the ``TOO_LONG`` marker); the parser accepts any length.
- Tag values are escaped: ``\\:`` ``;``, ``\\s`` space, ``\\\\`` backslash,
  ``\\r`` CR, ``\\n`` LF; an unknown escape drops the backslash.
- Words are separated by ASCII spaces only: a tab, NBSP or other Unicode white
  space is part of a word (Modern IRC "Parameters").
- Bytes that are not UTF-8 are decoded with U+FFFD replacement: the parser
  never raises, so no client input can make it fail.
- The serializer never emits CR, LF or NUL: they are replaced in parameters,
  escaped in tag values, and a tag whose key breaks the IRCv3 key grammar is dropped.
  The last parameter is always written as a trailing one (``:text``), as most
  servers do: it is always valid, and naive bots that split on " :" expect it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 512  # RFC 1459 §2.3, CRLF included
MAX_TAGS_BYTES = 8191  # IRCv3 message-tags "Size limit", '@' and trailing space included
MAX_CLIENT_TAG_DATA = 4094  # IRCv3: client-only tags sent by a client

_TAG_UNESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}
_TAG_ESCAPES = str.maketrans({";": "\\:", " ": "\\s", "\\": "\\\\", "\r": "\\r", "\n": "\\n"})
_UNSAFE = str.maketrans({"\r": " ", "\n": " ", "\0": ""})
# IRCv3 message-tags: key = ['+'] [vendor '/'] 1*(ALPHA / DIGIT / '-'); vendor a host name.
_TAG_KEY = re.compile(r"\+?(?:[A-Za-z0-9.-]+/)?[A-Za-z0-9-]+")


@dataclass(slots=True, frozen=True)
class Message:
    """One IRC message. ``source`` is the prefix without its colon."""

    command: str
    params: tuple[str, ...] = ()
    source: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    def param(self, index: int, default: str = "") -> str:
        return self.params[index] if index < len(self.params) else default


def decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def parse(line: str | bytes) -> Message | None:
    """Parse one line (CR/LF optional). Returns None for a line with no command."""
    text = decode(line) if isinstance(line, bytes) else line
    text = text.rstrip("\r\n").replace("\0", "")
    tags: dict[str, str] = {}
    if text.startswith("@"):
        tag_text, _, text = text[1:].partition(" ")
        tags = parse_tags(tag_text)
    text = text.lstrip(" ")
    source = None
    if text.startswith(":"):
        source_text, _, text = text[1:].partition(" ")
        source = source_text or None
    text = text.lstrip(" ")
    head, sep, trailing = text.partition(" :")
    words = head.split(" ")  # ASCII spaces only, not str.split()
    if "" in words:  # runs of spaces, or one at the end: rare, so no comprehension per line
        words = [word for word in words if word]
    if not words:
        return None
    params = words[1:]
    if sep:
        params.append(trailing)
    return Message(words[0].upper(), tuple(params), source, tags)


def parse_tags(text: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in text.split(";"):
        if not item:
            continue
        key, _, value = item.partition("=")
        tags[key] = unescape_tag_value(value)
    return tags


def unescape_tag_value(value: str) -> str:
    if "\\" not in value:
        return value
    out: list[str] = []
    chars = iter(value)
    for char in chars:
        if char != "\\":
            out.append(char)
            continue
        escaped = next(chars, "")
        out.append(_TAG_UNESCAPES.get(escaped, escaped))
    return "".join(out)


def escape_tag_value(value: str) -> str:
    return value.translate(_TAG_ESCAPES).replace("\0", "")


def format_tags(tags: Mapping[str, str]) -> str:
    """The tag section without '@' or the trailing space; '' when there are none.

    A key outside the IRCv3 grammar (a client's ``+a\\rb``, say) is dropped: keys are
    not escaped, so one could otherwise carry CR or a space onto the wire."""
    parts = []
    for key, value in tags.items():
        if not _TAG_KEY.fullmatch(key):
            continue
        parts.append(f"{key}={escape_tag_value(value)}" if value else key)
    return ";".join(parts)


def _clean(text: str) -> str:
    """``text`` without CR, LF or NUL. The scan is cheap; str.translate (a dict lookup per
    character) runs only for the rare text that needs it: this is on every message sent."""
    if "\r" in text or "\n" in text or "\0" in text:
        return text.translate(_UNSAFE)
    return text


def safe_param(value: str) -> str:
    """A client-supplied token made safe to echo as a middle parameter."""
    cleaned = _clean(value).replace(" ", "_")
    if not cleaned:
        return "*"
    return "_" + cleaned[1:] if cleaned.startswith(":") else cleaned


def format_body(command: str, params: Iterable[str], source: str | None = None) -> str:
    """Serialize the body (no tags, no CRLF); the last parameter is always trailing."""
    params = params if isinstance(params, (list, tuple)) else list(params)
    parts = [f":{_clean(source)}"] if source else []
    parts.append(safe_param(command))  # ours are constants; this keeps the guarantee total
    if params:
        for middle in params[:-1]:
            parts.append(safe_param(middle))
        parts.append(f":{_clean(params[-1])}")
    return " ".join(parts)


def serialize(message: Message) -> bytes:
    return build(message.command, message.params, message.source, message.tags)


def build(
    command: str,
    params: Iterable[str] = (),
    source: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> bytes:
    """One wire line with CRLF, the body truncated to the 512-byte limit.

    A cut is logged at debug level (callers that must not cut use ``build_exact``): the server
    cuts replies that echo a client's overlong parameters, and a client can provoke that at
    will, so a warning per cut would let anyone flood the operator log.
    """
    body = format_body(command, params, source).encode()  # encoded once, truncated if need be
    if len(body) > MAX_BODY_BYTES - 2:
        log.debug("%s line of %d bytes cut to the protocol limit", command, len(body) + 2)
        body = body[: MAX_BODY_BYTES - 2].decode("utf-8", errors="ignore").encode()
    tag_text = format_tags(tags) if tags else ""
    if tag_text:
        return b"@%s %s\r\n" % (tag_text.encode(), body)
    return body + b"\r\n"


class BodyTooLong(ValueError):
    """A line whose body would pass the 512-byte limit; ``size`` is its length with CRLF."""

    def __init__(self, command: str, size: int) -> None:
        super().__init__(f"{command} line of {size} bytes is over the {MAX_BODY_BYTES}-byte limit")
        self.size = size


def build_exact(
    command: str,
    params: Iterable[str] = (),
    source: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> bytes:
    """``build``, but a body over the limit raises ``BodyTooLong`` instead of being cut."""
    params = list(params)
    size = len(format_body(command, params, source).encode()) + 2
    if size > MAX_BODY_BYTES:
        raise BodyTooLong(command, size)
    return build(command, params, source, tags)


def truncate_utf8(text: str, limit: int) -> str:
    """At most ``limit`` UTF-8 bytes, never cutting a character in half."""
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", errors="ignore")
