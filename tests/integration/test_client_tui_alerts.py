"""The full-screen client alerts on mentions and private messages, and counts what is below."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

from securechat.client.tui import ChatApp, Options
from tests.integration.client_support import make_client
from tests.integration.test_client_tui import SIZE, log_text, peer, static_text, watch
from tests.support import ServerThread


def test_a_mention_raises_a_desktop_notification_and_a_plain_line_does_not(
    server: ServerThread, ca_file: Path, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    client = make_client(server.port, tmp_path, ca=ca_file, rooms=("#a",))
    app = ChatApp(client, options=Options(notify="desktop"))

    async def scenario() -> None:
        async with app.run_test(size=SIZE):
            until = watch(client)
            room = client.session.buffer("#a")
            await until(lambda: room is not None and room.joined)
            bob = await asyncio.to_thread(peer, server, client_context, "bob", "#a")
            bob.send("PRIVMSG #a :just chatting")
            await until(lambda: "just chatting" in log_text(app))
            assert app.alerts_sent == []
            bob.send("PRIVMSG #a :alice: lunch?")
            await until(lambda: bool(app.alerts_sent))
            assert app.alerts_sent == [
                "\x1b]777;notify;securechat #a;<bob> alice: lunch?\x1b\\"
                "\x1b]9;securechat #a: <bob> alice: lunch?\x1b\\\a"
            ]
            bob.close()
            await app.action_quit_chat()

    asyncio.run(scenario())


def test_lines_arriving_while_scrolled_up_are_counted_until_page_down(
    server: ServerThread, ca_file: Path, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    client = make_client(server.port, tmp_path, ca=ca_file, rooms=("#a",))
    app = ChatApp(client, options=Options(notify="none"))

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            until = watch(client)
            room = client.session.buffer("#a")
            await until(lambda: room is not None and room.joined)
            bob = await asyncio.to_thread(peer, server, client_context, "bob", "#a")
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
            bob.close()
            await app.action_quit_chat()

    asyncio.run(scenario())
