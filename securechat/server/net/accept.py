"""Accepting connections: the listeners' callbacks, per-address limits at accept, TLS handshakes
and the plaintext refusal. ``Acceptor`` is ``ChatServer``'s base class; it hands a finished
handshake to ``ChatServer._new_connection``, with the listener it came from (IRC or web)."""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, cast

from securechat.logs import event
from securechat.server.config import ServerConfig
from securechat.server.core import ServerCore
from securechat.server.limits import AcceptGate, address_group
from securechat.server.net.connection import CLOSE_GRACE_SECONDS, Connection
from securechat.server.net.sendq import SendBudget
from securechat.server.net.sockets import (
    host_of,
    peer_host,
)
from securechat.server.net.tls_transport import ServerHandshake, TlsTransport

if TYPE_CHECKING:
    from securechat.server.net.server import ChatServer

log = logging.getLogger("securechat.server")

ACCEPT_BATCH = 64  # connections taken per readable listener event: others get their turn
ACCEPT_PAUSE_SECONDS = 0.1  # after EMFILE and the like, before accepting again
MAX_SHARED_HOSTS = 4096  # peer host strings shared between connections (ChatServer._shared_host)
PLAINTEXT_REFUSAL = b"ERROR :This port requires TLS\r\n"


class WebSide(Protocol):
    """The browsers' listener (``securechat.web.listener.WebListener``) as the accept path sees
    it: its sockets, and the protocol for a connection accepted on one of them. The web package
    sits above this one (its connection is a ``Connection``), so ``securechat serve`` hands the
    server a function that starts it (``ChatServer(start_web=...)``) instead of an import."""

    sockets: list[socket.socket]

    @property
    def port(self) -> int: ...

    def connection(self, conn: int, addr: str) -> Connection: ...


# Opens the web listener on (the server, web_port): ``ChatServer(start_web=...)``, required when
# web_port is set; ``securechat serve`` passes securechat.web.listener.start_web.
StartWeb = Callable[["ChatServer", int], WebSide]


class Acceptor:
    """The accepting half of ``ChatServer``; the attributes are set by ``ChatServer.__init__``."""

    config: ServerConfig
    core: ServerCore
    gate: AcceptGate
    sendq: SendBudget[Connection]
    ssl_context: ssl.SSLContext
    clock: Callable[[], float]
    _hosts: dict[str, str]

    def _new_connection(self, addr: str, listener: socket.socket) -> Connection:
        """The protocol for a connection whose handshake finished on ``listener`` (an IRC
        or a web one: ``ChatServer``'s)."""
        raise NotImplementedError

    def _accept(self, listener: socket.socket) -> None:
        """The listener is readable: take every waiting connection (a bounded batch)."""
        now = self.clock()
        for _ in range(ACCEPT_BATCH):
            try:
                sock, address = listener.accept()
            except BlockingIOError:
                return
            except ConnectionAbortedError:
                continue  # the peer gave up while queued: nothing to pause for
            except OSError as exc:  # EMFILE and friends: log, breathe, keep serving
                event(log, "accept_error", level=logging.WARNING, error=exc.strerror)
                self._pause_accepting(listener)
                return
            host = self._shared_host(address)
            group = address_group(host, self.config.address_ipv6_prefix)
            refusal = self.gate.refusal(group, now)
            if refusal is not None:
                self._refuse_at_accept(sock, host, refusal)
                continue
            self._start_handshake(sock, host, group, listener)
            self._shed_handshakes()  # at once: never more than one socket over the budget

    def _refuse_at_accept(self, sock: socket.socket, host: str, reason: str) -> None:
        """Closed before any TLS byte (review M3): a refused socket costs no handshake, and
        no plaintext line can be said on a TLS port, so the peer just sees the close."""
        sock.close()
        self.core.metrics.accept_refusals += 1
        event(log, "refused", level=logging.WARNING, reason=reason, peer=host, at="accept")

    def _start_handshake(
        self, sock: socket.socket, host: str, group: str, listener: socket.socket
    ) -> None:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.config.socket_send_buffer_bytes:  # else the kernel autotunes (up to tcp_wmem)
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_SNDBUF, self.config.socket_send_buffer_bytes
            )
        handshake = ServerHandshake(
            asyncio.get_running_loop(),
            sock,
            self.ssl_context,
            functools.partial(self._new_connection, host, listener),
            functools.partial(self._handshake_done, host, group),
            timeout=self.config.handshake_timeout,
            close_timeout=CLOSE_GRACE_SECONDS,
            on_plaintext=functools.partial(self._refuse_plaintext, group),
        )
        self.gate.opened(group, handshake.fd, handshake)

    def _shed_handshakes(self) -> None:
        """Near the descriptor limit: close the newest handshakes of the address with the
        most in progress, so one flood cannot take the descriptors everyone else needs."""
        while (victim := self.gate.shed()) is not None:
            group, handshake = victim
            cast(ServerHandshake, handshake).cancel()
            self.gate.closed(group)
            self.core.metrics.handshakes_shed += 1
            event(log, "shed", level=logging.WARNING, peer=group, reason="descriptors")

    def socket_closed(self, connection: Connection) -> None:
        """A connected client's socket is closed: the gate and the send budget forget it."""
        self.sendq.forget(connection)
        self.gate.closed(address_group(connection.addr, self.config.address_ipv6_prefix))

    def _shared_host(self, address: Any) -> str:
        """The peer's host as one string per address, however many connect from it. A bounded
        table, not ``sys.intern``: interned strings are immortal on some CPythons, and an IPv6
        client can connect from a new address every time."""
        host = host_of(address)
        shared = self._hosts.setdefault(host, host)
        if len(self._hosts) > MAX_SHARED_HOSTS:
            self._hosts.clear()  # strings already handed out stay valid; sharing starts over
        return shared

    def _pause_accepting(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(listener.fileno())
        loop.call_later(ACCEPT_PAUSE_SECONDS, self._resume_accepting, listener)

    def _resume_accepting(self, listener: socket.socket) -> None:
        if listener.fileno() != -1:  # not closed by shutdown meanwhile
            asyncio.get_running_loop().add_reader(listener.fileno(), self._accept, listener)

    def _handshake_done(
        self,
        host: str,
        group: str,
        handshake: ServerHandshake,
        transport: TlsTransport | None,
        exc: BaseException | None,
    ) -> None:
        self.gate.handshake_ended(group, handshake.fd)
        if transport is None:
            self.gate.closed(group)  # ServerHandshake closed the socket
        if transport is not None or not handshake.tls_started:
            return  # connected; or a client that left (or stayed silent) before saying anything
        self.core.metrics.tls_handshake_failures += 1
        event(log, "tls_failed", peer=host, error=type(exc).__name__)

    def _drop_silent(self, group: str, sock: socket.socket) -> None:
        asyncio.get_running_loop().remove_reader(sock.fileno())
        sock.close()
        self.gate.closed(group)

    def _refuse_plaintext(self, group: str, sock: socket.socket) -> None:
        """Say why, then read and discard until the peer closes (bounded in time).

        Closing a socket with unread input makes the kernel send RST, which can
        destroy our ERROR line before the peer reads it (RFC 1122 §4.2.2.13).
        """
        self.gate.handshake_ended(group, sock.fileno())  # still holds a socket while draining
        self.core.metrics.plaintext_refusals += 1
        event(log, "refused", reason="plaintext", peer=peer_host(sock))
        loop = asyncio.get_running_loop()
        try:
            sock.send(PLAINTEXT_REFUSAL)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            sock.close()
            self.gate.closed(group)
            return
        timer = loop.call_later(self.config.handshake_timeout, self._drop_silent, group, sock)
        loop.add_reader(sock.fileno(), self._drain_until_eof, group, sock, timer)

    def _drain_until_eof(self, group: str, sock: socket.socket, timer: asyncio.TimerHandle) -> None:
        try:
            more = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            more = b""
        if not more:
            timer.cancel()
            self._drop_silent(group, sock)
