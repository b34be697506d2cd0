"""Our terminal client (securechat.client), run for real beside a browser test.

The browser tests are synchronous (Playwright's sync API); the client is asyncio. It runs on
its own event loop in a thread; the test talks to it only through that loop
(``call_soon_threadsafe``) and waits, without sleeping, on an event its ``on_change`` sets.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from securechat.client import sasl
from securechat.client.buffers import Buffer
from securechat.client.net import Backoff, Client
from securechat.client.session import Session
from securechat.client.trust import Endpoint, KnownHosts, Trust
from tests.support import DEFAULT_TIMEOUT, ServerThread

T = TypeVar("T")


class TerminalClient:
    """``securechat connect`` as a test drives it: submit lines, wait for state."""

    def __init__(
        self,
        server: ServerThread,
        tmp_path: Path,
        ca: Path,
        nick: str,
        rooms: tuple[str, ...] = (),
        account: str = "",
        password: str | None = None,
    ) -> None:
        credentials = sasl.Credentials(account=account, password=password)
        session = Session(nick, rooms=rooms, server_label="test", credentials=credentials)
        trust = Trust(KnownHosts(tmp_path / f"known_hosts-{nick}"), ca=ca)
        endpoint = Endpoint(server.host, server.port)
        self.client = Client(session, endpoint, trust, backoff=Backoff(base=0.2, cap=1))
        self.session = session
        self._changed = threading.Event()
        self.client.on_change = self._changed.set  # from the client's loop; never blocks it
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=f"terminal-{nick}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self.client.run())

    def call(self, action: Callable[[], T]) -> T:
        """``action()`` run on the client's loop (its state is only touched there)."""
        done = threading.Event()
        box: list[T] = []

        def run() -> None:
            box.append(action())
            done.set()

        self._loop.call_soon_threadsafe(run)
        assert done.wait(DEFAULT_TIMEOUT), "the client's loop did not answer"
        return box[0]

    def until(self, condition: Callable[[Session], bool], timeout: float = DEFAULT_TIMEOUT) -> None:
        """Wait until ``condition(session)`` holds (checked on the client's loop at each change)."""
        deadline = time.monotonic() + timeout
        while True:
            self._changed.clear()  # before checking: a change from now on wakes the wait
            if self.call(lambda: condition(self.session)):
                return
            remaining = deadline - time.monotonic()
            assert remaining > 0, "the terminal client never reached the expected state"
            self._changed.wait(remaining)

    def submit(self, text: str) -> None:
        self.call(lambda: self.client.submit(text))

    def buffer(self, name: str) -> Buffer:
        found = self.call(lambda: self.session.buffer(name))
        assert found is not None, f"no buffer {name}"
        return found

    def close(self) -> None:
        if self._thread.is_alive():
            future = asyncio.run_coroutine_threadsafe(self.client.quit(), self._loop)
            future.result(DEFAULT_TIMEOUT)
            self._thread.join(DEFAULT_TIMEOUT)
