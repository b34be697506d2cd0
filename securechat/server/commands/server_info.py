"""Questions about the server itself: VERSION, TIME, ADMIN, INFO, LINKS (Modern IRC).

Each takes an optional server name; one that is not this server gets 402 (there is only
one server: no links to follow).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from securechat.protocol import numerics as n
from securechat.protocol.message import Message, safe_param
from securechat.protocol.names import casefold
from securechat.server.actions import IrcError
from securechat.server.commands.registration import VERSION, isupport_tokens

if TYPE_CHECKING:
    from securechat.server.core import ServerCore
    from securechat.server.state import Session

INFO_LINES = (
    f"{VERSION}: a TLS-only IRC server with a terminal client, in Python (asyncio).",
    "It speaks RFC 2812 and Modern IRC, with the IRCv3 capabilities listed by CAP LS.",
    "Source and documentation: see the project's README.",
)
ISUPPORT_PER_LINE = 12


def _check_server(core: ServerCore, message: Message, index: int = 0) -> None:
    """402 for a server name (or mask) that is not this server."""
    target = message.param(index)
    if target and casefold(target) not in (casefold(core.config.name), "*"):
        raise IrcError(n.ERR_NOSUCHSERVER, safe_param(target), "No such server")


# VERSION [<server>]
def handle_version(core: ServerCore, session: Session, message: Message, now: float) -> None:
    """351, then the 005 lines again (Modern IRC VERSION: servers SHOULD resend ISUPPORT)."""
    _check_server(core, message)
    core.reply(session, n.RPL_VERSION, VERSION, core.config.name, core.config.network)
    tokens = isupport_tokens(core)
    for start in range(0, len(tokens), ISUPPORT_PER_LINE):
        chunk = tokens[start : start + ISUPPORT_PER_LINE]
        core.reply(session, n.RPL_ISUPPORT, *chunk, "are supported by this server")


# TIME [<server>]
def handle_time(core: ServerCore, session: Session, message: Message, now: float) -> None:
    """391 "<client> <server> <timestamp> <offset> :<human-readable time>" (UTC)."""
    _check_server(core, message)
    text = datetime.fromtimestamp(now, UTC).strftime("%A %B %d %Y -- %H:%M:%S +00:00")
    core.reply(session, n.RPL_TIME, core.config.name, str(int(now)), "0", text)


# ADMIN [<server>]
def handle_admin(core: ServerCore, session: Session, message: Message, now: float) -> None:
    _check_server(core, message)
    config = core.config
    core.reply(session, n.RPL_ADMINME, config.name, "Administrative info")
    core.reply(session, n.RPL_ADMINLOC1, f"{config.network} chat server")
    core.reply(session, n.RPL_ADMINLOC2, "Ask a server operator (WHO * o) for help")
    core.reply(session, n.RPL_ADMINEMAIL, "No administrative e-mail address is published")


# INFO [<server>]
def handle_info(core: ServerCore, session: Session, message: Message, now: float) -> None:
    _check_server(core, message)
    for line in INFO_LINES:
        core.reply(session, n.RPL_INFO, line)
    core.reply(session, n.RPL_ENDOFINFO, "End of INFO list")


# LINKS [[<remote server>] <server mask>]
def handle_links(core: ServerCore, session: Session, message: Message, now: float) -> None:
    """A single server: only itself (364 with hop count 0), then 365."""
    name = core.config.name
    core.reply(session, n.RPL_LINKS, name, name, f"0 {core.config.network}")
    core.reply(session, n.RPL_ENDOFLINKS, "*", "End of /LINKS list")
