"""Helpers for driving the real client (securechat.client) in integration tests.

The client runs on the test's own event loop (``asyncio.run``); blocking test
peers (``tests.support.IrcClient``) run in threads so they never stall it.
Waiting is event-driven: every state change of the client wakes ``Watcher``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from securechat.client.net import Backoff, Client
from securechat.client.session import Session
from securechat.client.trust import Endpoint, KnownHosts, Trust

TIMEOUT = 10.0


def make_client(
    port: int,
    tmp_path: Path,
    nick: str = "alice",
    ca: Path | None = None,
    rooms: tuple[str, ...] = (),
    fingerprint: str | None = None,
) -> Client:
    trust = Trust(KnownHosts(tmp_path / "known_hosts"), ca=ca, fingerprint=fingerprint)
    session = Session(nick, rooms=rooms, server_label="test")
    # A short cap keeps reconnect tests quick; the jitter still applies.
    return Client(session, Endpoint("127.0.0.1", port), trust, backoff=Backoff(base=0.2, cap=1))


class Watcher:
    """Wakes on every ``on_change`` of a client; ``until`` waits for a condition."""

    def __init__(self, client: Client) -> None:
        self._changed = asyncio.Event()
        client.on_change = self._changed.set

    async def until(self, condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
        async with asyncio.timeout(timeout):
            while not condition():
                self._changed.clear()
                await self._changed.wait()


def texts(client: Client, buffer: str) -> list[str]:
    found = client.session.buffer(buffer)
    return [] if found is None else [f"<{line.nick}> {line.text}" for line in found.lines]
