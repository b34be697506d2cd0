"""A TLS transport on a non-blocking socket where OpenSSL does the I/O, driven by
``add_reader``/``add_writer``.

Why not the event loop's own TLS (``connect_accepted_socket(ssl=...)``): uvloop's and asyncio's
``SSLProtocol`` pass every byte through two ``MemoryBIO``s and Python-level ``SSLObject`` calls,
and uvloop keeps a 256 KiB read buffer per connection. Here OpenSSL reads and writes the socket
itself: one ``SSL_write`` (one ``write(2)``) per ``write``, ``SSL_read`` until the socket is
drained per readable event, and no buffers of ours while a connection is idle (OpenSSL releases
its own, ``SSL_MODE_RELEASE_BUFFERS``). BENCHMARKS.md, "Custom TLS transport", has the figures.

The connection object is the one ``ssl.SSLSocket`` itself wraps: CPython's C-level SSL socket
(``SSLContext._wrap_socket``), called directly. ``SSLSocket`` adds nothing this transport uses
(its timeouts, ``makefile`` and blocking helpers), but costs every connection a Python object
with an instance dict (~350 bytes, idle) and every read and write two Python-level calls. That
method is private but has had this form since Python 3.7; where it is missing (another Python
implementation, a future CPython) ``wrap_tls`` falls back to a plain ``SSLSocket``, which has
the same ``read``/``write``/``do_handshake`` methods.

What OpenSSL asks of a non-blocking caller, and where it is handled:

- ``SSL_write`` that cannot finish raises ``SSLWantWriteError`` (or, rarely, ``SSLWantReadError``)
  after encrypting part of the data: the same bytes must be offered again until they go
  through. They stay at the head of the write buffer ("in flight") and later writes queue
  behind them; ``get_write_buffer_size`` counts all of it (the server's sendq check).
- ``SSL_read`` may need to write (a TLS 1.3 KeyUpdate answer into a full socket): reading
  resumes once the socket is writable.
- Closing flushes the buffer, sends close_notify, shuts down the write side and reads (and
  discards) until the peer closes, so unread input never turns our last lines into an RST.
  ``close_timeout`` bounds all of it; then the socket is aborted.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable
from typing import Any, Protocol, cast

__all__ = ["ServerHandshake", "TlsConnection", "TlsTransport", "wrap_tls"]

log = logging.getLogger(__name__)

DRAIN_CHUNK = 4096  # raw bytes read per event while waiting for the peer to close
# SSL_read returns one record at most, and a TLS record carries at most 2**14 bytes of
# plaintext (RFC 8446 §5.1). Reading goes on while a whole record still fits, so nothing is
# left inside OpenSSL where no readable event would announce it.
MAX_RECORD_PLAINTEXT = 16 * 1024
# ... and stops after this many records, however small: a peer sending one-byte records must
# not hold the loop for the time of thousands of SSL_read calls (the rest waits, readable).
MAX_RECORDS_PER_EVENT = 64
# asyncio.BaseTransport.__init__ makes a dict per transport for get_extra_info, which is our
# own here: all transports share this one, never written.
NO_EXTRA: dict[str, Any] = {}


class TlsConnection(Protocol):
    """What the transport needs of an SSL connection over a socket: CPython's C-level SSL
    socket or ``ssl.SSLSocket`` (both raise ``SSLWantReadError``/``SSLWantWriteError``)."""

    def do_handshake(self) -> None: ...
    def read(self, len: int, buffer: Any) -> int: ...
    def write(self, data: Any) -> int: ...
    def getpeercert(self, binary_form: bool) -> Any: ...
    def version(self) -> str | None: ...
    def cipher(self) -> tuple[str, str, int] | None: ...


def wrap_tls(context: ssl.SSLContext, sock: socket.socket) -> tuple[socket.socket, TlsConnection]:
    """The server side of a TLS connection on the non-blocking ``sock``: the socket to watch
    and close, and the SSL connection to read, write and shake hands through."""
    wrap = c_level_wrapper(context)
    if wrap is not None:
        # It keeps only a weak reference to ``sock``: the transport keeps the socket itself.
        connection: TlsConnection = wrap(sock, True, None, owner=None, session=None)
        return sock, connection
    tls = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
    return tls, cast(TlsConnection, tls)  # it took the descriptor over: ``sock`` is detached


def c_level_wrapper(context: ssl.SSLContext) -> Any:
    """CPython's ``_SSLContext._wrap_socket`` (see the module docstring), or None."""
    return getattr(context, "_wrap_socket", None)


def send_close_notify(tls: Any) -> None:
    """``SSL_shutdown``: ``shutdown()`` on the C-level socket, ``unwrap()`` on an SSLSocket."""
    unwrap = getattr(tls, "unwrap", None)
    (unwrap if unwrap is not None else tls.shutdown)()


TLS_HANDSHAKE_RECORD = 0x16  # the first byte of every ClientHello (RFC 8446 §5.1)

HandshakeDone = Callable[["ServerHandshake", "TlsTransport | None", BaseException | None], None]


class ServerHandshake:
    """Accepts one TLS connection on a connected non-blocking socket, from reader/writer
    callbacks under one deadline: no task, no coroutine, no timeout context per connection.

    It waits for the client's first bytes; if they cannot start a TLS handshake and
    ``on_plaintext`` is given, that gets the socket (to say why in plain text). Otherwise it
    runs the handshake, then builds a ``TlsTransport`` for ``protocol_factory()`` and calls
    ``on_done(self, transport, None)``. On failure or timeout the socket is closed and
    ``on_done(self, None, error)`` is called; ``tls_started`` tells a silent client (which
    never sent a byte) from a failed handshake.
    """

    __slots__ = (
        "_close_timeout",
        "_context",
        "_fd",
        "_loop",
        "_on_done",
        "_on_plaintext",
        "_protocol_factory",
        "_reading",
        "_sock",
        "_timer",
        "_tls",
        "_writing",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        context: ssl.SSLContext,
        protocol_factory: Callable[[], asyncio.BufferedProtocol],
        on_done: HandshakeDone,
        *,
        timeout: float,
        close_timeout: float,
        on_plaintext: Callable[[socket.socket], None] | None = None,
    ) -> None:
        self._loop = loop
        self._sock = sock
        self._fd = sock.fileno()
        self._context = context
        self._protocol_factory = protocol_factory
        self._on_done = on_done
        self._on_plaintext = on_plaintext
        self._close_timeout = close_timeout
        self._tls: TlsConnection | None = None
        self._reading = self._writing = False
        self._timer: asyncio.TimerHandle | None = loop.call_later(timeout, self._timed_out)
        self._watch(True, False)  # the ClientHello comes after the TCP handshake

    @property
    def tls_started(self) -> bool:
        return self._tls is not None

    @property
    def fd(self) -> int:
        """The socket's descriptor when accepted (still known once the socket is closed)."""
        return self._fd

    def cancel(self) -> None:
        """Give up (closing the socket) unless the handshake has already ended."""
        if self._timer is not None:
            self._stop()
            self._sock.close()

    def _watch(self, read: bool, write: bool) -> None:
        loop, fd = self._loop, self._fd
        if self._reading != read:
            loop.add_reader(fd, self._step) if read else loop.remove_reader(fd)
            self._reading = read
        if self._writing != write:
            loop.add_writer(fd, self._step) if write else loop.remove_writer(fd)
            self._writing = write

    def _step(self) -> None:
        if self._tls is None and not self._start():
            return
        assert self._tls is not None
        try:
            self._tls.do_handshake()
        except ssl.SSLWantReadError:
            self._watch(True, False)
        except ssl.SSLWantWriteError:
            self._watch(False, True)
        except (ssl.SSLError, OSError, ValueError) as exc:
            self._fail(exc)
        else:
            self._stop()
            self._hand_over(self._tls)

    def _hand_over(self, tls: TlsConnection) -> None:
        transport: TlsTransport | None = None
        try:
            protocol = self._protocol_factory()
            transport = TlsTransport(self._loop, self._sock, tls, protocol, self._close_timeout)
            protocol.connection_made(transport)
            transport.start_reading()
        except Exception as exc:  # a bug above us: drop this one connection, keep serving
            log.exception("unexpected error while taking over a TLS connection")
            if transport is not None:
                transport.abort()
            else:
                self._sock.close()
            self._on_done(self, None, exc)
            return
        self._on_done(self, transport, None)

    def _start(self) -> bool:
        """The first bytes are here: TLS (wrap the socket) or not (plaintext, or closed)."""
        try:
            first = self._sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return False
        except OSError as exc:
            self._fail(exc)
            return False
        if not first:
            self._fail(ConnectionResetError("closed before the TLS handshake"))
            return False
        if first[0] != TLS_HANDSHAKE_RECORD and self._on_plaintext is not None:
            self._stop()
            self._on_plaintext(self._sock)
            return False
        if c_level_wrapper(self._context) is None:
            # ssl.SSLSocket closes the descriptor itself when the peer is already gone; a
            # registration left on that number would catch its next owner. (The C-level
            # wrapper never closes it, and re-registering costs a poll handle: not there.)
            self._watch(False, False)
        try:
            self._sock, self._tls = wrap_tls(self._context, self._sock)
        except (ssl.SSLError, OSError, ValueError) as exc:
            self._fail(exc)
            return False
        return True

    def _timed_out(self) -> None:
        self._timer = None
        self._fail(TimeoutError("TLS handshake timed out"))

    def _stop(self) -> None:
        self._watch(False, False)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fail(self, exc: BaseException) -> None:
        self._stop()
        self._sock.close()
        self._on_done(self, None, exc)


class TlsTransport(asyncio.Transport):
    """One TLS connection; ``protocol`` gets plaintext via ``get_buffer``/``buffer_updated``."""

    __slots__ = (
        "_buffer",
        "_closing",
        "_fd",
        "_in_flight",
        "_loop",
        "_lost",
        "_protocol",
        "_read_wants_write",
        "_reading",
        "_size",
        "_sock",
        "_timer",
        "_tls",
        "_write_wants_read",
        "_writing",
        "close_timeout",
        "idle_tls",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        tls: TlsConnection,
        protocol: asyncio.BufferedProtocol,
        close_timeout: float,
    ) -> None:
        super().__init__(NO_EXTRA)
        self._loop = loop
        self._sock = sock
        self._tls = tls
        self._fd = sock.fileno()
        self._protocol: asyncio.BufferedProtocol | None = protocol  # None once lost
        self.close_timeout = close_timeout
        # Bytes SSL_write has not taken yet. None while empty (nearly always): an idle
        # connection pays nothing for it, where an empty deque costs ~700 bytes.
        self._buffer: list[bytes] | None = None
        self._size = 0  # bytes in _buffer
        self._in_flight = False  # _buffer[0] was offered to SSL_write, which wants it again
        self._write_wants_read = False
        self._read_wants_write = False
        self._reading = False  # reader registered
        self._writing = False  # writer registered
        self._closing = False
        self._lost = False  # socket closed, connection_lost scheduled
        self._timer: asyncio.TimerHandle | None = None
        # The SSL connection while nothing is held and the transport is open, else None: the
        # fan-out flush (``ChatServer._write_each``) then calls its C-level ``write`` itself,
        # one Python call less per recipient, and hands a raise or a partial write to
        # ``write_idle_failed`` (BENCHMARKS.md, "Fourth round").
        self.idle_tls: TlsConnection | None = tls

    # ---- asyncio.Transport ---------------------------------------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        sock = self._sock
        if name == "ssl_object":  # read/write/getpeercert(binary_form)/version/cipher
            return self._tls
        if name == "socket":
            return sock
        if name == "peername":
            try:
                return sock.getpeername()
            except OSError:
                return default
        if name == "sockname":
            return sock.getsockname()
        return default

    def is_closing(self) -> bool:
        return self._closing

    def get_write_buffer_size(self) -> int:
        return self._size

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing:
            return
        if self._buffer:
            self._hold(bytes(data))
            return
        try:
            sent = self._tls.write(data)
        except OSError as exc:  # ssl.SSLError is an OSError
            self._write_failed(data, exc)
        else:
            if sent < len(data):  # only with SSL_MODE_ENABLE_PARTIAL_WRITE; kept correct anyway
                self._hold(bytes(memoryview(data)[sent:]))
                self._watch_write(True)

    def write_counted(self, data: bytes) -> int:
        """``write``, then the bytes still unsent (-1 if closing): the fan-out flush's call,
        one Python call per recipient where ``write`` + ``get_write_buffer_size`` were two,
        and a single ``SSL_write`` when nothing is held (nearly always; BENCHMARKS.md,
        "Third round")."""
        if self._closing:
            return -1
        if self._buffer:
            self._hold(data)
            return self._size
        try:
            sent = self._tls.write(data)
        except OSError as exc:
            return self.write_idle_failed(data, exc)
        return 0 if sent == len(data) else self.write_idle_failed(data, sent)

    def write_idle_failed(self, data: bytes, sent: int | OSError) -> int:
        """``idle_tls.write(data)`` took only ``sent`` bytes or raised: hold the rest as
        ``write`` would have; the bytes still unsent, as ``write_counted`` returns them."""
        if isinstance(sent, OSError):
            self._write_failed(data, sent)
        else:
            self._hold(data[sent:])
            self._watch_write(True)
        return self._size

    def _write_failed(self, data: bytes | bytearray | memoryview, exc: OSError) -> None:
        if isinstance(exc, ssl.SSLWantWriteError):
            self._hold(bytes(data))
            self._in_flight = True
            self._watch_write(True)
        elif isinstance(exc, ssl.SSLWantReadError):  # e.g. waiting for a peer's KeyUpdate
            self._hold(bytes(data))
            self._in_flight = self._write_wants_read = True
        else:
            self._fail(exc)

    def _hold(self, data: bytes) -> None:
        """Queue ``data`` behind whatever SSL_write has not taken yet."""
        self.idle_tls = None
        if self._buffer is None:
            self._buffer = [data]
        else:
            self._buffer.append(data)
        self._size += len(data)

    def can_write_eof(self) -> bool:
        return False

    def close(self) -> None:
        """Flush what is buffered, send close_notify, wait (bounded) for the peer to close."""
        if self._closing:
            return
        self._closing = True
        self.idle_tls = None
        self._timer = self._loop.call_later(self.close_timeout, self.abort)
        if not self._buffer:
            self._shutdown()

    def abort(self) -> None:
        self._closing = True
        self.idle_tls = None
        self._finish(None)

    # ---- reading ---------------------------------------------------------------------------

    def start_reading(self) -> None:
        if self._closing:  # the protocol closed us in connection_made (a K-line, a limit)
            return
        self._watch_read(True)
        self._on_readable()  # the client's first lines often came with its last handshake flight

    def _on_readable(self) -> None:
        if self._lost:
            return
        if self._write_wants_read:
            self._write_wants_read = False
            self._on_writable()
            if self._lost or self._closing:
                return  # closing: _shutdown may own the socket now; the next event reads
        if self._read_wants_write:
            return  # the socket must drain first; _on_writable reads again
        protocol = self._protocol
        if protocol is None:
            return
        nbytes, end = self._read_records(memoryview(protocol.get_buffer(-1)))
        if nbytes and not self._closing:
            # Every record the client has sent so far is handled in this one event, so the
            # replies and fan-out they cause leave as one write per recipient, not one each.
            protocol.buffer_updated(nbytes)
        if end is None or self._lost:
            return
        if isinstance(end, Exception):
            self._fail(end)
            return
        self._watch_read(False)  # end of stream: close_notify or TCP EOF
        if self._closing:
            return  # still flushing; close_timeout ends it if the peer never reads
        if not protocol.eof_received():
            self.close()

    def _read_records(self, buffer: memoryview) -> tuple[int, int | Exception | None]:
        """Decrypt records into ``buffer`` until the socket has no more, a whole record might
        not fit, or MAX_RECORDS_PER_EVENT were read. Returns the bytes read and how reading
        ended: ``None`` when the socket is drained or holds the rest (or must drain first),
        ``0`` at end of stream, or the error."""
        read = self._tls.read
        nbytes = 0
        room = len(buffer)
        for _ in range(MAX_RECORDS_PER_EVENT):
            try:
                got = read(room, buffer[nbytes:])
            except ssl.SSLWantReadError:
                return nbytes, None  # drained, or a record without application data
            except ssl.SSLWantWriteError:
                self._read_wants_write = True
                self._watch_write(True)
                return nbytes, None
            except ssl.SSLEOFError:
                return nbytes, 0  # TCP EOF without close_notify: an end like any other
            except (ssl.SSLError, OSError) as exc:
                return nbytes, exc
            if got == 0:
                return nbytes, 0
            nbytes += got
            room -= got
            if room < MAX_RECORD_PLAINTEXT:
                break
        return nbytes, None  # the rest waits in the socket, which stays readable

    # ---- writing ---------------------------------------------------------------------------

    def _on_writable(self) -> None:
        if self._read_wants_write:
            self._read_wants_write = False
            self._on_readable()
            if self._lost:
                return
        buffer = self._buffer
        while buffer:
            if not self._in_flight and len(buffer) > 1:
                joined = b"".join(buffer)
                buffer.clear()
                buffer.append(joined)
            data = buffer[0]
            try:
                sent = self._tls.write(data)
            except ssl.SSLWantWriteError:
                self._in_flight = True
                self._watch_write(True)
                return
            except ssl.SSLWantReadError:
                self._in_flight = self._write_wants_read = True
                self._watch_write(False)
                return
            except (ssl.SSLError, OSError) as exc:
                self._fail(exc)
                return
            self._in_flight = False
            self._size -= sent
            if sent < len(data):
                buffer[0] = data[sent:]
            else:
                del buffer[0]
        self._buffer = None
        self._watch_write(self._read_wants_write)
        if self._closing:
            self._shutdown()
        else:
            self.idle_tls = self._tls

    # ---- closing ---------------------------------------------------------------------------

    def _shutdown(self) -> None:
        """Send close_notify and shut down our side; then read until the peer closes."""
        sock = self._sock
        try:
            send_close_notify(self._tls)
        except ssl.SSLWantReadError:
            pass  # close_notify is out; the peer's own comes later (or never): drain below
        except ssl.SSLWantWriteError:
            self._loop.remove_writer(self._fd)
            self._loop.add_writer(self._fd, self._shutdown)
            self._writing = True
            return
        except (ssl.SSLError, OSError, ValueError):
            self._finish(None)
            return
        else:  # close_notify sent and received: the peer can send nothing more
            self._finish(None)
            return
        self._watch_write(False)
        try:
            sock.shutdown(socket.SHUT_WR)  # from here on, reads are plain (and discarded)
        except OSError:
            self._finish(None)
            return
        loop = self._loop
        if self._reading:
            loop.remove_reader(self._fd)
        loop.add_reader(self._fd, self._drain)
        self._reading = True

    def _drain(self) -> None:
        try:
            more = self._sock.recv(DRAIN_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            more = b""
        if not more:
            self._finish(None)

    def _fail(self, exc: Exception) -> None:
        self._closing = True
        self.idle_tls = None
        self._finish(exc)

    def _finish(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._watch_read(False)
        self._watch_write(False)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._buffer = None
        self._size = 0
        self._sock.close()
        # Let go of the protocol, which usually holds us: no reference cycle is left, so the
        # OpenSSL state (~13 KB, invisible to Python's collector) goes with the last reference,
        # not at some later cyclic garbage collection.
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            self._loop.call_soon(protocol.connection_lost, exc)

    # ---- event-loop registration -----------------------------------------------------------

    def _watch_read(self, on: bool) -> None:
        if self._reading != on:
            self._reading = on
            if on:
                self._loop.add_reader(self._fd, self._on_readable)
            else:
                self._loop.remove_reader(self._fd)

    def _watch_write(self, on: bool) -> None:
        if self._writing != on:
            self._writing = on
            if on:
                self._loop.add_writer(self._fd, self._on_writable)
            else:
                self._loop.remove_writer(self._fd)
