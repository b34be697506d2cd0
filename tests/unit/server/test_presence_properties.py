"""Property test: several connections of one account doing random things (join, part, rename,
talk, go away, quit, vanish, switch always-on, log in again) never break the presence model
(server/presence_accounts.py). After every line: every room member and every registry entry is
a live plain client or a shared identity whose devices are live and agree with it, nothing is
sent to an identity's own id (the harness would fail on it), and no handler bug is reported."""

from __future__ import annotations

from functools import cache

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from securechat.protocol import numerics as n
from securechat.server.passwords import hash_password
from securechat.server.store import MEMORY, Store
from tests.unit.server.harness import FakeClient, Harness

PASSWORD = "correct-horse"

LINES = [
    "JOIN #a",
    "JOIN #b",
    "PART #a",
    "NICK alice",
    "NICK other",
    "PRIVMSG #a :hi",
    "PRIVMSG alice :self",
    "PRIVMSG bob :hi bob",
    "AWAY :out",
    "AWAY",
    "SETNAME :New Name",
    "MODE alice +i",
    "PRIVMSG NickServ :SET ALWAYS-ON ON",
    "PRIVMSG NickServ :SET ALWAYS-ON OFF",
    "PRIVMSG NickServ :LOGOUT",
    f"PRIVMSG NickServ :IDENTIFY alice {PASSWORD}",
    "QUIT :bye",
    "WHO *",
    "NAMES #a",
]


@cache
def alice_hash() -> str:
    return hash_password(PASSWORD)  # one scrypt for the whole test


class PresenceMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        store = Store.open(MEMORY)
        store.create_account("alice", alice_hash(), 0.0)
        self.h = Harness(store=store)
        self.live: list[FakeClient] = []

    def _forget_closed(self) -> None:
        self.live = [c for c in self.live if c.closed is None]

    @initialize()
    def bob_watches_from_a_room(self) -> None:
        bob = self.h.register("bob")
        bob.send("JOIN #a")
        self.live.append(bob)

    @precondition(lambda self: len(self.live) < 5)
    @rule(nick=st.sampled_from(["alice", "dev1", "dev2"]))
    def a_device_logs_in(self, nick: str) -> None:
        client = self.h.connect()
        client.send(f"NICK {nick}").send(f"USER {nick} 0 * :{nick}")
        if not client.has(n.RPL_WELCOME):
            client.send(f"NICK {nick}_")
        client.send(f"PRIVMSG NickServ :IDENTIFY alice {PASSWORD}")
        self.live.append(client)
        self._forget_closed()

    @precondition(lambda self: bool(self.live))
    @rule(index=st.integers(0, 4), lines=st.lists(st.sampled_from(LINES), min_size=1, max_size=5))
    def send(self, index: int, lines: list[str]) -> None:
        client = self.live[index % len(self.live)]
        for line in lines:
            if client.closed is not None:
                break
            client.send(line)
            self._forget_closed()
            self.invariants_hold()

    @precondition(lambda self: bool(self.live))
    @rule(index=st.integers(0, 4))
    def vanish(self, index: int) -> None:
        client = self.live[index % len(self.live)]
        self.h.apply(self.h.core.disconnect(client.conn, "Connection closed", self.h.now))
        client.closed = "vanished"
        self._forget_closed()

    @rule(always_on=st.booleans())
    def every_device_goes(self, always_on: bool) -> None:
        """alice's connections all leave at once (always-on first, or not): the user is
        detached, or quits."""
        devices = [c for c in self.live[1:] if c.closed is None]
        if always_on and devices:
            devices[0].send("PRIVMSG NickServ :SET ALWAYS-ON ON")
        for client in devices:
            if client.closed is None:
                self.h.apply(self.h.core.disconnect(client.conn, "gone", self.h.now))
                client.closed = "vanished"
        self._forget_closed()

    @rule()
    def a_second_passes(self) -> None:
        self.h.advance(1.0)

    @invariant()
    def invariants_hold(self) -> None:
        core = self.h.core
        for client in self.h.clients.values():
            assert not any(m.command == n.ERR_UNKNOWNERROR for m in client.inbox)
        homes = core.presences.homes
        for user in homes.values():
            assert user.devices is not None and user.conn < 0
            assert core.nicks.get(user.nick) is user
            for device in user.devices:
                assert core.sessions.get(device.conn) is device
                assert device.principal is user and device.rooms is user.rooms
                assert device.nick_cf == user.nick_cf and device.away == user.away
        for room in core.rooms:
            for nick_cf, member in room.members.items():
                session = member.session
                assert session.nick_cf == nick_cf and session.rooms.get(room.name_cf) is room
                if session.devices is None:
                    assert core.sessions.get(session.conn) is session and not session.principal
                else:
                    assert homes.get(session.account.lower() if session.account else "") is session
        for owner in core.nicks:
            assert core.sessions.get(owner.conn) is owner or owner in homes.values()
        for account_cf, connections in core.presences.by_account.items():
            for session in connections:
                assert core.sessions.get(session.conn) is session
                assert session.account is not None and session.account.lower() == account_cf


PresenceMachine.TestCase.settings = settings(
    max_examples=20,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestPresenceUnderRandomCommands = PresenceMachine.TestCase
