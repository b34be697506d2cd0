"""Faulty and hostile clients over real TLS; after each, a fresh client registers and chats.

A client that stops reading mid-burst is covered by
``test_server_tls.py::test_stuck_reader_is_dropped_while_others_keep_receiving``, and a
flooder cut off with ``ERROR :Excess flood`` by
``test_operations_tls.py::test_a_flooder_is_disconnected_and_others_keep_chatting``.

Nothing here sleeps to wait: clients wait for the line they expect, and server state is
polled through ``server.in_loop`` until it matches or a deadline passes.
"""

from __future__ import annotations

import gc
import itertools
import os
import random
import socket
import ssl
import struct
import time
from collections.abc import Callable
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import TypeVar

import pytest

from securechat.protocol.framing import MAX_LINE_BYTES
from securechat.protocol.numerics import ERR_INPUTTOOLONG, ERR_UNKNOWNERROR
from securechat.server.net import tls_transport
from securechat.server.net.tls_transport import TlsTransport
from tests.support import IrcClient, ServerThread

MakeServer = Callable[..., ServerThread]
T = TypeVar("T")

POLL_TIMEOUT = 15.0
_fresh_ids = itertools.count()


# ---- helpers ------------------------------------------------------------------------------------


def poll(probe: Callable[[], T], want: Callable[[T], bool], timeout: float = POLL_TIMEOUT) -> T:
    """Call ``probe`` until ``want(result)`` holds; fail with the last result at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if want(result):
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"still {result!r} after {timeout}s")
        time.sleep(0.02)  # a polling interval, not a wait for something to happen


def server_load(server: ServerThread) -> tuple[int, ...]:
    """(open connections, core sessions, connections counted by the address limits, sockets
    and handshakes counted at accept, connections in the send budget)."""
    chat = server.server

    def read() -> tuple[int, ...]:
        gate = chat.gate
        counts = (len(chat.connections), len(chat.core.sessions), chat.core.addresses.total)
        return (*counts, gate.total, gate.handshakes, len(chat.sendq.sizes))

    result: tuple[int, ...] = server.in_loop(read)
    return result


def open_sockets() -> int | None:
    """Sockets open in this process (the server runs in it), where /proc tells."""
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.is_dir():
        return None
    count = 0
    for name in os.listdir(fd_dir):
        with suppress(OSError):  # an fd closed while we list
            count += os.readlink(fd_dir / name).startswith("socket:")
    return count


def assert_fresh_clients_chat(server: ServerThread, context: ssl.SSLContext) -> None:
    """Two new clients register, share a room, and a message from one reaches the other."""
    n = next(_fresh_ids)
    with ExitStack() as stack:
        alice = IrcClient.connect(server.host, server.port, context).register(f"fresh{n}a")
        stack.callback(alice.close)
        bob = IrcClient.connect(server.host, server.port, context).register(f"fresh{n}b")
        stack.callback(bob.close)
        alice.join("#after")
        bob.join("#after")
        alice.expect(rf":fresh{n}b!\S+ JOIN :?#after")
        alice.send(f"PRIVMSG #after :all good {n}")
        assert bob.expect(r" PRIVMSG #after ").params == ("#after", f"all good {n}")
        bob.send(f"PRIVMSG fresh{n}a :and privately")
        alice.expect(rf":fresh{n}b!\S+ PRIVMSG fresh{n}a :and privately")


def raw_connect(server: ServerThread) -> socket.socket:
    return socket.create_connection((server.host, server.port), timeout=10)


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes; fails if it is still open at the deadline."""
    deadline = time.monotonic() + timeout
    received = b""
    while (remaining := deadline - time.monotonic()) > 0:
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(4096)
        except ConnectionResetError:
            return received
        except TimeoutError:
            break
        if not chunk:
            return received
        received += chunk
    raise AssertionError(f"server kept the connection open for {timeout}s")


# A TLS 1.2 ClientHello record header announcing 512 bytes, and the first bytes of the body.
PARTIAL_CLIENT_HELLO = bytes.fromhex("16030102000100") + b"\x01\xfc\x03\x03"


# ---- a client that sends half a line and vanishes -----------------------------------------------


def test_half_a_line_then_vanishing_reaches_nobody_and_leaves_no_trace(
    server: ServerThread, connect: Callable[..., IrcClient], client_context: ssl.SSLContext
) -> None:
    baseline = server_load(server)
    alice, bob = connect("alice"), connect("bob")
    alice.join("#room")
    bob.join("#room")
    alice.expect(r":bob!\S+ JOIN")
    alice.sock.sendall(b"PRIVMSG #room :this line never ends")
    alice.sock.close()
    bob.expect(r":alice!\S+ QUIT ")
    assert not [m for m in bob.seen if m.command == "PRIVMSG"], "half a line was delivered"
    poll(lambda: server.in_loop(lambda: server.server.core.nicks.get("alice")), lambda s: s is None)
    bob.close()
    poll(lambda: server_load(server), lambda load: load == baseline)
    assert_fresh_clients_chat(server, client_context)


def test_half_a_line_before_registering_then_vanishing_leaves_no_trace(
    server: ServerThread, client_context: ssl.SSLContext
) -> None:
    baseline = server_load(server)
    client = IrcClient.connect(server.host, server.port, client_context)
    client.sock.sendall(b"NICK ghost\r\nUSER ghost 0 * :half")
    client.close()
    poll(lambda: server_load(server), lambda load: load == baseline)
    assert server.in_loop(lambda: server.server.core.nicks.get("ghost")) is None
    assert_fresh_clients_chat(server, client_context)


# ---- a TLS handshake that never completes -------------------------------------------------------


@pytest.mark.parametrize(
    "opening",
    [b"", b"\x16", PARTIAL_CLIENT_HELLO],
    ids=["silent-tcp", "record-type-byte-only", "partial-client-hello"],
)
def test_a_handshake_that_never_completes_is_closed_and_others_are_served(
    make_server: MakeServer, client_context: ssl.SSLContext, opening: bytes
) -> None:
    server = make_server(handshake_timeout=1.0)
    baseline = server_load(server)
    with raw_connect(server) as stalled:
        stalled.sendall(opening)
        assert_fresh_clients_chat(server, client_context)  # served while the stall is pending
        started = time.monotonic()
        assert read_until_closed(stalled, timeout=10.0) == b""
        assert time.monotonic() - started < 9.0  # closed by handshake_timeout, not our deadline
    poll(lambda: server_load(server), lambda load: load == baseline)
    assert_fresh_clients_chat(server, client_context)


# ---- 500 connections that open and drop at once -------------------------------------------------


def test_five_hundred_connections_opened_and_dropped_at_once_leave_nothing_behind(
    make_server: MakeServer, client_context: ssl.SSLContext
) -> None:
    server = make_server(handshake_timeout=5.0)
    baseline, sockets_before = server_load(server), open_sockets()
    socks: list[socket.socket] = []
    try:
        for i in range(500):
            sock = raw_connect(server)
            socks.append(sock)
            if i % 4 == 1:
                sock.sendall(b"\x16")  # half a TLS record
            elif i % 4 == 2:
                sock.sendall(PARTIAL_CLIENT_HELLO)
            elif i % 4 == 3:  # reset instead of a clean close
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00" * 2)
    finally:
        for sock in socks:
            with suppress(OSError):
                sock.close()
    for _ in range(20):  # and some that finish the handshake, then drop before registering
        IrcClient.connect(server.host, server.port, client_context).close()
    poll(lambda: server_load(server), lambda load: load == baseline)
    if sockets_before is not None:  # no socket leaked, on either side
        poll(open_sockets, lambda count: count is not None and count <= sockets_before)
    assert_fresh_clients_chat(server, client_context)


# ---- 1000 lines of garbage ----------------------------------------------------------------------

GARBAGE_COMMANDS = [
    "PRIVMSG", "NOTICE", "JOIN", "PART", "MODE", "TOPIC", "KICK", "INVITE", "WHO", "WHOIS",
    "NAMES", "LIST", "AWAY", "CAP", "NICK", "USER", "PASS", "PING", "PONG", "KILL",
    "AUTHENTICATE", "CHATHISTORY", "NS", "CS", "frob", "001", "", ":", "@",
]  # fmt: skip
# No OPER: three wrong passwords close the connection by design (oper.py), and each OPER is
# answered before the client's next line is read (issue 13), so garbage OPERs add up.
GARBAGE_TOKENS = ["#g", "#G", "#", "garbler", "nobody", "*", ":", "+o", "-ntb", "0", ",,", "\x01"]


def garbage_lines(rng: random.Random, count: int) -> list[bytes]:
    """Random bytes, random commands, NULs, broken tags and overlong lines; no QUIT."""
    makers: list[Callable[[], bytes]] = [
        lambda: rng.randbytes(rng.randint(1, 300)).replace(b"\n", b"").replace(b"\r", b""),
        lambda: " ".join(
            [rng.choice(GARBAGE_COMMANDS)]
            + rng.choices(GARBAGE_TOKENS, k=rng.randint(0, 5))
            + ([":" + rng.choice(GARBAGE_TOKENS)] if rng.random() < 0.5 else [])
        ).encode(),
        lambda: b"PRIVMSG #g :\x00nul\x00" + b"\x00" * rng.randint(0, 50),
        lambda: b"\x00" * rng.randint(1, 100),
        lambda: b"@" + b";=\\" * rng.randint(1, 50) + b" :src PING x",
        lambda: b"PRIVMSG #g :" + b"x" * rng.randint(500, 3000),
        lambda: b"@+t=" + b"y" * rng.randint(8200, MAX_LINE_BYTES * 2) + b" PING x",
    ]
    return [rng.choice(makers)() for _ in range(count)]


def test_a_thousand_lines_of_garbage_leave_the_client_and_the_server_working(
    make_server: MakeServer, client_context: ssl.SSLContext
) -> None:
    server = make_server(exempt=("127.0.0.0/8",))  # no flood pacing: every line is parsed
    garbler = IrcClient.connect(server.host, server.port, client_context).register("garbler")
    garbler.join("#g")
    lines = garbage_lines(random.Random(1000), 1000)
    lines_in_before = server.in_loop(lambda: server.server.core.metrics.lines_in)
    for start in range(0, len(lines), 100):  # pipelined, 100 lines per write
        garbler.sock.sendall(b"".join(line + b"\r\n" for line in lines[start : start + 100]))
    garbler.send("PING :after-garbage")
    garbler.expect(r"PONG \S+ :after-garbage", timeout=30)
    lines_in = server.in_loop(lambda: server.server.core.metrics.lines_in) - lines_in_before
    assert lines_in > sum(1 for line in lines if line.strip())  # every one reached the core
    replies = {message.command for message in garbler.seen}
    assert ERR_INPUTTOOLONG in replies, "overlong lines were not answered with 417"
    assert ERR_UNKNOWNERROR not in replies, "a handler failed on garbage (400)"
    assert_fresh_clients_chat(server, client_context)


# ---- a peer that starts a ClientHello and resets --------------------------------------------


@pytest.mark.parametrize("ssl_path", ["c-level", "sslsocket"])
def test_a_tls_byte_then_a_reset_leaves_no_registration_for_the_next_client(
    make_server: MakeServer,
    client_context: ssl.SSLContext,
    monkeypatch: pytest.MonkeyPatch,
    ssl_path: str,
) -> None:
    """The ``ssl.SSLSocket`` fallback closes the descriptor itself when the peer is gone by
    the time it wraps; nothing may stay watching that number, which the next client gets."""
    if ssl_path == "sslsocket":
        monkeypatch.setattr(tls_transport, "c_level_wrapper", lambda context: None)
    server = make_server()
    baseline = server_load(server)
    for _ in range(5):
        with raw_connect(server) as peer:
            peer.sendall(b"\x16")
            peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        assert_fresh_clients_chat(server, client_context)
    poll(lambda: server_load(server), lambda load: load == baseline)


# ---- closed connections are freed at once -------------------------------------------------------


def test_a_closed_connection_is_freed_without_waiting_for_the_cycle_collector(
    server: ServerThread, client_context: ssl.SSLContext
) -> None:
    """Each connection's OpenSSL state is ~13 KB that Python's collector does not see: it must
    go when the connection does, not at some later full collection."""
    gc.collect()
    gc.disable()
    try:
        for n in range(3):
            client = IrcClient.connect(server.host, server.port, client_context)
            client.register(f"gone{n}")
            client.send("QUIT")
            client.expect_closed()
        poll(lambda: server_load(server)[0], lambda open_connections: open_connections == 0)
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        kept_for_the_collector = [o for o in gc.garbage if isinstance(o, TlsTransport)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert kept_for_the_collector == []


# ---- per-address bounds at accept, before any TLS work (review M3) ------------------------------

BYSTANDER = "127.0.0.2"  # every attacker below connects from 127.0.0.1


def metric(server: ServerThread, name: str) -> int:
    value: int = server.in_loop(lambda: getattr(server.server.core.metrics, name))
    return value


def assert_bystander_served(server: ServerThread, context: ssl.SSLContext, nick: str) -> None:
    """A client from another address registers and its PING is answered within the timeout."""
    bystander = IrcClient.connect(server.host, server.port, context, source=BYSTANDER)
    try:
        bystander.register(nick)
        bystander.send("PING :still-here")
        bystander.expect(r" PONG \S+ :still-here")
    finally:
        bystander.close()


def closed_by_server(sock: socket.socket) -> bool:
    """True when the server has closed ``sock`` (EOF or reset), False while it is open."""
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def test_silent_sockets_past_the_handshake_cap_are_closed_at_accept_and_others_are_served(
    make_server: MakeServer, client_context: ssl.SSLContext
) -> None:
    server = make_server(max_handshakes_per_address=4)
    with ExitStack() as stack:
        silent = [stack.enter_context(raw_connect(server)) for _ in range(12)]
        poll(lambda: metric(server, "accept_refusals"), lambda n: n == 8)
        assert server.in_loop(lambda: server.server.gate.handshakes) == 4
        poll(lambda: sum(closed_by_server(s) for s in silent), lambda n: n == 8)
        assert_bystander_served(server, client_context, "calm")
    assert metric(server, "tls_handshake_failures") == 0


def test_connecting_too_fast_is_refused_at_accept_without_a_handshake(
    make_server: MakeServer, client_context: ssl.SSLContext
) -> None:
    server = make_server(accept_burst=2, accept_rate=0.001)
    with ExitStack() as stack:
        for n in range(2):
            client = IrcClient.connect(server.host, server.port, client_context).register(f"ok{n}")
            stack.callback(client.close)
        with pytest.raises((ssl.SSLError, OSError)):
            IrcClient.connect(server.host, server.port, client_context).register("third")
        assert metric(server, "accept_refusals") == 1
        assert metric(server, "tls_handshake_failures") == 0  # no TLS work was done for it
        assert_bystander_served(server, client_context, "calm")


def test_sockets_per_address_count_connected_clients_and_handshakes_together(
    make_server: MakeServer, client_context: ssl.SSLContext
) -> None:
    server = make_server(max_sockets_per_address=3)
    with ExitStack() as stack:
        for n in range(2):
            client = IrcClient.connect(server.host, server.port, client_context).register(f"ok{n}")
            stack.callback(client.close)
        stack.enter_context(raw_connect(server))  # a third socket, still silent
        fourth = stack.enter_context(raw_connect(server))
        poll(lambda: closed_by_server(fourth), lambda closed: closed)
        assert metric(server, "accept_refusals") == 1
        assert_bystander_served(server, client_context, "calm")


def test_near_the_descriptor_limit_the_flooders_newest_handshakes_are_shed_not_newcomers(
    make_server: MakeServer, client_context: ssl.SSLContext
) -> None:
    server = make_server()
    chat = server.server
    budget = server.in_loop(lambda: chat.gate.total) + 6
    server.in_loop(lambda: setattr(chat.gate, "fd_budget", budget))  # as if the limit were near
    with ExitStack() as stack:
        silent = [stack.enter_context(raw_connect(server)) for _ in range(10)]
        poll(lambda: metric(server, "handshakes_shed"), lambda n: n == 4)
        assert sum(closed_by_server(s) for s in silent[:6]) == 0  # the oldest are kept
        assert_bystander_served(server, client_context, "newcomer")
        assert metric(server, "handshakes_shed") >= 5  # the newcomer cost the flood one more
        assert server.in_loop(lambda: chat.gate.total) <= budget
