"""One connection to the web listener: HTTP requests for the app, then maybe IRC over WebSocket.

It is a ``net.Connection`` (same TLS transport, same send queue, flood control, SendQ and
close handling), with two differences:

- Until a WebSocket upgrade it speaks HTTP/1.1 (keep-alive, one request at a time, each
  within ``web_request_timeout``) and the core knows nothing of it: only the per-address
  accept limits (counted when the socket was accepted) apply.
- After ``GET /webirc`` is upgraded (IRCv3 ``websocket`` extension), it becomes an ordinary
  core session: each data frame carries one IRC line without CRLF, in and out. Input frames go
  through the same ``LineBuffer`` as TCP input (so an overlong line gets 417 the same way);
  output lines are framed one per frame, as text (``text.ircv3.net``: invalid UTF-8 replaced
  by U+FFFD, as the spec allows) or binary (``binary.ircv3.net``). A WebSocket ping every
  ``web_ping_interval`` seconds checks the peer is alive; no pong before the next one closes.

The sans-I/O protocol is the ``websockets`` package's ``ServerProtocol`` (RFC 6455 framing,
masking, UTF-8 checks, close handshake, size limit); the bytes go through our transport.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from websockets.frames import Frame, Opcode
from websockets.http11 import Request as WsRequest
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

from securechat.logs import event
from securechat.server.net.connection import Connection
from securechat.web.http import HttpError, Request, take_request
from securechat.web.site import (
    Site,
    client_address,
    error_response,
    is_upgrade,
    origin_allowed,
    security_headers,
)

if TYPE_CHECKING:
    from securechat.server.net import ChatServer

log = logging.getLogger("securechat.web")
# websockets logs every opened and closed connection at INFO: ours says it once, our way.
WS_LOG = logging.getLogger("securechat.web.websocket")
WS_LOG.setLevel(logging.WARNING)

SUBPROTOCOLS = (Subprotocol("binary.ircv3.net"), Subprotocol("text.ircv3.net"))
CRLF = b"\r\n"


def select_subprotocol(_protocol: ServerProtocol, offered: Any) -> Any:
    """The first subprotocol in the client's order that we speak (IRCv3 websocket: "the
    server MUST respect the client's order"); none offered or none shared: no subprotocol,
    and the connection speaks text frames (what pre-IRCv3 web clients expect)."""
    return next((name for name in offered if name in SUBPROTOCOLS), None)


class WebConnection(Connection):
    __slots__ = (
        "head",
        "peer",
        "pending",
        "pending_text",
        "pinged",
        "site",
        "text",
        "timer",
        "ws",
    )

    def __init__(self, server: ChatServer, conn: int, addr: str, site: Site) -> None:
        super().__init__(server, conn, addr)
        self.site = site
        self.peer = addr  # the socket's address: the accept gate counted this one
        self.head = bytearray()  # HTTP bytes not yet parsed
        self.ws: ServerProtocol | None = None
        self.text = True
        self.pending = b""  # a fragmented message's first frames
        self.pending_text = True  # is that message a text one (UTF-8 checked when whole)
        self.pinged = False
        self.timer: asyncio.TimerHandle | None = None

    # ---- transport events ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._arm(self.server.config.web_request_timeout, self._request_timed_out)

    def data_received(self, data: bytes) -> None:
        if self.ws is not None:
            self._frames_received(data)
            return
        self.head += data
        while self.ws is None and not self.closing:
            try:
                request = take_request(self.head, self.server.config.web_max_request_bytes)
            except HttpError as exc:
                self._refuse(exc.status, exc.detail)
                return
            if request is None:
                return
            self._request(request)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        client, self.addr = self.addr, self.peer  # release the gate's count for the socket
        self.server.socket_closed(self)
        self.addr = client
        if self.ws is None:
            return  # never a session
        if self.backlog and not self.closing:
            self.lost, self.transport = True, None
            return
        self.server.connection_closed(self, "Connection closed" if exc is None else "Read error")

    # ---- HTTP ------------------------------------------------------------------------------

    def _request(self, request: Request) -> None:
        if is_upgrade(request):
            self._upgrade(request)
            return
        assert self.transport is not None
        self.transport.write(self.site.answer(request))
        if request.keep_alive:
            self._arm(self.server.config.web_request_timeout, self._request_timed_out)
        else:
            self._hang_up()

    def _refuse(self, status: int, detail: str) -> None:
        event(log, "http_refused", status=status, peer=self.peer, reason=detail)
        assert self.transport is not None
        self.transport.write(error_response(status, [*security_headers(""), CLOSE_HEADER]))
        self._hang_up()

    def _hang_up(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def _request_timed_out(self) -> None:
        self._hang_up()

    def _upgrade(self, request: Request) -> None:
        config = self.server.config
        if not origin_allowed(request, config):
            self._refuse(403, f"origin {request.header('origin')!r} not allowed")
            return
        ws = ServerProtocol(
            subprotocols=list(SUBPROTOCOLS),
            select_subprotocol=select_subprotocol,
            max_size=config.web_max_frame_bytes,
            logger=WS_LOG,
        )
        # The protocol parses the (already checked) head again itself, so that its parser
        # moves on to frames.
        ws.receive_data(request.raw)
        handshake = next((e for e in ws.events_received() if isinstance(e, WsRequest)), None)
        if handshake is None:
            self._refuse(400, "malformed WebSocket handshake")
            return
        answer = ws.accept(handshake)
        answer.headers.update(security_headers(request.header("host")))
        ws.send_response(answer)
        assert self.transport is not None
        self.transport.write(b"".join(ws.data_to_send()))
        if answer.status_code != 101:
            event(log, "http_refused", status=answer.status_code, peer=self.peer)
            self._hang_up()
            return
        self.ws = ws
        self.text = ws.subprotocol != "binary.ircv3.net"
        self.addr = client_address(self.peer, request, config)
        self.server.connection_opened(self)
        self._arm(config.web_ping_interval, self._ping)
        if self.head:  # frames pipelined behind the handshake
            rest, self.head = bytes(self.head), bytearray()
            self._frames_received(rest)

    # ---- WebSocket -------------------------------------------------------------------------

    def _frames_received(self, data: bytes) -> None:
        ws = self.ws
        assert ws is not None
        ws.receive_data(data)
        lines: list[bytes] = []
        for frame in ws.events_received():
            if isinstance(frame, Frame):
                self._frame(frame, lines)
        self._write_protocol_output()
        if ws.close_expected() or ws.handshake_exc is not None or ws.state.name == "CLOSED":
            self._hang_up()
        if lines and not self.closing:
            super().data_received(b"".join(lines))

    def _frame(self, frame: Frame, lines: list[bytes]) -> None:
        if frame.opcode is Opcode.PONG:
            self.pinged = False
            return
        if frame.opcode not in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            return  # ping (answered by the protocol) and close
        if frame.opcode is not Opcode.CONT:
            self.pending_text = frame.opcode is Opcode.TEXT
        payload = self.pending + bytes(frame.data)
        if not frame.fin:
            self.pending = payload  # bounded by max_size, over all fragments
            return
        self.pending = b""
        if self.pending_text and not is_utf8(payload):
            # RFC 6455 §8.1: a text message must be UTF-8; else fail with 1007.
            assert self.ws is not None
            self.ws.fail(1007, "invalid UTF-8 in a text frame")
            return
        # One line per message, CRLF optional (IRCv3 websocket); the LineBuffer decides.
        lines.append(payload if payload.endswith(b"\n") else payload + b"\n")

    def _write_protocol_output(self) -> None:
        assert self.ws is not None
        data = self.ws.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(chunk for chunk in data if chunk))

    def flush(self) -> None:
        """Queued IRC lines, one frame each (the core's lines end in CRLF)."""
        out, ws = self.out, self.ws
        if out is None or self.transport is None or ws is None:
            return
        self.out = None
        for chunk in out:
            for line in chunk.split(CRLF):
                if not line:
                    continue
                if self.text:
                    ws.send_text(line.decode("utf-8", "replace").encode("utf-8"))
                else:
                    ws.send_binary(line)
        self._write_protocol_output()

    def close(self) -> None:
        """Flush (the ERROR line last), say goodbye with a close frame, then close."""
        if self.closing or self.transport is None:
            return
        self.flush()
        if self.ws is not None and self.ws.state.name == "OPEN":
            self.ws.send_close(1000)
            self._write_protocol_output()
        self.closing = True
        self.transport.close()

    def _ping(self) -> None:
        if self.closing or self.ws is None:
            return
        if self.pinged:
            self.server.connection_closed(self, "WebSocket ping timeout")
            self.ws.send_close(1001, "ping timeout")  # RFC 6455 §7.4.1: going away
            self._write_protocol_output()
            self._hang_up()
            return
        self.pinged = True
        self.ws.send_ping(b"securechat")
        self._write_protocol_output()
        self._arm(self.server.config.web_ping_interval, self._ping)

    def _arm(self, delay: float, callback: Any) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = asyncio.get_running_loop().call_later(delay, callback)


CLOSE_HEADER = ("Connection", "close")


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
