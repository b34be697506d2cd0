"""The server's own TLS transport (securechat.server.net.tls_transport) against real TLS clients.

Each test runs the transport on the loop `securechat serve` uses (uvloop unless
SECURECHAT_TEST_LOOP=asyncio) and drives a blocking ``ssl.SSLSocket`` client from a worker
thread. Nothing waits on the clock except the bounded timeouts of the reads themselves.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar, cast

import pytest

from securechat.server.net import tls_transport
from securechat.server.net.tls_transport import ServerHandshake, TlsConnection, TlsTransport
from tests.support import new_event_loop

T = TypeVar("T")
TIMEOUT = 10.0


@pytest.fixture(autouse=True, params=["c-level", "sslsocket"])
def ssl_connection_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs on CPython's C-level SSL socket and on the ``ssl.SSLSocket`` fallback."""
    if request.param == "sslsocket":
        monkeypatch.setattr(tls_transport, "c_level_wrapper", lambda context: None)
    return str(request.param)


class Recorder(asyncio.BufferedProtocol):
    """Collects what the transport hands up."""

    def __init__(self) -> None:
        self.view = memoryview(bytearray(64 * 1024))
        self.received = bytearray()
        self.transport: TlsTransport | None = None
        self.eof = False
        self.updates = 0  # buffer_updated calls
        self.lost: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
        self.data_event = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(TlsTransport, transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.view

    def buffer_updated(self, nbytes: int) -> None:
        self.received += self.view[:nbytes]
        self.updates += 1
        self.data_event.set()

    def eof_received(self) -> bool:
        self.eof = True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set_result(exc)

    async def wait_for(self, total: int) -> bytes:
        while len(self.received) < total:
            self.data_event.clear()
            await asyncio.wait_for(self.data_event.wait(), TIMEOUT)
        return bytes(self.received)


async def accept_tls(
    sock: socket.socket,
    context: ssl.SSLContext,
    protocol: asyncio.BufferedProtocol,
    handshake_timeout: float,
    close_timeout: float,
) -> TlsTransport:
    """``ServerHandshake`` as a coroutine (the server itself drives it from callbacks): the
    transport, already handed to ``protocol``, or the error with ``sock`` closed."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[TlsTransport] = loop.create_future()

    def finished(
        _: ServerHandshake, transport: TlsTransport | None, exc: BaseException | None
    ) -> None:
        if done.done():
            return
        if transport is not None:
            done.set_result(transport)
        else:
            done.set_exception(exc or ConnectionError("TLS handshake failed"))

    handshake = ServerHandshake(
        loop,
        sock,
        context,
        lambda: protocol,
        finished,
        timeout=handshake_timeout,
        close_timeout=close_timeout,
    )
    try:
        return await done
    except asyncio.CancelledError:
        handshake.cancel()
        raise


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    loop = new_event_loop()
    try:
        loop.run_until_complete(asyncio.wait_for(test(), 60))
    finally:
        loop.close()


async def in_thread(fn: Callable[[], T]) -> T:
    return await asyncio.get_running_loop().run_in_executor(None, fn)


def listener() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    return sock


async def accept_raw(lsock: socket.socket, sndbuf: int | None = None) -> socket.socket:
    sock, _ = await asyncio.get_running_loop().sock_accept(lsock)
    sock.setblocking(False)
    if sndbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    return sock


def raw_client(port: int, rcvbuf: int | None = None) -> socket.socket:
    raw = socket.socket()
    if rcvbuf is not None:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    raw.settimeout(TIMEOUT)
    raw.connect(("127.0.0.1", port))
    return raw


async def tls_pair(
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    rcvbuf: int | None = None,
    sndbuf: int | None = None,
    close_timeout: float = TIMEOUT,
) -> tuple[TlsTransport, Recorder, ssl.SSLSocket]:
    """A connected (server transport, its protocol, blocking TLS client)."""
    lsock = listener()
    port = lsock.getsockname()[1]

    def connect() -> ssl.SSLSocket:
        raw = raw_client(port, rcvbuf)
        return client_context.wrap_socket(
            raw, server_hostname="localhost", suppress_ragged_eofs=False
        )

    client_future = asyncio.ensure_future(in_thread(connect))
    sock = await accept_raw(lsock, sndbuf)
    lsock.close()
    recorder = Recorder()
    transport = await accept_tls(
        sock, server_context, recorder, handshake_timeout=TIMEOUT, close_timeout=close_timeout
    )
    return transport, recorder, await client_future


def read_exactly(client: ssl.SSLSocket, total: int) -> bytes:
    data = bytearray()
    while len(data) < total:
        chunk = client.recv(65536)
        if not chunk:
            break
        data += chunk
    return bytes(data)


def read_to_close_notify(client: ssl.SSLSocket) -> bytes:
    """Everything up to the peer's close_notify; a TCP close without one raises SSLEOFError."""
    data = bytearray()
    while chunk := client.recv(65536):
        data += chunk
    return bytes(data)


async def until(condition: Callable[[], bool]) -> None:
    """Let the loop run until ``condition()`` holds (bounded by run()'s overall timeout)."""
    while not condition():
        await asyncio.sleep(0.01)


async def hang_up(transport: TlsTransport, recorder: Recorder, peer: socket.socket) -> None:
    """End a test's connection: abort ours, wait for connection_lost, close the peer."""
    transport.abort()
    await settle(recorder.lost)
    peer.close()


async def settle(awaitable: Awaitable[T]) -> T:
    return await asyncio.wait_for(awaitable, TIMEOUT)


# ---- the tests --------------------------------------------------------------------------


def test_bytes_travel_both_ways_and_client_cert_info_is_exposed(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext, ssl_connection_kind: str
) -> None:
    async def test() -> None:
        transport, recorder, client = await tls_pair(server_context, client_context)
        await in_thread(lambda: client.sendall(b"NICK alice\r\n"))
        assert await recorder.wait_for(12) == b"NICK alice\r\n"
        transport.write(b"hello\r\n")
        assert await in_thread(lambda: read_exactly(client, 7)) == b"hello\r\n"
        assert transport.get_write_buffer_size() == 0
        ssl_object = transport.get_extra_info("ssl_object")
        assert isinstance(ssl_object, ssl.SSLSocket) == (ssl_connection_kind == "sslsocket")
        assert ssl_object.version() in ("TLSv1.2", "TLSv1.3")
        assert ssl_object.getpeercert(True) is None  # no client certificate
        assert transport.get_extra_info("peername")[0] == "127.0.0.1"
        transport.abort()
        assert await settle(recorder.lost) is None
        client.close()

    run(test)


def test_a_stuck_reader_fills_the_write_buffer_and_later_gets_every_byte_in_order(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    """SSL_write wants to write: the in-flight bytes are offered again, later ones queue."""

    async def test() -> None:
        transport, recorder, client = await tls_pair(
            server_context, client_context, rcvbuf=4096, sndbuf=4096
        )
        chunks = [f"{i:06d} {'x' * (i % 900)}\r\n".encode() for i in range(4000)]
        for chunk in chunks:
            transport.write(chunk)
        expected = b"".join(chunks)
        assert transport.get_write_buffer_size() > 0  # the kernel buffers cannot hold 1.8 MB
        assert transport.get_write_buffer_size() < len(expected)
        assert await in_thread(lambda: read_exactly(client, len(expected))) == expected
        await until(lambda: transport.get_write_buffer_size() == 0)
        transport.close()
        assert await in_thread(lambda: read_to_close_notify(client)) == b""
        await in_thread(client.unwrap)  # our close_notify came; answer it
        client.close()  # the drain ends at the TCP FIN
        assert await settle(recorder.lost) is None

    run(test)


def test_write_counted_returns_what_is_still_unsent_and_minus_one_once_closing(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    """The fan-out flush's write reports the SendQ measure itself: 0 when the record went out
    whole, the held bytes when the kernel took only part, -1 once the transport is closing."""

    async def test() -> None:
        transport, recorder, client = await tls_pair(
            server_context, client_context, rcvbuf=4096, sndbuf=4096
        )
        assert transport.write_counted(b"hello\r\n") == 0
        assert await in_thread(lambda: read_exactly(client, 7)) == b"hello\r\n"
        chunks = [f"{i:06d} {'x' * (i % 900)}\r\n".encode() for i in range(4000)]
        unsent = [transport.write_counted(chunk) for chunk in chunks]
        assert unsent[-1] == transport.get_write_buffer_size() > 0  # 1.8 MB cannot all fit
        assert unsent == sorted(unsent)  # once something is held, later writes queue behind
        expected = b"".join(chunks)
        assert await in_thread(lambda: read_exactly(client, len(expected))) == expected
        await until(lambda: transport.get_write_buffer_size() == 0)
        transport.close()
        assert transport.write_counted(b"late\r\n") == -1
        assert await in_thread(lambda: read_to_close_notify(client)) == b""
        await in_thread(client.unwrap)
        client.close()
        assert await settle(recorder.lost) is None

    run(test)


def test_idle_tls_is_offered_only_while_nothing_is_held_and_the_transport_is_open(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    """The fan-out flush writes through ``idle_tls`` itself: it is the SSL connection while
    nothing waits in the buffer, None while bytes are held (later lines must queue behind
    them), back once they drained, and None for good once closing."""

    async def test() -> None:
        transport, recorder, client = await tls_pair(
            server_context, client_context, rcvbuf=4096, sndbuf=4096
        )
        assert transport.idle_tls is not None
        chunks = [f"{i:06d} {'x' * (i % 900)}\r\n".encode() for i in range(4000)]
        for chunk in chunks:
            if transport.write_counted(chunk) > 0:
                break
        assert transport.get_write_buffer_size() > 0 and transport.idle_tls is None
        written = b"".join(chunks[: chunks.index(chunk) + 1])
        assert await in_thread(lambda: read_exactly(client, len(written))) == written
        await until(lambda: transport.get_write_buffer_size() == 0)
        assert transport.idle_tls is not None
        transport.close()
        assert transport.idle_tls is None
        assert await in_thread(lambda: read_to_close_notify(client)) == b""
        await in_thread(client.unwrap)
        client.close()
        assert await settle(recorder.lost) is None

    run(test)


def test_close_flushes_the_buffer_then_sends_close_notify(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    async def test() -> None:
        transport, recorder, client = await tls_pair(
            server_context, client_context, rcvbuf=4096, sndbuf=4096
        )
        payload = b"y" * 300_000 + b"\r\nERROR :bye\r\n"
        transport.write(payload)
        transport.close()
        assert transport.is_closing()
        transport.write(b"after close\r\n")  # ignored, as asyncio transports do
        # suppress_ragged_eofs=False: a TCP close without close_notify would raise here
        assert await in_thread(lambda: read_to_close_notify(client)) == payload
        client.close()  # without our close_notify answered: the drain ends at the TCP FIN
        assert await settle(recorder.lost) is None
        assert recorder.received == b""

    run(test)


def test_close_gives_up_on_a_peer_that_never_reads(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    async def test() -> None:
        transport, recorder, client = await tls_pair(
            server_context, client_context, rcvbuf=4096, sndbuf=4096, close_timeout=0.2
        )
        transport.write(b"z" * 2_000_000)
        transport.close()
        assert await settle(recorder.lost) is None  # aborted after close_timeout
        assert transport.get_write_buffer_size() == 0
        client.close()

    run(test)


def test_the_peer_closing_cleanly_is_eof_and_is_answered_with_close_notify(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    async def test() -> None:
        _, recorder, client = await tls_pair(server_context, client_context)
        await in_thread(lambda: client.sendall(b"QUIT\r\n"))
        await in_thread(client.unwrap)  # returns once our close_notify arrived
        assert await settle(recorder.lost) is None
        assert recorder.eof
        assert recorder.received == b"QUIT\r\n"
        client.close()

    run(test)


def test_records_waiting_together_are_handed_up_in_one_piece(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    """Every record already in the socket is read in one event, so the lines they carry are
    handled (and answered) together rather than one event loop iteration each."""

    async def test() -> None:
        transport, recorder, client = await tls_pair(server_context, client_context)
        lines = [b"PRIVMSG #room :line %d\r\n" % i for i in range(20)]
        for line in lines:  # from the loop's own thread: all 20 records land before it reads
            client.send(line)  # one TLS record each
        expected = b"".join(lines)
        assert await recorder.wait_for(len(expected)) == expected
        assert recorder.updates == 1
        await hang_up(transport, recorder, client)

    run(test)


def test_a_flood_of_tiny_records_is_read_a_bounded_number_per_event(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    """One-byte records must not make one readable event run thousands of SSL_reads."""

    async def test() -> None:
        transport, recorder, client = await tls_pair(server_context, client_context)
        payload = b"PRIVMSG #room :" + b"x" * 185 + b"\r\n"
        for byte in payload:  # from the loop's own thread: all 202 records land before it reads
            client.send(bytes([byte]))
        assert await recorder.wait_for(len(payload)) == payload
        assert recorder.updates >= len(payload) // tls_transport.MAX_RECORDS_PER_EVENT
        await hang_up(transport, recorder, client)

    run(test)


def test_more_records_than_the_read_buffer_holds_all_arrive_in_order(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    """Reading stops while a whole record still fits; the rest waits in the socket (which
    stays readable), never inside OpenSSL where no event would announce it."""

    async def test() -> None:
        transport, recorder, client = await tls_pair(server_context, client_context)
        records = [b"%05d %s\r\n" % (i, b"y" * (i * 37 % 9000)) for i in range(120)]
        expected = b"".join(records)
        assert len(expected) > 4 * len(recorder.view)

        def send_all() -> None:
            for record in records:
                client.sendall(record)

        await asyncio.gather(in_thread(send_all), recorder.wait_for(len(expected)))
        assert bytes(recorder.received) == expected
        assert recorder.updates > 1
        await hang_up(transport, recorder, client)

    run(test)


def test_lines_followed_by_the_end_of_the_stream_are_handed_up_before_the_eof(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    async def test() -> None:
        _, recorder, client = await tls_pair(server_context, client_context)
        client.send(b"PRIVMSG #room :last words\r\n")
        client.send(b"QUIT\r\n")
        client.shutdown(socket.SHUT_WR)  # a TCP FIN right behind the records, no close_notify
        assert await settle(recorder.lost) is None
        assert recorder.received == b"PRIVMSG #room :last words\r\nQUIT\r\n"
        assert recorder.eof
        assert recorder.updates == 1
        client.close()

    run(test)


def test_a_peer_reset_is_reported_and_closes_the_transport(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    async def test() -> None:
        transport, recorder, client = await tls_pair(server_context, client_context)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        client.close()  # linger 0: RST instead of FIN
        exc = await settle(recorder.lost)
        assert exc is None or isinstance(exc, (OSError, ssl.SSLError))
        assert transport.is_closing()
        transport.write(b"into the void\r\n")  # no error after the loss
        transport.abort()  # idempotent

    run(test)


def test_a_write_to_a_reset_peer_loses_the_connection(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    async def test() -> None:
        transport, recorder, client = await tls_pair(server_context, client_context)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        client.close()
        while not recorder.lost.done():
            transport.write(b"x" * 1000)
            await asyncio.sleep(0.01)
        assert transport.is_closing()

    run(test)


def test_a_handshake_that_never_comes_times_out_and_closes_the_socket(
    server_context: ssl.SSLContext,
) -> None:
    async def test() -> None:
        lsock = listener()
        port = lsock.getsockname()[1]
        client_future = asyncio.ensure_future(in_thread(lambda: raw_client(port)))
        sock = await accept_raw(lsock)
        lsock.close()
        client = await client_future
        with pytest.raises(TimeoutError):
            await accept_tls(
                sock, server_context, Recorder(), handshake_timeout=0.1, close_timeout=TIMEOUT
            )
        assert await in_thread(lambda: client.recv(100)) == b""  # closed by the server
        client.close()

    run(test)


class Broken(Recorder):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        raise RuntimeError("a bug in the protocol")


@pytest.mark.logs_error
def test_a_protocol_that_fails_to_take_over_loses_only_its_own_connection(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    async def test() -> None:
        lsock = listener()
        port = lsock.getsockname()[1]

        def connect() -> ssl.SSLSocket:
            return client_context.wrap_socket(raw_client(port), server_hostname="localhost")

        client_future = asyncio.ensure_future(in_thread(connect))
        sock = await accept_raw(lsock)
        lsock.close()
        with pytest.raises(RuntimeError, match="a bug in the protocol"):
            await accept_tls(
                sock, server_context, Broken(), handshake_timeout=TIMEOUT, close_timeout=TIMEOUT
            )
        client = await client_future
        assert await in_thread(lambda: client.recv(100)) == b""  # closed, not left hanging
        client.close()

    run(test)


def test_a_handshake_with_garbage_fails_with_an_ssl_error(server_context: ssl.SSLContext) -> None:
    async def test() -> None:
        lsock = listener()
        port = lsock.getsockname()[1]

        def garbage_client() -> socket.socket:
            raw = raw_client(port)
            raw.sendall(b"\x16\x03\x01\x00\x05hello")
            return raw

        client_future = asyncio.ensure_future(in_thread(garbage_client))
        sock = await accept_raw(lsock)
        lsock.close()
        client = await client_future
        with pytest.raises(ssl.SSLError):
            await accept_tls(
                sock, server_context, Recorder(), handshake_timeout=TIMEOUT, close_timeout=TIMEOUT
            )
        client.close()

    run(test)


# ---- OpenSSL's rarer requests, provoked with a stand-in for the SSL socket ---------------------


class ScriptedTls:
    """An SSL connection stand-in over a plain socket: ``write`` and ``read`` first raise the
    errors in their scripts, then pass bytes through. Readiness comes from the real socket."""

    def __init__(
        self, sock: socket.socket, send_script: list[type[Exception]], recv_script: list[Any]
    ) -> None:
        self.sock = sock
        self.send_script = send_script
        self.recv_script = recv_script
        self.offered: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.offered.append(bytes(data))
        if self.send_script:
            raise self.send_script.pop(0)()
        return self.sock.send(data)

    def read(self, size: int, buffer: memoryview) -> int:
        if self.recv_script:
            raise self.recv_script.pop(0)()
        try:
            return self.sock.recv_into(buffer, size)
        except BlockingIOError:
            raise ssl.SSLWantReadError from None  # what SSL_read says on an empty socket


def test_a_write_that_wants_to_read_is_retried_when_the_socket_is_readable() -> None:
    async def test() -> None:
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        fake = ScriptedTls(ours, [ssl.SSLWantReadError], [])
        recorder = Recorder()
        transport = TlsTransport(
            asyncio.get_running_loop(), ours, cast(TlsConnection, fake), recorder, TIMEOUT
        )
        recorder.connection_made(transport)
        transport.start_reading()
        transport.write(b"first\r\n")
        transport.write(b"second\r\n")
        assert transport.get_write_buffer_size() == 15  # held: OpenSSL wants to read first
        theirs.sendall(b"PING x\r\n")  # readable: the write goes out, then the read
        assert await recorder.wait_for(8) == b"PING x\r\n"
        await until(lambda: transport.get_write_buffer_size() == 0)
        assert fake.offered[:2] == [b"first\r\n", b"first\r\n"]  # the same bytes offered again
        theirs.settimeout(TIMEOUT)
        assert read_exactly_plain(theirs, 15) == b"first\r\nsecond\r\n"
        await hang_up(transport, recorder, theirs)

    run(test)


def test_a_read_that_wants_to_write_is_retried_when_the_socket_is_writable() -> None:
    async def test() -> None:
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        fake = ScriptedTls(ours, [], [ssl.SSLWantWriteError])
        recorder = Recorder()
        transport = TlsTransport(
            asyncio.get_running_loop(), ours, cast(TlsConnection, fake), recorder, TIMEOUT
        )
        recorder.connection_made(transport)
        transport.start_reading()
        theirs.sendall(b"NICK bob\r\n")
        assert await recorder.wait_for(10) == b"NICK bob\r\n"
        await hang_up(transport, recorder, theirs)

    run(test)


def read_exactly_plain(sock: socket.socket, total: int) -> bytes:
    data = b""
    while len(data) < total and (chunk := sock.recv(65536)):
        data += chunk
    return data
