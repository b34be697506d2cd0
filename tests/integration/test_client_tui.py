"""The full-screen client driven by Textual's Pilot against the real server over TLS."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from pathlib import Path

from textual.widgets import RichLog

from securechat.client.tui import ChatInput
from tests.integration.client_support import texts
from tests.integration.tui_support import (
    SIZE,
    chat_with_peer,
    log_text,
    peer,
    run_app,
    static_text,
    type_line,
    watch,
)
from tests.support import ServerThread


def test_typed_join_and_line_reach_another_client(
    server: ServerThread, ca_file: Path, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    client, app = run_app(server, ca_file, tmp_path)

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            until = watch(client)
            await until(lambda: client.session.registered)
            await type_line(pilot, "/join #a")
            await until(lambda: client.session.shown.name == "#a" and client.session.shown.joined)
            bob = await asyncio.to_thread(peer, server, client_context, "bob", "#a")
            await type_line(pilot, "hello bob")
            await asyncio.to_thread(bob.expect, r"PRIVMSG #a :hello bob")
            await until(lambda: "<alice> hello bob" in log_text(app))
            assert "#a" in static_text(app, "#topic")
            bob.close()
            await app.action_quit_chat()

    asyncio.run(scenario())


def test_message_arrives_in_its_own_buffer_and_alt_digit_shows_it(
    server: ServerThread, ca_file: Path, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    client, app = run_app(server, ca_file, tmp_path, rooms=("#a", "#b"))

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            until = watch(client)
            room_a = client.session.buffer("#a")
            assert room_a is not None
            await until(lambda: client.session.registered and room_a.joined)
            assert client.session.shown.name == "#b"
            bob = await asyncio.to_thread(peer, server, client_context, "bob", "#a")
            bob.send("PRIVMSG #a :hi alice, over here")
            await until(lambda: room_a.mentions == 1)
            assert "over here" not in log_text(app)  # #b is shown, the line is in #a
            assert "#a 1!" in static_text(app, "#buffers")
            await pilot.press("alt+2")
            assert client.session.shown is room_a and room_a.mentions == 0
            assert "<bob> hi alice, over here" in log_text(app)
            assert "bob" in static_text(app, "#nicks")
            bob.close()
            await app.action_quit_chat()

    asyncio.run(scenario())


def test_ctrl_n_ctrl_p_and_alt_a_switch_buffers(
    server: ServerThread, ca_file: Path, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    client, app = run_app(server, ca_file, tmp_path, rooms=("#a", "#b"))

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            until = watch(client)
            session = client.session
            await until(lambda: all(session.buffer(r).joined for r in ("#a", "#b")))  # type: ignore[union-attr]
            await pilot.press("ctrl+n")
            assert session.shown is session.server
            await pilot.press("ctrl+p")
            assert session.shown.name == "#b"
            bob = await asyncio.to_thread(peer, server, client_context, "bob", "#a")
            bob.send("PRIVMSG #a :anyone?")
            await until(lambda: session.buffer("#a").unread == 1)  # type: ignore[union-attr]
            await pilot.press("alt+a")
            assert session.shown.name == "#a"
            bob.close()
            await app.action_quit_chat()

    asyncio.run(scenario())


def test_tab_completes_a_nick_and_up_recalls_history(
    server: ServerThread, ca_file: Path, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    _, app = run_app(server, ca_file, tmp_path, rooms=("#a",))

    async def scenario() -> None:
        async with chat_with_peer(app, server, client_context, "bobby") as chat:
            chat_input = app.query_one(ChatInput)
            await chat.pilot.press("b", "o", "tab")
            assert chat_input.value == "bobby: "
            await chat.pilot.press("h", "i", "enter")
            await asyncio.to_thread(chat.peer.expect, r"PRIVMSG #a :bobby: hi")
            assert chat_input.value == ""
            await chat.pilot.press("up")
            assert chat_input.value == "bobby: hi"

    asyncio.run(scenario())


def test_quit_command_sends_quit_and_closes_the_app(
    server: ServerThread, ca_file: Path, tmp_path: Path
) -> None:
    client, app = run_app(server, ca_file, tmp_path)

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            until = watch(client)
            await until(lambda: client.session.registered)
            await type_line(pilot, "/quit bye")
            await until(lambda: client.session.closed_by_server)
        assert app.return_code == 0

    asyncio.run(scenario())


def test_page_up_scrolls_back_and_new_lines_do_not_jump_to_the_end(
    server: ServerThread, ca_file: Path, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    client, app = run_app(server, ca_file, tmp_path, rooms=("#a",))

    async def scenario() -> None:
        async with chat_with_peer(app, server, client_context) as chat:
            pilot, until, bob = chat.pilot, chat.until, chat.peer
            for number in range(60):
                bob.send(f"PRIVMSG #a :line {number}")
            await until(lambda: "<bob> line 59" in texts(client, "#a"))
            await pilot.pause()  # let the log lay out the lines it was given
            log = app.query_one(RichLog)
            assert log.scroll_y == log.max_scroll_y
            await pilot.press("pageup")
            scrolled_to = log.scroll_y
            assert scrolled_to < log.max_scroll_y
            bob.send("PRIVMSG #a :one more")
            await until(lambda: "<bob> one more" in texts(client, "#a"))
            await pilot.pause()
            assert log.scroll_y == scrolled_to  # reading back is not interrupted
            await pilot.press("pagedown", "pagedown", "pagedown")
            assert log.scroll_y == log.max_scroll_y

    asyncio.run(scenario())


def test_pageup_at_the_top_fetches_older_history_and_input_history_masks_passwords(
    make_server: Callable[..., ServerThread],
    ca_file: Path,
    client_context: ssl.SSLContext,
    tmp_path: Path,
) -> None:
    server = make_server(data_dir=tmp_path, exempt=("127.0.0.0/8",))
    bob = peer(server, client_context, "bob", "#lobby")
    for number in range(60):  # more than the page fetched on join
        bob.send(f"PRIVMSG #lobby :msg {number}")
    bob.send("PING :done")
    bob.expect(r"PONG .*done")
    client, app = run_app(server, ca_file, tmp_path, rooms=("#lobby",))

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            until = watch(client)
            room = client.session.buffer("#lobby")
            assert room is not None
            await until(lambda: room.joined and "msg 59" in log_text(app))
            shown = [text.rstrip() for text in log_text(app).splitlines()]
            assert not any(text.endswith("<bob> msg 9") for text in shown)  # not fetched yet
            for _ in range(100):  # PageUp until the top is reached and the fetch starts
                await pilot.press("pageup")
                if room.history.pending or room.history.exhausted:
                    break
            await until(lambda: "<bob> msg 0" in log_text(app))
            await type_line(pilot, "/login not-my-password")
            await pilot.press("up")
            assert app.query_one(ChatInput).value == "/login ********"
            bob.close()
            await app.action_quit_chat()

    asyncio.run(scenario())
