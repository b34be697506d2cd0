"""A minimal IRC client connection for load generation, as an ``asyncio.BufferedProtocol``.

Only what the scenarios need: register (NICK/USER, wait for 001), join and see our own JOIN echo,
answer PING, resolve our own PINGs by token, hand fan-out payloads to a sink, QUIT. A benchmark
client that parses slowly measures itself, not the server: a chunk made only of fan-out payload
lines (nearly every chunk under load) is parsed by one regular-expression scan, not a Python
call per line, and the connection is a ``BufferedProtocol`` because with a plain ``Protocol``
uvloop's TLS transport allocates (and maps) a 256 KiB bytes object for every record it reads.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import Callable
from typing import Final, Protocol, cast

from securechat.bench.target import Target

MAX_BUFFER: Final = 64 * 1024  # a server line is at most ~8.7 KB; more unsplit is a broken peer
PAYLOAD_MARK: Final = b" :b "  # fan-out payload: "PRIVMSG #room :b <sender> <seq> <t_ns>"
PAYLOAD_SKIP: Final = len(PAYLOAD_MARK)
# The fields of a payload. A chunk with as many of these as it has lines, and as many PRIVMSGs,
# holds payload lines only (the bench's own texts never contain the mark twice).
PAYLOAD_FIELDS: Final = re.compile(rb" :b (\d+) (\d+) (\d+)")
Fields = tuple[bytes, ...]  # sender, seq, send time in ns (as digits)

# Decrypted input lands here and is copied out at once in ``buffer_updated``; one buffer per
# process is enough because the loop calls buffer_updated right after filling it.
READ_BUFFER: Final = memoryview(bytearray(256 * 1024))


class PayloadSink(Protocol):
    def payloads(self, conn: IrcConnection, found: list[Fields], arrival_ns: int) -> None:
        """Fan-out payloads that arrived together; a malformed one has fewer than 3 fields."""


def monotonic_ns() -> int:
    """CLOCK_MONOTONIC is system-wide on Linux, so timestamps compare across worker processes."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


class IrcConnection(asyncio.BufferedProtocol):
    __slots__ = (
        "_buffer",
        "_drained",
        "_pings",
        "closed",
        "error",
        "joined",
        "lost_unexpectedly",
        "nick",
        "on_payload",
        "quitting",
        "transport",
        "welcomed",
    )

    def __init__(self, nick: str, on_payload: PayloadSink | None = None) -> None:
        loop = asyncio.get_running_loop()
        self.nick = nick.encode()
        self.on_payload = on_payload
        self.transport: asyncio.Transport | None = None
        self.welcomed: asyncio.Future[None] = loop.create_future()
        self.joined: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.quitting = False
        self.lost_unexpectedly = False
        self.error: str | None = None
        self._buffer = b""
        self._drained: asyncio.Future[None] | None = None
        self._pings: dict[bytes, asyncio.Future[None]] = {}

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TLS transport quacks like asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        return READ_BUFFER

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(READ_BUFFER[:nbytes]))

    def data_received(self, data: bytes) -> None:
        now = monotonic_ns()  # one reading per chunk: its lines all arrived together
        if self._buffer:
            data = self._buffer + data
        cut = data.rfind(b"\n") + 1
        self._buffer = data[cut:]
        if len(self._buffer) > MAX_BUFFER:
            self._fail("line longer than 64 KiB from server")
            return
        if not cut:
            return
        complete = data[:cut] if cut < len(data) else data
        sink = self.on_payload
        if sink is not None:
            found = PAYLOAD_FIELDS.findall(complete)
            lines = len(found)
            if lines and lines == complete.count(b"\n") == complete.count(b" PRIVMSG "):
                sink.payloads(self, found, now)
                return
        for line in complete.split(b"\n")[:-1]:
            self._line(line, now)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.quitting:
            self.lost_unexpectedly = True
            if self.error is None:
                self.error = f"connection lost: {exc}" if exc else "connection closed by server"
        failure = ConnectionError(self.error or "connection closed")
        for future in (self.welcomed, self.joined, *self._pings.values()):
            if not future.done():
                future.set_exception(failure)
                future.exception()  # mark retrieved: nobody may be waiting any more
        self._pings.clear()
        self._wake_writer()
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:
        if self._drained is None:
            self._drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        self._wake_writer()

    # -- commands ---------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    async def drain(self) -> None:
        """Wait while the transport's write buffer is over its high-water mark."""
        if self._drained is not None:
            await self._drained

    def register(self) -> None:
        self.send(b"NICK %s\r\nUSER %s 0 * :securechat bench\r\n" % (self.nick, self.nick))

    def join(self, room: bytes) -> None:
        self.send(b"JOIN %s\r\n" % room)

    def ping(self, token: bytes, after: bytes = b"") -> asyncio.Future[None]:
        """Write ``after`` then PING in one write (one TLS record when small); the future resolves
        on the matching PONG, i.e. once the server has processed everything before it."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pings[token] = future
        self.send(b"%sPING :%s\r\n" % (after, token))
        return future

    def quit(self) -> None:
        self.quitting = True
        self.send(b"QUIT :bench done\r\n")

    def abort(self) -> None:
        self.quitting = True
        if self.transport is not None:
            self.transport.abort()

    # -- incoming lines ---------------------------------------------------------------------

    def _line(self, line: bytes, now: int) -> None:
        mark = line.find(PAYLOAD_MARK)
        if mark != -1 and self.on_payload is not None and line.find(b" PRIVMSG ", 0, mark) != -1:
            fields = tuple(line[mark + PAYLOAD_SKIP :].rstrip(b"\r").split(b" ", 3)[:3])
            self.on_payload.payloads(self, [fields], now)
            return
        words = line.rstrip(b"\r").split(b" ")
        if words[0].startswith(b"@"):  # tags we never asked for; skip them
            words = words[1:]
        source = b""
        if words and words[0].startswith(b":"):
            source = words[0][1:]
            words = words[1:]
        if words:
            self._command(source, words[0].upper(), words[1:])

    def _command(self, source: bytes, command: bytes, params: list[bytes]) -> None:
        if command == b"PING":
            self.send(b"PONG %s\r\n" % b" ".join(params))
        elif command == b"001":
            _resolve(self.welcomed)
        elif command == b"JOIN" and source.split(b"!", 1)[0] == self.nick:
            _resolve(self.joined)
        elif command == b"PONG" and params:
            future = self._pings.pop(params[-1].removeprefix(b":"), None)
            if future is not None:
                _resolve(future)
        elif command in (b"432", b"433", b"436", b"465"):
            self._fail(
                f"registration refused: {b' '.join([command, *params]).decode(errors='replace')}"
            )
        elif command == b"ERROR":
            self.error = b" ".join(params).decode(errors="replace")

    def _fail(self, reason: str) -> None:
        self.error = reason
        if self.transport is not None:
            self.transport.abort()

    def _wake_writer(self) -> None:
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def connect(
    target: Target,
    nick: str,
    context: ssl.SSLContext,
    on_payload: PayloadSink | None = None,
    factory: Callable[[str, PayloadSink | None], IrcConnection] = IrcConnection,
) -> IrcConnection:
    """Open TLS, register, and return once the server has sent 001 (bounded by the timeout).
    ``factory`` makes the protocol: a scenario may subclass IrcConnection to see more lines."""
    loop = asyncio.get_running_loop()
    _, conn = await asyncio.wait_for(
        loop.create_connection(
            lambda: factory(nick, on_payload),
            target.host,
            target.port,
            ssl=context,
        ),
        target.connect_timeout,
    )
    conn.register()
    try:
        await asyncio.wait_for(asyncio.shield(conn.welcomed), target.connect_timeout)
    except BaseException:
        conn.abort()
        raise
    return conn


async def quit_all(connections: list[IrcConnection], timeout: float) -> None:
    """QUIT every connection, wait (bounded) for the server to close them, abort the rest."""
    for conn in connections:
        conn.quit()
    pending = [conn.closed for conn in connections if not conn.closed.done()]
    if pending:
        await asyncio.wait(pending, timeout=timeout)
    for conn in connections:
        if not conn.closed.done():
            conn.abort()
