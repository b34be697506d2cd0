"""The full-screen client with IRCv3 chat features over real TLS: it says it is typing, shows
reactions under the message and who is typing in the status bar."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

from securechat.client.tui import ChatApp
from tests.integration.tui_support import SIZE, log_text, run_app, static_text, watch
from tests.support import IrcClient, ServerThread


def tagged_peer(server: ServerThread, context: ssl.SSLContext) -> IrcClient:
    peer = IrcClient.connect(server.host, server.port, context)
    return peer.register("bob", caps=("message-tags",)).join("#a")


def test_typing_goes_out_and_reactions_and_typing_come_in(
    server: ServerThread, ca_file: Path, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    app: ChatApp
    _, app = run_app(server, ca_file, tmp_path, rooms=("#a",))

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            until = watch(app.client)
            room = app.client.session.buffer("#a")
            await until(lambda: room is not None and room.joined)
            assert room is not None
            bob = await asyncio.to_thread(tagged_peer, server, client_context)
            try:
                await until(lambda: "bob" in room.members)
                await pilot.press("h", "i")
                await asyncio.to_thread(bob.expect, r"\+typing=active.* TAGMSG :?#a")
                await pilot.press("enter")
                said = await asyncio.to_thread(bob.expect, r"PRIVMSG #a :hi")
                bob.send(f"@+draft/reply={said.tags['msgid']};+draft/react=👍 TAGMSG #a")
                await until(lambda: "👍 1" in log_text(app))
                bob.send("@+typing=active TAGMSG #a")
                await until(lambda: "bob is typing…" in static_text(app, "#status"))
                bob.send("PRIVMSG #a :done typing")
                await until(lambda: "bob is typing" not in static_text(app, "#status"))
            finally:
                bob.close()
            await app.action_quit_chat()

    asyncio.run(scenario())
