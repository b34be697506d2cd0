"""Property tests: arbitrary input to the framing and to the sans-I/O core never breaks them.

The parser's own "never raises" property lives in tests/unit/protocol/test_message.py;
here the same idea is pushed through the whole stack: byte streams cut at arbitrary
points, and random command sequences from several clients (with disconnects and a
moving clock) fed to ServerCore through the in-memory harness. After every step the
state invariants that the rest of the server relies on are checked.
"""

from __future__ import annotations

from collections import Counter
from itertools import pairwise

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from securechat.protocol import numerics as n
from securechat.protocol.framing import MAX_LINE_BYTES, TOO_LONG, LineBuffer, is_too_long
from securechat.protocol.message import MAX_BODY_BYTES, build, parse, safe_param
from securechat.protocol.names import casefold
from securechat.server.commands import COMMANDS
from securechat.server.core import ServerCore
from tests.unit.server.harness import FakeClient, Harness

# ---- framing --------------------------------------------------------------------------------

# Bytes that matter to the splitter, plus anything at all.
_stream_bytes = st.lists(
    st.one_of(
        st.sampled_from([b"\n", b"\r\n", b"\r", b" ", b"@", b"PING x", b"\x00", b"\xff"]),
        st.binary(max_size=40),
    ),
    max_size=40,
).map(b"".join)


def _chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in pairwise(edges)]


def _feed_all(chunks: list[bytes]) -> list[bytes]:
    buffer = LineBuffer()
    return [line for chunk in chunks for line in buffer.feed(chunk)]


def _reference_lines(stream: bytes) -> list[bytes]:
    """What framing must deliver for a stream without endless lines: split on LF,
    drop one trailing CR, skip blank lines, mark overlong lines TOO_LONG."""
    *complete, _partial = stream.split(b"\n")
    lines = []
    for raw in complete:
        line = raw.removesuffix(b"\r")
        if is_too_long(line):
            lines.append(TOO_LONG)
        elif line.strip():
            lines.append(line)
    return lines


@given(_stream_bytes, st.lists(st.integers(min_value=0, max_value=2000), max_size=20))
def test_line_buffer_output_does_not_depend_on_how_the_stream_is_chunked(
    stream: bytes, cuts: list[int]
) -> None:
    assert _feed_all(_chunked(stream, cuts)) == _feed_all([stream])


@given(_stream_bytes)
def test_line_buffer_matches_splitting_the_joined_stream(stream: bytes) -> None:
    assert len(stream) < MAX_LINE_BYTES  # the endless-line discard is tested below
    assert _feed_all([stream]) == _reference_lines(stream)


@settings(max_examples=50)
@given(
    st.sampled_from([b" ", b"\r", b"x", b"@t=", b"PRIVMSG #a :"]),
    st.integers(min_value=MAX_LINE_BYTES - 10, max_value=3 * MAX_LINE_BYTES),
    st.lists(st.integers(min_value=1, max_value=4 * MAX_LINE_BYTES), max_size=6),
)
def test_overlong_line_is_one_too_long_marker_however_it_arrives(
    filler: bytes, size: int, cuts: list[int]
) -> None:
    line = (filler * (size // len(filler) + 1))[:size]
    stream = line + b"\r\nPING after\r\n"
    expected = [TOO_LONG, b"PING after"] if is_too_long(line) else [b"PING after"]
    assert _feed_all(_chunked(stream, cuts)) == expected


@given(st.binary(max_size=600))
def test_any_parsed_line_serializes_back_to_exactly_one_bounded_line(data: bytes) -> None:
    message = parse(data)
    if message is None:
        return
    source = message.source[:100] if message.source else None  # real sources are short
    line = build(message.command, message.params, source)
    assert line.endswith(b"\r\n") and line.count(b"\n") == 1 and b"\0" not in line
    assert len(line) <= MAX_BODY_BYTES
    again = parse(line)
    assert again is not None and again.command == safe_param(message.command)


# ---- the core under random command sequences -------------------------------------------------

NICKS = ["alice", "Alice", "bob", "BOB", "carol", "d[a]n", "x" * 31, "9lives", "*", ""]
ROOMS = ["#a", "#A", "#b", "#room", "#", "#a,#b", "#b,#nope,#a", "0", "nochan", "#x" * 30]
MODES = ["+o", "-o", "+v", "-v", "+ov", "+nt", "-nt", "+i", "-i", "+b", "-b", "b", "+k", "-k"]
MODES += ["+l", "-l", "+lk", "+m", "-m", "+im", "+z", "+o-o+v", "+bbbbb"]
CAPS = ["LS", "LS 302", "REQ :echo-message", "REQ :-echo-message", "REQ :bogus", "END", "LIST"]
NAMED = [
    "NICK", "USER", "JOIN", "PART", "PRIVMSG", "NOTICE", "MODE", "TOPIC", "KICK", "INVITE",
    "QUIT", "WHO", "WHOIS", "NAMES", "LIST", "AWAY", "CAP", "PING", "PONG", "PASS", "LUSERS",
    "MOTD",
]  # fmt: skip
# Every command in the table is exercised, including ones added after this list.
COMMAND_NAMES = sorted(set(NAMED) | set(COMMANDS))

_token = st.one_of(
    st.sampled_from(NICKS),
    st.sampled_from(ROOMS),
    st.sampled_from(MODES),
    st.sampled_from(
        ["*", ":", "::", "0", "-1", "2", n.RPL_USERHOST, "alice,bob", "bob,#a", "*!*@*"]
    ),
    st.text(alphabet="ab#:+-,*!@ \x01\x7f\u00e9", max_size=8),
)


_nick = st.one_of(st.sampled_from(NICKS[:5]), st.sampled_from(NICKS))
_room = st.one_of(st.sampled_from(["#a", "#A", "#b"]), st.sampled_from(ROOMS))
_text = st.one_of(
    st.sampled_from(["hi", "", " ", "\x01ACTION waves\x01", ":-)"]), st.text(max_size=12)
)
# Valid-looking shapes reach the handlers' interesting paths far more often than noise.
_SHAPES: dict[str, list[st.SearchStrategy[str]]] = {
    "NICK": [_nick],
    "JOIN": [_room, st.sampled_from(["", "key", "k1,k2"])],
    "PART": [_room, _text],
    "PRIVMSG": [st.one_of(_room, _nick), _text],
    "NOTICE": [st.one_of(_room, _nick), _text],
    "MODE": [st.one_of(_room, _nick), st.sampled_from(MODES), _nick, _nick],
    "TOPIC": [_room, _text],
    "KICK": [_room, st.one_of(_nick, st.just("alice,bob")), _text],
    "INVITE": [_nick, _room],
    "WHO": [st.one_of(_room, _nick)],
    "WHOIS": [_nick],
    "NAMES": [_room],
    "LIST": [_room],
    "AWAY": [_text],
    "QUIT": [_text],
    "CAP": [st.sampled_from(CAPS)],
}


@st.composite
def _shaped_line(draw: st.DrawFn) -> bytes:
    """A known command with plausible parameters, some of them left off."""
    command = draw(st.sampled_from(sorted(_SHAPES)))
    shape = _SHAPES[command]
    count = draw(st.integers(min_value=0, max_value=len(shape)))
    params = [draw(strategy) for strategy in shape[:count]]
    as_trailing: bool = draw(st.booleans())
    if params and as_trailing:
        params[-1] = ":" + params[-1]  # the last one as a trailing parameter
    return " ".join([command, *params]).encode()


@st.composite
def _command_line(draw: st.DrawFn) -> bytes:
    """Any command in the table (or a made-up one) with random tokens."""
    command = draw(st.sampled_from(COMMAND_NAMES))
    if draw(st.booleans()):
        command = command.lower()
    params = draw(st.lists(_token, max_size=4))
    text = " ".join([command, *params])
    if draw(st.booleans()):
        text += " :" + draw(st.text(max_size=20))
    if draw(st.booleans()):
        text = "@+tag=" + draw(st.text(alphabet="ab;=\\ ", max_size=6)) + " " + text
    return text.encode("utf-8", "surrogatepass")


_garbage_line = st.binary(max_size=60).map(lambda b: b.replace(b"\n", b""))
_line = st.one_of(
    _shaped_line(),
    _shaped_line(),
    _shaped_line(),
    _shaped_line(),
    _command_line(),
    _command_line(),
    _garbage_line,
    st.just(TOO_LONG),  # what framing hands over for an overlong line
)


class CoreMachine(RuleBasedStateMachine):
    """Several fake clients connect, send random lines, vanish, and the clock moves."""

    def __init__(self) -> None:
        super().__init__()
        self.h = Harness(registration_timeout=20.0, ping_interval=30.0, ping_timeout=15.0)
        self.live: list[FakeClient] = []
        self.checked_sends = 0

    @property
    def core(self) -> ServerCore:
        return self.h.core

    def _pick(self, index: int) -> FakeClient:
        return self.live[index % len(self.live)]

    def _forget_closed(self) -> None:
        self.live = [c for c in self.live if c.closed is None]

    # ---- steps ----

    @initialize()
    def two_clients_share_a_room(self) -> None:
        for nick in ("alice", "bob"):
            client = self.h.register(nick)
            client.send("JOIN #a")
            self.live.append(client)

    @precondition(lambda self: len(self.live) < 5)
    @rule(register=st.booleans(), nick=st.sampled_from(NICKS[:6]))
    def connect(self, register: bool, nick: str) -> None:
        client = self.h.connect()  # may be refused by connection limits: then it is closed
        self.live.append(client)
        if register:
            client.send(f"NICK {nick}").send(f"USER {nick} 0 * :{nick}")
        self._forget_closed()

    @precondition(lambda self: bool(self.live))
    @rule(
        index=st.integers(min_value=0, max_value=4),
        lines=st.lists(_line, min_size=1, max_size=8),
    )
    def send(self, index: int, lines: list[bytes]) -> None:
        client = self._pick(index)
        for line in lines:
            if client.closed is not None:
                break
            client.send(line)
            self._forget_closed()
            self.invariants_hold()  # after every line, not only after the whole step

    @precondition(lambda self: bool(self.live))
    @rule(index=st.integers(min_value=0, max_value=4))
    def vanish(self, index: int) -> None:
        client = self._pick(index)
        self.h.apply(self.core.disconnect(client.conn, "Connection closed", self.h.now))
        client.closed = "vanished"  # the harness now fails on any Send to it
        self._forget_closed()

    @rule(seconds=st.sampled_from([0.5, 0.5, 2.0, 5.0, 16.0, 31.0]))
    def advance(self, seconds: float) -> None:
        self.h.advance(seconds)
        self._forget_closed()

    # ---- invariants ----

    @invariant()
    def invariants_hold(self) -> None:
        self.no_handler_bug_was_reported()
        self.every_line_sent_is_one_well_formed_line()
        self.room_membership_is_recorded_on_both_sides()
        self.nick_registry_and_sessions_agree()
        self.empty_rooms_are_gone()
        self.closed_connections_have_no_session()
        self.connection_counts_match_sessions()

    def no_handler_bug_was_reported(self) -> None:
        for client in self.h.clients.values():
            bugs = [m for m in client.inbox if m.command == n.ERR_UNKNOWNERROR]
            assert not bugs, f"400 sent to conn {client.conn}: {bugs}"

    def every_line_sent_is_one_well_formed_line(self) -> None:
        for send in self.h.sends[self.checked_sends :]:
            data = send.data
            assert data.endswith(b"\r\n") and data.count(b"\n") == 1, data
            assert b"\0" not in data and b"\r" not in data[:-2], data
            body = data.split(b" ", 1)[1] if data.startswith(b"@") else data
            assert len(body) <= MAX_BODY_BYTES, data
            assert send.targets, "a Send without targets"
        self.checked_sends = len(self.h.sends)

    def room_membership_is_recorded_on_both_sides(self) -> None:
        sessions = self.core.sessions
        for room in self.core.rooms:
            assert self.core.rooms.get(room.name) is room
            for nick_cf, member in room.members.items():
                session = member.session
                assert sessions.get(session.conn) is session, f"{session} gone but in {room.name}"
                assert session.registered and session.nick_cf == nick_cf
                assert session.rooms.get(room.name_cf) is room
        for session in sessions.values():
            for name_cf, room in session.rooms.items():
                assert room.name_cf == name_cf
                assert self.core.rooms.get(room.name) is room, f"{session} in a dropped room"
                own = room.members.get(session.nick_cf)
                assert own is not None and own.session is session

    def nick_registry_and_sessions_agree(self) -> None:
        sessions = self.core.sessions
        named = [s for s in sessions.values() if s.nick_cf]
        for session in named:
            assert session.nick_cf == casefold(session.nick)
            assert self.core.nicks.get(session.nick) is session
        for session in sessions.values():
            if session.registered:
                assert session.nick_cf, f"{session} registered without a nick"
        for owner in self.core.nicks:
            assert sessions.get(owner.conn) is owner, f"stale nick entry {owner}"
        assert len(self.core.nicks) == len(named)

    def empty_rooms_are_gone(self) -> None:
        for room in self.core.rooms:
            # Registered rooms (when the store has them) persist while empty.
            assert room.members or getattr(room, "registered", False), f"empty {room.name}"

    def closed_connections_have_no_session(self) -> None:
        for client in self.h.clients.values():
            if client.closed is not None:
                assert client.conn not in self.core.sessions
        for client in self.live:
            assert client.conn in self.core.sessions

    def connection_counts_match_sessions(self) -> None:
        addresses = self.core.addresses  # per-address limits count every admitted session
        assert addresses.total == len(self.core.sessions)
        hosts = Counter(session.host for session in self.core.sessions.values())
        assert dict(addresses.open_by_address) == dict(hosts)


CoreMachine.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestCoreUnderRandomCommands = CoreMachine.TestCase
