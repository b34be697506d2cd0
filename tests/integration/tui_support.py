"""Helpers for driving the full-screen client (ChatApp) with Textual's Pilot over real TLS.

The app runs on the test's own event loop; blocking test peers run in threads. ``chat_with_peer``
is the common start of a test: the app running, a room joined and a peer in it.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import RichLog, Static

from securechat.client.buffers import Buffer
from securechat.client.net import Client
from securechat.client.tui import ChatApp, Options
from tests.integration.client_support import TIMEOUT, make_client
from tests.support import IrcClient, ServerThread

SIZE = (80, 24)  # the smallest terminal the client promises to work in

Until = Callable[[Callable[[], bool]], Awaitable[None]]


def peer(server: ServerThread, context: ssl.SSLContext, nick: str, room: str) -> IrcClient:
    return IrcClient.connect(server.host, server.port, context).register(nick).join(room)


def watch(client: Client) -> Until:
    """After the app has mounted: a waiter that wakes on every state change of the client."""
    changed = asyncio.Event()
    redraw = client.on_change

    def on_change() -> None:
        redraw()
        changed.set()

    client.on_change = on_change

    async def until(condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(TIMEOUT):
            while not condition():
                changed.clear()
                await changed.wait()

    return until


async def type_line(pilot: Pilot[int], text: str) -> None:
    await pilot.press(*["space" if c == " " else c for c in text], "enter")


def log_text(app: ChatApp) -> str:
    return "\n".join(strip.text for strip in app.query_one(RichLog).lines)


def static_text(app: ChatApp, selector: str) -> str:
    return str(app.query_one(selector, Static).content)


def run_app(
    server: ServerThread,
    ca_file: Path,
    tmp_path: Path,
    rooms: tuple[str, ...] = (),
    options: Options | None = None,
) -> tuple[Client, ChatApp]:
    client = make_client(server.port, tmp_path, ca=ca_file, rooms=rooms)
    return client, ChatApp(client, options=options)


@dataclass
class Chat:
    """What a test drives once ``chat_with_peer`` has set the scene."""

    pilot: Pilot[int]
    until: Until
    room: Buffer
    peer: IrcClient


@asynccontextmanager
async def chat_with_peer(
    app: ChatApp,
    server: ServerThread,
    context: ssl.SSLContext,
    nick: str = "bob",
    room: str = "#a",
) -> AsyncIterator[Chat]:
    """The app running with ``room`` joined and ``nick`` in it, as the client sees it; on the
    way out the peer disconnects and the app quits."""
    async with app.run_test(size=SIZE) as pilot:
        until = watch(app.client)
        buffer = app.client.session.buffer(room)
        await until(lambda: buffer is not None and buffer.joined)
        assert buffer is not None
        other = await asyncio.to_thread(peer, server, context, nick, room)
        try:
            await until(lambda: nick in buffer.members)
            yield Chat(pilot, until, buffer, other)
        finally:
            other.close()
        await app.action_quit_chat()
