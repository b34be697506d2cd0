"""The full-screen client's input: fast-typed and pasted lines are sent exactly once, in order."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

from textual import events

from securechat.client.tui import ChatApp, ChatInput
from tests.integration.tui_support import chat_with_peer, log_text, run_app, type_line
from tests.support import IrcClient, ServerThread


def burst(app: ChatApp, *lines: str) -> None:
    """Keys as a terminal delivers a fast burst: all queued at once, nothing awaited between."""
    for text in lines:
        for char in text:
            app.post_message(events.Key("space" if char == " " else char, char))
        app.post_message(events.Key("enter", "\r"))


def said(bob: IrcClient, count: int) -> list[str]:
    """The next ``count`` PRIVMSG texts bob receives."""
    return [bob.expect(r"PRIVMSG #a :").params[-1] for _ in range(count)]


def test_lines_typed_in_a_fast_burst_are_each_sent_once_in_order(
    server: ServerThread, ca_file: Path, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    """tmux send-keys 'G-one' Enter 'G-two' Enter 'G-three' Enter: three messages, in order."""
    _, app = run_app(server, ca_file, tmp_path, rooms=("#a",))

    async def scenario() -> None:
        async with chat_with_peer(app, server, client_context) as chat:
            pilot, bob = chat.pilot, chat.peer
            burst(app, "G-one", "G-two", "G-three")
            await pilot.pause()
            await type_line(pilot, "after")  # a repeat of the burst would come before it
            expected = ["G-one", "G-two", "G-three", "after"]
            assert await asyncio.to_thread(said, bob, 4) == expected

    asyncio.run(scenario())


def test_a_pasted_block_of_three_lines_is_sent_as_three_messages_in_order(
    server: ServerThread, ca_file: Path, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    """A bracketed paste used to leave only its first line in the input."""
    _, app = run_app(server, ca_file, tmp_path, rooms=("#a",))

    async def scenario() -> None:
        async with chat_with_peer(app, server, client_context) as chat:
            pilot, bob = chat.pilot, chat.peer
            app.post_message(events.Paste("P-one\nP-two é\nP-three\n"))
            await pilot.pause()
            await type_line(pilot, "after")
            expected = ["P-one", "P-two é", "P-three", "after"]
            assert await asyncio.to_thread(said, bob, 4) == expected

    asyncio.run(scenario())


def test_a_long_paste_asks_first_and_enter_sends_every_line_once(
    server: ServerThread, ca_file: Path, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    _, app = run_app(server, ca_file, tmp_path, rooms=("#a",))
    pasted = [f"line {i}" for i in range(1, 13)]

    async def scenario() -> None:
        async with chat_with_peer(app, server, client_context) as chat:
            pilot, bob = chat.pilot, chat.peer
            app.post_message(events.Paste("\n".join(pasted)))
            await pilot.pause()
            assert app.query_one(ChatInput).placeholder == "Send 12 lines to #a? Enter / Esc"
            assert "Send 12 lines to #a?" in log_text(app)
            await pilot.press("x", "enter")  # typing is held while asked; Enter answers
            await type_line(pilot, "after")
            assert await asyncio.to_thread(said, bob, 13) == [*pasted, "after"]

    asyncio.run(scenario())


def test_a_long_paste_cancelled_with_esc_sends_nothing(
    server: ServerThread, ca_file: Path, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    _, app = run_app(server, ca_file, tmp_path, rooms=("#a",))

    async def scenario() -> None:
        async with chat_with_peer(app, server, client_context) as chat:
            pilot, until, bob = chat.pilot, chat.until, chat.peer
            app.post_message(events.Paste("\n".join(f"no {i}" for i in range(5))))
            await pilot.pause()
            await pilot.press("escape")
            await until(lambda: "Paste cancelled" in log_text(app))
            await type_line(pilot, "only this")
            assert await asyncio.to_thread(said, bob, 1) == ["only this"]

    asyncio.run(scenario())
