"""The stream's own Redis connection (cluster/resp.py), against a real redis-server: AUTH and
SELECT from the URL, unix and TCP, and each failure one OSError (the Bus's one line)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest

from securechat.server.cluster import resp
from securechat.server.cluster.bus import STREAM, Bus, BusError
from tests.redis import RedisServer


@pytest.fixture
def guarded() -> Iterator[RedisServer]:
    """A Redis of its own, with a password (pausing it must not stall other tests)."""
    from tests import redis as redis_support

    reason = redis_support.unavailable()
    if reason is not None:
        pytest.skip(reason)
    server = RedisServer(password="right-pass")
    server.start()
    yield server
    server.destroy()


def stream_length(server: RedisServer, database: int) -> int:
    import redis

    client = redis.Redis(unix_socket_path=str(server.socket), password=server.password, db=database)
    try:
        return int(client.xlen(STREAM))
    finally:
        client.close()


async def append_and_read(url: str) -> list[tuple[str, dict[bytes, bytes]]]:
    bus = Bus(url)
    await bus.open()
    try:
        assert bus.writer is not None and bus.reader is not None  # the raw path, not redis-py
        first = await bus.append("n/1", b'[["t",1.0]]', 1)
        await bus.append("n/1", b"\x00\xff binary", 2)
        entries = await bus.read("0")
        assert entries[0][0] == first
        assert await bus.read(entries[-1][0], 10) == []  # BLOCK 10 ms: nothing new
        return entries
    finally:
        await bus.close()


def test_appends_and_reads_go_to_the_urls_database_after_auth(guarded: RedisServer) -> None:
    entries = asyncio.run(append_and_read(guarded.url(7)))
    assert [fields for _, fields in entries] == [
        {b"o": b"n/1", b"n": b"1", b"e": b'[["t",1.0]]'},
        {b"o": b"n/1", b"n": b"2", b"e": b"\x00\xff binary"},
    ]
    assert stream_length(guarded, 7) == 2
    assert stream_length(guarded, 0) == 0


@asynccontextmanager
async def tcp_to(socket_path: str) -> AsyncIterator[int]:
    """A TCP port (ephemeral) whose connections go on to Redis's unix socket."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
        writer.close()

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        to_reader, to_writer = await asyncio.open_unix_connection(socket_path)
        await asyncio.gather(pipe(reader, to_writer), pipe(to_reader, writer))

    server = await asyncio.start_server(forward, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def test_tcp_urls_connect_over_tcp(guarded: RedisServer) -> None:
    async def run() -> int:
        async with tcp_to(str(guarded.socket)) as port:
            entries = await append_and_read(f"redis://:right-pass@127.0.0.1:{port}/3")
            return len(entries)

    assert asyncio.run(run()) == 2
    assert stream_length(guarded, 3) == 2


def test_a_wrong_password_on_the_stream_connection_is_one_line(guarded: RedisServer) -> None:
    async def run() -> str:
        connection = resp.RawConnection(guarded.url(1, password="wrong-pass"), 3.0)
        with pytest.raises(OSError) as refused:
            await connection.call(resp.pack(b"PING"))
        connection.close()
        return str(refused.value)

    text = asyncio.run(run())
    assert "Redis refused" in text and "wrong-pass" not in text and "\n" not in text


def test_a_redis_that_stops_answering_times_out_and_the_next_call_reconnects(
    guarded: RedisServer,
) -> None:
    async def run() -> None:
        connection = resp.RawConnection(guarded.url(2), 0.3)
        assert await connection.call(resp.pack(b"PING")) == b"PONG"
        guarded.pause()
        try:
            with pytest.raises(TimeoutError):
                await connection.call(resp.pack(b"PING"))
        finally:
            guarded.resume()
        assert await connection.call(resp.pack(b"PING")) == b"PONG"  # a new connection
        guarded.restart()
        with pytest.raises(ConnectionError):  # the old connection is gone with the process
            await connection.call(resp.pack(b"PING"))
        assert await connection.call(resp.pack(b"PING")) == b"PONG"
        connection.close()
        with pytest.raises(ConnectionError):
            await connection.call(resp.pack(b"PING"))

    asyncio.run(run())


def test_closing_the_bus_ends_a_blocking_read_with_a_bus_error(guarded: RedisServer) -> None:
    async def run() -> None:
        bus = Bus(guarded.url(4))
        await bus.open()
        await bus.read("0")  # the reader's connection is up
        reading = asyncio.create_task(bus.read("9999999999999-0", 5000))  # nothing will come
        await asyncio.sleep(0)  # one loop iteration: the XREAD BLOCK is sent
        await bus.close()
        with pytest.raises(BusError):
            await asyncio.wait_for(reading, 2.0)

    asyncio.run(run())
