"""Test helpers: a real server in a background thread and a blocking TLS IRC client.

Nothing here sleeps to wait: ``IrcClient.expect`` reads until the line it
wants arrives or its timeout passes.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, TypeVar

from securechat.protocol.message import Message, parse
from securechat.server.cluster.node import ClusterNode
from securechat.server.config import ServerConfig
from securechat.server.main import DATABASE_FILE
from securechat.server.net import ChatServer
from securechat.server.store import StoreWriter
from securechat.server.store.pg import open_postgres
from securechat.web.listener import start_web

DEFAULT_TIMEOUT = 10.0
T = TypeVar("T")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The loop `securechat serve` uses: uvloop when installed, unless
    SECURECHAT_TEST_LOOP=asyncio asks for the standard one."""
    if os.environ.get("SECURECHAT_TEST_LOOP") != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            return loop
    return asyncio.new_event_loop()


class ServerThread:
    """A ChatServer on its own event loop in a daemon thread."""

    def __init__(
        self,
        config: ServerConfig,
        context: ssl.SSLContext,
        motd: list[str] | None = None,
        **server_options: Any,
    ) -> None:
        self.loop = new_event_loop()
        # With a data_dir, the store `securechat serve` would open (closed by stop()).
        self.own_writer: StoreWriter | None = None
        if config.database is not None and "writer" not in server_options:
            self.own_writer = open_postgres(
                config.database, read_timeout=config.history_read_timeout_seconds
            )
            server_options["writer"] = self.own_writer
        elif config.data_dir is not None and "writer" not in server_options:
            self.own_writer = StoreWriter.open(
                config.data_dir / DATABASE_FILE, read_timeout=config.history_read_timeout_seconds
            )
            server_options["writer"] = self.own_writer
        server_options.setdefault("start_web", start_web)  # used only with a web_port, as serve
        server_options.setdefault("start_cluster", ClusterNode)  # only with cluster, as serve
        self.server = ChatServer(config, context, motd, **server_options)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.host = config.host

    @property
    def port(self) -> int:
        return self.server.port

    def start(self) -> ServerThread:
        self.thread.start()
        self.call(self.server.start())
        return self

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = DEFAULT_TIMEOUT) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def in_loop(self, fn: Callable[[], T]) -> T:
        """Run ``fn()`` on the server's loop and return its result (to inspect state safely)."""

        async def wrapper() -> T:
            return fn()

        return self.call(wrapper())

    def stop(self) -> None:
        """Shut the server down and end its thread; safe to call more than once."""
        if self.loop.is_closed():
            return
        try:
            if not self.server.closed:
                self.call(self.server.shutdown(timeout=2.0))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(DEFAULT_TIMEOUT)
            self.loop.close()
            if self.own_writer is not None:
                self.own_writer.close()


@contextmanager
def running_server(
    config: ServerConfig, context: ssl.SSLContext, motd: list[str] | None = None
) -> Iterator[ServerThread]:
    server = ServerThread(config, context, motd).start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class IrcClient:
    """A blocking TLS client that speaks raw IRC lines."""

    sock: ssl.SSLSocket | socket.socket
    nick: str = "*"
    buffer: bytes = b""
    seen: list[Message] = field(default_factory=list)

    @classmethod
    def connect(
        cls,
        host: str,
        port: int,
        context: ssl.SSLContext,
        server_hostname: str = "localhost",
        rcvbuf: int | None = None,
        source: str | None = None,
    ) -> IrcClient:
        """Connect over TLS; ``rcvbuf`` shrinks the receive window (set before connecting);
        ``source`` is the local address to connect from (e.g. 127.0.0.2: another address)."""
        raw = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        if rcvbuf is not None:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if source is not None:
            raw.bind((source, 0))
        raw.settimeout(DEFAULT_TIMEOUT)
        raw.connect((host, port))
        return cls(context.wrap_socket(raw, server_hostname=server_hostname))

    def send(self, line: str | bytes) -> None:
        data = line.encode() if isinstance(line, str) else line
        self.sock.sendall(data + b"\r\n")

    def read_line(self, timeout: float = DEFAULT_TIMEOUT) -> bytes | None:
        """The next raw line (without CRLF), or None when the server closed the connection."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no complete line within {timeout}s; have {self.buffer!r}")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, ssl.SSLError):
                chunk = b""
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.rstrip(b"\r")

    def expect(self, pattern: str, timeout: float = DEFAULT_TIMEOUT) -> Message:
        """Read lines until one matches ``pattern`` (a regex searched in the raw line)."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            line = self.read_line(max(deadline - time.monotonic(), 0.001))
            if line is None:
                raise ConnectionError(f"server closed the connection while waiting for {pattern!r}")
            message = parse(line)
            if message is not None:
                self.seen.append(message)
            if regex.search(line.decode("utf-8", "replace")):
                assert message is not None
                return message

    def expect_closed(self, timeout: float = DEFAULT_TIMEOUT) -> list[bytes]:
        """Read until the server closes the connection; return the lines read."""
        lines = []
        deadline = time.monotonic() + timeout
        while (line := self.read_line(max(deadline - time.monotonic(), 0.001))) is not None:
            lines.append(line)
        return lines

    def register(self, nick: str, caps: tuple[str, ...] = ()) -> IrcClient:
        if caps:
            self.send("CAP LS 302")
            self.send(f"CAP REQ :{' '.join(caps)}")
        self.send(f"NICK {nick}")
        self.send(f"USER {nick} 0 * :{nick} Test")
        if caps:
            self.expect(r" CAP \S+ ACK ")
            self.send("CAP END")
        self.expect(r" 001 ")
        self.expect(r" (376|422) ")
        self.nick = nick
        return self

    def start_sasl_plain(
        self, nick: str, account: str, password: str, caps: tuple[str, ...] = ()
    ) -> Message:
        """Register as ``nick`` logging in to ``account`` with SASL PLAIN (IRCv3 sasl-3.1);
        the server's answer (903 or 904) is returned before CAP END, which is the caller's."""
        self.send("CAP LS 302")
        self.send("CAP REQ :" + " ".join(("sasl", *caps)))
        self.expect(r" CAP \S+ ACK ")
        self.send(f"NICK {nick}")
        self.send(f"USER {nick} 0 * :{nick}")
        self.send("AUTHENTICATE PLAIN")
        self.expect(r"^AUTHENTICATE \+")
        self.send("AUTHENTICATE " + base64.b64encode(f"\0{account}\0{password}".encode()).decode())
        return self.expect(r" (903|904) ")

    def login_plain(self, nick: str, password: str, caps: tuple[str, ...] = ()) -> IrcClient:
        """Register as ``nick``, logged in to the account of that name (903, then 001)."""
        reply = self.start_sasl_plain(nick, nick, password, caps)
        assert reply.command == "903", f"SASL login of {nick} failed: {reply}"
        self.send("CAP END")
        self.expect(r" 001 ")
        self.nick = nick
        return self

    def join(self, room: str) -> IrcClient:
        self.send(f"JOIN {room}")
        self.expect(rf" 366 {re.escape(self.nick)} {re.escape(room)} ")
        return self

    def close(self) -> None:
        with suppress(OSError):
            self.sock.close()


def sync(conn: IrcClient, token: str) -> None:
    """By the PONG, every line ``conn`` sent before was handled (a message: committed and
    delivered; in a cluster: through the stream and applied, PING being replicated in order)."""
    conn.send(f"PING :{token}")
    conn.expect(rf"PONG \S+ :?{token}")


def history(conn: IrcClient, target: str, count: int = 10) -> list[tuple[str, str]]:
    """(msgid, text) of CHATHISTORY LATEST ``target``, oldest first."""
    conn.send(f"CHATHISTORY LATEST {target} * {count}")
    conn.expect(rf" BATCH \+\S+ chathistory :?{target}")
    found = []
    while True:
        line = conn.expect(r" BATCH :?-|PRIVMSG ")
        if line.command == "BATCH":
            return found
        found.append((line.tags["msgid"], line.params[-1]))
