"""Multiline messages: IRCv3 ``draft/multiline`` (https://ircv3.net/specs/extensions/multiline).

A client sends ``BATCH +<ref> draft/multiline <target>`` (the message's client-only tags on that
line), ``@batch=<ref> PRIVMSG <target> :<line>`` for each line (``draft/multiline-concat`` joins a
line to the previous one without a line feed), then ``BATCH -<ref>``.

Rules kept here:

- **Limits**, advertised as the cap's value ``max-bytes=N,max-lines=M`` (``multiline_max_bytes``,
  ``multiline_max_lines``): the combined message (each joining line feed counts one byte) and
  the number of lines. Going over earns ``FAIL BATCH MULTILINE_MAX_BYTES <limit>`` or
  ``MULTILINE_MAX_LINES <limit>``; a line to another target ``MULTILINE_INVALID_TARGET
  <batch-target> <target>``; anything else wrong (no such batch, a second one open, a blank
  concat line, a message of blank lines only, a NOTICE inside, a client without the cap)
  ``MULTILINE_INVALID``. After a FAIL the rest of that batch is dropped, up to its end.
  One batch is open per connection and holds at most the limits, so memory stays bounded.
- **Checked like a PRIVMSG** when it ends: the target's rules (403/404/401) and the client-tag
  rules (reactions.py) apply to the whole message, once.
- **Kept as one message** in history (its text the combined value, its lines and their concat
  flags beside it), committed before delivery as every message is.
- **Delivered** as one ``draft/multiline`` batch to recipients with the cap and ``batch``; to
  every other recipient line by line as the sender composed them, blank lines left out,
  msgid and client tags on the first line only (the spec's "Fallback"). With echo-message the
  sender gets it back the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from securechat.protocol import numerics as n
from securechat.protocol.message import Message, build, safe_param
from securechat.protocol.names import casefold, is_room_name
from securechat.protocol.tags import client_only_tags
from securechat.server import reactions
from securechat.server.actions import IrcError
from securechat.server.commands.messaging import check_can_speak
from securechat.server.history import message_time, record_private_message, record_room_message
from securechat.server.history_lines import (
    CONCAT_TAG,
    MULTILINE_BATCH,
    MULTILINE_CAP,
    fallback_lines,
)
from securechat.server.offline_messages import keep, keeps_offline, to_unknown_nick
from securechat.server.presence_accounts import expand, identity, siblings
from securechat.server.standard_replies import fail

if TYPE_CHECKING:
    from securechat.server.core import ServerCore
    from securechat.server.state import Session

MAX_REF_LENGTH = 64


@dataclass(slots=True)
class OpenBatch:
    """A multiline batch a client is sending: what came so far."""

    ref: str
    target: str
    tags: dict[str, str]
    lines: list[tuple[str, bool]] = field(default_factory=list)
    size: int = 0  # bytes of the combined message so far
    failed: bool = False  # a FAIL was sent: drop the rest, up to BATCH -ref


def cap_value(core: ServerCore) -> str:
    config = core.config
    return f"max-bytes={config.multiline_max_bytes},max-lines={config.multiline_max_lines}"


# BATCH +<ref> draft/multiline <target>  |  BATCH -<ref>
def handle_batch(core: ServerCore, session: Session, message: Message, now: float) -> None:
    reference = message.params[0]
    if reference.startswith("+") and 1 < len(reference) <= MAX_REF_LENGTH + 1:
        _open(core, session, message, reference[1:])
    elif reference.startswith("-"):
        _close(core, session, reference[1:], now)
    else:
        _invalid(core, session, "Invalid batch reference")


def _open(core: ServerCore, session: Session, message: Message, ref: str) -> None:
    if message.param(1) != MULTILINE_BATCH or not message.param(2):
        _invalid(core, session, "Only draft/multiline batches with a target are accepted")
        return
    if not {MULTILINE_CAP, "batch"} <= session.caps:
        _invalid(core, session, "Negotiate draft/multiline and batch first")
        return
    if core.multiline.pop(session.conn, None) is not None:
        _invalid(core, session, "A multiline batch is already open; both are dropped")
        return
    tags = client_only_tags(message.tags)
    core.multiline[session.conn] = OpenBatch(ref, message.params[2], tags)


def add_line(core: ServerCore, session: Session, message: Message) -> None:
    """A line with a ``batch`` tag (PRIVMSG and NOTICE send them here)."""
    batch = core.multiline.get(session.conn)
    if batch is None or batch.ref != message.tags.get("batch"):
        _invalid(core, session, "No such multiline batch is open")
        return
    if batch.failed:
        return
    problem = _line_problem(core, batch, message)
    if problem is not None:
        batch.failed, batch.lines = True, []
        fail(core, session, "BATCH", *problem[:-1], text=problem[-1])
        return
    text, concat = message.param(1), CONCAT_TAG in message.tags
    batch.size += len(text.encode()) + (1 if batch.lines and not concat else 0)
    batch.lines.append((text, concat))


def _line_problem(core: ServerCore, batch: OpenBatch, message: Message) -> tuple[str, ...] | None:
    """(code, context..., description) of a line that breaks the batch, else None."""
    config = core.config
    if message.command != "PRIVMSG" or len(message.params) < 2:
        return ("MULTILINE_INVALID", "A multiline batch holds PRIVMSG lines only")
    if casefold(message.params[0]) != casefold(batch.target):
        target = safe_param(message.params[0])
        return ("MULTILINE_INVALID_TARGET", batch.target, target, "Invalid multiline target")
    text, concat = message.params[1], CONCAT_TAG in message.tags
    if concat and not text:
        return ("MULTILINE_INVALID", "A blank line cannot be concatenated")
    if len(batch.lines) >= config.multiline_max_lines:
        limit = str(config.multiline_max_lines)
        return ("MULTILINE_MAX_LINES", limit, "Multiline batch max-lines exceeded")
    joint = 1 if batch.lines and not concat else 0
    if batch.size + joint + len(text.encode()) > config.multiline_max_bytes:
        limit = str(config.multiline_max_bytes)
        return ("MULTILINE_MAX_BYTES", limit, "Multiline batch max-bytes exceeded")
    return None


def _close(core: ServerCore, session: Session, ref: str, now: float) -> None:
    batch = core.multiline.get(session.conn)
    if batch is None or batch.ref != ref:
        _invalid(core, session, "No such multiline batch is open")
        return
    del core.multiline[session.conn]
    if batch.failed:
        return
    if not any(text for text, _ in batch.lines):
        _invalid(core, session, "A multiline message needs a line that is not blank")
        return
    problem = reactions.tag_problem(core, batch.tags)
    if problem is not None:
        reactions.refuse(core, session, "PRIVMSG", batch.target, problem)
        return
    try:
        _deliver(core, session, batch, now)
    except IrcError as error:  # the same numerics a PRIVMSG to that target earns
        core.reply(session, error.numeric, *error.params)


def _deliver(core: ServerCore, session: Session, batch: OpenBatch, now: float) -> None:
    session.last_message_at = now
    tags = batch.tags
    if session.bot:
        tags = {**tags, "bot": ""}
    lines = tuple(batch.lines)
    text = "".join(
        ("" if concat or i == 0 else "\n") + line for i, (line, concat) in enumerate(lines)
    )
    msgid, now = core.new_msgid(), message_time(now)
    echo = "echo-message" in session.caps
    if is_room_name(batch.target):
        room = core.rooms.get(batch.target)
        if room is None:
            raise IrcError(n.ERR_NOSUCHCHANNEL, safe_param(batch.target), "No such channel")
        check_can_speak(session, room)
        core.room_activity[room.name] += 1
        record_room_message(core, session, room, "PRIVMSG", text, msgid, now, tags, lines)
        recipients = [s for s in room.sessions() if s is not session or echo]
        shown = room.name
    else:
        target = core.nicks.get(batch.target)
        if target is None or not target.registered:  # a registered account's are kept
            to_unknown_nick(core, session, "PRIVMSG", batch.target, text, tags, now)
            return
        record_private_message(core, session, target, "PRIVMSG", text, msgid, now, tags, lines)
        if target.devices == [] and target.account is not None and keeps_offline(core):
            # an always-on user with no device connected: kept for its return
            sent = (msgid, now)
            keep(core, session, "PRIVMSG", target.account, target.nick, text, tags, now, sent)
        recipients = [target, *siblings(session)]  # the sender's other devices see it too
        if echo and target is not identity(session):
            recipients.append(session)
        shown = target.nick
        if target.away is not None:
            core.reply(session, n.RPL_AWAY, target.nick, target.away)
    _send(core, session, recipients, shown, lines, msgid, tags, now)


def _send(
    core: ServerCore,
    session: Session,
    recipients: Iterable[Session],
    target: str,
    lines: tuple[tuple[str, bool], ...],
    msgid: str,
    tags: dict[str, str],
    now: float,
) -> None:
    """Serialized once per (tag variant, multiline or not) group, never per recipient."""
    groups: dict[tuple[int, bool], list[Session]] = {}
    for recipient in expand(recipients):  # a shared user's devices, each with its own caps
        key = (recipient.tag_variant, {MULTILINE_CAP, "batch"} <= recipient.caps)
        groups.setdefault(key, []).append(recipient)
    source = session.source
    for (variant, batched), members in groups.items():
        first = core._tags_for(variant, now, msgid, tags, session.account) or {}
        if batched:
            ref = core.new_msgid()
            out = [build("BATCH", [f"+{ref}", MULTILINE_BATCH, target], source, first)]
            for text, concat in lines:
                inner = {"batch": ref, CONCAT_TAG: ""} if concat else {"batch": ref}
                out.append(build("PRIVMSG", [target, text], source, inner))
            out.append(build("BATCH", [f"-{ref}"], core.config.name))
        else:
            out = fallback_lines("PRIVMSG", target, source, lines, first)
        for line in out:
            core.send_many(members, line)


def _invalid(core: ServerCore, session: Session, why: str) -> None:
    fail(core, session, "BATCH", "MULTILINE_INVALID", text=why)
