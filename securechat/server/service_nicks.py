"""Service pseudo-users (NickServ, ChanServ): their names, their source, how they answer.

A service is not a session: it has no connection, never joins a room and is not in the nick
registry. Its nick is reserved (nobody can take it, in any case), WHOIS describes it, and
``PRIVMSG <service> :<command> <args>`` reaches its handler (services/). Answers are NOTICEs from
``<Service>!<Service>@services.<server name>``, as Atheme and ergo send them, so that every
client shows them in the server or query window without special support.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from securechat.protocol.message import build
from securechat.protocol.names import casefold
from securechat.protocol.services import CHANSERV, NICKSERV

if TYPE_CHECKING:
    from securechat.server.core import ServerCore
    from securechat.server.state import Session

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
