"""The service framework: a service is a table of ``ServiceCommand`` (ergo's services.go),
and NickServ (nickserv.py) and ChanServ (chanserv.py) are its two users. Their names and
voice are service_nicks.py's; the domain they act on is accounts.py's and room_registry.py's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from securechat.server.service_nicks import NOT_AVAILABLE, notice

if TYPE_CHECKING:
    from securechat.server.core import ServerCore
    from securechat.server.state import Session


@dataclass(frozen=True, slots=True)
class ServiceCommand:
    """One command of a service's table (ergo's ``serviceCommand``): its handler gets the
    words after the command; with fewer than ``min_params`` of them the service answers
    ``Syntax: <COMMAND> <syntax>; try HELP`` instead."""

    handler: Callable[[ServerCore, Session, list[str], float], None]
    min_params: int = 0
    syntax: str = ""


def dispatch(
    core: ServerCore,
    session: Session,
    service: str,
    commands: Mapping[str, ServiceCommand],
    text: str,
    now: float,
) -> tuple[ServiceCommand, list[str]] | None:
    """Find the command for ``PRIVMSG <service> :<text>``, answering what cannot run: an
    unknown command, too few words, or anything but HELP on a server without a store."""
    name, args = split_command(text)
    command = commands.get(name)
    if command is None:
        notice(core, session, service, f"Unknown command {name or '(none)'}; try HELP")
        return None
    if name != "HELP" and not core.persistent:
        notice(core, session, service, NOT_AVAILABLE)
        return None
    if len(args) < command.min_params:
        notice(core, session, service, f"Syntax: {name} {command.syntax}; try HELP")
        return None
    return command, args


def split_command(text: str) -> tuple[str, list[str]]:
    """``"identify alice secret"`` -> ``("IDENTIFY", ["alice", "secret"])``."""
    words = text.split()
    if not words:
        return "", []
    return words[0].upper(), words[1:]
