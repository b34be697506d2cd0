"""Issue 16 end to end over real TLS: the browser app, our terminal client and a third user on
one server. React from the browser, the count shows in the terminal; read on one device, the
marker moves on the other; deleted and edited messages stay so after a reconnect; an account
is created from the login card."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from securechat.client.decor import Decorator
from securechat.client.session import Session
from tests.support import IrcClient, ServerThread
from tests.web.browser_support import (
    Browser,
    Page,
    Start,
    log_in,
    playwright_api,
    raw_client,
    require_browser,
    room,
    say,
    shown,
    url,
)
from tests.web.terminal_support import TerminalClient

require_browser()
PASSWORD = "correct-horse-battery"


@pytest.fixture
def terminals(tmp_path: Path, ca_file: Path) -> Iterator[Any]:
    """``terminals(server, nick, **options)``: our terminal client, closed after the test."""
    started: list[TerminalClient] = []

    def start(server: ServerThread, nick: str, **options: Any) -> TerminalClient:
        terminal = TerminalClient(server, tmp_path, ca_file, nick, **options)
        started.append(terminal)
        return terminal

    yield start
    for terminal in started:
        terminal.close()


def in_room(session: Session, room_name: str = "#general") -> bool:
    buffer = session.buffer(room_name)
    return buffer is not None and buffer.joined


def reactions_on(session: Session, text: str) -> str | None:
    """The reaction summary under the terminal's line ``text`` in #general."""
    buffer = session.buffer("#general")
    line = next((x for x in buffer.lines if x.text == text), None) if buffer else None
    if buffer is None or line is None:
        return None
    return Decorator(buffer, session.nick).decor(line).reactions


def row(page: Page, text: str) -> Any:
    return page.locator("#log .msg", has_text=text)


def register_account(server: ServerThread, context: Any, nick: str) -> None:
    client = IrcClient.connect(server.host, server.port, context).register(nick)
    client.send(f"PRIVMSG NickServ :REGISTER {PASSWORD}")
    client.expect(r" 900 ")
    client.send("QUIT")
    client.expect_closed()


def test_a_reaction_from_the_browser_is_counted_in_the_terminal_client_and_back(
    web_server: Start, pages: Browser, terminals: Any, tmp_path: Path
) -> None:
    server = web_server(data_dir=tmp_path / "data")
    carol = terminals(server, "carol", rooms=("#general",))
    carol.until(in_room)
    page = pages.page()
    log_in(page, server, "alice")
    carol.submit("ship it?")
    message = row(page, "ship it?")
    message.hover()
    message.get_by_role("button", name="React", exact=True).click()
    message.get_by_role("button", name="React 👍").click()
    message.get_by_role("button", name="👍 1").wait_for()
    carol.until(lambda s: reactions_on(s, "ship it?") == "👍 1")
    carol.submit("/react 🎉")  # the latest message: the same one
    message.get_by_role("button", name="🎉 1").wait_for()
    message.get_by_role("button", name="👍 1").click()  # yours: a click takes it back
    carol.until(lambda s: reactions_on(s, "ship it?") == "🎉 1")
    message.get_by_role("button", name="👍 1").wait_for(state="detached")
    # Guests keep no read markers: the clients do not ask (ACCOUNT_REQUIRED at every line).
    for name in ("#general", "Server"):
        room(name, page).click()
        assert "read markers" not in page.get_by_role("log").inner_text()
    said = carol.call(lambda: [x.text for b in carol.session.buffers.values() for x in b.lines])
    assert not [text for text in said if "read markers" in text]
    assert pages.all_problems() == []


def test_a_reply_from_the_terminal_shows_quoted_in_the_browser(
    web_server: Start, pages: Browser, terminals: Any, client_context: Any
) -> None:
    server = web_server()
    page = pages.page()
    log_in(page, server, "alice")
    carol = terminals(server, "carol", rooms=("#general",))
    carol.until(in_room)
    say(page, "lunch at noon?")
    carol.until(lambda s: any(x.text == "lunch at noon?" for x in s.buffer("#general").lines))
    carol.submit("/reply alice yes, see you there")
    answer = row(page, "yes, see you there")
    answer.get_by_text("↪ alice: lunch at noon?").wait_for()
    # and the browser's Reply button, seen quoted by the terminal
    row(page, "yes, see you there").hover()
    answer.get_by_role("button", name="Reply").click()
    page.get_by_text("Replying to carol: yes, see you there").wait_for()
    say(page, "great")
    carol.until(lambda s: any(x.text == "great" and x.reply_to for x in s.buffer("#general").lines))
    buffer = carol.buffer("#general")
    reply = carol.call(lambda: next(x for x in buffer.lines if x.text == "great"))
    decor = carol.call(lambda: Decorator(buffer, "carol").decor(reply))
    assert decor.quote == "carol: yes, see you there"
    assert pages.all_problems() == []


def test_reading_on_one_device_moves_the_marker_and_unread_count_on_the_other(
    web_server: Start, pages: Browser, terminals: Any, client_context: Any, tmp_path: Path
) -> None:
    server = web_server(data_dir=tmp_path / "data")
    register_account(server, client_context, "dana")
    laptop = terminals(
        server, "dana_laptop", rooms=("#general",), account="dana", password=PASSWORD
    )
    laptop.until(lambda s: in_room(s) and s.account == "dana")
    laptop.call(lambda: laptop.session.show(laptop.session.server))  # reading elsewhere
    bob = raw_client(server, client_context, "bob")
    for index in range(3):
        bob.send(f"PRIVMSG #general :news {index}")
    laptop.until(lambda s: s.buffer("#general").unread == 3)
    phone = pages.page()
    log_in(phone, server, "dana", password=PASSWORD)  # #general is shown: read on the phone
    shown(phone, "news 2").wait_for()
    laptop.until(lambda s: s.buffer("#general").unread == 0)
    marker = laptop.call(lambda: laptop.session.buffer("#general").read_marker)
    newest = laptop.call(lambda: laptop.session.buffer("#general").latest_time())
    assert marker is not None and marker == newest
    # and the other way: the laptop reads, the phone's badge goes
    phone.get_by_label("Message").fill("/join #side")
    phone.get_by_label("Message").press("Enter")
    phone.get_by_role("heading", name="#side").wait_for()
    bob.send("PRIVMSG #general :more news")
    room("#general", phone).get_by_text("1").wait_for()
    laptop.until(lambda s: s.buffer("#general").unread == 1)
    laptop.call(lambda: laptop.session.show(laptop.session.buffer("#general")))
    laptop.call(laptop.client.send_pending)
    playwright_badge_gone(phone)
    bob.close()
    assert pages.all_problems() == []


def playwright_badge_gone(page: Page) -> None:
    room("#general", page).locator(".badge").wait_for(state="detached")


def test_deleted_and_edited_messages_stay_so_after_a_reconnect(
    web_server: Start, pages: Browser, terminals: Any, tmp_path: Path
) -> None:
    server = web_server(data_dir=tmp_path / "data")
    page = pages.page()
    log_in(page, server, "alice")
    carol = terminals(server, "carol", rooms=("#general",))
    carol.until(in_room)
    say(page, "my password is hunter2")
    mistake = row(page, "my password is hunter2")
    mistake.hover()
    mistake.get_by_role("button", name="Delete").click()
    mistake.get_by_role("button", name="Confirm delete").click()
    shown(page, "(message deleted)").wait_for()
    carol.until(lambda s: any(x.redacted for x in s.buffer("#general").lines))
    assert not carol.call(
        lambda: [x for x in carol.session.buffer("#general").lines if "hunter2" in x.text]
    )
    carol.submit("teh release is out")
    carol.until(lambda s: any(x.text == "teh release is out" for x in s.buffer("#general").lines))
    shown(page, "teh release is out").wait_for()
    carol.submit("/edit the release is out")
    edited = row(page, "the release is out")
    edited.get_by_text("(edited)").wait_for()
    shown(page, "teh release is out").wait_for(state="detached")
    page.reload()
    page.get_by_role("button", name="Connect").click()
    row(page, "the release is out").get_by_text("(edited)").wait_for()
    shown(page, "(message deleted: edited)").wait_for(state="detached")  # replaced by its edit
    page.get_by_role("log").get_by_text("message deleted").first.wait_for()
    assert "hunter2" not in page.get_by_role("log").inner_text()
    assert "teh release" not in page.get_by_role("log").inner_text()
    assert pages.all_problems() == []


def test_an_account_is_created_from_the_login_card_and_logs_in_next_time(
    web_server: Start, pages: Browser, tmp_path: Path
) -> None:
    server = web_server(data_dir=tmp_path / "data")
    page = pages.page()
    page.goto(url(server))
    page.get_by_role("button", name="Create an account").click()
    page.get_by_role("heading", name="Create an account").wait_for()
    page.get_by_label("Nickname").fill("erin")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    room("#general", page).wait_for()
    room("Server", page).click()  # account replies are kept there
    page.get_by_role("log").get_by_text(re.compile("registered|created", re.I)).first.wait_for()
    page.close()
    again = pages.page()
    log_in(again, server, "erin", password=PASSWORD)  # SASL: a wrong password would be refused
    again.get_by_role("status").get_by_text("Connected", exact=True).wait_for()
    accounts = server.in_loop(
        lambda: [s.account for s in server.server.core.sessions.values() if s.nick == "erin"]
    )
    assert accounts == ["erin"]
    assert pages.all_problems() == []


def test_typing_shows_on_the_other_side_and_ends_with_the_message(
    web_server: Start, pages: Browser, terminals: Any
) -> None:
    server = web_server()
    page = pages.page()
    log_in(page, server, "alice")
    carol = terminals(server, "carol", rooms=("#general",))
    carol.until(in_room)
    page.get_by_label("Message").press_sequentially("hel")
    carol.until(lambda s: s.buffer("#general").typing.active() == ["alice"])
    carol.call(lambda: carol.client.typed("on my way"))
    typing = page.locator("#typing")
    playwright_api.expect(typing).to_have_text("carol is typing…")
    carol.submit("on my way")
    shown(page, "on my way").wait_for()
    playwright_api.expect(typing).to_have_text("")
    page.get_by_label("Message").press("Enter")  # alice sends "hel": her typing ends too
    carol.until(lambda s: s.buffer("#general").typing.active() == [])
    assert pages.all_problems() == []


def test_a_multiline_message_is_one_block_in_the_browser_and_the_terminal(
    web_server: Start, pages: Browser, terminals: Any
) -> None:
    server = web_server()
    page = pages.page()
    log_in(page, server, "alice")
    carol = terminals(server, "carol", rooms=("#general",))
    carol.until(in_room)
    block = "steps:\n  1. pull\n\n  2. run scripts/test"
    page.get_by_label("Message").fill(block)  # what a paste of a code block leaves
    page.get_by_label("Message").press("Enter")
    carol.until(lambda s: any(x.text == block for x in s.buffer("#general").lines))
    sent = row(page, "2. run scripts/test")
    sent.wait_for()
    assert sent.count() == 1 and sent.locator(".text").inner_text() == block
    carol.call(lambda: carol.client.submit_paste(["def f():", "    return 1"]))
    pasted = row(page, "return 1")
    pasted.wait_for()
    assert pasted.count() == 1 and pasted.locator(".text").inner_text() == "def f():\n    return 1"
    assert pages.all_problems() == []


def test_two_devices_logging_in_with_one_nick_share_the_read_marker(
    web_server: Start, pages: Browser, terminals: Any, client_context: Any, tmp_path: Path
) -> None:
    """The phone asks for the laptop's nick: with multiclient it becomes a second device of
    that user, without it it takes ``erin_``; either way one account, one marker."""
    server = web_server(data_dir=tmp_path / "data")
    register_account(server, client_context, "erin")
    laptop = terminals(server, "erin", rooms=("#general",), account="erin", password=PASSWORD)
    laptop.until(lambda s: in_room(s) and s.account == "erin")
    laptop.call(lambda: laptop.session.show(laptop.session.server))
    bob = raw_client(server, client_context, "bob")
    bob.send("PRIVMSG #general :hello erin")
    laptop.until(lambda s: s.buffer("#general").unread == 1)
    phone = pages.page()
    log_in(phone, server, "erin", password=PASSWORD)
    shown(phone, "hello erin").wait_for()
    laptop.until(lambda s: s.buffer("#general").unread == 0)
    bob.close()
    assert pages.all_problems() == []


def test_private_messages_sent_while_away_show_when_the_terminal_client_comes_back(
    web_server: Start, terminals: Any, client_context: Any, tmp_path: Path
) -> None:
    """With the server keeping private messages for an offline account (always-on, offline
    messages), they are there, in the conversation with the sender, when the client logs in."""
    server = web_server(data_dir=tmp_path / "data")
    register_account(server, client_context, "dana")
    bob = IrcClient.connect(server.host, server.port, client_context).register("bob")
    bob.send("PRIVMSG dana :are you there?")
    bob.expect(r" 301 bob dana ")  # kept for dana
    laptop = terminals(server, "dana", account="dana", password=PASSWORD)
    laptop.until(
        lambda s: (
            s.buffer("bob") is not None
            and any(x.text == "are you there?" for x in s.buffer("bob").lines)
        )
    )
    bob.close()


def test_private_messages_sent_while_away_show_in_the_browser_with_a_badge(
    web_server: Start, pages: Browser, client_context: Any, tmp_path: Path
) -> None:
    server = web_server(data_dir=tmp_path / "data")
    register_account(server, client_context, "dana")
    bob = IrcClient.connect(server.host, server.port, client_context).register("bob")
    bob.send("PRIVMSG dana :did you see the release?")
    bob.expect(r" 301 bob dana ")
    page = pages.page()
    log_in(page, server, "dana", password=PASSWORD)
    room("bob", page).locator(".badge").wait_for()  # waiting for dana, counted as a mention
    room("bob", page).click()
    shown(page, "did you see the release?").wait_for()
    bob.close()
    assert pages.all_problems() == []


def test_a_second_device_fetches_the_conversations_it_missed(
    web_server: Start, pages: Browser, terminals: Any, client_context: Any, tmp_path: Path
) -> None:
    """Private messages that reached the laptop (kept while dana was away) are in history
    (both sides logged in): the phone, connecting later, lists the conversations with messages
    since it last saw one (CHATHISTORY TARGETS) and fetches them."""
    server = web_server(data_dir=tmp_path / "data")
    register_account(server, client_context, "dana")
    register_account(server, client_context, "bob")
    bob = IrcClient.connect(server.host, server.port, client_context).register("bob")
    bob.send(f"PRIVMSG NickServ :IDENTIFY {PASSWORD}")
    bob.expect(r" 900 ")
    bob.send("PRIVMSG dana :are you there?")
    bob.expect(r" 301 bob dana ")
    laptop = terminals(server, "dana", account="dana", password=PASSWORD)
    laptop.until(
        lambda s: (
            s.buffer("bob") is not None
            and any(x.text == "are you there?" for x in s.buffer("bob").lines)
        )
    )
    phone = pages.page()
    log_in(phone, server, "dana", password=PASSWORD)
    room("bob", phone).click()
    shown(phone, "are you there?").wait_for()
    bob.close()
    assert pages.all_problems() == []
