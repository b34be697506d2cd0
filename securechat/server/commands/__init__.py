"""The command table: one entry per IRC command the server understands.

Generic checks happen once in ServerCore._dispatch, before any handler runs
(ergo's design): registration state (451) and parameter count (461). A handler
receives ``(core, session, message, now)`` and raises IrcError for client
mistakes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from securechat.protocol.message import Message
from securechat.server.commands.account_registration import handle_register, handle_verify
from securechat.server.commands.cap import handle_cap
from securechat.server.commands.help import handle_help
from securechat.server.commands.messaging import handle_notice, handle_privmsg
from securechat.server.commands.modes import handle_mode
from securechat.server.commands.multiline import handle_batch
from securechat.server.commands.oper import (
    handle_kill,
    handle_kline,
    handle_oper,
    handle_rehash,
    handle_stats,
    handle_unkline,
    handle_wallops,
)
from securechat.server.commands.presence import handle_ison, handle_userhost
from securechat.server.commands.redact import handle_redact
from securechat.server.commands.registration import handle_nick, handle_pass, handle_user
from securechat.server.commands.rooms import (
    handle_invite,
    handle_join,
    handle_kick,
    handle_list,
    handle_names,
    handle_part,
    handle_topic,
)
from securechat.server.commands.sasl import handle_authenticate
from securechat.server.commands.server_info import (
    handle_admin,
    handle_info,
    handle_links,
    handle_time,
    handle_version,
)
from securechat.server.commands.services import (
    handle_chanserv_command,
    handle_nickserv_command,
)
from securechat.server.commands.setname import handle_setname
from securechat.server.commands.tagmsg import handle_tagmsg
from securechat.server.commands.users import (
    handle_away,
    handle_lusers,
    handle_motd,
    handle_ping,
    handle_pong,
    handle_quit,
    handle_whois,
)
from securechat.server.commands.who import handle_who
from securechat.server.history import handle_chathistory
from securechat.server.monitor import handle_monitor
from securechat.server.read_markers import handle_markread
from securechat.server.whowas import handle_whowas

if TYPE_CHECKING:
    from securechat.server.core import ServerCore
    from securechat.server.state import Session

Handler = Callable[["ServerCore", "Session", Message, float], None]


@dataclass(frozen=True, slots=True)
class Command:
    handler: Handler
    min_params: int = 0
    needs_registration: bool = True


COMMANDS: dict[str, Command] = {
    # usable before registration
    "CAP": Command(handle_cap, 1, needs_registration=False),
    "PASS": Command(handle_pass, 1, needs_registration=False),
    "NICK": Command(handle_nick, 1, needs_registration=False),
    "USER": Command(handle_user, 4, needs_registration=False),
    "PING": Command(handle_ping, 0, needs_registration=False),
    "PONG": Command(handle_pong, 0, needs_registration=False),
    "QUIT": Command(handle_quit, 0, needs_registration=False),
    "AUTHENTICATE": Command(handle_authenticate, 1, needs_registration=False),
    "REGISTER": Command(handle_register, 3, needs_registration=False),
    "VERIFY": Command(handle_verify, 2, needs_registration=False),
    # rooms
    "JOIN": Command(handle_join, 1),
    "PART": Command(handle_part, 1),
    "TOPIC": Command(handle_topic, 1),
    "NAMES": Command(handle_names, 0),
    "LIST": Command(handle_list, 0),
    "KICK": Command(handle_kick, 2),
    "INVITE": Command(handle_invite, 2),
    "MODE": Command(handle_mode, 1),
    # messages and users
    "PRIVMSG": Command(handle_privmsg, 0),
    "NOTICE": Command(handle_notice, 0),
    "TAGMSG": Command(handle_tagmsg, 1),
    "WHO": Command(handle_who, 1),
    "WHOIS": Command(handle_whois, 1),
    "WHOWAS": Command(handle_whowas, 0),
    "AWAY": Command(handle_away, 0),
    "SETNAME": Command(handle_setname, 1),
    "LUSERS": Command(handle_lusers, 0),
    "MOTD": Command(handle_motd, 0),
    "USERHOST": Command(handle_userhost, 1),
    "ISON": Command(handle_ison, 1),
    "MONITOR": Command(handle_monitor, 1),
    # about the server (Modern IRC)
    "VERSION": Command(handle_version, 0),
    "TIME": Command(handle_time, 0),
    "ADMIN": Command(handle_admin, 0),
    "INFO": Command(handle_info, 0),
    "LINKS": Command(handle_links, 0),
    "HELP": Command(handle_help, 0),
    "HELPOP": Command(handle_help, 0),
    # accounts, registered rooms and history
    "NICKSERV": Command(handle_nickserv_command, 0),
    "NS": Command(handle_nickserv_command, 0),
    "CHANSERV": Command(handle_chanserv_command, 0),
    "CS": Command(handle_chanserv_command, 0),
    "CHATHISTORY": Command(handle_chathistory, 0),
    "MARKREAD": Command(handle_markread, 0),
    "REDACT": Command(handle_redact, 2),
    "BATCH": Command(handle_batch, 1),
    # server operators
    "OPER": Command(handle_oper, 2),
    "KILL": Command(handle_kill, 1),
    "KLINE": Command(handle_kline, 1),
    "UNKLINE": Command(handle_unkline, 1),
    "STATS": Command(handle_stats, 0),
    "WALLOPS": Command(handle_wallops, 1),
    "REHASH": Command(handle_rehash, 0),
}
