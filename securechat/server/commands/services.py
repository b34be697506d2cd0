"""Talking to services: ``PRIVMSG NickServ :...`` and the NICKSERV/NS, CHANSERV/CS commands.

Many clients send ``/ns identify ...`` as ``NICKSERV identify ...`` or ``NS identify ...``
(ergo and Atheme-era networks accept both forms); the text after the command is handled
exactly like a private message to the service.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from securechat.protocol.message import Message
from securechat.protocol.services import CHANSERV, NICKSERV
from securechat.server.service_nicks import service_named
from securechat.server.services.chanserv import handle_chanserv
from securechat.server.services.nickserv import handle_nickserv

if TYPE_CHECKING:
    from securechat.server.core import ServerCore
    from securechat.server.state import Session

ServiceEntry = Callable[["ServerCore", "Session", str, float], None]
SERVICES: dict[str, ServiceEntry] = {NICKSERV: handle_nickserv, CHANSERV: handle_chanserv}


def message_service(
    core: ServerCore, session: Session, command: str, nick: str, text: str, now: float
) -> bool:
    """Route a PRIVMSG to a service; True when ``nick`` named one (a NOTICE is dropped:
    RFC 2812 §3.3.2 forbids automatic replies to it)."""
    service = service_named(nick)
    if service is None:
        return False
    if command == "PRIVMSG":
        SERVICES[service](core, session, text, now)
    return True


# NICKSERV <command> [args]  |  NS <command> [args]
def handle_nickserv_command(
    core: ServerCore, session: Session, message: Message, now: float
) -> None:
    handle_nickserv(core, session, " ".join(message.params), now)


# CHANSERV <command> [args]  |  CS <command> [args]
def handle_chanserv_command(
    core: ServerCore, session: Session, message: Message, now: float
) -> None:
    handle_chanserv(core, session, " ".join(message.params), now)
