"""The fuzz target, importable without atheris: ``test_one_input(data)``.

One input is treated three ways:

1. as one line for ``parse``: it never raises, and re-serializing what it returns
   gives exactly one well-formed line of at most 512 bytes;
2. as a byte stream for ``LineBuffer``, cut into chunks at points taken from the input:
   the lines it delivers never depend on the chunking, and each is bounded;
3. as a session: the delivered lines are fed to a fresh ``ServerCore`` on behalf of
   three clients (two registered and sharing a room, one not); no handler bug is
   reported (400), every line sent is well formed, nothing is sent to a closed
   connection, and room, nick and session state stays consistent.

A failure raises ``AssertionError`` (or whatever escaped the code under test).
tests/fuzz/fuzz_parser.py runs this under atheris; tests/unit/test_fuzz_smoke.py runs
it over a seeded random corpus, and under atheris briefly when atheris is installed.
"""

from __future__ import annotations

from collections.abc import Iterable

from securechat.protocol import numerics as n
from securechat.protocol.framing import MAX_LINE_BYTES, TOO_LONG, LineBuffer
from securechat.protocol.message import MAX_BODY_BYTES, build, parse
from securechat.protocol.names import casefold
from securechat.server.actions import Action, Close, Send
from securechat.server.config import ServerConfig
from securechat.server.core import ServerCore

START = 1_000_000.0
MAX_SOURCE_CHARS = 100
SEED_CORPUS: tuple[bytes, ...] = (
    b"NICK alice\r\nUSER a 0 * :Alice\r\n",
    b"CAP LS 302\r\nCAP REQ :message-tags server-time echo-message\r\nCAP END\r\n",
    b"JOIN #a,#b key\r\nPRIVMSG #a :hello\r\nPART #b :bye\r\n",
    b"@+draft/react=\\s\\:;msgid=x :src PRIVMSG #a,bob :\x01ACTION waves\x01\r\n",
    b"MODE #a +ov-t bob bob\r\nTOPIC #a :new topic\r\nKICK #a bob :out\r\n",
    b"INVITE bob #a\r\nWHO #a\r\nWHOIS bob\r\nNAMES #a\r\nLIST\r\nAWAY :gone\r\n",
    b"NICK Bob\r\nNICK bob\r\nMODE alice +i\r\nPING :x\r\nQUIT :done\r\n",
    b"PRIVMSG #a :" + b"x" * 600 + b"\r\n",
    b"\xff\xfe\x00\r\r\n\n @ : \r\n",
)


def test_one_input(data: bytes) -> None:
    """The fuzz target: one input, all three views of it."""
    check_parse(data)
    lines = check_framing(data)
    check_core(lines)


# ---- 1. parse ----------------------------------------------------------------------------------


def check_parse(data: bytes) -> None:
    message = parse(data)
    if message is None:
        return
    assert message.command and " " not in message.command, message
    # Sources the server writes are nick!user@host, a few dozen bytes; a 500-byte one
    # would leave no room for the command in the 512-byte body.
    source = message.source[:MAX_SOURCE_CHARS] if message.source else None
    line = build(message.command, message.params, source, message.tags or None)
    check_wire_line(line)


def check_wire_line(line: bytes) -> None:
    assert line.endswith(b"\r\n") and line.count(b"\n") == 1, line
    assert b"\0" not in line and b"\r" not in line[:-2], line
    body = line.split(b" ", 1)[1] if line.startswith(b"@") else line
    assert len(body) <= MAX_BODY_BYTES, line
    assert parse(line) is not None, line


# ---- 2. framing --------------------------------------------------------------------------------


def check_framing(data: bytes) -> list[bytes]:
    """The lines of ``data`` as the network layer would deliver them."""
    whole = LineBuffer().feed(data)
    chunked = LineBuffer()
    pieces = [line for chunk in _chunks(data) for line in chunked.feed(chunk)]
    assert pieces == whole, (pieces, whole)
    for line in whole:
        assert line is TOO_LONG or line == TOO_LONG or 0 < len(line) <= MAX_LINE_BYTES
        assert b"\n" not in line
    return whole


def _chunks(data: bytes) -> Iterable[bytes]:
    """Cut ``data`` at points derived from its own bytes (deterministic per input)."""
    start = 0
    step_source = data[:16] or b"\x07"
    index = 0
    while start < len(data):
        size = 1 + step_source[index % len(step_source)] * 3
        yield data[start : start + size]
        start += size
        index += 1


# ---- 3. the core -------------------------------------------------------------------------------


class CoreDriver:
    """A fresh core with three clients; applies actions and checks them as they come."""

    def __init__(self) -> None:
        self.now = START
        config = ServerConfig(name="fuzz.test", data_dir=None)
        self.core = ServerCore(config, self.now)
        self.closed: set[int] = set()
        for conn in (1, 2, 3):
            self.apply(self.core.connect(conn, "127.0.0.1", self.now))
        for conn, nick in ((1, "alice"), (2, "bob")):
            self.feed(conn, f"NICK {nick}".encode())
            self.feed(conn, f"USER {nick} 0 * :{nick}".encode())
            self.feed(conn, b"JOIN #a")

    def feed(self, conn: int, line: bytes) -> None:
        if conn not in self.closed:
            self.apply(self.core.receive_line(conn, line, self.now))

    def apply(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                assert action.targets, "a Send without targets"
                for conn in action.targets:
                    assert conn not in self.closed, f"data sent to closed conn {conn}"
                check_wire_line(action.data)
                message = parse(action.data)
                assert message is not None and message.command != n.ERR_UNKNOWNERROR, action.data
            elif isinstance(action, Close):
                self.closed.add(action.conn)
            # Store and worker actions cannot occur without a data directory; ignore them.

    def check_state(self) -> None:
        core = self.core
        for room in core.rooms:
            assert room.members or getattr(room, "registered", False), f"empty {room.name}"
            for nick_cf, member in room.members.items():
                session = member.session
                assert core.sessions.get(session.conn) is session
                assert session.nick_cf == nick_cf and session.rooms.get(room.name_cf) is room
        for session in core.sessions.values():
            for room in session.rooms.values():
                assert core.rooms.get(room.name) is room
                assert room.members.get(session.nick_cf) is not None
            if session.nick_cf:
                assert session.nick_cf == casefold(session.nick)
                assert core.nicks.get(session.nick) is session
        for owner in core.nicks:
            assert core.sessions.get(owner.conn) is owner, f"stale nick {owner}"
        for conn in self.closed:
            assert conn not in core.sessions


def check_core(lines: list[bytes]) -> None:
    driver = CoreDriver()
    for index, line in enumerate(lines[:64]):  # bounded work per input
        conn = 1 + (line[0] if line else index) % 3
        driver.feed(conn, line)
        if line[:1] == b"\x7f":  # a rare byte moves the clock past every timeout
            driver.now += 200.0
            driver.apply(driver.core.tick(driver.now))
        driver.check_state()
    for conn in (1, 2, 3):
        driver.apply(driver.core.disconnect(conn, "Connection closed", driver.now))
        driver.closed.add(conn)
    driver.check_state()
    assert not driver.core.sessions and not len(driver.core.nicks)
