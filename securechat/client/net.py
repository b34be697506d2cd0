"""The client's connection: TLS to the server, lines in and out, reconnect when it drops.

Rules:
- This is a thin shell: every line read goes to ``Session.receive`` and every
  line it returns is written; every line the user types goes through
  ``Session.submit``. No protocol decisions are made here.
- Trust is settled (``trust.open_trusted``) before the first byte is written.
- A lost connection is retried with capped exponential backoff and jitter, so
  a restarted server is not hit by every client at the same instant; the delay
  starts small again once a connection registers. A trust failure is never
  retried: a changed certificate needs a person.
- A silent connection is probed with PING and dropped when even that gets no
  answer, so a dead peer is noticed without waiting for TCP.
- ``/quit`` and Ctrl-C send QUIT and wait (briefly) for the server to close.
"""

from __future__ import annotations

import asyncio
import random
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from securechat.client.session import Session
from securechat.client.trust import (
    ConnectError,
    Endpoint,
    Streams,
    Trust,
    TrustError,
    close,
    open_trusted,
)
from securechat.protocol.framing import TOO_LONG, LineBuffer
from securechat.protocol.message import build

READ_SIZE = 65536
IDLE_BEFORE_PING = 120.0  # seconds of silence before we check the server is alive
PING_ANSWER_TIMEOUT = 60.0
QUIT_TIMEOUT = 5.0  # how long to wait for the server to confirm QUIT by closing


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Backoff:
    """Reconnect delays: base·2ⁿ seconds, capped, each scaled by a random 50-100 %."""

    base: float = 1.0
    cap: float = 60.0
    rand: Callable[[], float] = random.random
    attempt: int = 0

    def next_delay(self) -> float:
        delay = min(self.cap, self.base * 2.0**self.attempt)
        self.attempt = min(self.attempt + 1, 32)  # 2**32 · base is past any cap
        jitter: float = 0.5 + self.rand() / 2
        return delay * jitter

    def reset(self) -> None:
        self.attempt = 0


@dataclass(slots=True)
class Client:
    """Runs one session over TLS until the user quits; ``run`` returns when it is over."""

    session: Session
    endpoint: Endpoint
    trust: Trust
    on_change: Callable[[], None] = lambda: None
    backoff: Backoff = field(default_factory=Backoff)
    clock: Callable[[], datetime] = utc_now
    registered: asyncio.Event = field(default_factory=asyncio.Event)
    _writer: asyncio.StreamWriter | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _closed: asyncio.Event = field(default_factory=asyncio.Event)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)  # /reconnect: skip the backoff
    _dropping: str = ""  # why we close the connection ourselves, when we do
    gave_up: str | None = None  # why reconnecting stopped for good (a changed certificate)

    @property
    def connected(self) -> bool:
        return self._writer is not None

    async def run(self, streams: Streams | None = None) -> None:
        """Connect (unless ``streams`` is an already trusted connection), serve, reconnect.

        The first connection's failure is raised to the caller (ConnectError, TrustError);
        later ones are retried. A TrustError always ends it: a person must look.
        """
        if streams is None:
            streams = await open_trusted(self.endpoint, self.trust)
        while True:
            reason = await self._serve(*streams)
            if self.session.quitting or self._stop.is_set():
                return
            self.session.connection_lost(reason, self.clock())
            self.on_change()
            next_streams = await self._reconnect()
            if next_streams is None:
                return
            streams = next_streams

    async def _reconnect(self) -> Streams | None:
        while True:
            delay = 0.0 if self._wake.is_set() else self.backoff.next_delay()
            self._wake.clear()
            self.session.status(
                f"Reconnecting to {self.endpoint.label} in {delay:.1f}s…", self.clock()
            )
            self.on_change()
            if await self._sleep_or_stop(delay):
                return None
            try:
                return await open_trusted(self.endpoint, self.trust)
            except ConnectError as exc:
                self.session.status(str(exc), self.clock())
            except TrustError as exc:
                # A person must look: stop here, keep the window and its scrollback.
                self.gave_up = str(exc)
                self.session.trust_failed(str(exc), self.clock())
                self.on_change()
                return None

    async def _sleep_or_stop(self, delay: float) -> bool:
        """Wait ``delay`` seconds (less after /reconnect); True when told to stop meanwhile."""
        stop = asyncio.ensure_future(self._stop.wait())
        wake = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({stop, wake}, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            wake.cancel()
        self._wake.clear()
        return self._stop.is_set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str:
        """Register and exchange lines until the connection ends; returns why it ended."""
        self._writer = writer
        self._dropping = ""
        self._closed.clear()
        self.session.status(f"Connected to {self.endpoint.label} (TLS)", self.clock())
        for notice in self.trust.notices:
            self.session.note(notice, self.clock())
            if self.session.shown is not self.session.server:
                self.session.status(notice, self.clock())
        self.trust.notices.clear()
        self._write(self.session.connection_made())
        try:
            return await self._read_loop(reader)
        finally:
            self._writer = None
            self.registered.clear()
            self._closed.set()
            await close(writer)
            self.on_change()

    async def _read_loop(self, reader: asyncio.StreamReader) -> str:
        lines = LineBuffer()
        pinged = False
        while True:
            try:
                timeout = PING_ANSWER_TIMEOUT if pinged else IDLE_BEFORE_PING
                data = await asyncio.wait_for(reader.read(READ_SIZE), timeout)
            except TimeoutError:
                if pinged:
                    return "the server stopped answering"
                self._write([build("PING", ["securechat"])])
                pinged = True
                continue
            except (OSError, ssl.SSLError) as exc:
                return exc.strerror or str(exc) or "connection error"
            if not data:
                return self._dropping or "the server closed the connection"
            pinged = False
            self._receive(lines.feed(data))

    def _receive(self, raws: list[bytes]) -> None:
        for raw in raws:
            if raw is TOO_LONG or raw == TOO_LONG:
                # Over the protocol limit: nothing we could show faithfully, but say so.
                self.session.status(
                    "A line from the server was too long and was dropped.", self.clock()
                )
                continue
            self._write(self.session.receive(raw, self.clock()))
        self.send_pending()
        if self.session.registered and not self.registered.is_set():
            self.backoff.reset()
            self.registered.set()
        self.on_change()

    def _write(self, lines: list[bytes]) -> None:
        if self._writer is not None and lines:
            self._writer.write(b"".join(lines))

    def send_pending(self) -> None:
        """Lines a UI action left for the server (MARKREAD when a buffer is shown)."""
        self._write(self.session.drain_outbox())

    def typed(self, text: str) -> None:
        """The input line changed: a typing notification when one is due."""
        self._write(self.session.typed(text, self.clock()))

    def tick(self) -> None:
        """Once a second: delayed typing notifications, and typing that went stale."""
        lines, changed = self.session.tick(self.clock())
        self._write(lines)
        if changed:
            self.on_change()

    def submit(self, text: str) -> None:
        """One line the user typed."""
        self._write(self.session.submit(text, self.clock()))
        self.send_pending()
        self._reconnect_if_asked()
        self.on_change()

    def submit_paste(self, lines: list[str]) -> None:
        """Lines pasted at once (one draft/multiline message where the server offers it)."""
        self._write(self.session.submit_paste(lines, self.clock()))
        self._reconnect_if_asked()
        self.on_change()

    def _reconnect_if_asked(self) -> None:
        """/reconnect: drop the connection (if any) and connect again without the backoff."""
        if not self.session.reconnect_requested:
            return
        self.session.reconnect_requested = False
        self.backoff.reset()
        self._wake.set()
        if self._writer is not None:
            self._dropping = "reconnecting as you asked"
            self._writer.close()  # the read loop ends; run() reconnects at once (_wake)

    def page_history(self) -> None:
        """Fetch the page of history before the oldest line of the shown buffer (PageUp)."""
        self._write(self.session.request_history(self.clock()))
        self.on_change()

    async def quit(self, reason: str = "") -> None:
        """Send QUIT (once) and wait for the server to close, then stop reconnecting."""
        if not self.session.quitting:
            self.submit(f"/quit {reason}".rstrip())
        self._stop.set()
        if self._writer is None:
            return
        try:
            await asyncio.wait_for(self._closed.wait(), QUIT_TIMEOUT)
        except TimeoutError:
            if self._writer is not None:
                self._writer.close()
