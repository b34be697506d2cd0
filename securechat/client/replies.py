"""Numeric replies turned into sentences a person can read, and where to show them.

Rules:
- Every numeric reply has the client's nick as its first parameter; the rest
  depends on the numeric (RFC 2812 §5, Modern IRC "Numerics").
- A reply about a room or a nick is shown in that room's or nick's buffer when
  one is open (``Reply.about``), otherwise in the buffer the user is looking at
  (``CURRENT``) or in the server buffer (``SERVER``) for connection chatter.
- An unknown numeric is never dropped: its trailing text is shown as it came.
- Numerics the session consumes for state (names, topic, ISUPPORT) are handled
  in ``session.py``; this module only words them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from securechat.protocol import numerics as n
from securechat.protocol.message import Message
from securechat.protocol.names import NICK_RULE, ROOM_NAME_RULE

SERVER = "\0server"  # markers that cannot collide with a room or nick name
CURRENT = "\0current"


@dataclass(slots=True, frozen=True)
class Reply:
    text: str
    about: str  # a room or nick name, SERVER or CURRENT
    error: bool = False


Wording = Callable[[Message], Reply | None]


def describe(message: Message) -> Reply | None:
    """The sentence for one numeric reply, or None when it is better left unsaid."""
    if message.command in _SILENT:
        return None
    wording = _WORDINGS.get(message.command)
    if wording is not None:
        return wording(message)
    return _fallback(message)


def _fallback(message: Message) -> Reply:
    """An unlisted numeric: its parameters after our nick, as the server sent them."""
    text = " ".join(message.params[1:]) or message.command
    error = message.command[:1] in "45"
    return Reply(text, CURRENT if error else SERVER, error)


def _braces(text: str) -> str:
    """Text to use inside a ``str.format`` template as it is."""
    return text.replace("{", "{{").replace("}", "}}")


def _p(message: Message, index: int) -> str:
    return message.param(index)


def _server_text(message: Message) -> Reply:
    return Reply(message.params[-1] if message.params else "", SERVER)


def _error(template: str, about_index: int | None = None) -> Wording:
    """An error sentence; ``{1}`` etc. are the numeric's parameters (``{0}`` is our nick)."""

    def word(message: Message) -> Reply:
        params = [*message.params, "", "", ""]
        about = CURRENT if about_index is None else _p(message, about_index) or CURRENT
        return Reply(template.format(*params), about, error=True)

    return word


def _info(template: str, about_index: int | None = None) -> Wording:
    """A reply to something the user asked: shown where the user is, or with its room/nick."""

    def word(message: Message) -> Reply:
        params = [*message.params, "", "", ""]
        about = CURRENT if about_index is None else _p(message, about_index) or CURRENT
        return Reply(template.format(*params), about)

    return word


def _chatter(template: str) -> Wording:
    """Connection chatter nobody asked for (the welcome burst): the server buffer."""

    def word(message: Message) -> Reply:
        return Reply(template.format(*message.params, "", "", ""), SERVER)

    return word


def _topic_who_time(message: Message) -> Reply:
    when = _format_unix(_p(message, 3))
    setter = _p(message, 2).split("!", 1)[0]
    return Reply(f"Topic set by {setter}{when}", _p(message, 1))


def _creation_time(message: Message) -> Reply:
    return Reply(f"{_p(message, 1)} was created{_format_unix(_p(message, 2))}", _p(message, 1))


def _format_unix(value: str) -> str:
    if not value.isdigit():
        return ""
    stamp = datetime.fromtimestamp(int(value), UTC).astimezone()
    return stamp.strftime(" on %Y-%m-%d at %H:%M")


def _idle(message: Message) -> Reply:
    seconds = int(_p(message, 2)) if _p(message, 2).isdigit() else 0
    text = f"{_p(message, 1)} has been idle {format_duration(seconds)}"
    if _p(message, 3).isdigit():
        text += f", connected{_format_unix(_p(message, 3))}"  # " on <date> at <time>"
    return Reply(text, CURRENT)


def format_duration(seconds: int) -> str:
    """``3725`` -> ``1h 2m 5s``; the largest units only, never empty."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{v}{u}" for v, u in ((days, "d"), (hours, "h"), (minutes, "m")) if v]
    if secs or not parts:
        parts.append(f"{secs}s")
    return " ".join(parts[:3])


def _list_entry(message: Message) -> Reply:
    users = _p(message, 2)
    noun = "user" if users == "1" else "users"
    topic = _p(message, 3)
    return Reply(f"{_p(message, 1)} ({users} {noun}){': ' + topic if topic else ''}", CURRENT)


def _who_entry(message: Message) -> Reply:
    # <client> <channel> <user> <host> <server> <nick> <flags> :<hopcount> <realname>
    realname = _p(message, 7).partition(" ")[2]
    flags = _p(message, 6)
    away = " (away)" if flags.startswith("G") else ""
    text = f"{_p(message, 1)}: {_p(message, 5)} is {_p(message, 2)}@{_p(message, 3)}{away}"
    return Reply(f"{text} ({realname})" if realname else text, CURRENT)


def _whois_user(message: Message) -> Reply:
    # <client> <nick> <username> <host> * :<realname>
    text = f"{_p(message, 1)} is {_p(message, 2)}@{_p(message, 3)}"
    realname = _p(message, 5)
    return Reply(f"{text} ({realname})" if realname else text, CURRENT)


def _sasl_failed(message: Message) -> Reply:
    """904: the server's reason when it gives one, as a sentence."""
    reason = message.params[-1] if len(message.params) > 1 else ""
    _, _, detail = reason.partition(":")
    detail = detail.strip().rstrip(".") or "wrong account name or password"
    return Reply(f"Automatic login (SASL) failed: {detail[:1].lower()}{detail[1:]}.", SERVER, True)


def _mode_is(message: Message) -> Reply:
    modes = " ".join(message.params[2:])
    return Reply(f"Modes of {_p(message, 1)}: {modes}", _p(message, 1))


_SILENT = frozenset(
    {
        n.RPL_ISUPPORT,  # capabilities of the server, consumed by the session
        n.RPL_MOTDSTART,
        n.RPL_ENDOFMOTD,
        n.RPL_LISTSTART,
        n.RPL_ENDOFWHO,
        n.RPL_ENDOFWHOIS,
        n.RPL_NAMREPLY,  # the session collects names and words the whole list at 366
        n.RPL_ENDOFNAMES,
        n.RPL_SASLSUCCESS,  # 900 already said who we are logged in as
    }
)

_WORDINGS: dict[str, Wording] = {
    # connection chatter: the server's own words
    n.RPL_WELCOME: _server_text,
    n.RPL_YOURHOST: _server_text,
    n.RPL_CREATED: _server_text,
    n.RPL_LUSERCLIENT: _server_text,
    n.RPL_LUSERME: _server_text,
    n.RPL_LOCALUSERS: _server_text,
    n.RPL_GLOBALUSERS: _server_text,
    n.RPL_MOTD: _server_text,
    n.RPL_MYINFO: _chatter("Server {1} running {2}"),
    n.RPL_LUSEROP: _chatter("{1} operator(s) online"),
    n.RPL_LUSERUNKNOWN: _chatter("{1} unregistered connection(s)"),
    n.RPL_LUSERCHANNELS: _chatter("{1} room(s) formed"),
    n.ERR_NOMOTD: _chatter("The server has no message of the day."),
    n.RPL_UMODEIS: _info("Your user modes: {1}"),
    # away
    n.RPL_AWAY: _info("{1} is away: {2}"),  # where the user is (a /whois or a /msg)
    n.RPL_UNAWAY: _info("You are no longer marked as away."),
    n.RPL_NOWAWAY: _info("You are now marked as away."),
    # whois
    n.RPL_WHOISUSER: _whois_user,
    n.RPL_WHOISSERVER: _info("{1} is connected to {2} ({3})"),
    n.RPL_WHOISOPERATOR: _info("{1} is a server operator"),
    n.RPL_WHOISIDLE: _idle,
    n.RPL_WHOISCHANNELS: _info("{1} is in {2}"),
    n.RPL_WHOISACCOUNT: _info("{1} is logged in as {2}"),
    n.RPL_WHOISSECURE: _info("{1} is using a secure connection"),
    n.RPL_WHOISHOST: _info("{1}: {2}"),
    n.RPL_WHOISMODES: _info("{1}: {2}"),
    # rooms
    n.RPL_LIST: _list_entry,
    n.RPL_LISTEND: _info("End of the room list."),
    n.RPL_CHANNELMODEIS: _mode_is,
    n.RPL_CREATIONTIME: _creation_time,
    n.RPL_NOTOPIC: _info("No topic is set for {1}.", 1),
    n.RPL_TOPIC: _info("Topic for {1}: {2}", 1),
    n.RPL_TOPICWHOTIME: _topic_who_time,
    n.RPL_INVITING: _info("You invited {1} to {2}.", 2),
    n.RPL_WHOREPLY: _who_entry,
    n.RPL_BANLIST: _info("{1} bans {2}", 1),
    n.RPL_ENDOFBANLIST: _info("End of the ban list of {1}.", 1),
    # accounts and SASL
    n.RPL_LOGGEDIN: _info("You are now logged in as {2}."),
    n.RPL_LOGGEDOUT: _info("You are now logged out."),
    n.ERR_NICKLOCKED: _error("You cannot log in: your nick is locked by the server."),
    n.ERR_SASLFAIL: _sasl_failed,
    n.ERR_SASLTOOLONG: _error("Login failed: the login message was too long for the server."),
    n.ERR_SASLABORTED: _error("Login (SASL) was aborted."),
    n.ERR_SASLALREADY: _info("You are already logged in."),
    n.RPL_SASLMECHS: _chatter("The server accepts these login mechanisms: {1}."),
    # errors
    n.ERR_UNKNOWNERROR: _error("The server could not handle {1}: {2}"),
    n.ERR_NOSUCHNICK: _error("There is no one called {1} on this server.", 1),
    n.ERR_NOSUCHSERVER: _error("There is no server called {1}."),
    n.ERR_NOSUCHCHANNEL: _error("There is no room called {1}.", 1),
    n.ERR_CANNOTSENDTOCHAN: _error("Your message could not be sent to {1}: {2}", 1),
    n.ERR_TOOMANYCHANNELS: _error("You cannot join {1}: you are in too many rooms already.", 1),
    n.ERR_WASNOSUCHNICK: _error("There was no one called {1}."),
    n.ERR_TOOMANYTARGETS: _error("Too many targets for {1}."),
    n.ERR_NOORIGIN: _error("The server expected an origin for PING or PONG."),
    n.ERR_NORECIPIENT: _error("Nobody to send that to: give a nick or a room."),
    n.ERR_NOTEXTTOSEND: _error("There was no text to send."),
    n.ERR_INPUTTOOLONG: _error("That line was too long for the server; it was not sent."),
    n.ERR_UNKNOWNCOMMAND: _error("The server does not know the command {1}."),
    n.ERR_NONICKNAMEGIVEN: _error("No nickname was given."),
    n.ERR_ERRONEUSNICKNAME: _error("{1} cannot be a nickname: " + _braces(NICK_RULE) + "."),
    n.ERR_NICKNAMEINUSE: _error("The nickname {1} is already in use."),
    n.ERR_USERNOTINCHANNEL: _error("{1} is not in {2}.", 2),
    n.ERR_NOTONCHANNEL: _error("You are not in {1}.", 1),
    n.ERR_USERONCHANNEL: _error("{1} is already in {2}.", 2),
    n.ERR_NOTREGISTERED: _error("The server has not finished registering you yet."),
    n.ERR_NEEDMOREPARAMS: _error("The server needs more parameters for {1}."),
    n.ERR_ALREADYREGISTERED: _error("You are already registered."),
    n.ERR_PASSWDMISMATCH: _error("The server password was wrong."),
    n.ERR_YOUREBANNEDCREEP: _error("You are banned from this server: {1}"),
    n.ERR_CHANNELISFULL: _error("You cannot join {1}: the room is full.", 1),
    n.ERR_UNKNOWNMODE: _error("{1} is not a mode this server knows."),
    n.ERR_INVITEONLYCHAN: _error("You cannot join {1}: it is invite-only.", 1),
    n.ERR_BANNEDFROMCHAN: _error("You cannot join {1}: you are banned from it.", 1),
    n.ERR_BADCHANNELKEY: _error("You cannot join {1}: wrong or missing key.", 1),
    n.ERR_BADCHANMASK: _error("{1} is not a valid room name: " + _braces(ROOM_NAME_RULE) + "."),
    n.ERR_NOPRIVILEGES: _error("You need to be a server operator to do that."),
    n.ERR_CHANOPRIVSNEEDED: _error("You need to be an operator of {1} to do that.", 1),
    n.ERR_UMODEUNKNOWNFLAG: _error("Unknown user mode flag."),
    n.ERR_USERSDONTMATCH: _error("You can only change your own user modes."),
    n.ERR_INVALIDMODEPARAM: _error("Invalid parameter {3} for mode {2} on {1}: {4}", 1),
}
