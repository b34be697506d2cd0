"""Operator logs: one line per event, as ``key=value`` text or JSON.

Call ``event(logger, "connect", conn=3, peer="127.0.0.1")``. The text form is
``2026-11-25T20:00:00Z info event=connect conn=3 peer=127.0.0.1``; the JSON
form has the same keys plus ``time`` and ``level``. Message content never
goes through here unless the operator enabled ``log_messages``.

Every field may carry what a client sent (a nick, an OPER name, a reason), so a value is
written so that it can never end the line, move the cursor or reorder the text of a
terminal or log viewer (ESC sequences, BEL, CR/LF, C1 controls, bidi overrides such as
U+202E): every character that ``str.isprintable`` rejects — categories Cc, Cf, Cs, Co, Cn,
Zl, Zp and the spaces other than U+0020 — is written as a ``\\xNN`` / ``\\uNNNN`` /
``\\UNNNNNNNN`` escape inside a quoted value, with ``\\`` and ``"`` escaped too, so the
escape cannot be forged.

In cluster mode every line also names the node that wrote it (``node=NAME``, right after the
level; ``setup_logging(..., node=NAME)``): ``--workers N`` puts N nodes' lines on one stderr,
and a connection id alone does not say which process holds it. The supervisor of ``--workers``
writes its own lines without a node.

Repetitive events (a handshake flood, an accept error per refused socket) are bounded by
``EventLimiter``: the first ``burst`` of each kind per ``interval`` are written, then one
``event=log_suppressed`` line says how many similar ones were left out.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Collection
from typing import Any

FIELDS_ATTR = "securechat_fields"


def event(
    logger: logging.Logger, name: str, /, *, level: int = logging.INFO, **fields: Any
) -> None:
    if logger.isEnabledFor(level):
        data = {"event": name, **fields}
        logger.log(level, format_pairs(data), extra={FIELDS_ATTR: data})


def format_pairs(fields: dict[str, Any]) -> str:
    return " ".join(f"{escape(str(key))}={_value(value)}" for key, value in fields.items())


def _value(value: Any) -> str:
    text = str(value)
    if text and text.isprintable() and not any(c in _QUOTED for c in text):
        return text
    return '"' + escape(text.replace("\\", "\\\\").replace('"', '\\"')) + '"'


_QUOTED = frozenset(' "=\\')  # printable, but they would make a bare value ambiguous


def escape(text: str) -> str:
    """``text`` with every non-printable character as a Python-style escape."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape_char(c) for c in text)


def _escape_char(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


class EventLimiter(logging.Filter):
    """A logger filter that lets the first ``burst`` records of each limited event through per
    ``interval`` seconds and counts the rest; the count goes out as one ``log_suppressed``
    line when the interval is over (on the next such record, or from ``flush``).

    The key is the event name plus its ``reason`` field, so "plaintext" refusals do not hide
    "rate" ones. Records that are not ``event()`` lines, or not in ``events``, pass.
    """

    def __init__(
        self,
        events: Collection[str],
        burst: int,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.events = frozenset(events)
        self.burst = burst
        self.interval = interval
        self.clock = clock
        # key -> [window start, records let through, records suppressed, logger name]
        self._windows: dict[tuple[str, str], list[Any]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        fields = getattr(record, FIELDS_ATTR, None)
        if not fields or fields.get("event") not in self.events:
            return True
        key = (str(fields["event"]), str(fields.get("reason", "")))
        now = self.clock()
        window = self._windows.get(key)
        if window is None or now - window[0] >= self.interval:
            if window is not None:
                self._summarize(key, window)
            window = self._windows[key] = [now, 0, 0, record.name]
        if window[1] < self.burst:
            window[1] += 1
            return True
        window[2] += 1
        return False

    def flush(self) -> None:
        """Write the summaries of intervals that are over, and forget them (bounded memory)."""
        now = self.clock()
        for key, window in list(self._windows.items()):
            if now - window[0] >= self.interval:
                del self._windows[key]
                self._summarize(key, window)

    def _summarize(self, key: tuple[str, str], window: list[Any]) -> None:
        if window[2]:
            fields: dict[str, Any] = {"suppressed": window[2], "similar": key[0]}
            if key[1]:
                fields["reason"] = key[1]
            event(logging.getLogger(window[3]), "log_suppressed", level=logging.WARNING, **fields)


class TextFormatter(logging.Formatter):
    def __init__(self, node: str | None = None) -> None:
        super().__init__()
        self.node_field = "" if node is None else f"node={_value(node)} "

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))
        # event() lines are already escaped; any other message may hold a peer's text
        level = record.levelname.lower()
        line = f"{stamp} {level} {self.node_field}{escape(record.getMessage())}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def __init__(self, node: str | None = None) -> None:
        super().__init__()
        self.node = node

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, FIELDS_ATTR, None) or {"message": record.getMessage()}
        data = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
            "level": record.levelname.lower(),
        }
        if self.node is not None:
            data["node"] = self.node
        data.update(fields)
        if record.exc_info:
            data["traceback"] = self.formatException(record.exc_info)
        # ensure_ascii (the default) escapes every control, C1 and bidi character: one line
        return json.dumps(data, default=str)


def setup_logging(level: str, fmt: str = "text", node: str | None = None) -> None:
    """Lines of ``securechat.*`` loggers to stderr; ``node``: a cluster node's name, on each."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(node) if fmt == "json" else TextFormatter(node))
    root = logging.getLogger("securechat")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
