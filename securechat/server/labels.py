"""labeled-response (https://ircv3.net/specs/extensions/labeled-response): a client that
negotiated it tags a command with ``label=<id>`` and gets that label on the response —
``ACK`` when there is none, the one reply tagged when there is one, and a
``BATCH +<ref> labeled-response`` around them when there are several (with ``batch``).

How: the core captures, per labeled line, every line sent to that client while the command
runs (``ServerCore._dispatch``), and also in the continuations of the store calls and
offloads that command made for it (the same ones the network layer holds the client's later
lines for, ``StoreCall.client``), so an ``OPER`` or ``IDENTIFY`` is labeled like a ``PING``.
When the last of them finished, the captured lines go out, labeled, in their order.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from securechat.protocol.message import Message, build, escape_tag_value
from securechat.server.actions import Action, Continuation, Offload, Outcome, Send, StoreCall

if TYPE_CHECKING:
    from securechat.server.core import ServerCore
    from securechat.server.state import Session

CAP = "labeled-response"
MAX_LABEL_BYTES = 64  # the spec: "labels ... MUST NOT exceed 64 bytes"


@dataclass(slots=True)
class Capture:
    session: Session
    label: str
    replies: list[bytes] = field(default_factory=list)
    pending: int = 0  # continuations still to run before the response is complete
    depth: int = 0  # > 0 while one of those continuations runs


def start(session: Session, message: Message) -> Capture | None:
    """A capture for this line, if the client asked for a labeled response."""
    label = message.tags.get("label")
    if not label or CAP not in session.caps or len(label.encode()) > MAX_LABEL_BYTES:
        return None
    return Capture(session, label)


def collect(core: ServerCore, capture: Capture, mark: int) -> None:
    """Move what ``core`` queued for the client since ``mark`` into ``capture``; the same
    line to others stays queued for them."""
    conn = capture.session.conn
    if core.sessions.get(conn) is not capture.session:
        return  # it was closed (QUIT, KILL...): its last lines go out as they are
    kept: list[Action] = []
    for action in core._actions[mark:]:
        if isinstance(action, Send) and conn in action.targets:
            capture.replies.append(action.data)
            others = [target for target in action.targets if target != conn]
            if others:
                kept.append(Send(others, action.data))
        else:
            kept.append(action)
    core._actions[mark:] = kept


def finish(core: ServerCore, capture: Capture) -> None:
    """Send the captured response, labeled (once every continuation has run)."""
    session, label = capture.session, f"label={escape_tag_value(capture.label)}"
    if core.sessions.get(session.conn) is not session:
        return
    replies = capture.replies
    if not replies:
        core.send(session, _tagged(build("ACK", [], core.config.name), label))
    elif len(replies) == 1:
        core.send(session, _tagged(replies[0], label))
    elif "batch" not in session.caps:
        for data in replies:
            core.send(session, _tagged(data, label))
    else:
        ref = core.new_msgid()
        opening = build("BATCH", [f"+{ref}", CAP], core.config.name)
        core.send(session, _tagged(opening, label))
        for data in replies:
            core.send(session, _tagged(data, f"batch={ref}"))
        core.send(session, build("BATCH", [f"-{ref}"], core.config.name))


def follow(core: ServerCore, capture: Capture, action: Action) -> Action:
    """``action`` with its continuation captured too (a store call or offload for the
    client: its replies belong to the same response)."""
    if not isinstance(action, StoreCall | Offload):
        return action
    holder = action.reader if isinstance(action, StoreCall) and action.reader else action.client
    if holder != capture.session.conn and (holder is not None or capture.depth == 0):
        return action  # not work the client waits for (net/server.py holds the same)
    original = action.then
    capture.pending += 1

    def then(outcome: Outcome, now: float) -> None:
        mark, outer = len(core._actions), core._capture
        core._capture = capture
        capture.depth += 1
        try:
            if original is not None:
                original(outcome, now)
        finally:
            capture.depth -= 1
            core._capture = outer
            collect(core, capture, mark)
            capture.pending -= 1
            if capture.pending == 0:
                finish(core, capture)

    wrapped: Continuation = then
    return dataclasses.replace(action, then=wrapped)


def _tagged(data: bytes, tag: str) -> bytes:
    """``data`` with one more tag, first in its tag section."""
    if data.startswith(b"@"):
        return b"@" + tag.encode() + b";" + data[1:]
    return b"@" + tag.encode() + b" " + data
