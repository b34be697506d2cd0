"""Private messages to a registered account with nobody connected: kept, delivered at its next
login, and the sender told.

Rules kept here:

- A PRIVMSG or NOTICE to a nick nobody holds, when the nick names a registered account, is kept
  for that account (today's 401 only when it names none). To an always-on user with no device
  connected (presence_accounts.py) it is kept as well. At most
  ``offline_messages_per_account`` are kept per account; one more is refused with
  ``FAIL PRIVMSG OFFLINE_QUEUE_FULL <nick> :...`` (a standard reply, IRCv3 standard-replies),
  and ``offline_messages_per_account = 0`` turns keeping off (401 as before).
- The sender is told with **RPL_AWAY (301)**, as ergo tells the sender of a message to an
  always-on client that is away (its auto-away): ``301 <you> <nick> :<nick> is offline; your
  message is kept and delivered at their next login``. No standard numeric says "stored" and
  301 is the one every client shows beside the conversation. A NOTICE gets no reply (RFC 2812
  §3.3.2), and, like every message, an echo when the sender negotiated echo-message (its other
  devices get one too).
- When both parties are logged in the message also goes into private history, so
  ``CHATHISTORY`` on any of the recipient's devices finds it (history.py).
- Delivery: the first connection that logs into the account (at registration, at IDENTIFY, or
  attaching to its user) gets them, oldest first, as the original ``PRIVMSG``/``NOTICE`` from
  the original sender with their ``time``, ``msgid`` and ``account`` tags as negotiated; the
  ones it was sent are then removed (a connection gone before they were sent leaves them for
  the next). Other devices read them with CHATHISTORY (logged-in senders).
- Only the account's own connections receive them: the queue is read by the casefolded account
  name of a logged-in connection, never by a nick.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from securechat.protocol import numerics as n
from securechat.protocol.message import build, safe_param
from securechat.protocol.names import casefold
from securechat.server.actions import IrcError, StoreCall
from securechat.server.history import message_time, stored_tags
from securechat.server.history_lines import history_lines
from securechat.server.presence_accounts import siblings
from securechat.server.records import Account, HistoryRecord, private_target

if TYPE_CHECKING:
    from securechat.server.actions import Outcome
    from securechat.server.core import ServerCore
    from securechat.server.state import Session

log = logging.getLogger("securechat.server")


def keeps_offline(core: ServerCore) -> bool:
    return core.persistent and core.config.offline_messages_per_account > 0


def to_unknown_nick(
    core: ServerCore,
    session: Session,
    command: str,
    nick: str,
    text: str,
    tags: dict[str, str] | None,
    now: float,
) -> None:
    """Nobody holds ``nick``: keep the message if it names a registered account, else 401
    (sent from here, later: the account is looked up in the store first)."""
    if not keeps_offline(core):
        raise IrcError(n.ERR_NOSUCHNICK, safe_param(nick), "No such nick/channel")

    def found(outcome: Outcome, now: float) -> None:
        if core.sessions.get(session.conn) is not session:
            return
        if not isinstance(outcome, Account):
            if command == "PRIVMSG":
                core.reply(session, n.ERR_NOSUCHNICK, safe_param(nick), "No such nick/channel")
            return
        keep(core, session, command, outcome.name, nick, text, tags, now)

    lookup = StoreCall(lambda store: store.get_account(nick), found, client=session.conn)
    core.perform(lookup)


def keep(
    core: ServerCore,
    session: Session,
    command: str,
    account: str,
    nick: str,
    text: str,
    tags: dict[str, str] | None,
    now: float,
    sent: tuple[str, float] | None = None,
) -> None:
    """Queue one message for ``account``. ``sent``: the (msgid, time) of a message the caller
    delivered live (to an always-on user with no device) and put in history already; else
    this is the only delivery: the sender's devices get their echo and the sender a 301."""
    msgid, time = sent if sent is not None else (core.new_msgid(), message_time(now))
    record = HistoryRecord(msgid, casefold(account), nick, session.source, session.account, time,
                           command, text, tags=stored_tags(tags))  # fmt: skip
    history = None
    if sent is None and session.account is not None:
        history = replace(record, target=private_target(session.account, account))
    limit = core.config.offline_messages_per_account

    def kept(outcome: Outcome, now: float) -> None:
        if core.sessions.get(session.conn) is not session:
            return
        if outcome is True and sent is None:
            _kept(core, session, record, tags)
        elif command == "PRIVMSG":
            _refused(core, session, nick, outcome)

    job = StoreCall(lambda store: store.keep_offline(record, limit, history), kept,
                    client=session.conn)  # fmt: skip
    core.perform(job)


def _kept(
    core: ServerCore,
    session: Session,
    record: HistoryRecord,
    tags: dict[str, str] | None,
) -> None:
    recipients = siblings(session)
    if "echo-message" in session.caps:
        recipients.append(session)
    core.broadcast(
        recipients,
        record.command,
        [record.display_target, record.text],
        record.sender,
        record.time,
        client_tags=tags,
        msgid=record.msgid,
        account=record.account,
    )
    if record.command == "PRIVMSG":
        nick = record.display_target
        text = f"{nick} is offline; your message is kept and delivered at their next login"
        core.reply(session, n.RPL_AWAY, nick, text)


def _refused(core: ServerCore, session: Session, nick: str, outcome: Outcome) -> None:
    if isinstance(outcome, BaseException):
        log.error("keeping an offline message failed: %s", outcome)
        code, text = "TEMPORARILY_UNAVAILABLE", "Message not delivered: try again later"
    else:
        code = "OFFLINE_QUEUE_FULL"
        text = f"Message not delivered: {nick} has too many messages waiting"
    params = ["PRIVMSG", code, safe_param(nick), text]
    core.send(session, build("FAIL", params, core.config.name))


def deliver_offline(core: ServerCore, session: Session) -> None:
    """The messages kept for ``session``'s account, to it, oldest first; then forgotten."""
    account = session.account
    if account is None or not keeps_offline(core):
        return

    def send(outcome: Outcome, now: float) -> None:
        if isinstance(outcome, BaseException):
            log.error("reading offline messages failed: %s", outcome)
            return
        records, last = outcome
        if core.sessions.get(session.conn) is not session or not records:
            return  # a connection gone meanwhile: they wait for the next one
        for record in records:
            shown = replace(record, display_target=session.nick)
            for line in history_lines(core, session, shown, None, None):
                core.send(session, line)
        core.perform(StoreCall(lambda store: store.forget_offline(account, last), _forgotten))

    job = StoreCall(lambda store: store.offline_for(account), send, client=session.conn)
    core.perform(job)


def _forgotten(outcome: Outcome, now: float) -> None:
    if isinstance(outcome, BaseException):
        log.error("forgetting delivered offline messages failed: %s", outcome)
