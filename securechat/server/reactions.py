"""Replies, reactions and typing: the client-only tags of issue 16, checked and kept.

Specs: IRCv3 ``+draft/reply`` (client-tags/reply), ``+draft/react`` / ``+draft/unreact``
(client-tags/react), ``+typing`` (client-tags/typing). ``+reply`` is still a draft there, so
only the ``draft/`` names are understood; any other client-only tag is relayed untouched.

Rules kept here:

- **Checked before relay.** ``+draft/reply`` names a msgid (1 to ``MAX_MSGID_BYTES`` bytes, no
  spaces); ``+draft/react`` and ``+draft/unreact`` come with a ``+draft/reply`` (the react spec's
  "MUST be used in conjunction") and are 1 to ``max_reaction_bytes`` bytes; ``+typing`` is
  ``active``, ``paused`` or ``done``. Otherwise ``FAIL <command> INVALID_TAG <target> <tag>``
  and nothing is relayed (a NOTICE is dropped without a reply, RFC 2812 §3.3.2).
- **Replies** are kept in history with the message that carries them (history.stored_tags).
- **Reactions** sent by TAGMSG to a room the sender is in, or between two logged-in accounts,
  are stored beside the message they point to when that message is in the same target's
  history (store/chat.py), *before* they are relayed; at most ``max_reactions_per_message`` per
  message (more: ``FAIL TAGMSG TOO_MANY_REACTIONS``, not relayed), one of each kind per person.
  ``+draft/unreact`` removes the stored one. A reaction to a message that is not in history
  is relayed and not kept.
- **Typing** notifications are relayed (TAGMSG to ``message-tags`` clients) and never stored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from securechat.protocol.names import casefold, is_room_name
from securechat.server.actions import StoreCall
from securechat.server.history import message_time
from securechat.server.records import Reaction, private_target
from securechat.server.standard_replies import fail

if TYPE_CHECKING:
    from securechat.server.actions import Outcome
    from securechat.server.core import ServerCore
    from securechat.server.state import Session

log = logging.getLogger("securechat.server")

REPLY = "+draft/reply"
REACT = "+draft/react"
UNREACT = "+draft/unreact"
TYPING = "+typing"
TYPING_STATES = frozenset({"active", "paused", "done"})
MAX_MSGID_BYTES = 64  # ours are 16 hex digits; room for another server's

Relay = Callable[[], None]


def tag_problem(core: ServerCore, tags: Mapping[str, str]) -> tuple[str, str] | None:
    """(tag, why) for the first of these tags that breaks its spec, else None."""
    reply = tags.get(REPLY)
    if reply is not None and not (0 < len(reply.encode()) <= MAX_MSGID_BYTES and " " not in reply):
        return REPLY, "A reply names the msgid of a message"
    for tag in (REACT, UNREACT):
        value = tags.get(tag)
        if value is None:
            continue
        if reply is None:
            return tag, f"{tag} needs {REPLY} naming the message reacted to"
        if not 0 < len(value.encode()) <= core.config.max_reaction_bytes:
            return tag, f"A reaction is 1 to {core.config.max_reaction_bytes} bytes"
    typing = tags.get(TYPING)
    if typing is not None and typing not in TYPING_STATES:
        return TYPING, "Typing is active, paused or done"
    return None


def refuse(
    core: ServerCore, session: Session, command: str, target: str, problem: tuple[str, str]
) -> None:
    tag, why = problem
    fail(core, session, command, "INVALID_TAG", target, tag, text=why)


def keep_then_relay(
    core: ServerCore,
    session: Session,
    target: str,
    tags: Mapping[str, str],
    msgid: str,
    now: float,
    relay: Relay,
) -> bool:
    """A TAGMSG reaction to a target with history: store (or unstore) it, then ``relay``.
    False when there is nothing to keep: the caller relays at once."""
    key = _history_key(core, session, target)
    parent = tags.get(REPLY)
    if key is None or parent is None or not (REACT in tags or UNREACT in tags):
        return False
    if UNREACT in tags:
        reactor = casefold(session.account) if session.account else "!" + session.source
        value = tags[UNREACT]
        core.perform(
            StoreCall(
                lambda store: store.remove_reaction(key, parent, reactor, value),
                _then(core, session, target, parent, relay),
                client=session.conn,
            )
        )
        return True
    reaction = Reaction(
        msgid, key, parent, session.source, session.account, message_time(now), tags[REACT]
    )
    most = core.config.max_reactions_per_message
    core.perform(
        StoreCall(
            lambda store: store.add_reaction(reaction, most),
            _then(core, session, target, parent, relay),
            client=session.conn,
        )
    )
    return True


def _then(
    core: ServerCore, session: Session, target: str, parent: str, relay: Relay
) -> Callable[[Outcome, float], None]:
    def stored(outcome: Outcome, now: float) -> None:
        if core.sessions.get(session.conn) is not session:
            return
        if isinstance(outcome, BaseException):
            log.error("reaction could not be stored: %s", outcome)
            text = "Reaction not delivered: the server cannot store it now; try again later"
            fail(core, session, "TAGMSG", "TEMPORARILY_UNAVAILABLE", target, text=text)
        elif outcome == "limit":
            most = core.config.max_reactions_per_message
            text = f"That message has the most reactions it may have ({most})"
            fail(core, session, "TAGMSG", "TOO_MANY_REACTIONS", target, parent, text=text)
        else:
            relay()

    return stored


def _history_key(core: ServerCore, session: Session, target: str) -> str | None:
    """Where the target's history is kept, if it is kept and the sender reads it."""
    if not core.persistent:
        return None
    if is_room_name(target):
        room = session.rooms.get(casefold(target))
        return room.name_cf if room is not None else None
    user = core.nicks.get(target)
    if session.account is None or user is None or user.account is None:
        return None
    return private_target(session.account, user.account)
