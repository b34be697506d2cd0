"""Operator log lines: every field is escaped onto one safe line; repetitive events are
rate-limited by ``EventLimiter`` (driven by an injected clock, never by sleeping)."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from securechat.logs import EventLimiter, JsonFormatter, TextFormatter, event, format_pairs


def _unsafe(line: str) -> list[str]:
    """Characters a terminal or a log viewer could act on (line ends, escapes, bidi)."""
    return [c for c in line if not c.isprintable()]


def _record(logger: logging.Logger, message: str) -> logging.LogRecord:
    return logger.makeRecord(logger.name, logging.INFO, __file__, 1, message, (), None)


@given(st.text(), st.text())
def test_any_field_value_and_key_is_written_as_one_line_of_printable_text(
    key: str, value: str
) -> None:
    line = format_pairs({"event": "oper_refused", key: value, "after": 1})
    assert not _unsafe(line)
    assert line.endswith(" after=1")  # nothing in a value can end or hide the field after it


@given(st.text(), st.text())
def test_different_values_never_log_alike_so_a_peer_cannot_forge_an_escape(a: str, b: str) -> None:
    if a != b:
        assert format_pairs({"name": a}) != format_pairs({"name": b})


def test_escape_bel_and_osc_from_an_oper_name_appear_as_escapes() -> None:
    line = format_pairs({"event": "oper_refused", "name": "\x1b[2J\x1b]0;pwned\x07name"})
    assert line == 'event=oper_refused name="\\x1b[2J\\x1b]0;pwned\\x07name"'


@pytest.mark.parametrize(
    ("char", "escaped"),
    [
        ("\x85", "\\x85"),  # C1 next line
        ("\x7f", "\\x7f"),  # DEL
        ("\u202e", "\\u202e"),  # right-to-left override
        ("\u2028", "\\u2028"),  # line separator
        ("\ufeff", "\\ufeff"),  # byte order mark
        ("\U000e0001", "\\U000e0001"),  # language tag (format character)
    ],
)
def test_c1_del_and_unicode_format_characters_are_escaped(char: str, escaped: str) -> None:
    assert format_pairs({"room": f"#a{char}b"}) == f'room="#a{escaped}b"'


def test_a_literal_backslash_is_doubled_so_it_cannot_pass_for_an_escape() -> None:
    assert format_pairs({"name": "a\\x07"}) == 'name="a\\\\x07"'


def test_plain_values_stay_bare_and_readable() -> None:
    assert format_pairs({"event": "connect", "peer": "::1", "nick": "zoë"}) == (
        "event=connect peer=::1 nick=zoë"
    )


def test_text_formatter_escapes_messages_that_did_not_come_from_event() -> None:
    record = _record(logging.getLogger("securechat.test"), "bad \x1b[31m\r\nline")
    assert "\\x1b[31m\\x0d\\x0aline" in TextFormatter().format(record)


def test_json_lines_carry_no_raw_control_or_bidi_character() -> None:
    record = _record(logging.getLogger("securechat.test"), "x")
    record.securechat_fields = {"event": "x", "name": "\x1b\u202e\x85"}
    line = JsonFormatter().format(record)
    assert line.isascii() and not _unsafe(line)
    assert json.loads(line)["name"] == "\x1b\u202e\x85"


def test_a_cluster_nodes_text_lines_name_the_node_after_the_level() -> None:
    record = _record(logging.getLogger("securechat.test"), "event=start")
    line = TextFormatter(node="vm:6697-2").format(record)
    assert line.split(" ", 2)[1:] == ["info", "node=vm:6697-2 event=start"]


def test_a_node_name_with_a_space_is_quoted_so_it_stays_one_field() -> None:
    record = _record(logging.getLogger("securechat.test"), "event=start")
    assert ' node="a b" event=start' in TextFormatter(node="a b").format(record)


def test_a_cluster_nodes_json_lines_carry_the_node() -> None:
    record = _record(logging.getLogger("securechat.test"), "x")
    record.securechat_fields = {"event": "start"}
    assert json.loads(JsonFormatter(node="b").format(record))["node"] == "b"


def test_lines_name_no_node_outside_a_cluster() -> None:
    record = _record(logging.getLogger("securechat.test"), "event=start")
    record.securechat_fields = {"event": "start"}
    assert "node" not in json.loads(JsonFormatter().format(record))
    assert "node=" not in TextFormatter().format(record)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def limited(caplog: pytest.LogCaptureFixture) -> tuple[logging.Logger, EventLimiter, FakeClock]:
    clock = FakeClock()
    logger = logging.getLogger("securechat.test.limiter")
    limiter = EventLimiter({"tls_failed", "refused"}, burst=3, interval=10.0, clock=clock)
    logger.addFilter(limiter)
    caplog.set_level(logging.INFO, logger=logger.name)
    yield logger, limiter, clock
    logger.removeFilter(limiter)


def _events(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "securechat_fields", {}).get("event") == name]


def test_limiter_writes_the_first_burst_then_one_summary_of_the_rest(
    limited: tuple[logging.Logger, EventLimiter, FakeClock], caplog: pytest.LogCaptureFixture
) -> None:
    logger, limiter, clock = limited
    for _ in range(100):
        event(logger, "tls_failed", peer="10.0.0.1")
    assert len(_events(caplog, "tls_failed")) == 3
    assert not _events(caplog, "log_suppressed")
    clock.now += 10.0
    limiter.flush()
    (summary,) = _events(caplog, "log_suppressed")
    assert "suppressed=97 similar=tls_failed" in summary.getMessage()


def test_limiter_summary_also_comes_with_the_next_event_of_a_new_interval(
    limited: tuple[logging.Logger, EventLimiter, FakeClock], caplog: pytest.LogCaptureFixture
) -> None:
    logger, _, clock = limited
    for _ in range(5):
        event(logger, "tls_failed", peer="10.0.0.1")
    clock.now += 10.0
    event(logger, "tls_failed", peer="10.0.0.1")
    assert "suppressed=2" in _events(caplog, "log_suppressed")[0].getMessage()
    assert len(_events(caplog, "tls_failed")) == 4


def test_limiter_counts_each_event_and_reason_apart_and_passes_other_events(
    limited: tuple[logging.Logger, EventLimiter, FakeClock], caplog: pytest.LogCaptureFixture
) -> None:
    logger, _, _ = limited
    for _ in range(5):
        event(logger, "refused", reason="rate")
        event(logger, "refused", reason="handshakes")
        event(logger, "connect", conn=1)
    reasons = [r.securechat_fields["reason"] for r in _events(caplog, "refused")]  # type: ignore[attr-defined]
    assert reasons.count("rate") == 3 and reasons.count("handshakes") == 3
    assert len(_events(caplog, "connect")) == 5


def test_limiter_forgets_quiet_intervals_without_a_summary(
    limited: tuple[logging.Logger, EventLimiter, FakeClock], caplog: pytest.LogCaptureFixture
) -> None:
    logger, limiter, clock = limited
    event(logger, "tls_failed", peer="10.0.0.1")
    clock.now += 10.0
    limiter.flush()
    assert not _events(caplog, "log_suppressed")
    assert not limiter._windows
