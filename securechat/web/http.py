"""A small, strict HTTP/1.1 request-head parser and response writer (sans-I/O).

Why our own and not h11: the web listener answers only ``GET`` and ``HEAD`` for a handful of
static files and one WebSocket upgrade; requests carry no body. The rules fit on this page:

- A request head ends at the first CRLF CRLF (RFC 9112 §2.1) and may hold at most
  ``limit`` bytes; a longer one is answered 431 (RFC 6585 §5) and the connection closed.
- Request line: ``METHOD SP request-target SP HTTP/1.1`` (RFC 9112 §3). Only origin-form
  targets (starting with ``/``); anything else, an HTTP version other than 1.0/1.1, a bare LF,
  a control byte or a malformed header line is a 400.
- Header names are tokens (RFC 9110 §5.1); obsolete line folding is refused (RFC 9112 §5.2);
  header values are ASCII (visible characters, space and tab).
- A request with a body (``Content-Length`` other than 0, or ``Transfer-Encoding``) is a 400:
  nothing here takes a body, and refusing it keeps request smuggling impossible.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HEAD_END = b"\r\n\r\n"
TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
TARGET = re.compile(rb"/[\x21-\x7e]*")  # origin-form, visible ASCII only
VALUE = re.compile(rb"[\x20-\x7e\t]*")
VERSIONS = (b"HTTP/1.1", b"HTTP/1.0")

REASONS = {
    101: "Switching Protocols",
    200: "OK",
    304: "Not Modified",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    426: "Upgrade Required",
    431: "Request Header Fields Too Large",
}


class HttpError(Exception):
    """A request we refuse; carries the status to answer with (then the connection closes)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str  # the target without its query string
    version: str
    headers: dict[str, str]  # lower-cased names; a repeated header's values joined by ", "
    raw: bytes  # the whole head, CRLF CRLF included (fed to the WebSocket handshake)

    def header(self, name: str) -> str:
        return self.headers.get(name, "")

    @property
    def keep_alive(self) -> bool:
        connection = self.header("connection").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection


def take_request(buffer: bytearray, limit: int) -> Request | None:
    """The first complete request head in ``buffer`` (removed from it), or None if more
    bytes are needed. Raises HttpError for a head we refuse."""
    end = buffer.find(HEAD_END, 0, limit + len(HEAD_END))
    if end == -1:
        if len(buffer) > limit:
            raise HttpError(431, "request head too large")
        return None
    raw = bytes(buffer[: end + len(HEAD_END)])
    del buffer[: end + len(HEAD_END)]
    return parse_head(raw)


def parse_head(raw: bytes) -> Request:
    lines = raw[: -len(HEAD_END)].split(b"\r\n")
    if any(b"\n" in line or b"\r" in line for line in lines):
        raise HttpError(400, "bare CR or LF in the request head")
    method, path, version = _request_line(lines[0])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, value = _header_line(line)
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    if headers.get("transfer-encoding") or headers.get("content-length", "0") != "0":
        raise HttpError(400, "a request body is not accepted here")
    if version == "HTTP/1.1" and "host" not in headers:
        raise HttpError(400, "missing Host header")  # RFC 9112 §3.2
    return Request(method, path, version, headers, raw)


def _request_line(line: bytes) -> tuple[str, str, str]:
    parts = line.split(b" ")
    if len(parts) != 3 or not TOKEN.fullmatch(parts[0]) or parts[2] not in VERSIONS:
        raise HttpError(400, "malformed request line")
    if not TARGET.fullmatch(parts[1]):
        raise HttpError(400, "the request target must be a path")
    path = parts[1].split(b"?", 1)[0].split(b"#", 1)[0]
    return parts[0].decode("ascii"), path.decode("ascii"), parts[2].decode("ascii")


def _header_line(line: bytes) -> tuple[str, str]:
    name, colon, value = line.partition(b":")
    if not colon or not TOKEN.fullmatch(name):
        raise HttpError(400, "malformed header line")  # also catches obs-fold (leading space)
    value = value.strip(b" \t")
    if not VALUE.fullmatch(value):
        raise HttpError(400, "header value with control or non-ASCII bytes")
    return name.decode("ascii").lower(), value.decode("ascii")


def response(status: int, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    """A complete response: status line, headers (Content-Length added), body."""
    head = [f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}"]
    head += [f"{name}: {value}" for name, value in headers]
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + body
