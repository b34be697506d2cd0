"""Line-mode output: one ``[HH:MM] buffer body`` line per buffer line."""

from __future__ import annotations

from datetime import datetime

from securechat.client.buffers import Buffer, Kind, Line, Style
from securechat.client.plain import format_line

LOCAL_NOON = datetime(2026, 1, 2, 12, 5).astimezone()  # printed in the local time zone
ROOM = Buffer("#ops", Kind.ROOM)


def test_message_line() -> None:
    line = Line(LOCAL_NOON, Style.MESSAGE, "deploy done", nick="alice")
    assert format_line(ROOM, line) == "[12:05] #ops <alice> deploy done"


def test_action_line() -> None:
    line = Line(LOCAL_NOON, Style.ACTION, "waves", nick="bob")
    assert format_line(ROOM, line) == "[12:05] #ops * bob waves"


def test_notice_line() -> None:
    line = Line(LOCAL_NOON, Style.NOTICE, "ping", nick="bob")
    assert format_line(ROOM, line) == "[12:05] #ops -bob- ping"


def test_event_line() -> None:
    line = Line(LOCAL_NOON, Style.EVENT, "bob joined #ops")
    assert format_line(ROOM, line) == "[12:05] #ops -!- bob joined #ops"


def test_private_buffer_is_named_after_the_other_nick() -> None:
    line = Line(LOCAL_NOON, Style.MESSAGE, "psst", nick="bob")
    assert format_line(Buffer("bob", Kind.PRIVATE), line) == "[12:05] bob <bob> psst"
