"""HELP and HELPOP: a short text per command (Modern IRC HELP: 704, 705..., 706; 524).

``HELP`` alone answers the index (subject ``*``); ``HELP <command>`` that command's syntax
and meaning. Every command in the command table has an entry (a test checks it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from securechat.protocol import numerics as n
from securechat.protocol.message import Message, safe_param

if TYPE_CHECKING:
    from securechat.server.core import ServerCore
    from securechat.server.state import Session

HELP_TEXT: dict[str, tuple[str, ...]] = {
    "ADMIN": ("ADMIN [<server>]", "Who runs this server."),
    "AUTHENTICATE": ("AUTHENTICATE <mechanism | data>", "SASL login (CAP REQ sasl first)."),
    "AWAY": ("AWAY [<message>]", "Mark yourself away with a message; without one, back."),
    "CAP": ("CAP LS [302] | LIST | REQ :<caps> | END", "IRCv3 capability negotiation."),
    "CHANSERV": ("CHANSERV <command> ...", "Registered rooms; CHANSERV HELP lists commands."),
    "CHATHISTORY": ("CHATHISTORY LATEST|BEFORE|AFTER|AROUND|BETWEEN|TARGETS ...",),
    "BATCH": (
        "BATCH +<ref> draft/multiline <target> ... BATCH -<ref>",
        "Send several lines as one message (draft/multiline).",
    ),
    "REGISTER": (
        "REGISTER <account | *> <email | *> <password>",
        "Create an account named after your nick and log in (draft/account-registration).",
    ),
    "VERIFY": ("VERIFY <account> <code>", "Not needed here: REGISTER never asks for a code."),
    "REDACT": (
        "REDACT <target> <msgid> [:<reason>]",
        "Delete a message: yours, or any as a room or network operator (message-redaction).",
    ),
    "MARKREAD": (
        "MARKREAD <target> [timestamp=<time>]",
        "Get or move your read marker (draft/read-marker; logged-in accounts).",
    ),
    "CS": ("CS <command> ...", "Short for CHANSERV."),
    "HELP": ("HELP [<command>]", "This help."),
    "HELPOP": ("HELPOP [<command>]", "The same as HELP."),
    "INFO": ("INFO [<server>]", "About the server software."),
    "INVITE": ("INVITE <nick> <#room>", "Invite someone (operators, in a +i room)."),
    "ISON": ("ISON <nick>{ <nick>}", "Which of these nicks are online."),
    "JOIN": ("JOIN <#room>{,<#room>} [<key>{,<key>}]", "Join rooms; JOIN 0 leaves all."),
    "KICK": ("KICK <#room> <nick> [:<reason>]", "Remove someone from a room (operators)."),
    "KILL": ("KILL <nick> [:<reason>]", "Disconnect a user (server operators)."),
    "KLINE": ("KLINE [<minutes>] <user@host> [:<reason>]", "Ban a mask (server operators)."),
    "LINKS": ("LINKS", "The servers of this network: just this one."),
    "LIST": ("LIST [<#room>{,<#room>}]", "Rooms, their member counts and topics."),
    "LUSERS": ("LUSERS", "How many users, operators and rooms there are."),
    "MODE": ("MODE <#room | nick> [<modes> [<args>]]", "Show or change room or user modes."),
    "MONITOR": ("MONITOR + | - <nicks> ; MONITOR C | L | S", "Watch nicks come and go."),
    "MOTD": ("MOTD", "The message of the day."),
    "NAMES": ("NAMES [<#room>]", "Who is in a room."),
    "NICK": ("NICK <nick>", "Choose or change your nick."),
    "NICKSERV": ("NICKSERV <command> ...", "Accounts; NICKSERV HELP lists commands."),
    "NOTICE": ("NOTICE <target>{,<target>} :<text>", "A message that is never answered."),
    "NS": ("NS <command> ...", "Short for NICKSERV."),
    "OPER": ("OPER <name> <password>", "Become a server operator."),
    "PART": ("PART <#room>{,<#room>} [:<reason>]", "Leave rooms."),
    "PASS": ("PASS <password>", "The server password, before NICK and USER."),
    "PING": ("PING <token>", "The server answers PONG with the token."),
    "PONG": ("PONG <token>", "The answer to the server's PING."),
    "PRIVMSG": ("PRIVMSG <target>{,<target>} :<text>", "Send a message to rooms or nicks."),
    "QUIT": ("QUIT [:<reason>]", "Disconnect."),
    "REHASH": ("REHASH", "Reload the config and certificate (server operators)."),
    "SETNAME": ("SETNAME :<realname>", "Change your real name (setname capability)."),
    "STATS": ("STATS [u | k]", "Server statistics (server operators)."),
    "TAGMSG": ("@<tags> TAGMSG <target>{,<target>}", "Tags only, e.g. +typing (message-tags)."),
    "TIME": ("TIME [<server>]", "The server's time."),
    "TOPIC": ("TOPIC <#room> [:<topic>]", "Show or set a room's topic."),
    "UNKLINE": ("UNKLINE <user@host>", "Lift a K-line (server operators)."),
    "USER": ("USER <username> 0 * :<realname>", "Register the connection, with NICK."),
    "USERHOST": ("USERHOST <nick>{ <nick>}", "Up to 5 nicks' user@host and away state."),
    "VERSION": ("VERSION [<server>]", "The server version and its ISUPPORT tokens."),
    "WALLOPS": ("WALLOPS :<text>", "A message to users with mode +w (server operators)."),
    "WHO": ("WHO <#room | mask> [o][%<fields>[,<token>]]", "List users (WHOX with %)."),
    "WHOIS": ("WHOIS <nick>", "About one user."),
    "WHOWAS": ("WHOWAS <nick>{,<nick>} [<count>]", "Who recently used a nick."),
}
INDEX = ("Commands (HELP <command> for one):",)


# HELP [<subject>]   (and HELPOP)
def handle_help(core: ServerCore, session: Session, message: Message, now: float) -> None:
    subject = message.param(0).upper()
    if not subject:
        names = sorted(HELP_TEXT)
        lines = (*INDEX, *(" ".join(names[i : i + 10]) for i in range(0, len(names), 10)))
        _send(core, session, "*", lines)
        return
    text = HELP_TEXT.get(subject)
    if text is None:
        core.reply(
            session, n.ERR_HELPNOTFOUND, safe_param(subject), "No help available on this topic"
        )
        return
    _send(core, session, subject, text)


def _send(core: ServerCore, session: Session, subject: str, lines: tuple[str, ...]) -> None:
    """704 with the first line, 705 for each middle one, 706 with the last."""
    core.reply(session, n.RPL_HELPSTART, subject, lines[0])
    for line in lines[1:]:
        core.reply(session, n.RPL_HELPTXT, subject, line)
    core.reply(session, n.RPL_ENDOFHELP, subject, "End of /HELP.")
