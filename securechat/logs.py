"""Operator logs: one line per event, as ``key=value`` text or JSON.

Call ``event(logger, "connect", conn=3, peer="127.0.0.1")``. The text form is
``2026-11-25T20:00:00Z info event=connect conn=3 peer=127.0.0.1``; the JSON
form has the same keys plus ``time`` and ``level``. Message content never
goes through here unless the operator enabled ``log_messages``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

FIELDS_ATTR = "securechat_fields"


def event(
    logger: logging.Logger, name: str, /, *, level: int = logging.INFO, **fields: Any
) -> None:
    if logger.isEnabledFor(level):
        data = {"event": name, **fields}
        logger.log(level, format_pairs(data), extra={FIELDS_ATTR: data})


def format_pairs(fields: dict[str, Any]) -> str:
    return " ".join(f"{key}={_value(value)}" for key, value in fields.items())


def _value(value: Any) -> str:
    text = str(value)
    if not text or any(c.isspace() or c in '"=' for c in text):
        return json.dumps(text)
    return text


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))
        line = f"{stamp} {record.levelname.lower()} {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, FIELDS_ATTR, None) or {"message": record.getMessage()}
        data = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            **fields,
        }
        if record.exc_info:
            data["traceback"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def setup_logging(level: str, fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger("securechat")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
