"""IRC over WebSocket (IRCv3 websocket extension) on the web listener, over real TLS."""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Callable

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.support import DEFAULT_TIMEOUT, IrcClient, ServerThread
from tests.web.web_support import WsIrcClient, web_port

Start = Callable[..., ServerThread]


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        (("binary.ircv3.net", "text.ircv3.net"), "binary.ircv3.net"),
        (("text.ircv3.net", "binary.ircv3.net"), "text.ircv3.net"),
        (("chat", "text.ircv3.net"), "text.ircv3.net"),
    ],
)
def test_the_clients_subprotocol_order_is_respected(
    web_server: Start, client_context: ssl.SSLContext, offered: tuple[str, ...], chosen: str
) -> None:
    client = WsIrcClient.open(web_server(), client_context, subprotocols=offered)
    assert client.ws.subprotocol == chosen
    client.register("alice")


def test_binary_mode_sends_binary_frames_and_text_mode_text_frames(
    web_server: Start, client_context: ssl.SSLContext
) -> None:
    server = web_server()
    binary = WsIrcClient.open(server, client_context, subprotocols=("binary.ircv3.net",))
    binary.send("PING :one")
    assert isinstance(binary.ws.recv(timeout=DEFAULT_TIMEOUT), bytes)
    text = WsIrcClient.open(server, client_context, subprotocols=("text.ircv3.net",))
    text.send("PING :two")
    assert isinstance(text.ws.recv(timeout=DEFAULT_TIMEOUT), str)


def test_no_subprotocol_offered_still_connects_in_text_mode(
    web_server: Start, client_context: ssl.SSLContext
) -> None:
    client = WsIrcClient.open(web_server(), client_context, subprotocols=())
    assert client.ws.subprotocol is None
    client.register("alice")


def test_websocket_and_tls_clients_talk_both_ways(
    web_server: Start, client_context: ssl.SSLContext
) -> None:
    server = web_server()
    web = WsIrcClient.open(server, client_context).register("webby")
    tcp = IrcClient.connect(server.host, server.port, client_context).register("termy")
    web.send("JOIN #room")
    web.expect(r" 366 ")
    tcp.send("JOIN #room")
    tcp.expect(r" 366 ")
    web.send("PRIVMSG #room :hello from the browser")
    tcp.expect(r"PRIVMSG #room :hello from the browser")
    tcp.send("PRIVMSG #room :hello from the terminal")
    web.expect(r"PRIVMSG #room :hello from the terminal")


def test_a_trailing_crlf_in_a_frame_is_accepted(
    web_server: Start, client_context: ssl.SSLContext
) -> None:
    client = WsIrcClient.open(web_server(), client_context)
    client.send("PING :crlf\r\n")
    client.expect(r"PONG .* :?crlf$")


def test_a_foreign_origin_is_refused_with_403(
    web_server: Start, client_context: ssl.SSLContext
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        WsIrcClient.open(web_server(), client_context, origin="https://evil.example")
    assert refused.value.response.status_code == 403


def test_the_servers_own_origin_is_allowed_by_default(
    web_server: Start, client_context: ssl.SSLContext
) -> None:
    server = web_server()
    own = f"https://localhost:{web_port(server)}"
    WsIrcClient.open(server, client_context, origin=own).register("alice")


def test_configured_origins_replace_the_default(
    web_server: Start, client_context: ssl.SSLContext
) -> None:
    server = web_server(web_allowed_origins=("https://chat.example",))
    WsIrcClient.open(server, client_context, origin="https://chat.example").register("alice")
    with pytest.raises(InvalidStatus):
        WsIrcClient.open(server, client_context, origin=f"https://localhost:{web_port(server)}")


def test_x_forwarded_for_is_honoured_only_from_a_trusted_proxy(
    web_server: Start, client_context: ssl.SSLContext
) -> None:
    trusted = web_server(web_proxies=("127.0.0.0/8",))
    client = WsIrcClient.open(trusted, client_context, headers={"X-Forwarded-For": "203.0.113.9"})
    client.register("proxied")
    client.send("WHOIS proxied")
    assert "203.0.113.9" in " ".join(client.expect(r" 311 ").params)
    untrusted = web_server()
    direct = WsIrcClient.open(untrusted, client_context, headers={"X-Forwarded-For": "203.0.113.9"})
    direct.register("direct")
    direct.send("WHOIS direct")
    assert "127.0.0.1" in " ".join(direct.expect(r" 311 ").params)


def test_an_oversized_frame_closes_only_that_connection(
    web_server: Start, client_context: ssl.SSLContext
) -> None:
    server = web_server(web_max_frame_bytes=1024)
    bystander = IrcClient.connect(server.host, server.port, client_context).register("bystander")
    client = WsIrcClient.open(server, client_context).register("big")
    client.send("PRIVMSG bystander :" + "x" * 2000)
    with pytest.raises(ConnectionClosed) as closed:
        client.expect(r"never")
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    bystander.send("PING :still-here")
    bystander.expect(r"PONG .*still-here")


def test_an_overlong_line_within_the_frame_limit_gets_417(
    web_server: Start, client_context: ssl.SSLContext
) -> None:
    client = WsIrcClient.open(web_server(), client_context).register("long")
    client.send("PRIVMSG long :" + "x" * 600)
    client.expect(r" 417 ")


def test_invalid_utf8_in_a_text_frame_closes_with_1007(
    web_server: Start, client_context: ssl.SSLContext
) -> None:
    """Sent raw: the client library would refuse to send it."""
    server = web_server()
    raw = socket.create_connection((server.host, web_port(server)), timeout=DEFAULT_TIMEOUT)
    tls = client_context.wrap_socket(raw, server_hostname="localhost")
    tls.sendall(
        b"GET /webirc HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: text.ircv3.net\r\n\r\n"
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += tls.recv(4096)
    assert head.startswith(b"HTTP/1.1 101 ")
    payload = b"PING :\xff\xfe"
    mask = b"\x01\x02\x03\x04"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    tls.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
    received = head.partition(b"\r\n\r\n")[2]
    close_code = None
    while close_code is None:
        while len(received) < 2 or len(received) < 2 + (received[1] & 0x7F):
            chunk = tls.recv(4096)
            assert chunk, "closed without a close frame"
            received += chunk
        length = received[1] & 0x7F  # the server's frames here are short and unmasked
        frame, received = received[: 2 + length], received[2 + length :]
        if frame[0] == 0x88:  # a close frame
            close_code = int.from_bytes(frame[2:4], "big")
    assert close_code == 1007
    tls.close()


def test_a_websocket_client_that_never_registers_is_timed_out(
    web_server: Start, client_context: ssl.SSLContext
) -> None:
    client = WsIrcClient.open(web_server(registration_timeout=0.5), client_context)
    client.expect(r"^ERROR ")


def test_flood_control_applies_to_websocket_clients(
    web_server: Start, client_context: ssl.SSLContext
) -> None:
    server = web_server(exempt=(), flood_burst=5, flood_rate=1.0, flood_max_backlog=10)
    client = WsIrcClient.open(server, client_context).register("flood")
    with contextlib.suppress(ConnectionClosed):  # closed for flooding while still sending
        for index in range(40):
            client.send(f"PING :{index}")
    # Frames sent after the server closed arrive unread, so the kernel may answer with a reset
    # that discards the ERROR before we read it: then the server's own count says why it closed.
    with contextlib.suppress(ConnectionClosed):
        client.expect(r"ERROR .*(Excess Flood|flood)")
    assert server.in_loop(lambda: server.server.core.metrics.excess_floods) == 1


def test_the_web_listener_is_off_unless_configured(make_server: Start) -> None:
    assert make_server().server.web is None


def read_frame(tls: ssl.SSLSocket, buffered: bytearray) -> tuple[int, bytes]:
    """One short unmasked server frame: (opcode, payload)."""
    while len(buffered) < 2 or len(buffered) < 2 + (buffered[1] & 0x7F):
        chunk = tls.recv(4096)
        if not chunk:
            raise ConnectionError("closed")
        buffered += chunk
    length = buffered[1] & 0x7F
    opcode, payload = buffered[0] & 0x0F, bytes(buffered[2 : 2 + length])
    del buffered[: 2 + length]
    return opcode, payload


def test_a_peer_that_never_answers_pings_is_disconnected(
    web_server: Start, client_context: ssl.SSLContext
) -> None:
    """WebSocket liveness: a ping every web_ping_interval; none answered: closed. A
    bystander's PING is answered meanwhile."""
    server = web_server(web_ping_interval=0.3)
    bystander = IrcClient.connect(server.host, server.port, client_context).register("bystander")
    raw = socket.create_connection((server.host, web_port(server)), timeout=DEFAULT_TIMEOUT)
    tls = client_context.wrap_socket(raw, server_hostname="localhost")
    tls.sendall(
        b"GET /webirc HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    buffered = bytearray()
    while b"\r\n\r\n" not in buffered:
        buffered += tls.recv(4096)
    head, _, rest = bytes(buffered).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ")
    buffered = bytearray(rest)
    opcodes = []
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        while True:  # until the server hangs up (bounded by the socket timeout)
            opcodes.append(read_frame(tls, buffered)[0])
    assert opcodes[0] == 0x9 and opcodes[-1] == 0x8  # pinged; no pong: a close frame
    bystander.send("PING :meanwhile")
    bystander.expect(r"PONG .*meanwhile")
    tls.close()
