"""SETNAME: change one's real name after registration (IRCv3 setname).

The new name goes back to the user and to everyone sharing a room with it that negotiated
the ``setname`` capability, as ``:nick!user@host SETNAME :<realname>``. An empty name or one
with control characters gets ``FAIL SETNAME INVALID_REALNAME`` (standard replies). Its
length is bounded by the 512-byte line, as for USER.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from securechat.protocol.message import Message, build
from securechat.server.monitor import extended_watchers

if TYPE_CHECKING:
    from securechat.server.core import ServerCore
    from securechat.server.state import Session


# SETNAME :<realname>
def handle_setname(core: ServerCore, session: Session, message: Message, now: float) -> None:
    realname = message.params[0]
    if not realname or not realname.isprintable():
        text = "Real name must be printable and not empty"
        fail = ["SETNAME", "INVALID_REALNAME", text]
        core.send(session, build("FAIL", fail, core.config.name))
        return
    session.realname = realname
    line = build("SETNAME", [realname], session.source)
    watchers = [peer for peer in core.rooms.peers(session) if "setname" in peer.caps]
    watchers += extended_watchers(core, session, "setname")  # IRCv3 extended-monitor
    core.send_many([session, *watchers], line)
