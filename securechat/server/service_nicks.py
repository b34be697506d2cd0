"""Service pseudo-users (NickServ, ChanServ): their names, their source, how they answer.

A service is not a session: it has no connection, never joins a room and is not in the nick
registry. Its nick is reserved (nobody can take it, in any case), WHOIS describes it, and
``PRIVMSG <service> :<command> <args>`` reaches its handler. Answers are NOTICEs from
``<Service>!<Service>@services.<server name>``, as Atheme and ergo send them, so that every
client shows them in the server or query window without special support.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from securechat.protocol.message import build
from securechat.protocol.names import casefold

if TYPE_CHECKING:
    from securechat.server.core import ServerCore
    from securechat.server.state import Session

NICKSERV = "NickServ"
CHANSERV = "ChanServ"
SERVICE_NICKS = (NICKSERV, CHANSERV)
_BY_CASEFOLDED = {casefold(name): name for name in SERVICE_NICKS}

NOT_AVAILABLE = "Accounts are not available: this server keeps no data (no data_dir)."


def service_named(nick: str) -> str | None:
    """The service's display name when ``nick`` names one (in any case), else None."""
    return _BY_CASEFOLDED.get(casefold(nick))


def service_host(core: ServerCore) -> str:
    return f"services.{core.config.name}"


def service_source(core: ServerCore, service: str) -> str:
    return f"{service}!{service}@{service_host(core)}"


def notice(core: ServerCore, session: Session, service: str, text: str) -> None:
    core.send(session, build("NOTICE", [session.nick, text], service_source(core, service)))


ServiceHandler = Callable[["ServerCore", "Session", list[str], float], None]


def dispatch(
    core: ServerCore,
    session: Session,
    service: str,
    commands: Mapping[str, ServiceHandler],
    text: str,
    now: float,
) -> tuple[ServiceHandler, list[str]] | None:
    """Find the handler for ``PRIVMSG <service> :<text>``, answering what cannot run: an
    unknown command, or anything but HELP on a server without a store."""
    command, args = split_command(text)
    handler = commands.get(command)
    if handler is None:
        notice(core, session, service, f"Unknown command {command or '(none)'}; try HELP")
        return None
    if command != "HELP" and not core.persistent:
        notice(core, session, service, NOT_AVAILABLE)
        return None
    return handler, args


def split_command(text: str) -> tuple[str, list[str]]:
    """``"identify alice secret"`` -> ``("IDENTIFY", ["alice", "secret"])``."""
    words = text.split()
    if not words:
        return "", []
    return words[0].upper(), words[1:]
