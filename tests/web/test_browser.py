"""The bundled web app in headless Chromium against the real server over TLS
(browser_support.py: how the browser is driven and what each test checks at its end)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from tests.web.browser_support import (
    SCREENSHOT_ENV,
    Browser,
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
from tests.web.web_support import web_port

require_browser()


def test_two_browser_users_and_a_terminal_client_talk_both_ways(
    web_server: Start, pages: Browser, client_context: Any
) -> None:
    server = web_server()
    alice, bob = pages.page(), pages.page()
    log_in(alice, server, "alice")
    log_in(bob, server, "bob")
    carol = raw_client(server, client_context, "carol")
    say(alice, "hi everyone")
    shown(bob, "hi everyone").wait_for()
    carol.expect(r":alice!\S+ PRIVMSG #general :hi everyone")
    carol.send("PRIVMSG #general :hello from the terminal")
    shown(alice, "hello from the terminal").wait_for()
    shown(bob, "hello from the terminal").wait_for()
    say(bob, "/me waves")
    alice.get_by_role("log").get_by_text("waves").wait_for()
    carol.expect(r"PRIVMSG #general :\x01ACTION waves\x01")
    assert shown(alice, "hi everyone").count() == 1  # echo-message: own line shown once
    assert pages.all_problems() == []


def test_hostile_topic_and_message_are_shown_literally_and_run_nothing(
    web_server: Start, pages: Browser, client_context: Any
) -> None:
    server = web_server()
    page = pages.page()
    mallory = raw_client(server, client_context, "mallory")
    hostile_topic = '<img src=x onerror="window.__pwned=1">'
    hostile_text = "<script>window.__pwned=2</script> javascript:window.__pwned=3 <b>bold</b>"
    mallory.send(f"TOPIC #general :{hostile_topic}")
    mallory.expect(r" TOPIC #general ")
    log_in(page, server, "victim")
    mallory.send(f"PRIVMSG #general :{hostile_text}")
    mallory.send("PRIVMSG #general :see https://example.org/a?b=<x> and javascript:alert(1)")
    shown(page, hostile_text).wait_for()
    page.get_by_text(hostile_topic, exact=True).first.wait_for()
    link = page.get_by_role("log").get_by_role("link")
    link.wait_for()
    assert link.count() == 1 and link.get_attribute("href") == "https://example.org/a?b="
    assert link.get_attribute("rel") == "noopener noreferrer"
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#log img, #log script, #log b, header img").count() == 0
    assert pages.all_problems() == []


def test_history_is_shown_once_after_a_reload(
    web_server: Start, pages: Browser, tmp_path: Path
) -> None:
    server = web_server(data_dir=tmp_path)
    page = pages.page()
    log_in(page, server, "alice")
    for index in range(3):
        say(page, f"before reload {index}")
    shown(page, "before reload 2").wait_for()
    page.reload()
    assert page.get_by_label("Nickname").input_value() == "alice"  # remembered
    page.get_by_role("button", name="Connect").click()
    shown(page, "before reload 2").wait_for()
    for index in range(3):
        assert shown(page, f"before reload {index}").count() == 1
    assert pages.all_problems() == []


def test_the_app_reconnects_and_rejoins_after_a_server_restart(
    make_server: Start, pages: Browser, tmp_path: Path
) -> None:
    first = make_server(web_port=0, data_dir=tmp_path, exempt=("127.0.0.0/8",))
    ports = {"port": first.port, "web_port": web_port(first)}
    page = pages.page()
    log_in(page, first, "alice")
    say(page, "/join #second")
    room("#second", page).wait_for()
    say(page, "said before the restart")
    shown(page, "said before the restart").wait_for()
    first.stop()
    page.get_by_role("status").get_by_text("retrying").wait_for()
    second = make_server(data_dir=tmp_path, exempt=("127.0.0.0/8",), **ports)
    page.get_by_role("status").get_by_text("Connected", exact=True).wait_for()
    say(page, "said after the restart")
    shown(page, "said after the restart").wait_for()
    assert shown(page, "said before the restart").count() == 1  # not shown twice
    names = second.in_loop(lambda: [s.nick for s in second.server.core.sessions.values()])
    assert "alice" in names
    # Problems: only the refused reconnection attempts while the server was down.
    assert [p for p in pages.all_problems() if "WebSocket" not in p] == []


def test_tab_completes_nicks_and_ctrl_k_switches_rooms(
    web_server: Start, pages: Browser, client_context: Any
) -> None:
    server = web_server()
    page = pages.page()
    log_in(page, server, "alice")
    other = raw_client(server, client_context, "bartholomew")  # kept open: it stays a member
    page.get_by_role("complementary", name="Members").get_by_text("bartholomew").wait_for()
    say(page, "/join #other")
    room("#other", page).wait_for()
    page.keyboard.press("Alt+2")
    page.get_by_role("heading", name="#general").wait_for()
    page.get_by_label("Message").fill("bart")
    page.get_by_label("Message").press("Tab")
    assert page.get_by_label("Message").input_value() == "bartholomew: "
    page.keyboard.press("Control+k")
    page.get_by_label("Go to room or conversation").fill("oth")
    page.get_by_label("Go to room or conversation").press("Enter")
    page.get_by_role("heading", name="#other").wait_for()
    other.close()
    assert pages.all_problems() == []


def test_a_phone_sized_screen_shows_the_conversation_and_a_rooms_button(
    web_server: Start, pages: Browser
) -> None:
    page = pages.page(width=390, height=760)
    server = web_server()
    page.goto(url(server))
    page.get_by_label("Nickname").fill("phone")
    page.get_by_role("button", name="Connect").click()
    page.get_by_role("heading", name="#general").wait_for()
    page.get_by_label("Message").wait_for(state="visible")
    expect = playwright_api.expect
    expect(room("#general", page)).not_to_be_in_viewport()  # the rooms are a shut drawer
    page.get_by_role("button", name="Rooms").click()
    expect(room("#general", page)).to_be_in_viewport()
    assert pages.all_problems() == []


def test_screenshot_of_a_realistic_conversation(
    web_server: Start, pages: Browser, client_context: Any, tmp_path: Path
) -> None:
    server = web_server(data_dir=tmp_path / "data")
    people = {nick: raw_client(server, client_context, nick) for nick in ("maya", "tom", "priya")}
    lines = [
        ("maya", "TOPIC #general :Release 2.4 this Friday — notes in the wiki"),
        ("maya", "PRIVMSG #general :morning all! the build is green again"),
        ("tom", "PRIVMSG #general :nice, what was it?"),
        ("maya", "PRIVMSG #general :a flaky DNS test, fixed in https://example.org/pr/812"),
        ("priya", "PRIVMSG #general :\x01ACTION brings coffee\x01"),
    ]
    for nick, line in lines:  # one at a time, so the history has them in this order
        people[nick].send(line)
        listener = people["priya" if nick != "priya" else "maya"]
        listener.expect(re.escape(line.split(" :", 1)[1]))
    page = pages.page(width=1200, height=680)
    log_in(page, server, "sam")
    shown(page, "a flaky DNS test, fixed in https://example.org/pr/812").wait_for()
    people["tom"].send("PRIVMSG #general :sam: can you review the release notes before lunch?")
    say(page, "on it — I'll post comments in an hour")
    shown(page, "on it — I'll post comments in an hour").wait_for()
    people["priya"].send("PRIVMSG #general :thanks sam!")
    shown(page, "thanks sam!").wait_for()
    page.get_by_label("Message").fill("")
    picture = page.screenshot()
    assert picture.startswith(b"\x89PNG")
    (tmp_path / "web-client.png").write_bytes(picture)
    target = os.environ.get(SCREENSHOT_ENV)
    if target:
        Path(target).write_bytes(picture)
    assert pages.all_problems() == []


def test_register_then_log_in_with_sasl_and_a_wrong_password_is_refused(
    web_server: Start, pages: Browser, tmp_path: Path
) -> None:
    server = web_server(data_dir=tmp_path)
    first = pages.page()
    first.goto(url(server))
    first.get_by_label("Nickname").fill("dana")
    first.get_by_label("Password", exact=True).fill("correct-horse-battery")
    first.get_by_label("Register this nick").check()
    first.get_by_role("button", name="Connect").click()
    room("#general", first).wait_for()
    room("Server", first).click()  # account replies are kept there, wherever they came
    # IRCv3 REGISTER where the server offers draft/account-registration, else NickServ
    first.get_by_role("log").get_by_text("Account dana registered").first.wait_for()
    first.close()
    wrong = pages.page()
    wrong.goto(url(server))
    wrong.get_by_label("Nickname").fill("dana")
    wrong.get_by_label("Password", exact=True).fill("not the password")
    wrong.get_by_role("button", name="Connect").click()
    wrong.get_by_role("alert").get_by_text("Wrong nickname or password.").wait_for()
    right = pages.page()
    log_in(right, server, "dana", password="correct-horse-battery")
    right.get_by_role("status").get_by_text("Connected", exact=True).wait_for()
    accounts = server.in_loop(
        lambda: [s.account for s in server.server.core.sessions.values() if s.nick == "dana"]
    )
    assert accounts == ["dana"]
    assert pages.all_problems() == []


def test_scrolling_up_loads_older_history_until_the_beginning(
    web_server: Start, pages: Browser, client_context: Any, tmp_path: Path
) -> None:
    server = web_server(data_dir=tmp_path)
    poster = raw_client(server, client_context, "poster")
    for index in range(130):
        poster.send(f"PRIVMSG #general :numbered {index}")
    poster.send("PING :posted")
    poster.expect(r"PONG .*posted")
    page = pages.page()
    log_in(page, server, "reader")
    shown(page, "numbered 129").wait_for()
    assert shown(page, "numbered 0").count() == 0  # only the latest page came with the join
    beginning = page.get_by_role("log").get_by_text("This is the beginning of #general.")
    rows = page.locator("#log .msg")
    for _ in range(6):  # 130 messages: the join's 50, then pages of 50 (bounded)
        if beginning.count():
            break
        before = rows.count()
        page.get_by_role("log").evaluate("log => { log.scrollTop = 0; }")
        playwright_api.expect(rows).not_to_have_count(before)
    page.get_by_role("log").get_by_text("This is the beginning of #general.").wait_for()
    for index in (0, 64, 129):
        assert shown(page, f"numbered {index}").count() == 1
    assert pages.all_problems() == []


def test_unread_counts_and_the_new_messages_marker(
    web_server: Start, pages: Browser, client_context: Any
) -> None:
    server = web_server()
    page = pages.page()
    log_in(page, server, "alice")
    talker = raw_client(server, client_context, "talker")
    say(page, "/join #quiet")
    page.get_by_role("heading", name="#quiet").wait_for()
    talker.send("PRIVMSG #general :one while away")
    talker.send("PRIVMSG #general :alice: two, a mention")
    room("#general", page).get_by_text("1").wait_for()  # mention badge
    room("#general", page).click()
    page.get_by_role("log").get_by_text("New messages").wait_for()
    assert "badge" not in (room("#general", page).inner_html())
    assert pages.all_problems() == []
