"""An in-memory harness for ServerCore: fake clients, a fake clock, parsed replies."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

from securechat.protocol import numerics as n
from securechat.protocol.message import Message, parse
from securechat.server.actions import (
    Action,
    AppendHistory,
    Close,
    Continuation,
    Offload,
    Send,
    StoreCall,
)
from securechat.server.config import ServerConfig
from securechat.server.core import ServerCore
from securechat.server.store import Store


@dataclass
class FakeClient:
    harness: Harness
    conn: int
    inbox: list[Message] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    closed: str | None = None

    def send(self, line: str | bytes) -> FakeClient:
        data = line.encode() if isinstance(line, str) else line
        self.harness.feed(self.conn, data)
        return self

    def take(self) -> list[Message]:
        """Messages received since the last take."""
        messages, self.inbox = self.inbox, []
        return messages

    def commands(self) -> list[str]:
        return [m.command for m in self.take()]

    def last(self, command: str) -> Message:
        matches = [m for m in self.inbox if m.command == command]
        assert matches, f"no {command} in {[m.command for m in self.inbox]}"
        return matches[-1]

    def has(self, command: str) -> bool:
        return any(m.command == command for m in self.inbox)


class Harness:
    """Drives a ServerCore. With ``store``, store and worker actions run inline on it."""

    def __init__(
        self, motd: list[str] | None = None, store: Store | None = None, **config: object
    ) -> None:
        self.now = 1_000_000.0
        self.store = store
        # Every fake client comes from 127.0.0.1: per-address limits are lifted unless a
        # test sets them (tests of the limits do).
        relaxed = {"connect_burst": 100_000, "max_connections_per_address": 100_000}
        self.config = ServerConfig(name="irc.test", data_dir=None, **relaxed).replace(**config)
        self.core = ServerCore(self.config, self.now, motd, persistent=store is not None)
        self.clients: dict[int, FakeClient] = {}
        self.next_conn = 0
        self.sends: list[Send] = []

    def connect(self, host: str = "127.0.0.1", certfp: str | None = None) -> FakeClient:
        self.next_conn += 1
        client = FakeClient(self, self.next_conn)
        self.clients[client.conn] = client
        self.apply(self.core.connect(client.conn, host, self.now, certfp))
        return client

    def register(self, nick: str, caps: tuple[str, ...] = ()) -> FakeClient:
        client = self.connect()
        if caps:
            client.send("CAP LS 302").send(f"CAP REQ :{' '.join(caps)}")
        client.send(f"NICK {nick}").send(f"USER {nick.lower()} 0 * :{nick} Real")
        if caps:
            client.send("CAP END")
        assert client.has(n.RPL_WELCOME), [m.command for m in client.inbox]
        client.take()
        return client

    def feed(self, conn: int, data: bytes) -> None:
        self.apply(self.core.receive_line(conn, data, self.now))

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.apply(self.core.tick(self.now))

    def apply(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                self._deliver(action)
            elif isinstance(action, Close):
                self.clients[action.conn].closed = action.reason
            elif isinstance(action, AppendHistory):
                assert self.store is not None, "history appended without a store"
                self.store.append_history(action.records)
            elif isinstance(action, StoreCall):
                assert self.store is not None, "store called without a store"
                self._continue(action.then, functools.partial(action.job, self.store))
            elif isinstance(action, Offload):
                self._continue(action.then, action.job)

    def _continue(self, then: Continuation | None, job: Callable[[], object]) -> None:
        try:
            outcome = job()
        except Exception as error:
            outcome = error
        if then is not None:
            self.apply(self.core.resume(then, outcome, self.now))

    def _deliver(self, action: Send) -> None:
        self.sends.append(action)
        for conn in action.targets:
            client = self.clients[conn]
            assert client.closed is None, "data sent after close"
            client.raw.append(action.data)
            message = parse(action.data)
            assert message is not None
            client.inbox.append(message)
