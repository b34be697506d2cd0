"""The real server over real TLS on 127.0.0.1:0."""

from __future__ import annotations

import logging
import socket
import ssl
import time
from collections.abc import Callable

import pytest

from tests.support import IrcClient, ServerThread

Connect = Callable[..., IrcClient]


def test_clients_register_join_talk_rename_part_and_quit(connect: Connect) -> None:
    alice, bob = connect("alice"), connect("bob")
    alice.join("#lobby")
    bob.join("#lobby")
    alice.expect(r":bob!\S+ JOIN :#lobby")
    alice.send("PRIVMSG #lobby :hi bob")
    assert bob.expect(r"PRIVMSG #lobby").params == ("#lobby", "hi bob")
    bob.send("NICK robert")
    alice.expect(r":bob!\S+ NICK :robert")
    bob.send("PART #lobby :later")
    assert alice.expect(r" PART ").params == ("#lobby", "later")
    bob.send("QUIT :bye")
    assert any(b"ERROR" in line for line in bob.expect_closed())


def test_private_messages_over_tls(connect: Connect) -> None:
    alice, bob = connect("alice"), connect("bob")
    alice.send("PRIVMSG bob :psst")
    assert bob.expect(r"PRIVMSG bob").params[1] == "psst"


def test_quit_reaches_room_peers(connect: Connect) -> None:
    alice, bob = connect("alice"), connect("bob")
    alice.join("#a")
    bob.join("#a")
    bob.send("QUIT :done")
    assert alice.expect(r" QUIT ").params == ("Quit: done",)


def test_abrupt_disconnect_is_broadcast_as_quit(connect: Connect) -> None:
    alice, bob = connect("alice"), connect("bob")
    alice.join("#a")
    bob.join("#a")
    bob.sock.close()
    assert alice.expect(r":bob!\S+ QUIT ").params[0] in ("Connection closed", "Read error")


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
def test_tls_1_1_is_refused(server: ServerThread, tls_ca) -> None:  # type: ignore[no-untyped-def]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    tls_ca.configure_trust(context)
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with (
        socket.create_connection((server.host, server.port), timeout=10) as raw,
        pytest.raises((ssl.SSLError, ConnectionResetError)),
    ):
        context.wrap_socket(raw, server_hostname="localhost")


def test_tls_1_2_is_accepted(server: ServerThread, tls_ca) -> None:  # type: ignore[no-untyped-def]
    context = ssl.create_default_context()
    tls_ca.configure_trust(context)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    client = IrcClient.connect(server.host, server.port, context).register("old")
    assert client.sock.version() == "TLSv1.2"  # type: ignore[union-attr]


def test_plaintext_client_gets_error_line_and_never_registers(server: ServerThread) -> None:
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(b"NICK plain\r\nUSER p 0 * :p\r\n")
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
    assert received == b"ERROR :This port requires TLS\r\n"
    assert server.in_loop(lambda: server.server.core.nicks.get("plain")) is None


def test_overlong_line_gets_417_and_connection_lives(connect: Connect) -> None:
    alice = connect("alice")
    alice.send("PRIVMSG #x :" + "y" * 2000)
    alice.expect(r" 417 ")
    alice.send("PING :still-here")
    alice.expect(r"PONG \S+ :still-here")


def test_endless_line_without_newline_is_bounded(connect: Connect) -> None:
    alice = connect("alice")
    alice.sock.sendall(b"x" * 100_000 + b"\r\n")
    alice.expect(r" 417 ")
    alice.send("PING :ok")
    alice.expect(r"PONG \S+ :ok")


def test_invalid_utf8_is_refused_with_fail_invalid_utf8_and_not_relayed(connect: Connect) -> None:
    """IRCv3 UTF8ONLY: the server answers FAIL <command> INVALID_UTF8 and relays nothing."""
    alice, bob = connect("alice"), connect("bob")
    alice.send(b"PRIVMSG bob :caf\xe9 \xff")
    fail = alice.expect(r"^\S+ FAIL ")
    assert fail.params[:2] == ("PRIVMSG", "INVALID_UTF8")
    alice.send("PRIVMSG bob :caf\u00e9")
    assert bob.expect(r"PRIVMSG bob").params[1] == "caf\u00e9"  # the first one bob gets


def test_pipelined_lines_in_one_record_are_all_processed(connect: Connect) -> None:
    alice, bob = connect("alice"), connect("bob")
    alice.sock.sendall(b"".join(b"PRIVMSG bob :%d\r\n" % i for i in range(32)))
    received = [bob.expect(r"PRIVMSG bob").params[1] for _ in range(32)]
    assert received == [str(i) for i in range(32)]


def test_echo_and_server_time_over_tls(connect: Connect) -> None:
    alice = connect("alice", caps=("echo-message", "server-time", "message-tags"))
    alice.join("#a")
    alice.send("PRIVMSG #a :echo")
    message = alice.expect(r"PRIVMSG #a")
    assert "time" in message.tags and "msgid" in message.tags


def test_stuck_reader_is_dropped_while_others_keep_receiving(
    make_server: Callable[..., ServerThread], client_context: ssl.SSLContext
) -> None:
    server = make_server(sendq_bytes=32 * 1024, exempt=("127.0.0.0/8",))  # no flood pacing

    def client(nick: str, rcvbuf: int | None = None) -> IrcClient:
        return IrcClient.connect(server.host, server.port, client_context, rcvbuf=rcvbuf).register(
            nick
        )

    sender, reader = client("sender"), client("reader")
    stuck = client("stuck", rcvbuf=4096)  # never reads again after joining
    for c in (sender, reader, stuck):
        c.join("#flood")
    reader.expect(r":stuck!\S+ JOIN")
    text = "z" * 400
    dropped = False
    for i in range(20_000):  # bounded: kernel buffers hold a few MB at most
        sender.send(f"PRIVMSG #flood :{i} {text}")
        line = reader.expect(rf"PRIVMSG #flood :{i} |:stuck!\S+ QUIT :SendQ exceeded")
        if line.command == "QUIT":
            dropped = True
            reader.expect(rf"PRIVMSG #flood :{i} ")  # the message in flight still arrives
            break
    assert dropped, "the stuck reader was never dropped"
    sender.send("PRIVMSG #flood :after")
    reader.expect(r"PRIVMSG #flood :after")


def test_fifty_clients_receive_two_hundred_messages_in_order(
    make_server: Callable[..., ServerThread], client_context: ssl.SSLContext
) -> None:
    server = make_server(exempt=("127.0.0.0/8",))  # the sender pipelines faster than flood pacing
    clients = [
        IrcClient.connect(server.host, server.port, client_context).register(f"user{i}")
        for i in range(50)
    ]
    for client in clients:
        client.join("#all")
    sender = clients[0]
    for client in clients[1:]:
        sender.expect(rf":{client.nick}!\S+ JOIN :#all")
    for i in range(200):
        sender.send(f"PRIVMSG #all :msg {i}")
    for client in clients[1:]:
        got = [client.expect(r"PRIVMSG #all").params[1] for _ in range(200)]
        assert got == [f"msg {i}" for i in range(200)]
    for client in clients:
        client.close()


def test_registration_timeout_closes_silent_client(
    make_server: Callable[..., ServerThread], client_context: ssl.SSLContext
) -> None:
    server = make_server(registration_timeout=1.0)
    client = IrcClient.connect(server.host, server.port, client_context)
    lines = client.expect_closed(timeout=10)
    assert any(b"Registration timed out" in line for line in lines)


def test_ipv6_loopback_clients_chat(
    make_server: Callable[..., ServerThread], client_context: ssl.SSLContext
) -> None:
    server = make_server(host="::1")
    alice = IrcClient.connect("::1", server.port, client_context).register("alice")
    bob = IrcClient.connect("::1", server.port, client_context).register("bob")
    alice.send("PRIVMSG bob :over ipv6")
    assert bob.expect(r"PRIVMSG bob").source == "alice!~alice@::1"


# ---- output memory (review M4) and the operator log (L3) ---------------------------------------


def test_over_the_total_send_budget_the_largest_queue_is_dropped_and_others_keep_receiving(
    make_server: Callable[..., ServerThread], client_context: ssl.SSLContext
) -> None:
    """Each stuck reader is far under its own sendq_bytes (1 MiB): only the budget over all
    queues (64 KiB) can drop one, and a reader that keeps reading is never touched."""
    server = make_server(
        sendq_total_bytes=64 * 1024,
        socket_send_buffer_bytes=4096,  # the kernel holds little: the queues are ours
        exempt=("127.0.0.0/8",),  # no flood pacing for the sender
    )

    def client(nick: str, rcvbuf: int | None = None) -> IrcClient:
        return IrcClient.connect(server.host, server.port, client_context, rcvbuf=rcvbuf).register(
            nick
        )

    sender, reader = client("sender"), client("reader")
    stuck = [client(f"stuck{n}", rcvbuf=4096) for n in range(2)]
    for c in (sender, reader, *stuck):
        c.join("#flood")
    reader.expect(r":stuck1!\S+ JOIN")
    text = "z" * 400
    for i in range(5_000):  # bounded: 2 MB at most, while the budget is 64 KiB
        sender.send(f"PRIVMSG #flood :{i} {text}")
        line = reader.expect(rf"PRIVMSG #flood :{i} |:stuck\d!\S+ QUIT :SendQ exceeded")
        if line.command == "QUIT":
            break
    else:
        raise AssertionError("no stuck reader was dropped")
    metrics = server.in_loop(lambda: server.server.core.metrics.snapshot())
    assert metrics["sendq_budget_drops"] >= 1
    sender.send("PRIVMSG #flood :after")
    reader.expect(r"PRIVMSG #flood :after")
    reader.send("PING :still-here")
    reader.expect(r" PONG \S+ :still-here")


def test_accepted_sockets_get_the_configured_kernel_send_buffer(
    make_server: Callable[..., ServerThread], client_context: ssl.SSLContext
) -> None:
    server = make_server(socket_send_buffer_bytes=65536)
    alice = IrcClient.connect(server.host, server.port, client_context).register("alice")

    def send_buffers() -> list[int]:
        return [
            c.transport.get_extra_info("socket").getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
            for c in server.server.connections.values()
            if c.transport is not None
        ]

    (size,) = server.in_loop(send_buffers)
    assert 65536 <= size <= 2 * 65536  # Linux doubles the value for its bookkeeping
    alice.close()


def test_control_characters_from_a_client_reach_the_log_escaped(
    connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    alice = connect("alice")
    with caplog.at_level(logging.INFO, logger="securechat"):
        alice.send("OPER \x1b[2J\x1b]0;pwned\x07name pw")
        alice.expect(r" 464 ")
    assert 'name="\\x1b[2J\\x1b]0;pwned\\x07name"' in caplog.text
    assert "\x1b" not in caplog.text and "\x07" not in caplog.text


def test_a_flood_of_failed_handshakes_writes_only_the_first_few_log_lines(
    make_server: Callable[..., ServerThread],
    client_context: ssl.SSLContext,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = make_server(log_burst=3)
    with caplog.at_level(logging.INFO, logger="securechat"):
        for _ in range(10):
            with socket.create_connection((server.host, server.port), timeout=10) as sock:
                sock.sendall(b"\x16\x03\x01\x00\x05" + b"\x00" * 5)  # not a ClientHello
                sock.recv(4096)  # the alert, or the close
        deadline = time.monotonic() + 10
        while server.in_loop(lambda: server.server.core.metrics.tls_handshake_failures) < 10:
            assert time.monotonic() < deadline, "the handshakes did not all fail"
            time.sleep(0.02)  # polling the server's counter, not waiting for an event
        bystander = IrcClient.connect(server.host, server.port, client_context).register("calm")
        bystander.send("PING :still-here")
        bystander.expect(r" PONG \S+ :still-here")
    assert caplog.text.count("event=tls_failed") == 3
