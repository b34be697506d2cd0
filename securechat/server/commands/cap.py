"""IRCv3 capability negotiation (https://ircv3.net/specs/extensions/capability-negotiation).

- ``CAP LS [302]`` suspends registration until ``CAP END``; 302 implies cap-notify.
- ``CAP REQ`` is all-or-nothing: one unknown or invalid capability NAKs the
  whole request and nothing changes.
- Replies whose capability list would overflow a line are split with ``*``
  (version 302 clients only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from securechat.protocol import numerics as n
from securechat.protocol.message import Message, build, safe_param
from securechat.server.actions import IrcError
from securechat.server.commands.account_registration import cap_value as registration_value
from securechat.server.commands.multiline import cap_value as multiline_value
from securechat.server.commands.registration import try_register
from securechat.server.commands.sasl import mechanisms

if TYPE_CHECKING:
    from securechat.server.core import ServerCore
    from securechat.server.state import Session


SUPPORTED_CAPS = (
    "account-notify",
    "account-tag",
    "away-notify",
    "batch",
    "cap-notify",
    "draft/multiline",
    "draft/read-marker",
    "chghost",  # offered for clients that ask; hosts never change here, so never sent
    "echo-message",
    "extended-join",
    "extended-monitor",
    "invite-notify",
    "labeled-response",
    "message-tags",
    "multi-prefix",
    "server-time",
    "setname",
    "standard-replies",
    "userhost-in-names",
)
STORE_CAPS = (
    "draft/account-registration",
    "draft/chathistory",
    "draft/message-redaction",
    "sasl",
)  # offered only when the server keeps data
CAP_LINE_BUDGET = 400  # bytes of capability names per line, leaving room for the prefix


# CAP <subcommand> [:<capabilities>]
def handle_cap(core: ServerCore, session: Session, message: Message, now: float) -> None:
    subcommand = message.params[0].upper()
    if subcommand == "LS":
        _cap_ls(core, session, message)
    elif subcommand == "LIST":
        _cap_reply(core, session, "LIST", sorted(session.caps))
    elif subcommand == "REQ":
        _cap_req(core, session, message.param(1))
    elif subcommand == "END":
        if session.cap_negotiating:
            session.cap_negotiating = False
            try_register(core, session, now)
    else:
        raise IrcError(n.ERR_INVALIDCAPCMD, safe_param(subcommand), "Invalid CAP subcommand")


def _cap_ls(core: ServerCore, session: Session, message: Message) -> None:
    version = int(message.param(1)) if message.param(1).isdigit() else 0
    session.cap_version = max(session.cap_version, version)
    if version >= 302:
        session.set_caps(session.caps | {"cap-notify"})
    if not session.registered:
        session.cap_negotiating = True
    offered = offered_caps(core)
    if version >= 302:  # CAP 302 values: sasl=<mechanisms>, draft/multiline=<limits> ...
        values = cap_values(core)
        offered = [f"{c}={values[c]}" if values.get(c) else c for c in offered]
    _cap_reply(core, session, "LS", offered)


def cap_values(core: ServerCore) -> dict[str, str]:
    """The values CAP LS 302 shows beside these capabilities."""
    return {
        "sasl": ",".join(mechanisms(core)),
        "draft/multiline": multiline_value(core),
        "draft/account-registration": registration_value(core),
    }


def offered_caps(core: ServerCore) -> list[str]:
    return sorted(SUPPORTED_CAPS + STORE_CAPS) if core.persistent else list(SUPPORTED_CAPS)


def _cap_req(core: ServerCore, session: Session, requested: str) -> None:
    wanted = requested.split()
    caps = set(session.caps)
    offered = offered_caps(core)
    for item in wanted:
        name = item.removeprefix("-")
        if name not in offered:
            core.send(session, _cap_line(core, session, "NAK", requested))
            return
        if item.startswith("-"):
            caps.discard(name)
        else:
            caps.add(name)
    if not session.registered:
        session.cap_negotiating = True
    session.set_caps(caps)
    core.send(session, _cap_line(core, session, "ACK", requested))


def _cap_reply(core: ServerCore, session: Session, subcommand: str, caps: list[str]) -> None:
    chunks = _chunk(caps)
    for index, chunk in enumerate(chunks):
        more = index < len(chunks) - 1 and session.cap_version >= 302
        core.send(session, _cap_line(core, session, subcommand, " ".join(chunk), more))


def _cap_line(
    core: ServerCore, session: Session, subcommand: str, text: str, more: bool = False
) -> bytes:
    params = [session.nick, subcommand, "*", text] if more else [session.nick, subcommand, text]
    return build("CAP", params, core.config.name)


def _chunk(caps: list[str]) -> list[list[str]]:
    chunks: list[list[str]] = [[]]
    size = 0
    for cap in caps:
        if size + len(cap) + 1 > CAP_LINE_BUDGET and chunks[-1]:
            chunks.append([])
            size = 0
        chunks[-1].append(cap)
        size += len(cap) + 1
    return chunks
