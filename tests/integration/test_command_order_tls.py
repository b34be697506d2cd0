"""A client's replies come in the order it sent its commands, even when a command waits for
scrypt or the store off the event loop (issue 13, "Order"); other clients are never held.

Each test makes the offloaded work wait on a gate (a job that blocks the store writer or the
hashing lane's only thread), sends the command with a ``PING`` right behind it in one write,
checks that a bystander is answered meanwhile, then opens the gate: the command's reply must
come before the ``PONG``. Without the hold the ``PONG`` would already be out while the work
waits (each of these tests fails against the network layer before issue 13).
"""

from __future__ import annotations

import base64
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from securechat.protocol import numerics as n
from securechat.protocol.message import Message
from securechat.server.config import OperBlock
from securechat.server.passwords import hash_password
from tests.support import IrcClient, ServerThread

PASSWORD = "correct-horse"
PROMPT = 3.0  # a bystander's generous "was answered" bound
StartServer = Callable[..., ServerThread]


def client(server: ServerThread, context: ssl.SSLContext, nick: str, *caps: str) -> IrcClient:
    return IrcClient.connect(server.host, server.port, context).register(nick, caps)


@contextmanager
def gated(submit: Callable[[Callable[..., Any]], Future[Any]]) -> Iterator[Future[Any]]:
    """Block the executor behind ``submit`` until the block ends."""
    gate = threading.Event()
    blocker = submit(lambda *_: gate.wait(30))
    try:
        yield blocker
    finally:
        gate.set()
        blocker.result(10)


def store_gate(server: ServerThread) -> Any:
    writer = server.server.writer
    assert writer is not None
    return gated(writer.submit)


def lane_gate(server: ServerThread, lane: str) -> Any:
    return gated(server.server._hash_pools[lane].submit)


def replies_until_pong(alice: IrcClient, token: str) -> list[Message]:
    alice.expect(rf" PONG \S+ :?{token}")
    return alice.seen


def send_behind_gate(
    server: ServerThread,
    gate: Any,
    alice: IrcClient,
    bystander: IrcClient,
    command: str,
    token: str,
) -> None:
    """``command`` then a PING from ``alice``, in one write, while ``gate`` holds the work;
    once the server has read both lines, a bystander's PING is answered promptly."""
    with gate as blocker:
        alice.seen.clear()
        before = lines_in(server)
        alice.sock.sendall(f"{command}\r\nPING :{token}\r\n".encode())
        # The first line was handled; the rest came in the same TLS record, so they were read
        # with it (and answered at once, or held until the command's reply).
        wait_for(lambda: lines_in(server) >= before + 1)
        bystander.send("PING :bystander")
        bystander.expect(r" PONG \S+ :?bystander", timeout=PROMPT)
        assert not blocker.done(), "the gate did not hold: the test proves nothing"


def lines_in(server: ServerThread) -> int:
    return server.in_loop(lambda: server.server.core.metrics.lines_in)


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``condition`` (a server-side fact) until it holds; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the server never read the lines"
        time.sleep(0.01)  # a polling interval


def oper_server(make_server: StartServer) -> ServerThread:
    """One bulk hash worker (so one gate holds the OPER check back) and an operator block
    for ``root``."""
    return make_server(
        exempt=("127.0.0.0/8",),
        hash_workers_bulk=1,
        opers={"root": OperBlock(hash_password(PASSWORD))},
    )


def registered(server: ServerThread, context: ssl.SSLContext, nick: str) -> IrcClient:
    """``nick`` connected, with an account registered under that nick and logged in."""
    user = client(server, context, nick)
    user.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
    user.expect(rf" {n.RPL_LOGGEDIN} ")
    return user


def position(seen: list[Message], predicate: Callable[[Message], bool]) -> int:
    return next(i for i, message in enumerate(seen) if predicate(message))


def is_pong(message: Message) -> bool:
    return message.command == "PONG"


def test_oper_answers_381_before_the_pong_of_a_later_ping(
    make_server: StartServer, client_context: ssl.SSLContext
) -> None:
    server = oper_server(make_server)
    root = client(server, client_context, "root")
    bystander = client(server, client_context, "bystander")
    send_behind_gate(
        server, lane_gate(server, "bulk"), root, bystander, f"OPER root {PASSWORD}", "after-oper"
    )
    seen = replies_until_pong(root, "after-oper")
    assert position(seen, lambda m: m.command == n.RPL_YOUREOPER) < position(seen, is_pong)
    assert position(seen, lambda m: m.command == "MODE") < position(seen, is_pong)


def test_nickserv_identify_answers_before_a_later_ping_and_join_sees_the_login(
    make_server: StartServer, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    server = make_server(data_dir=tmp_path, exempt=("127.0.0.0/8",))
    alice = registered(server, client_context, "alice")
    alice.close()
    alice = client(server, client_context, "alice", "extended-join")
    bystander = client(server, client_context, "bystander")
    identify_then_join = f"PRIVMSG NickServ :IDENTIFY {PASSWORD}\r\nJOIN #after"
    send_behind_gate(server, store_gate(server), alice, bystander, identify_then_join, "after-id")
    seen = replies_until_pong(alice, "after-id")
    logged_in = position(seen, lambda m: m.command == n.RPL_LOGGEDIN)
    joined = position(seen, lambda m: m.command == "JOIN")
    assert logged_in < joined < position(seen, is_pong)
    # extended-join: the JOIN carries the account, so the login took effect before it
    assert seen[joined].params[1] == "alice"


def test_nickserv_register_answers_before_a_later_ping(
    make_server: StartServer, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    server = make_server(data_dir=tmp_path, exempt=("127.0.0.0/8",))
    alice = client(server, client_context, "alice")
    bystander = client(server, client_context, "bystander")
    command = f"PRIVMSG NickServ :REGISTER {PASSWORD}"
    send_behind_gate(server, store_gate(server), alice, bystander, command, "after-register")
    seen = replies_until_pong(alice, "after-register")
    assert position(seen, lambda m: m.command == n.RPL_LOGGEDIN) < position(seen, is_pong)


def test_sasl_plain_answers_903_before_a_later_ping(
    make_server: StartServer, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    server = make_server(data_dir=tmp_path, exempt=("127.0.0.0/8",), hash_workers_login=1)
    alice = registered(server, client_context, "alice")
    alice.close()
    bystander = client(server, client_context, "bystander")
    alice = IrcClient.connect(server.host, server.port, client_context)
    alice.send("CAP LS 302")
    alice.send("CAP REQ :sasl")
    alice.expect(r" CAP \S+ ACK ")
    alice.send("AUTHENTICATE PLAIN")
    alice.expect(r"AUTHENTICATE \+")
    token = base64.b64encode(f"alice\0alice\0{PASSWORD}".encode()).decode()
    send_behind_gate(
        server, lane_gate(server, "login"), alice, bystander, f"AUTHENTICATE {token}", "after-sasl"
    )
    seen = replies_until_pong(alice, "after-sasl")
    assert position(seen, lambda m: m.command == n.RPL_SASLSUCCESS) < position(seen, is_pong)


def test_chanserv_op_answers_before_a_later_ping(
    make_server: StartServer, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    server = make_server(data_dir=tmp_path, exempt=("127.0.0.0/8",))
    alice = registered(server, client_context, "alice")
    alice.join("#owned")
    alice.send("PRIVMSG ChanServ :REGISTER #owned")
    alice.expect(r"ChanServ!\S+ NOTICE alice :#owned is registered")
    bystander = client(server, client_context, "bystander")
    command = "CHANSERV OP #owned bystander"  # no PRIVMSG: no history append to wait for
    send_behind_gate(server, store_gate(server), alice, bystander, command, "after-chanserv")
    seen = replies_until_pong(alice, "after-chanserv")
    said = position(seen, lambda m: m.params[-1:] == ("bystander is not a registered account",))
    assert said < position(seen, is_pong)


def test_a_labeled_oper_gets_its_batch_before_the_pong_of_a_later_ping(
    make_server: StartServer, client_context: ssl.SSLContext
) -> None:
    """labeled-response over TLS: the offloaded OPER's replies come labeled, in one batch."""
    server = oper_server(make_server)
    root = client(server, client_context, "root", "labeled-response", "batch")
    bystander = client(server, client_context, "bystander")
    command = f"@label=op1 OPER root {PASSWORD}"
    send_behind_gate(server, lane_gate(server, "bulk"), root, bystander, command, "after-labeled")
    seen = replies_until_pong(root, "after-labeled")
    opening = position(seen, lambda m: m.command == "BATCH" and m.tags.get("label") == "op1")
    oper = position(seen, lambda m: m.command == n.RPL_YOUREOPER)
    assert opening < oper < position(seen, is_pong)
    assert seen[oper].tags.get("batch") == seen[opening].params[0].removeprefix("+")
