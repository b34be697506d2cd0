"""Our terminal client against the real server over TLS (issue 16): an account created with
IRCv3 REGISTER, and what a client starting afresh gets back from history: deleted messages
stay deleted, edits are shown as edits, reactions are counted again."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from securechat.client.buffers import Line
from securechat.client.decor import Decor, Decorator
from securechat.client.session import Session
from tests.support import IrcClient, ServerThread
from tests.web.terminal_support import TerminalClient

PASSWORD = "correct-horse-battery"


def lines(session: Session, room: str = "#team") -> list[Line]:
    buffer = session.buffer(room)
    return [] if buffer is None else list(buffer.lines)


def has_text(session: Session, text: str) -> bool:
    return any(line.text == text for line in lines(session))


def joined(session: Session) -> bool:
    buffer = session.buffer("#team")
    return buffer is not None and buffer.joined


def test_register_creates_the_account_with_ircv3_register_and_logs_in(
    make_server: Any, ca_file: Path, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    server: ServerThread = make_server(data_dir=tmp_path / "data")
    alice = TerminalClient(server, tmp_path, ca_file, "alice")
    try:
        alice.until(lambda s: s.registered and "draft/account-registration" in s.caps)
        alice.submit(f"/register {PASSWORD}")
        alice.until(lambda s: s.account == "alice")
        assert alice.call(lambda: any("registered" in x.text for x in alice.session.shown.lines))
    finally:
        alice.close()
    again = TerminalClient(server, tmp_path, ca_file, "alice", account="alice", password=PASSWORD)
    try:
        again.until(lambda s: s.account == "alice")  # SASL with the new account's password
    finally:
        again.close()


def test_a_fresh_client_sees_deletions_edits_and_reactions_from_history(
    make_server: Any, ca_file: Path, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    server: ServerThread = make_server(data_dir=tmp_path / "data")
    carol = TerminalClient(server, tmp_path, ca_file, "carol", rooms=("#team",))
    bob = IrcClient.connect(server.host, server.port, client_context)
    bob.register("bob", caps=("message-tags", "echo-message"))
    try:
        carol.until(joined)
        bob.send("JOIN #team")
        bob.expect(r" 366 ")
        for text in ("my password is hunter2", "teh release", "ship it"):
            carol.submit(text)
            carol.until(lambda s, t=text: has_text(s, t))
        carol.submit("/delete -3")  # the first of the three
        carol.submit("/edit -2 the release")
        carol.until(lambda s: has_text(s, "the release"))
        ship = carol.call(lambda: next(x for x in lines(carol.session) if x.text == "ship it"))
        bob.send(f"@+draft/reply={ship.msgid};+draft/react=🚀 TAGMSG #team")
        carol.until(lambda s: reactions_on(s, "ship it") == "🚀 1")
    finally:
        carol.close()
    fresh = TerminalClient(server, tmp_path, ca_file, "dave", rooms=("#team",))
    try:
        fresh.until(lambda s: has_text(s, "ship it") and has_text(s, "the release"))
        fresh.until(lambda s: reactions_on(s, "ship it") == "🚀 1")
        texts = fresh.call(lambda: [x.text for x in lines(fresh.session)])
        assert not [t for t in texts if "hunter2" in t or "teh release" in t]
        deleted = fresh.call(lambda: [x for x in lines(fresh.session) if x.redacted])
        assert len(deleted) == 2  # the deleted one, and the original of the edit
        assert fresh.call(lambda: decor_of(fresh.session, "the release")).edited
        decorator = fresh.call(lambda: Decorator(fresh.session.buffer("#team"), "dave"))
        shown = [x for x in deleted if not decorator.decor(x).hidden]
        assert [x.text for x in shown] == ["(message deleted)"]
    finally:
        fresh.close()
        bob.close()


def decor_of(session: Session, text: str) -> Decor:
    buffer = session.buffer("#team")
    line = next((x for x in lines(session) if x.text == text), None)
    assert buffer is not None and line is not None
    return Decorator(buffer, session.nick).decor(line)


def reactions_on(session: Session, text: str) -> str | None:
    return decor_of(session, text).reactions if has_text(session, text) else None
