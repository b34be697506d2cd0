"""What the user types, turned into protocol lines and local actions. Pure: no state, no I/O.

Rules:
- A line starting with ``/`` is a command; ``//text`` sends ``/text`` as plain
  text; anything else is a message to the current room or conversation.
- Commands and their arguments are checked here, before anything is sent: a
  wrong or unknown command yields one line of hint (``Outcome.notes``), never an
  exception and never a half-sent command.
- ``/join`` adds the ``#`` a room name needs; room names and nicks are checked
  with the same rules the server applies (``protocol.names``).
- Local effects (open, switch, close or clear a buffer, quit) are described in
  the ``Outcome``; the session carries them out.
- Command syntax is written once, in ``COMMANDS``, and ``/help`` shows it.
- Passwords (``/login``, ``/register``, NickServ commands typed by hand) are
  sent, never shown: ``mask_input`` is what an input history may keep, and a
  local echo of a message to a service is masked the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from securechat.client import message_commands
from securechat.client.message_commands import Act, ActError
from securechat.client.splitting import ACTION_OVERHEAD, split_text, text_budget
from securechat.protocol.message import BodyTooLong, Message, build_exact, parse
from securechat.protocol.names import (
    NICK_RULE,
    NICKLEN,
    ROOM_NAME_RULE,
    is_room_name,
    is_valid_nick,
    is_valid_room,
)
from securechat.protocol.services import MIN_PASSWORD_LENGTH, NICKSERV

HISTORY_PAGE = 50  # messages per /history page unless a number is given
MASK = "********"
# Until the server shows us our own ``nick!user@host``: the longest user and host we expect
# (USERLEN, HOSTLEN 63), so that a long message is split short rather than cut by the server.
UNKNOWN_USERHOST = "~" + "u" * 15 + "@" + "h" * 63
DEFAULT_QUIT_REASON = "Leaving"
DEFAULT_AWAY_REASON = "Away"


@dataclass(slots=True, frozen=True)
class Context:
    """What a command needs to know about where the user is."""

    room: str | None = None  # the current buffer's room, if it is one
    query: str | None = None  # the current buffer's nick, if it is a private conversation
    # Our nick!user@host as others see it (for splitting); the longest there may be by default.
    source: str = f"{'n' * NICKLEN}!{UNKNOWN_USERHOST}"

    @property
    def target(self) -> str | None:
        return self.room or self.query


@dataclass(slots=True)
class Outcome:
    send: list[bytes] = field(default_factory=list)
    said: list[tuple[str, str, str]] = field(default_factory=list)  # (target, style, text)
    notes: list[str] = field(default_factory=list)  # shown in the current buffer
    error: bool = False  # the notes are a hint about a mistake
    join: list[str] = field(default_factory=list)  # room buffers to open; the first is shown
    query: str | None = None  # a private buffer to open
    switch_to_query: bool = False
    close: bool = False  # close the current buffer
    history: int | None = None  # page back this many messages of history (0: the default)
    clear: bool = False  # clear the current buffer's scrollback
    quit: bool = False
    reconnect: bool = False  # drop the connection (if any) and connect again now
    move_to: int | None = None  # move the current buffer to this 1-based position
    act: Act | None = None  # act on one message (reply, react, edit…) or register an account


class Usage(Exception):
    """A mistake in what the user typed; the message is the one-line hint."""


Handler = Callable[[str, Context], Outcome]


@dataclass(slots=True, frozen=True)
class Command:
    handler: Handler
    syntax: str  # after the command name, e.g. "NICK TEXT"
    summary: str


def interpret(text: str, context: Context) -> Outcome:
    """The outcome of one input line."""
    if text.startswith("//") or not text.startswith("/"):
        return _say(text.removeprefix("/"), context)
    name, _, args = text[1:].partition(" ")
    name = ALIASES.get(name.lower(), name.lower())
    command = COMMANDS.get(name)
    if command is None:
        return hint(f"Unknown command /{name}. Type /help for the list of commands.")
    try:
        return command.handler(args.strip(), context)
    except Usage as usage:
        return hint(f"{usage} Usage: {usage_of(name)}")
    except BodyTooLong as exc:
        return hint(f"That is {exc.size} bytes, over the 512-byte line limit; it was not sent.")


def hint(text: str) -> Outcome:
    return Outcome(notes=[text], error=True)


def usage_of(name: str) -> str:
    command = COMMANDS[name]
    return f"/{name} {command.syntax}".rstrip()


def help_text(topic: str = "") -> list[str]:
    """``/help``: one line per command; ``/help join``: that command's syntax and summary."""
    name = topic.strip().lstrip("/").lower()
    name = ALIASES.get(name, name)
    if name:
        if name not in COMMANDS:
            return [f"No such command /{name}. Type /help for the list of commands."]
        return [f"{usage_of(name)} — {COMMANDS[name].summary}"]
    lines = ["Commands (type /help COMMAND for one):"]
    width = max(len(usage_of(n)) for n in COMMANDS)
    lines += [f"  {usage_of(n):<{width}}  {c.summary}" for n, c in COMMANDS.items()]
    lines.append("Text without a leading / goes to the current room or conversation.")
    lines.append("Keys:")
    lines += [f"  {keys:<{KEYS_WIDTH}}  {what}" for keys, what in KEYS]
    return lines


# The full-screen client's keys (tui.py binds them), for /help.
KEYS = (
    ("Alt-1 … Alt-9", "show buffer 1 … 9"),
    ("Ctrl-N / Ctrl-P", "next / previous buffer"),
    ("Alt-A", "next buffer with activity (mentions first)"),
    ("PageUp / PageDown", "scroll; PageUp at the top fetches older history"),
    ("Up / Down", "recall what you typed"),
    ("Tab", "complete a nick, command or room"),
    ("Enter / Esc", "send / cancel a paste of several lines when asked"),
    ("Ctrl-C", "quit"),
)
KEYS_WIDTH = max(len(keys) for keys, _ in KEYS)


# ---- messages ---------------------------------------------------------------------------


def _say(text: str, context: Context) -> Outcome:
    if not text.strip():
        return Outcome()
    target = context.target
    if target is None:
        return hint("This is the server buffer: /join a room or /query a nick to talk.")
    return _privmsg(target, text, context)


def _privmsg(target: str, text: str, context: Context, style: str = "message") -> Outcome:
    """One PRIVMSG, or as many as a long text needs (never cut by the server)."""
    command = "NOTICE" if style == "notice" else "PRIVMSG"
    limit = text_budget(context.source, command, target)
    if style == "action":
        limit -= ACTION_OVERHEAD
    outcome = Outcome()
    for piece in split_text(text, limit):
        body = f"\x01ACTION {piece}\x01" if style == "action" else piece
        shown = mask_service_text(piece) if _is_service(target) else piece
        outcome.send.append(build_exact(command, [target, body]))
        outcome.said.append((target, style, shown))
    return outcome


def _split(args: str, count: int) -> list[str]:
    """The first ``count - 1`` words, then the rest of the line as one argument."""
    parts = args.split(None, count - 1)
    return parts + [""] * (count - len(parts))


def _check_target(target: str) -> str:
    if is_room_name(target):
        if not is_valid_room(target):
            raise Usage(f"{target} is not a valid room name: {ROOM_NAME_RULE}.")
    elif not is_valid_nick(target):
        raise Usage(f"{target} is not a valid nick: {NICK_RULE}.")
    return target


# /msg NICK|ROOM TEXT
def _msg(args: str, context: Context) -> Outcome:
    target, text = _split(args, 2)
    if not target or not text:
        raise Usage("Give a nick or room and a message.")
    outcome = _privmsg(_check_target(target), text, context)
    if not is_room_name(target):
        outcome.query = target
    return outcome


# /notice NICK|ROOM TEXT
def _notice(args: str, context: Context) -> Outcome:
    target, text = _split(args, 2)
    if not target or not text:
        raise Usage("Give a nick or room and a message.")
    return _privmsg(_check_target(target), text, context, style="notice")


# /query NICK [TEXT]
def _query(args: str, context: Context) -> Outcome:
    nick, text = _split(args, 2)
    if not nick or is_room_name(nick):
        raise Usage("Give the nick to talk to.")
    _check_target(nick)
    outcome = _privmsg(nick, text, context) if text else Outcome()
    outcome.query = nick
    outcome.switch_to_query = True
    return outcome


# /me ACTION
def _me(args: str, context: Context) -> Outcome:
    if not args:
        raise Usage("Say what you do.")
    if context.target is None:
        raise Usage("/me works in a room or a private conversation.")
    return _privmsg(context.target, args, context, style="action")


# ---- rooms ------------------------------------------------------------------------------


def room_name(name: str) -> str:
    """``lobby`` -> ``#lobby``; names already starting with ``#`` are kept."""
    return name if is_room_name(name) else f"#{name}"


# /join ROOM[,ROOM...] [KEY[,KEY...]]
def _join(args: str, context: Context) -> Outcome:
    rooms_text, keys = _split(args, 2)
    rooms = [room_name(r) for r in rooms_text.split(",") if r]
    if not rooms:
        raise Usage("Give the room to join.")
    if keys and "," not in rooms_text and not is_room_name(rooms_text):
        # "/join my room" means a room called "my room", not #my with the key "room".
        suggestion = room_name("-".join(args.split()))
        raise Usage(
            f"Room names cannot contain spaces ({ROOM_NAME_RULE}): try /join {suggestion}. "
            f"To give a key, write the #: /join {rooms[0]} KEY."
        )
    for room in rooms:
        if not is_valid_room(room):
            raise Usage(f"{room} is not a valid room name: {ROOM_NAME_RULE}.")
    params = [",".join(rooms), keys] if keys else [",".join(rooms)]
    return Outcome(send=[build_exact("JOIN", params)], join=rooms)


def _room_and_rest(args: str, context: Context) -> tuple[str, str]:
    """An explicit ``#room`` first word, else the current room; and the rest of the line."""
    first, rest = _split(args, 2)
    if first and is_room_name(first):
        return _check_target(first), rest
    if context.room is None:
        raise Usage("Name a room, or use this in a room.")
    return context.room, args


# /part [ROOM] [REASON]
def _part(args: str, context: Context) -> Outcome:
    room, reason = _room_and_rest(args, context)
    return Outcome(send=[build_exact("PART", [room, reason] if reason else [room])])


# /topic [ROOM] [TEXT]
def _topic(args: str, context: Context) -> Outcome:
    room, text = _room_and_rest(args, context)
    return Outcome(send=[build_exact("TOPIC", [room, text] if text else [room])])


# /names [ROOM]
def _names(args: str, context: Context) -> Outcome:
    room, _ = _room_and_rest(args, context)
    return Outcome(send=[build_exact("NAMES", [room])])


# /list [PATTERN]
def _list(args: str, context: Context) -> Outcome:
    return Outcome(send=[build_exact("LIST", args.split()[:1])])


# /invite NICK [ROOM]
def _invite(args: str, context: Context) -> Outcome:
    nick, rest = _split(args, 2)
    if not nick:
        raise Usage("Give the nick to invite.")
    room = room_name(rest.split()[0]) if rest else context.room
    if room is None:
        raise Usage("Name a room, or use this in a room.")
    return Outcome(send=[build_exact("INVITE", [_check_target(nick), _check_target(room)])])


# /kick [ROOM] NICK [REASON]
def _kick(args: str, context: Context) -> Outcome:
    room, rest = _room_and_rest(args, context)
    nick, reason = _split(rest, 2)
    if not nick:
        raise Usage("Give the nick to kick.")
    params = [room, _check_target(nick)] + ([reason] if reason else [])
    return Outcome(send=[build_exact("KICK", params)])


# /mode [ROOM|NICK] [MODES [ARGS...]]
def _mode(args: str, context: Context) -> Outcome:
    words = args.split()
    if words and not words[0].startswith(("+", "-")):
        target, modes = _check_target(words[0]), words[1:]
    elif context.room is not None:
        target, modes = context.room, words
    else:
        raise Usage("Name a room or nick, or use this in a room.")
    return Outcome(send=[build_exact("MODE", [target, *modes])])


# ---- people -----------------------------------------------------------------------------


# /nick NICK
def _nick(args: str, context: Context) -> Outcome:
    if not args or " " in args:
        raise Usage("Give one new nick.")
    if not is_valid_nick(args):
        raise Usage(f"{args} is not a valid nick: {NICK_RULE}.")
    return Outcome(send=[build_exact("NICK", [args])])


# /whois NICK
def _whois(args: str, context: Context) -> Outcome:
    nick = args.split()[0] if args else context.query
    if not nick:
        raise Usage("Give the nick to look up.")
    return Outcome(send=[build_exact("WHOIS", [_check_target(nick)])])


# /away [REASON]
def _away(args: str, context: Context) -> Outcome:
    return Outcome(send=[build_exact("AWAY", [args or DEFAULT_AWAY_REASON])])


# /back
def _back(args: str, context: Context) -> Outcome:
    return Outcome(send=[build_exact("AWAY", [])])


# ---- accounts ---------------------------------------------------------------------------


def _password(word: str) -> str:
    if not word:
        raise Usage("Give your password.")
    if any(c.isspace() for c in word):
        raise Usage("A password cannot contain spaces.")
    return word


def _to_nickserv(text: str) -> Outcome:
    # No ``said``: nothing is echoed, and the server does not echo messages to services.
    return Outcome(send=[build_exact("PRIVMSG", [NICKSERV, text])])


# /register PASSWORD [EMAIL]
def _register(args: str, context: Context) -> Outcome:
    """The session sends IRCv3 REGISTER where the server offers it, else asks NickServ."""
    words = args.split()
    if len(words) > 2:
        raise Usage("A password cannot contain spaces.")
    password = _password(words[0] if words else "")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Usage(f"Passwords have at least {MIN_PASSWORD_LENGTH} characters.")
    email = words[1] if len(words) == 2 else ""
    if email and ("@" not in email or not is_plain_word(email)):
        raise Usage(f"{email} is not an email address.")
    outcome = Outcome(act=Act("register", text=" ".join(words)))
    outcome.notes = ["Registering your nick as an account…"]
    return outcome


def register_via_nickserv(password: str) -> bytes:
    return build_exact("PRIVMSG", [NICKSERV, f"REGISTER {password}"])


def is_plain_word(text: str) -> bool:
    return bool(text) and text.isprintable() and not any(c.isspace() for c in text)


# /verify ACCOUNT CODE
def _verify(args: str, context: Context) -> Outcome:
    words = args.split()
    if len(words) != 2 or not all(is_plain_word(w) for w in words):
        raise Usage("Give the account and the code you were sent.")
    return Outcome(send=[build_exact("VERIFY", words)])


def _message_act(parse: Callable[[str], Act]) -> Handler:
    """A /reply, /react… handler: parsed here, resolved against the buffer by the session."""

    def handler(args: str, context: Context) -> Outcome:
        if context.target is None:
            raise Usage("This works in a room or a private conversation.")
        try:
            return Outcome(act=parse(args))
        except ActError as error:
            raise Usage(str(error)) from None

    return handler


# /login [ACCOUNT] PASSWORD
def _login(args: str, context: Context) -> Outcome:
    words = args.split()
    if len(words) > 2:
        raise Usage("Give an account name and a password (no spaces), or just the password.")
    if not words:
        raise Usage("Give your password.")
    _password(words[-1])
    return _to_nickserv(f"IDENTIFY {' '.join(words)}")


# /logout
def _logout(args: str, context: Context) -> Outcome:
    return _to_nickserv("LOGOUT")


def _is_service(target: str) -> bool:
    return target.lower() in ("nickserv", "ns")


# NickServ commands whose arguments end with a password, and how many words precede it
# at most (IDENTIFY [account] password; REGISTER password [email]; DROP password).
_SECRET_COMMANDS = {"IDENTIFY": 1, "ID": 1, "LOGIN": 1, "REGISTER": 0, "DROP": 0, "GHOST": 1}


def mask_service_text(text: str) -> str:
    """``IDENTIFY alice s3cret`` -> ``IDENTIFY alice ********``: what may be shown of it."""
    command, *args = text.split()
    keep = _SECRET_COMMANDS.get(command.upper()) if command else None
    if keep is None or not args:
        return text
    if command.upper() == "REGISTER":
        return f"{command} {MASK}"
    kept = args[:-1][:keep]
    return " ".join([command, *kept, MASK])


_MASKED_COMMANDS = re.compile(r"/(login|register|identify)\b", re.IGNORECASE)
_SERVICE_LINE = re.compile(
    r"(?P<head>/(?:msg|query|notice)\s+(?:nickserv|ns)\s+|/(?:quote|raw)\s+"
    r"(?:PRIVMSG|NOTICE)\s+(?:nickserv|ns)\s+:?|/(?:ns|nickserv)\s+)(?P<text>.*)",
    re.IGNORECASE | re.DOTALL,
)


def mask_input(text: str) -> str:
    """A typed line as an input history may keep it: passwords replaced by ``********``."""
    command = _MASKED_COMMANDS.match(text)
    if command is not None:
        name, _, args = text.partition(" ")
        words = args.split()
        if not words:
            return text
        shown = words[:1] if name.lower() != "/register" and len(words) > 1 else []
        return " ".join([name, *shown, MASK])
    service = _SERVICE_LINE.match(text)
    if service is not None and service["text"].strip():
        return service["head"] + mask_service_text(service["text"])
    return text


# ---- history ----------------------------------------------------------------------------


# /history [COUNT]
def _history(args: str, context: Context) -> Outcome:
    if args and not (args.isdigit() and int(args) > 0):
        raise Usage("Give the number of messages to fetch, e.g. /history 100.")
    if context.target is None:
        raise Usage("History is kept for rooms and conversations: use this in one.")
    return Outcome(history=int(args) if args else 0)


# ---- the client itself ------------------------------------------------------------------


# /quote RAW
def _quote(args: str, context: Context) -> Outcome:
    message = parse(args)
    if message is None:
        raise Usage("Give the raw protocol line to send.")
    # Re-serialized so that what goes out is always one well-formed line, never a cut one.
    return Outcome(send=[_serialize_exact(message)])


def _serialize_exact(message: Message) -> bytes:
    return build_exact(message.command, message.params, message.source, message.tags)


# /close
def _close(args: str, context: Context) -> Outcome:
    if context.target is None:
        raise Usage("The server buffer stays open; /quit to leave.")
    send = [build_exact("PART", [context.room])] if context.room else []
    return Outcome(send=send, close=True)


# /clear
def _clear(args: str, context: Context) -> Outcome:
    return Outcome(clear=True)


# /help [COMMAND]
def _help(args: str, context: Context) -> Outcome:
    return Outcome(notes=help_text(args))


# /window move N
def _window(args: str, context: Context) -> Outcome:
    words = args.split()
    if len(words) != 2 or words[0].lower() != "move" or not words[1].isdigit():
        raise Usage("Give the new position of this buffer, e.g. /window move 2.")
    if int(words[1]) < 1:
        raise Usage("Positions start at 1.")
    return Outcome(move_to=int(words[1]))


# /reconnect
def _reconnect(args: str, context: Context) -> Outcome:
    return Outcome(notes=["Reconnecting now…"], reconnect=True)


# /quit [REASON]
def _quit(args: str, context: Context) -> Outcome:
    return Outcome(send=[build_exact("QUIT", [args or DEFAULT_QUIT_REASON])], quit=True)


COMMANDS: dict[str, Command] = {
    "join": Command(_join, "ROOM [KEY]", "join a room (# is added when missing) and show it"),
    "part": Command(_part, "[ROOM] [REASON]", "leave a room (the current one by default)"),
    "msg": Command(_msg, "NICK|ROOM TEXT", "send a message; a nick opens a private buffer"),
    "query": Command(_query, "NICK [TEXT]", "open a private conversation and show it"),
    "me": Command(_me, "ACTION", "describe what you do (/me waves)"),
    "notice": Command(_notice, "NICK|ROOM TEXT", "send a notice (never answered by bots)"),
    "nick": Command(_nick, "NICK", "change your nick"),
    "topic": Command(_topic, "[ROOM] [TEXT]", "show or set a room's topic"),
    "names": Command(_names, "[ROOM]", "list who is in a room"),
    "list": Command(_list, "[PATTERN]", "list the rooms on the server"),
    "whois": Command(_whois, "NICK", "show who a nick is"),
    **{
        name: Command(_message_act(parse_act), syntax, summary)
        for name, (parse_act, syntax, summary) in message_commands.SYNTAX.items()
    },
    "register": Command(_register, "PASSWORD [EMAIL]", "create an account named after your nick"),
    "verify": Command(_verify, "ACCOUNT CODE", "confirm a new account with the code sent to you"),
    "login": Command(_login, "[ACCOUNT] PASSWORD", "log in to your account (NickServ)"),
    "logout": Command(_logout, "", "log out of your account"),
    "history": Command(_history, "[COUNT]", "fetch older messages of this room (PageUp)"),
    "away": Command(_away, "[REASON]", "mark yourself away"),
    "back": Command(_back, "", "you are no longer away"),
    "invite": Command(_invite, "NICK [ROOM]", "invite a nick to a room (the current one)"),
    "kick": Command(_kick, "[ROOM] NICK [REASON]", "remove a nick from a room"),
    "mode": Command(_mode, "[ROOM|NICK] [MODES [ARGS]]", "show or change modes (+o bob)"),
    "quote": Command(_quote, "RAW", "send a raw protocol line"),
    "close": Command(_close, "", "close the current buffer (leaving the room)"),
    "clear": Command(_clear, "", "clear the current buffer's scrollback"),
    "help": Command(_help, "[COMMAND]", "show this help, or one command's"),
    "window": Command(_window, "move N", "move this buffer to position N (Alt-N)"),
    "reconnect": Command(_reconnect, "", "connect again now, without waiting"),
    "quit": Command(_quit, "[REASON]", "leave the server and exit"),
}

ALIASES = {
    "j": "join",
    "leave": "part",
    "raw": "quote",
    "exit": "quit",
    "q": "query",
    "identify": "login",
}
