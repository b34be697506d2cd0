"""The full-screen client alerts on mentions and private messages, and counts what is below."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

from securechat.client.tui import Options
from tests.integration.tui_support import chat_with_peer, log_text, run_app, static_text
from tests.support import ServerThread


def test_a_mention_raises_a_desktop_notification_and_a_plain_line_does_not(
    server: ServerThread, ca_file: Path, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    _, app = run_app(server, ca_file, tmp_path, rooms=("#a",), options=Options(notify="desktop"))

    async def scenario() -> None:
        async with chat_with_peer(app, server, client_context) as chat:
            until, bob = chat.until, chat.peer
            bob.send("PRIVMSG #a :just chatting")
            await until(lambda: "just chatting" in log_text(app))
            assert app.alerts_sent == []
            bob.send("PRIVMSG #a :alice: lunch?")
            await until(lambda: bool(app.alerts_sent))
            assert app.alerts_sent == [
                "\x1b]777;notify;securechat #a;<bob> alice: lunch?\x1b\\"
                "\x1b]9;securechat #a: <bob> alice: lunch?\x1b\\\a"
            ]

    asyncio.run(scenario())


def test_lines_arriving_while_scrolled_up_are_counted_until_page_down(
    server: ServerThread, ca_file: Path, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    _, app = run_app(server, ca_file, tmp_path, rooms=("#a",), options=Options(notify="none"))

    async def scenario() -> None:
        async with chat_with_peer(app, server, client_context) as chat:
            pilot, until, bob = chat.pilot, chat.until, chat.peer
            for i in range(40):
                bob.send(f"PRIVMSG #a :filler {i}")
            await until(lambda: "filler 39" in log_text(app))
            await pilot.pause()
            await pilot.press("pageup")
            await pilot.pause()
            bob.send("PRIVMSG #a :while you read")
            await until(lambda: "while you read" in log_text(app))
            assert "1 new below (PageDown)" in static_text(app, "#status")
            for _ in range(4):
                await pilot.press("pagedown")
                await pilot.pause()
            assert "new below" not in static_text(app, "#status")
            assert app.alerts_sent == []  # notify = "none"

    asyncio.run(scenario())
