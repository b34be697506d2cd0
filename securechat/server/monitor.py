"""MONITOR: tell a client when nicks it watches come online or go offline (IRCv3 monitor).

``MONITOR + a,b`` watches (730 for those online, 731 for the others; past ``monitor_limit``
734 with the nicks not added), ``MONITOR - a,b`` stops, ``C`` clears, ``L`` lists (732, 733),
``S`` gives the state of every watched nick. A watched nick signing on (registration or a
rename to it) sends 730 ``nick!user@host``; signing off (quit or a rename away) sends 731.

With ``extended-monitor`` a watcher also gets the watched user's AWAY and SETNAME lines,
as if it shared a room with it, for the capabilities it negotiated (IRCv3 extended-monitor).

The reverse index (nick -> watchers) makes each sign-on or sign-off cost its own watchers,
never a scan; a client's watches go with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from securechat.protocol import numerics as n
from securechat.protocol.message import MAX_BODY_BYTES, Message, safe_param
from securechat.protocol.names import casefold, is_valid_nick

if TYPE_CHECKING:
    from securechat.server.core import ServerCore
    from securechat.server.state import Session

NICK_LIST_BUDGET = MAX_BODY_BYTES - 100  # bytes of nicks per 730-732 line


class MonitorRegistry:
    """Who watches which nick (casefolded), both ways."""

    __slots__ = ("watchers", "watching")

    def __init__(self) -> None:
        self.watchers: dict[str, dict[int, Session]] = {}  # nick -> conn -> watcher
        self.watching: dict[int, dict[str, str]] = {}  # conn -> nick_cf -> nick as asked

    def add(self, session: Session, nick: str) -> None:
        folded = casefold(nick)
        self.watching.setdefault(session.conn, {})[folded] = nick
        self.watchers.setdefault(folded, {})[session.conn] = session

    def remove(self, session: Session, folded: str) -> None:
        self.watching.get(session.conn, {}).pop(folded, None)
        watchers = self.watchers.get(folded)
        if watchers is not None:
            watchers.pop(session.conn, None)
            if not watchers:
                del self.watchers[folded]

    def forget(self, session: Session) -> None:
        for folded in list(self.watching.pop(session.conn, {})):
            self.remove(session, folded)

    def of(self, session: Session) -> dict[str, str]:
        return self.watching.get(session.conn, {})

    def watching_nick(self, folded: str) -> list[Session]:
        return list(self.watchers.get(folded, {}).values())


# MONITOR <+|-|C|L|S> [<target>{,<target>}]
def handle_monitor(core: ServerCore, session: Session, message: Message, now: float) -> None:
    action = message.params[0]
    targets = [t for t in message.param(1).split(",") if t]
    registry: MonitorRegistry = core.monitors
    if action == "+":
        _add(core, session, targets)
    elif action == "-":
        for nick in targets:
            registry.remove(session, casefold(nick))
    elif action in ("C", "c"):
        registry.forget(session)
    elif action in ("L", "l"):
        _lines(core, session, n.RPL_MONLIST, items=sorted(registry.of(session).values()))
        core.reply(session, n.RPL_ENDOFMONLIST, "End of MONITOR list")
    elif action in ("S", "s"):
        _status(core, session, list(registry.of(session).values()))


def _add(core: ServerCore, session: Session, targets: list[str]) -> None:
    registry: MonitorRegistry = core.monitors
    limit = core.config.monitor_limit
    added = []
    for index, nick in enumerate(targets):
        if not is_valid_nick(nick):
            continue
        watched = registry.of(session)
        if casefold(nick) not in watched and len(watched) >= limit:
            rest = [safe_param(t) for t in targets[index:]]
            full = (n.ERR_MONLISTFULL, str(limit))
            _lines(core, session, *full, items=rest, last="Monitor list is full")
            break
        registry.add(session, nick)
        added.append(nick)
    _status(core, session, added)


def _status(core: ServerCore, session: Session, nicks: list[str]) -> None:
    online, offline = [], []
    for nick in nicks:
        user = core.nicks.get(nick)
        if user is not None and user.registered:
            online.append(user.source)
        else:
            offline.append(nick)
    _lines(core, session, n.RPL_MONONLINE, items=online)
    _lines(core, session, n.RPL_MONOFFLINE, items=offline)


def _lines(
    core: ServerCore, session: Session, *lead: str, items: list[str], last: str | None = None
) -> None:
    """``items`` comma-joined over as few ``lead... list [last]`` lines as fit (none when there
    are none), so that no list is cut at the line limit."""
    tail = (last,) if last is not None else ()
    budget = NICK_LIST_BUDGET - sum(len(text) + 2 for text in (*lead, *tail))
    line: list[str] = []
    size = 0
    for item in items:
        if line and size + len(item) + 1 > budget:
            core.reply(session, *lead, ",".join(line), *tail)
            line, size = [], 0
        line.append(item)
        size += len(item) + 1
    if line:
        core.reply(session, *lead, ",".join(line), *tail)


# ---- events from registration, renames and disconnects -------------------------------------


def signed_on(core: ServerCore, session: Session) -> None:
    for watcher in core.monitors.watching_nick(session.nick_cf):
        core.reply(watcher, n.RPL_MONONLINE, session.source)


def signed_off(core: ServerCore, session: Session, nick: str) -> None:
    for watcher in core.monitors.watching_nick(casefold(nick)):
        core.reply(watcher, n.RPL_MONOFFLINE, nick)


def extended_watchers(core: ServerCore, session: Session, cap: str) -> list[Session]:
    """extended-monitor: watchers of ``session`` with both caps, not already its room peers."""
    watchers = core.monitors.watching_nick(session.nick_cf)
    if not watchers:
        return []
    peers = {peer.conn for peer in core.rooms.peers(session)}
    return [
        w
        for w in watchers
        if "extended-monitor" in w.caps
        and cap in w.caps
        and w.conn not in peers
        and w is not session
    ]
