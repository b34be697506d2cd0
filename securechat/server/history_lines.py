"""One stored message as the lines a client gets back from history (join replay, CHATHISTORY).

Rules kept here (each as the client's caps allow; history.py decides *what* is read):

- A message comes back as it was sent: its ``msgid``, ``time`` and ``account`` tags and the
  client-only tags it carried (``+draft/reply`` …) for ``message-tags`` clients.
- **Multiline** (draft/multiline "Fallback"): a ``draft/multiline`` client with ``batch`` gets
  one nested ``BATCH +ref draft/multiline <target>`` carrying the message's tags, its lines
  inside with ``draft/multiline-concat`` where the sender used it; any other client gets the
  lines one by one, blank ones left out, the msgid (and client tags) on the first only.
- **Reactions** are kept with the message they point to and follow it, each as the
  ``@+draft/reply=<msgid>;+draft/react=<r> TAGMSG`` it was, for ``message-tags`` clients only
  (to others a TAGMSG is nothing to show); they do not count towards a request's limit.
- **Redacted** (draft/message-redaction "Chat history", its second option): the message stays
  in its place with ``REDACTED_TEXT`` instead of its text and no client tags, followed, for
  clients with the cap, by the ``REDACT`` that removed it (not counted towards the limit either).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from securechat.protocol.message import build, parse_tags
from securechat.protocol.tags import format_server_time

if TYPE_CHECKING:
    from securechat.server.core import ServerCore
    from securechat.server.records import HistoryRecord, Reaction
    from securechat.server.state import Session

REDACTED_TEXT = "[message deleted]"
REDACTION_CAP = "draft/message-redaction"
MULTILINE_CAP = "draft/multiline"
MULTILINE_BATCH = "draft/multiline"
CONCAT_TAG = "draft/multiline-concat"


def history_lines(
    core: ServerCore,
    session: Session,
    record: HistoryRecord,
    batch: str | None,
    room_name: str | None,
) -> list[bytes]:
    """Every line that brings ``record`` back to ``session`` (see the module rules)."""
    target = room_name or record.display_target
    tags = _tags(session, batch, record.msgid, record.time, record.account)
    if record.redaction is not None:
        lines = [build(record.command, [target, REDACTED_TEXT], record.sender, tags or None)]
        return lines + _redact_line(core, session, record, batch, target)
    if "message-tags" in session.caps and record.tags:
        tags.update(parse_tags(record.tags))
    if record.lines:
        lines = _multiline(core, session, record, batch, target, tags)
    else:
        lines = [build(record.command, [target, record.text], record.sender, tags or None)]
    if "message-tags" in session.caps:
        lines += [_reaction_line(session, reaction, batch, target) for reaction in record.reactions]
    return lines


def _tags(
    session: Session, batch: str | None, msgid: str | None, time: float, account: str | None
) -> dict[str, str]:
    tags: dict[str, str] = {}
    if batch is not None:
        tags["batch"] = batch
    if msgid is not None and "message-tags" in session.caps:
        tags["msgid"] = msgid
    if "server-time" in session.caps:
        tags["time"] = format_server_time(time)
    if "account-tag" in session.caps and account:
        tags["account"] = account
    return tags


def _multiline(
    core: ServerCore,
    session: Session,
    record: HistoryRecord,
    batch: str | None,
    target: str,
    tags: dict[str, str],
) -> list[bytes]:
    if {MULTILINE_CAP, "batch"} <= session.caps:
        reference = core.new_msgid()
        opening = build("BATCH", [f"+{reference}", MULTILINE_BATCH, target], record.sender, tags)
        lines = [opening]
        for text, concat in record.lines:
            inner = {"batch": reference, CONCAT_TAG: ""} if concat else {"batch": reference}
            lines.append(build(record.command, [target, text], record.sender, inner))
        closing = {"batch": batch} if batch is not None else None
        return [*lines, build("BATCH", [f"-{reference}"], core.config.name, closing)]
    return fallback_lines(record.command, target, record.sender, record.lines, tags)


def fallback_lines(
    command: str,
    target: str,
    source: str,
    lines: tuple[tuple[str, bool], ...],
    tags: dict[str, str],
) -> list[bytes]:
    """A multiline message to a client without the cap: its lines one by one, blank ones
    dropped ("Servers MUST NOT send blank lines"), msgid and client tags on the first only."""
    first_only = {k for k in tags if k == "msgid" or k.startswith("+")}
    rest = {k: v for k, v in tags.items() if k not in first_only}
    out: list[bytes] = []
    for text, _ in lines:
        if not text:
            continue
        out.append(build(command, [target, text], source, (tags if not out else rest) or None))
    return out


def _reaction_line(session: Session, reaction: Reaction, batch: str | None, target: str) -> bytes:
    tags = _tags(session, batch, reaction.msgid, reaction.time, reaction.account)
    tags["+draft/reply"] = reaction.parent
    tags["+draft/react"] = reaction.reaction
    return build("TAGMSG", [target], reaction.sender, tags)


def _redact_line(
    core: ServerCore, session: Session, record: HistoryRecord, batch: str | None, target: str
) -> list[bytes]:
    redaction = record.redaction
    if redaction is None or REDACTION_CAP not in session.caps:
        return []
    tags = _tags(session, batch, None, redaction.time, None)
    params = (
        [target, record.msgid, redaction.reason] if redaction.reason else [target, record.msgid]
    )
    return [build("REDACT", params, redaction.by, tags or None)]
