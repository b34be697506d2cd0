"""WHOWAS: who recently used a nick (Modern IRC "WHOWAS message").

Kept: the last ``whowas_entries`` nicks that were left (by a quit, a disconnect or a rename),
each for ``whowas_seconds``; the oldest go first when the log is full, so memory is bounded
whatever the churn. Replies per entry, newest first: 314 (user, host, realname) and 312
(server, and when the nick was left); then 369. A nick not in the log gets 406 then 369.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from securechat.protocol import numerics as n
from securechat.protocol.message import Message, safe_param
from securechat.protocol.names import casefold
from securechat.server.actions import IrcError

if TYPE_CHECKING:
    from securechat.server.core import ServerCore
    from securechat.server.state import Session


@dataclass(slots=True, frozen=True)
class Entry:
    nick: str
    user: str
    host: str
    realname: str
    left_at: float


class WhowasLog:
    """The most recent entries, oldest first, with at most ``limit`` of them."""

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: deque[Entry] = deque()

    def record(self, core: ServerCore, session: Session, nick: str, now: float) -> None:
        limit = core.config.whowas_entries
        if limit <= 0:
            return
        self.entries.append(Entry(nick, session.user, session.host, session.realname, now))
        while len(self.entries) > limit:
            self.entries.popleft()
        self.expire(core, now)

    def expire(self, core: ServerCore, now: float) -> None:
        cutoff = now - core.config.whowas_seconds
        while self.entries and self.entries[0].left_at < cutoff:
            self.entries.popleft()

    def find(self, nick: str, count: int) -> list[Entry]:
        """Up to ``count`` entries for ``nick``, newest first (a scan of a bounded log)."""
        folded = casefold(nick)
        found: list[Entry] = []
        for entry in reversed(self.entries):
            if casefold(entry.nick) == folded:
                found.append(entry)
                if len(found) == count:
                    break
        return found


# WHOWAS <nick>{,<nick>} [<count>]
def handle_whowas(core: ServerCore, session: Session, message: Message, now: float) -> None:
    nicks = [nick for nick in message.param(0).split(",") if nick]
    if not nicks:
        raise IrcError(n.ERR_NONICKNAMEGIVEN, "No nickname given")
    count_text = message.param(1)
    # Modern IRC: a count that is missing, zero or negative means "all of them".
    count = int(count_text) if count_text.isdigit() and int(count_text) > 0 else 0
    log: WhowasLog = core.whowas
    log.expire(core, now)
    for nick in nicks[: core.config.max_targets]:
        entries = log.find(nick, count or core.config.whowas_entries)
        if not entries:
            core.reply(session, n.ERR_WASNOSUCHNICK, safe_param(nick), "There was no such nickname")
        for entry in entries:
            core.reply(
                session, n.RPL_WHOWASUSER, entry.nick, entry.user, entry.host, "*", entry.realname
            )
            left = datetime.fromtimestamp(entry.left_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            core.reply(session, n.RPL_WHOISSERVER, entry.nick, core.config.name, left)
        core.reply(session, n.RPL_ENDOFWHOWAS, safe_param(nick), "End of WHOWAS")
