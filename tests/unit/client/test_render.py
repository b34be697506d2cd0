"""How lines look in the full-screen client: history dimmed, live text in colour, indents."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.style import Style as RichStyle
from rich.text import Text

from securechat.client.buffers import Buffer, Kind, Line, Style
from securechat.client.decor import Decor
from securechat.client.net import Client
from securechat.client.session import Session
from securechat.client.trust import Endpoint, KnownHosts, Trust
from securechat.client.tui import (
    notification,
    render_entry,
    render_line,
    render_parts,
    render_status,
)

T0 = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)


def dim_cells(text: Text) -> list[bool]:
    """For each character: is it drawn dim?"""
    console = Console()
    return [
        bool(console.get_style(str(style), default=RichStyle()).dim) if style else False
        for style in (_style_at(text, i) for i in range(len(text.plain)))
    ]


def _style_at(text: Text, index: int) -> str:
    styles = [str(text.style)] if text.style else []
    styles += [str(s.style) for s in text.spans if s.start <= index < s.end]
    return " ".join(styles)


def test_a_live_message_is_not_dimmed_only_its_time_is() -> None:
    """The time's dim style used to be the whole line's: every line looked like history."""
    text = render_line(Line(T0, Style.MESSAGE, "hello there", nick="bob"))
    cells = dim_cells(text)
    body = text.plain.index("hello")
    assert all(cells[:5])  # "12:00"-style time
    assert not any(cells[body:])


def test_a_history_message_is_dimmed_whole() -> None:
    text = render_line(Line(T0, Style.MESSAGE, "old news", nick="bob", history=True))
    assert all(dim_cells(text))


def test_a_wrapped_line_continues_under_the_text_not_under_the_time() -> None:
    line = Line(T0, Style.MESSAGE, "word " * 20, nick="bob")
    console = Console(width=40, record=True, color_system=None)
    console.print(render_entry(line))
    rows = console.export_text().splitlines()
    indent = rows[0].index("word")
    assert len(rows) > 1
    assert all(row[:indent].strip() == "" and row[indent:].strip() for row in rows[1:])


def test_a_desktop_notification_carries_no_sequence_from_the_network() -> None:
    line = Line(T0, Style.MESSAGE, "hi\x1b]0;pwned\x07; there", nick="bob", highlight=True)
    sequence = notification(Buffer("#dev", Kind.ROOM), line)
    assert sequence.startswith("\x1b]777;notify;securechat #dev;")
    assert "\x1b]9;" in sequence
    assert sequence.count("\x1b") == 4 and "\x07" not in sequence  # only our own delimiters


def _plain(line: Line, decor: Decor) -> str:
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(render_entry(line, decor=decor))
    return "\n".join(row.rstrip() for row in console.export_text().splitlines())


def test_a_reply_shows_its_quote_above_and_reactions_below_the_text() -> None:
    line = Line(T0, Style.MESSAGE, "sure", nick="carol")
    shown = _plain(line, Decor(quote="bob: lunch?", reactions="👍 2  🎉 1")).splitlines()
    assert "↪ bob: lunch?" in shown[0] and "<carol>" in shown[0]
    assert shown[1].strip() == "sure"
    assert shown[2].strip() == "👍 2  🎉 1"


def test_an_edit_is_marked_and_a_multiline_message_stays_one_indented_block() -> None:
    line = Line(T0, Style.MESSAGE, "def f():\n    return 1", nick="bob")
    shown = _plain(line, Decor(edited=True)).splitlines()
    assert shown[0].endswith("<bob> def f():")
    assert shown[1].strip() == "return 1 (edited)"
    assert shown[1].index("return") == shown[0].index("def") + 4  # under the text, not the time


def test_a_deleted_message_is_dim_and_italic() -> None:
    line = Line(T0, Style.MESSAGE, "(message deleted)", nick="bob", redacted=True)
    _, body = render_parts(line)
    assert "italic" in str(body.style) and "dim" in str(body.style)


def test_the_status_bar_says_who_is_typing() -> None:
    session = Session("alice", rooms=("#lobby",))
    session.buffer("#lobby").typing.update("bob", "active", T0)  # type: ignore[union-attr]
    client = Client(session, Endpoint("127.0.0.1", 1), Trust(KnownHosts(Path("/nonexistent"))))
    assert "bob is typing…" in render_status(client).plain
