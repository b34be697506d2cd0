"""A minimal Redis connection for the stream's two hot commands, XADD and XREAD.

redis-py's asyncio client costs ~80 µs of CPU per command (its connection pool, locks,
timeouts and reply machinery); at one XADD and one XREAD per event when traffic is light that
was most of what a cluster node added per event (BENCHMARKS.md, Cluster). Here a command is
packed by hand and its reply parsed by hiredis (C): ~11 µs. The Bus keeps redis-py for
everything else (leases, the leader key, start-up), which runs once a second at most.

One ``RawConnection`` per direction, so an XREAD BLOCK never holds an XADD back. It connects
on first use and again after any failure (a restarted Redis), AUTH and SELECT from the URL
first; every failure is an ``OSError`` (the Bus turns it into one line): the connection lost
or refused, an error reply, no reply within the timeout. A timed-out or failed connection is
dropped whole, so a late reply can never be taken for the next command's. TCP and unix
sockets only: rediss:// (TLS, with its certificate options in the URL) stays on redis-py
(``supports``).
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

CONNECT_TIMEOUT = 5.0


class RedisReplyError(OSError):
    """Redis answered a command with an error (``-ERR …``)."""


def supports(url: str) -> bool:
    return not url.lower().startswith("rediss:")


def pack(*args: bytes) -> bytes:
    """One command in RESP: an array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)


class _Protocol(asyncio.Protocol):
    """Replies come back in the order of the commands: each answers the oldest waiting."""

    def __init__(self) -> None:
        import hiredis  # the cluster extra's, as redis-py (a default server never loads it)

        self.reader = hiredis.Reader()
        self.error_type = hiredis.ReplyError
        self.waiting: collections.deque[asyncio.Future[Any]] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.lost: Exception | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        try:
            while (reply := self.reader.gets()) is not False:
                future = self.waiting.popleft()
                if future.done():  # its caller was cancelled: the reply is not wanted
                    continue
                if isinstance(reply, self.error_type):
                    future.set_exception(RedisReplyError(f"Redis refused: {reply}"))
                else:
                    future.set_result(reply)
        except Exception as exc:  # a protocol error, or a reply nobody waits for: drop all
            self.fail(ConnectionError(f"bad reply from Redis ({exc})"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(ConnectionError(f"connection to Redis lost ({exc or 'closed'})"))

    def fail(self, error: Exception) -> None:
        if self.lost is None:
            self.lost = error
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(error)
        if self.transport is not None:
            self.transport.abort()


class RawConnection:
    """One connection, ``call`` one command at a time or several pipelined."""

    def __init__(self, url: str, timeout: float) -> None:
        from redis.asyncio.connection import parse_url  # the URL's rules are redis-py's

        options = parse_url(url)
        self.path: str | None = options.get("path")
        self.host: str = options.get("host", "localhost")
        self.port: int = int(options.get("port", 6379))
        self.setup: list[bytes] = []  # sent first on every connection
        password, username = options.get("password"), options.get("username")
        if password is not None:
            user = (username.encode(),) if username else ()
            self.setup.append(pack(b"AUTH", *user, password.encode()))
        if options.get("db"):
            self.setup.append(pack(b"SELECT", b"%d" % int(options["db"])))
        self.timeout = timeout
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Lock | None = None
        self._closed = False

    async def call(self, command: bytes, extra_timeout: float = 0.0) -> Any:
        """Send one packed command (``pack``), wait for its reply. ``extra_timeout``: what a
        blocking command may legitimately wait on top of the timeout."""
        protocol = self._protocol
        if protocol is None or protocol.lost is not None:
            protocol = await self._connect()
        assert protocol.transport is not None
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        protocol.waiting.append(future)
        protocol.transport.write(command)
        timer = loop.call_later(self.timeout + extra_timeout, _time_out, protocol)
        try:
            return await future
        finally:
            timer.cancel()

    async def _connect(self) -> _Protocol:
        if self._closed:
            raise ConnectionError("the connection to Redis was closed")
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:  # two callers at once: one connection
            if self._protocol is not None and self._protocol.lost is None:
                return self._protocol
            loop = asyncio.get_running_loop()
            if self.path is not None:
                connecting = loop.create_unix_connection(_Protocol, self.path)
            else:
                connecting = loop.create_connection(_Protocol, self.host, self.port)
            try:
                _, protocol = await asyncio.wait_for(connecting, CONNECT_TIMEOUT)
                assert isinstance(protocol, _Protocol)
            except TimeoutError:
                raise ConnectionError("timed out connecting to Redis") from None
            assert protocol.transport is not None
            futures = []
            for command in self.setup:  # pipelined: one round trip
                future = loop.create_future()
                protocol.waiting.append(future)
                protocol.transport.write(command)
                futures.append(future)
            try:
                await asyncio.wait_for(asyncio.gather(*futures), self.timeout)
            except BaseException:
                protocol.fail(ConnectionError("Redis refused the connection's set-up"))
                raise
            if self._closed:  # closed while we connected
                protocol.fail(ConnectionError("the connection to Redis was closed"))
                raise ConnectionError("the connection to Redis was closed")
            self._protocol = protocol
            return protocol

    def close(self) -> None:
        """Ends any call in flight (with an error) and any later one."""
        self._closed = True
        if self._protocol is not None:
            self._protocol.fail(ConnectionError("the connection to Redis was closed"))


def _time_out(protocol: _Protocol) -> None:
    protocol.fail(TimeoutError("Redis did not answer in time"))
