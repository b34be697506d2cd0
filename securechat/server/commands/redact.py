"""REDACT: delete a message (IRCv3 ``draft/message-redaction``,
https://ircv3.net/specs/extensions/message-redaction).

Rules kept here:

- **Who may.** The sender: the same account, or, for a message sent without one, the same
  connection (same source, sent since it connected). A room's operators may redact any message
  of their room and network operators any message they can address; both only where they are:
  a room the client is in, or its own private conversation with a nick (between two accounts,
  as history keeps them).
- **What.** A PRIVMSG, NOTICE or stored reaction (TAGMSG) of *that* target's history, that the
  client could read: a msgid of another room or conversation, or of a +i/+k message sent before
  the client joined, is ``UNKNOWN_MSGID`` — the reply never says that it exists elsewhere
  (the spec's "Server implementation considerations" on guessable msgids).
- **Window.** With ``redact_window_seconds`` > 0, a sender may redact its own messages only
  that long (``REDACT_WINDOW_EXPIRED``); operators are not limited.
- **Effect.** history keeps the row and forgets its text, tags and reactions (store/chat.py);
  CHATHISTORY then shows it redacted (history_lines.py). The ``REDACT`` goes, like a PRIVMSG, to
  the target's recipients that negotiated the cap (to the sender with ``echo-message``); others
  get nothing (the spec leaves a fallback to the server; a notice per deletion is noise).
- **Errors** are the spec's ``FAIL REDACT INVALID_TARGET | REDACT_FORBIDDEN |
  REDACT_WINDOW_EXPIRED | UNKNOWN_MSGID``; a server without a store keeps no messages, so every
  msgid is unknown there (and the cap is not offered).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from securechat.protocol.message import Message
from securechat.protocol.names import casefold, is_room_name
from securechat.server.actions import StoreCall
from securechat.server.history import message_time, room_view
from securechat.server.history_lines import REDACTION_CAP
from securechat.server.presence_accounts import accounts_connections, expand
from securechat.server.records import (
    HistoryRecord,
    Reaction,
    Redaction,
    View,
    private_target,
)
from securechat.server.standard_replies import fail

if TYPE_CHECKING:
    from securechat.server.actions import Outcome
    from securechat.server.core import ServerCore
    from securechat.server.state import Session

log = logging.getLogger("securechat.server")


# REDACT <target> <msgid> [:<reason>]
def handle_redact(core: ServerCore, session: Session, message: Message, now: float) -> None:
    target, msgid = message.params[0], message.params[1]
    reason = message.param(2)[: core.config.redact_reason_length]
    place = _place(core, session, target)
    if place is None:
        text = f"You cannot delete messages from {target}"
        fail(core, session, "REDACT", "INVALID_TARGET", target, text=text)
        return
    key, shown, view, moderator = place
    if not core.persistent:
        _unknown(core, session, shown, msgid)
        return
    check = _permission(core, session, view, moderator, now)
    redaction = Redaction(session.source, message_time(now), reason)

    def done(outcome: Outcome, now: float) -> None:
        if core.sessions.get(session.conn) is not session:
            return
        if isinstance(outcome, BaseException):
            log.error("REDACT failed: %s", outcome)
            text = "The message could not be deleted now; try again later"
            fail(core, session, "REDACT", "TEMPORARILY_UNAVAILABLE", shown, msgid, text=text)
            return
        code, _ = outcome
        if code is None:
            _relay(core, session, target, shown, msgid, reason, redaction.time)
        elif code == "UNKNOWN_MSGID":
            _unknown(core, session, shown, msgid)
        elif code == "REDACT_WINDOW_EXPIRED":
            window = str(int(core.config.redact_window_seconds))
            text = "You can no longer delete this message"
            fail(core, session, "REDACT", code, shown, msgid, window, text=text)
        else:
            text = "You are not authorised to delete this message"
            fail(core, session, "REDACT", code, shown, msgid, text=text)

    job = lambda store: store.redact(key, msgid, check, redaction)  # noqa: E731
    core.perform(StoreCall(job, done, client=session.conn))


def _place(
    core: ServerCore, session: Session, target: str
) -> tuple[str, str, View | None, bool] | None:
    """(history key, name to show, the client's view of a room, may moderate) of a target the
    client may redact in; None when it is not there."""
    if is_room_name(target):
        room = session.rooms.get(casefold(target))
        if room is None:
            return None
        member = room.member(session)
        moderator = session.oper or (member is not None and member.is_op)
        return room.name_cf, room.name, room_view(core, session, room), moderator
    holder = core.nicks.get(target)
    peer = holder.account if holder is not None and holder.account else target
    if session.account is None:
        return None
    try:
        key = private_target(session.account, peer)
    except ValueError:
        return None
    return key, holder.nick if holder is not None else target, None, session.oper


def _permission(
    core: ServerCore, session: Session, view: View | None, moderator: bool, now: float
) -> Callable[[HistoryRecord | Reaction], str | None]:
    """The check run on the store's thread against what the msgid names (pure: it reads only
    values captured now)."""
    account = casefold(session.account) if session.account else None
    source, since = session.source, session.connected_at
    window = core.config.redact_window_seconds

    def check(found: HistoryRecord | Reaction) -> str | None:
        if isinstance(found, HistoryRecord) and (
            found.redaction is not None or not _visible(found, view)
        ):
            return "UNKNOWN_MSGID"
        if moderator:
            return None
        if found.account is not None:
            own = account is not None and casefold(found.account) == account
        else:
            own = found.sender == source and found.time >= since
        if not own:
            return "REDACT_FORBIDDEN"
        if window > 0 and now - found.time > window:
            return "REDACT_WINDOW_EXPIRED"
        return None

    return check


def _visible(record: HistoryRecord, view: View | None) -> bool:
    """Could this reader see it (history.room_view): +i/+k rows of its incarnation since its
    join only."""
    if view is None or not record.restricted:
        return True
    if record.epoch != view.epoch:
        return False
    return view.since is None or record.time >= int(view.since * 1000) / 1000


def _unknown(core: ServerCore, session: Session, shown: str, msgid: str) -> None:
    text = "This message does not exist or is too old"
    fail(core, session, "REDACT", "UNKNOWN_MSGID", shown, msgid, text=text)


def _relay(
    core: ServerCore,
    session: Session,
    target: str,
    shown: str,
    msgid: str,
    reason: str,
    now: float,
) -> None:
    params = [shown, msgid, reason] if reason else [shown, msgid]
    recipients = [
        s
        for s in _recipients(core, session, target)
        if REDACTION_CAP in s.caps
        and "message-tags" in s.caps
        and (s is not session or "echo-message" in s.caps)
    ]
    core.broadcast(
        recipients,
        "REDACT",
        params,
        session.source,
        now,
        msgid=core.new_msgid(),
        account=session.account,
    )


def _recipients(core: ServerCore, session: Session, target: str) -> Iterable[Session]:
    """The room's members, or every connection of both accounts of the conversation."""
    if is_room_name(target):
        room = core.rooms.get(target)
        return list(room.sessions()) if room is not None else []
    holder = core.nicks.get(target)
    peer = casefold(holder.account) if holder is not None and holder.account else casefold(target)
    mine = casefold(session.account) if session.account else ""
    found = {
        s.conn: s for s in (*accounts_connections(core, peer), *accounts_connections(core, mine))
    }
    for connection in expand([holder] if holder is not None else []):
        found[connection.conn] = connection
    return found.values()
