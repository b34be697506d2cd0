"""What a connection gets when it attaches to its account's user (presence_accounts.py): the
user's rooms as if it had just joined them, its away state, and the private messages kept
for the account.

ergo plays a channel's JOIN, topic and names to every session of a client that was not there
when the user joined; the same here, per room: ``JOIN`` (extended with extended-join), the
topic (332/333), ``NAMES`` (353/366), and the join replay of the room's recent history
(history.replay_on_join: none for draft/chathistory clients, which ask for what they missed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from securechat.protocol import numerics as n
from securechat.server.history import replay_on_join
from securechat.server.offline_messages import deliver_offline
from securechat.server.read_markers import send_on_join
from securechat.server.room_replies import send_names, send_topic

if TYPE_CHECKING:
    from securechat.server.core import ServerCore
    from securechat.server.state import Session


def welcome_device(core: ServerCore, session: Session, now: float) -> None:
    """``session`` just attached: show it the user's rooms and away, then deliver."""
    for room in list(session.rooms.values()):
        params = [room.name]
        if "extended-join" in session.caps:
            params += [session.account or "*", session.realname]
        msgid, account = core.new_msgid(), session.account
        core.broadcast([session], "JOIN", params, session.source, now, msgid=msgid, account=account)
        if room.topic:
            send_topic(core, session, room)
        send_on_join(core, session, room)  # before 366 (draft/read-marker)
        send_names(core, session, room)
        replay_on_join(core, session, room, now)
    if session.away is not None:
        core.reply(session, n.RPL_NOWAWAY, "You have been marked as being away")
    deliver_offline(core, session)
