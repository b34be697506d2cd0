"""Helpers for web listener tests: raw HTTPS requests and a blocking IRC-over-WebSocket client."""

from __future__ import annotations

import re
import socket
import ssl
import time
from dataclasses import dataclass, field

from websockets.sync.client import ClientConnection, connect

from securechat.protocol.message import Message, parse
from tests.support import DEFAULT_TIMEOUT, ServerThread


def web_port(server: ServerThread) -> int:
    web = server.server.web
    assert web is not None, "the web listener is off"
    return web.port


def https_exchange(
    server: ServerThread, context: ssl.SSLContext, request: bytes, timeout: float = DEFAULT_TIMEOUT
) -> bytes:
    """Send raw bytes over TLS to the web port; everything the server answers until it closes
    the connection (or goes quiet for ``timeout``)."""
    raw = socket.create_connection((server.host, web_port(server)), timeout=timeout)
    with context.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(request)
        received = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = tls.recv(65536)
            except (TimeoutError, ssl.SSLError, ConnectionResetError):
                break
            if not chunk:
                break
            received += chunk
        return received


@dataclass
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


def parse_answers(data: bytes) -> list[HttpAnswer]:
    """Split concatenated responses (keep-alive) using Content-Length."""
    answers = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        answers.append(HttpAnswer(int(lines[0].split(" ")[1]), headers, rest[:length]))
        data = rest[length:]
    return answers


def get(server: ServerThread, context: ssl.SSLContext, path: str, extra: str = "") -> HttpAnswer:
    request = f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{extra}\r\n"
    answers = parse_answers(https_exchange(server, context, request.encode()))
    assert len(answers) == 1
    return answers[0]


@dataclass
class WsIrcClient:
    """IRC over WebSocket, one line per message, blocking with timeouts."""

    ws: ClientConnection
    seen: list[Message] = field(default_factory=list)

    @classmethod
    def open(
        cls,
        server: ServerThread,
        context: ssl.SSLContext,
        subprotocols: tuple[str, ...] = ("text.ircv3.net",),
        origin: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> WsIrcClient:
        ws = connect(
            f"wss://localhost:{web_port(server)}/webirc",
            ssl=context,
            subprotocols=list(subprotocols) or None,  # type: ignore[arg-type]
            origin=origin,  # type: ignore[arg-type]
            additional_headers=headers,
            open_timeout=DEFAULT_TIMEOUT,
            legacy=True,  # used directly, not as a context manager
        )
        return cls(ws)

    def send(self, line: str) -> None:
        self.ws.send(line)

    def expect(self, pattern: str, timeout: float = DEFAULT_TIMEOUT) -> Message:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            frame = self.ws.recv(timeout=max(deadline - time.monotonic(), 0.001))
            text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
            assert "\r" not in text and "\n" not in text, "one line per frame, no CRLF"
            message = parse(text.encode())
            if message is not None:
                self.seen.append(message)
            if regex.search(text):
                assert message is not None
                return message

    def register(self, nick: str) -> WsIrcClient:
        self.send(f"NICK {nick}")
        self.send(f"USER {nick} 0 * :{nick}")
        self.expect(r" 001 ")
        self.expect(r" (376|422) ")
        return self

    def close(self) -> None:
        self.ws.close()
