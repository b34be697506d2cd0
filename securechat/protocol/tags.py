"""IRCv3 message-tag helpers shared by the core and the handlers."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from securechat.protocol.message import MAX_CLIENT_TAG_DATA

CHATHISTORY_BATCH = "chathistory"  # the batch type of draft/chathistory replies


def format_server_time(now: float) -> str:
    """IRCv3 server-time: ISO 8601 UTC with millisecond precision."""
    stamp = datetime.fromtimestamp(now, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def client_only_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """Client-only tags (``+name``) a client may attach, within the IRCv3 size limit."""
    kept = {k: v for k, v in tags.items() if k.startswith("+") and len(k) > 1}
    if sum(len(k) + len(v) + 2 for k, v in kept.items()) > MAX_CLIENT_TAG_DATA:
        return {}
    return kept
