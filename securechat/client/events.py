"""What the server says: messages, room events and numerics, applied to the buffers."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from securechat.client.buffers import (
    Buffer,
    Kind,
    Line,
    Member,
    Prefixes,
    Style,
)
from securechat.client.features import Features
from securechat.client.replies import CURRENT, SERVER, Reply
from securechat.client.session_base import (
    _IDENTIFY_HINT,
    MAX_NICK_ATTEMPTS,
    _from_server,
    _mentions,
    _message_style,
    _userhost,
    fallback_nick,
    nick_of,
    reply_of,
)
from securechat.protocol import numerics as n
from securechat.protocol.message import Message, build
from securechat.protocol.names import casefold, is_room_name
from securechat.protocol.services import NICKSERV


class Events(Features):
    """Handlers for messages, room events and numerics (the tables are session.py's)."""

    def _on_ping(self, message: Message, now: datetime) -> list[bytes]:
        return [build("PONG", list(message.params[:1]) or ["ping"])]

    def _on_error(self, message: Message, now: datetime) -> list[bytes]:
        self.closed_by_server = True
        self._closing_reason = message.param(0)
        if self.quitting:  # the server confirms our QUIT: nothing went wrong
            self.add(self.server, Line(now, Style.INFO, f"Left the server: {message.param(0)}"))
        else:
            text = f"The server closed the link: {message.param(0)}"
            self.add(self.server, Line(now, Style.ERROR, text))
        return []

    # ---- numerics -----------------------------------------------------------------------

    def _show_reply(self, reply: Reply, now: datetime) -> None:
        if reply.about == SERVER:
            buffer = self.server
        elif reply.about == CURRENT:
            buffer = self.shown
        else:
            buffer = self.buffer(reply.about) or self.shown
        style = Style.ERROR if reply.error else Style.INFO
        self.add(buffer, Line(now, style, reply.text), activity=reply.error)
        if reply.error and buffer is not self.shown and buffer is not self.server:
            self.add(self.shown, Line(now, style, reply.text))  # where the user is looking

    def _on_welcome(self, message: Message, now: datetime) -> list[bytes]:
        self.registered = True
        self.nick = message.param(0) or self.nick
        joins = [build("JOIN", [room]) for room in self.rooms_to_join()]
        return joins + self._ask_missed_targets(now)

    def _on_isupport(self, message: Message, now: datetime) -> list[bytes]:
        for token in message.params[1:-1]:
            key, _, value = token.partition("=")
            if key == "PREFIX":
                self.prefixes = Prefixes.parse(value)
            elif key == "CHANMODES":
                types = [*value.split(","), "", "", ""]
                self.chanmodes = (types[0], types[1], types[2])
            elif key == "CHATHISTORY" and value.isdigit() and int(value) > 0:
                self.chathistory_limit = int(value)
        return []

    def _on_nick_refused(self, message: Message, now: datetime) -> list[bytes]:
        """433 while registering: try the next fallback nick; later, the error says it all."""
        if self.registered:
            return []
        self._nick_attempt += 1
        if self._nick_attempt > MAX_NICK_ATTEMPTS:
            return [build("QUIT", ["No usable nickname"])]
        self.nick = fallback_nick(self.wanted_nick, self._nick_attempt)
        self.status(f"Trying the nick {self.nick} instead.", now)
        return [build("NICK", [self.nick])]

    # 353 <nick> <symbol> <room> :[prefix]<nick>{ [prefix]<nick>}
    def _on_names(self, message: Message, now: datetime) -> list[bytes]:
        collected = self._names.setdefault(casefold(message.param(2)), {})
        for item in message.params[-1].split():
            prefixes, name = self.prefixes.split(item.split("!", 1)[0])
            if name:
                collected[casefold(name)] = Member(name, prefixes)
        return []

    # 366 <nick> <room> :End of /NAMES list
    def _on_end_of_names(self, message: Message, now: datetime) -> list[bytes]:
        members = self._names.pop(casefold(message.param(1)), {})
        buffer = self.buffer(message.param(1))
        if buffer is None or buffer.kind is not Kind.ROOM:
            return []
        buffer.members = members
        listing = " ".join(m.prefixes[:1] + m.nick for m in self.sorted_members(buffer))
        count = len(members)
        noun = "person" if count == 1 else "people"
        self.add(buffer, Line(now, Style.INFO, f"{count} {noun} in {buffer.name}: {listing}"))
        return []

    # 332 <nick> <room> :<topic>  /  331 <nick> <room> :No topic is set
    def _on_topic_reply(self, message: Message, now: datetime) -> list[bytes]:
        buffer = self.buffer(message.param(1))
        if buffer is not None:
            buffer.topic = message.param(2) if message.command == n.RPL_TOPIC else ""
        return []

    # ---- messages and events ------------------------------------------------------------

    # PRIVMSG|NOTICE <target> :<text>
    def _on_message(self, message: Message, now: datetime) -> list[bytes]:
        target, text = message.param(0), message.param(1)
        sender = nick_of(message.source)
        own = self.is_me(message.source)
        notice = message.command == "NOTICE"
        if _from_server(message):
            # A server notice to a room (history replayed as "[12:00:00] <bob> hi" to
            # clients without batch) belongs in that room; other server notices do not.
            room = self.buffer(target) if is_room_name(target) else None
            if room is None and casefold(sender) == casefold(NICKSERV):
                self._nickserv_notice(text, now)
                return []
            line = Line(now, Style.NOTICE, text, nick=sender or "server")
            self.add(room or self.server, line)
            return []
        if own and message.source and "!" in message.source:
            self.userhost = message.source.split("!", 1)[1]  # echo-message shows our prefix
        style, text = _message_style(text, notice)
        if style is None:
            return []
        buffer = self._buffer_for_message(target, sender, own, notice)
        if buffer.holds(message.tags.get("msgid", "")):
            return []  # already fetched as history (a page that raced a live message)
        private = buffer.kind is Kind.PRIVATE and not own
        highlight = not own and (private or _mentions(text, self.nick))
        if not own:
            buffer.spoke(sender)
        msgid = message.tags.get("msgid", "")
        line = Line(
            now,
            style,
            text,
            nick=sender,
            highlight=highlight,
            own=own,
            msgid=msgid,
            reply_to=reply_of(message),
            account=message.tags.get("account", ""),
        )
        self.add(buffer, line, activity=not notice or private)
        buffer.typing.stop(sender)  # the message ends their typing (typing.md)
        self._apply_reaction(buffer, message)  # a reaction may come with a text
        if buffer.kind is not Kind.SERVER:
            buffer.history.saw(line)
        if buffer is self.shown and not own:
            return self.read_soon(buffer, now)  # seen as it arrives
        return []

    def _nickserv_notice(self, text: str, now: datetime) -> None:
        """Account replies go where the user is looking; a rename warning as loud as a mention."""
        text = _IDENTIFY_HINT.sub("type /login PASSWORD", text)
        urgent = "registered nickname" in text.lower()
        line = Line(now, Style.NOTICE, text, nick=NICKSERV, highlight=urgent)
        self.add(self.shown, line, activity=True)
        if self.shown is not self.server:
            self.add(self.server, replace(line, highlight=False))  # one alert is enough

    def _buffer_for_message(self, target: str, sender: str, own: bool, notice: bool) -> Buffer:
        if is_room_name(target):
            return self._open(target, Kind.ROOM)
        other = target if own else sender
        existing = self.buffer(other)
        if notice and existing is None:
            return self.shown  # a notice does not open a conversation (irssi does the same)
        return existing or self._open(other, Kind.PRIVATE)

    # JOIN <room> [account realname]   (extended-join adds the last two)
    def _on_join(self, message: Message, now: datetime) -> list[bytes]:
        room = message.param(0)
        sender = nick_of(message.source)
        if self.is_me(message.source):
            if message.source and "!" in message.source:
                self.userhost = message.source.split("!", 1)[1]  # how others see us
            is_new = self.buffer(room) is None  # e.g. /quote JOIN: show it, as /join would
            buffer = self._open(room, Kind.ROOM)
            if is_new:
                self.show(buffer)
            buffer.joined = buffer.wanted = True
            buffer.members.clear()
            self.add(buffer, Line(now, Style.EVENT, f"You joined {buffer.name}", nick=sender))
            return self._fetch_latest(buffer)
        found = self.buffer(room)
        if found is None:
            return []
        account = message.param(1) if len(message.params) > 2 else ""  # extended-join
        found.members[casefold(sender)] = Member(sender, account="" if account == "*" else account)
        text = f"{sender} ({_userhost(message.source)}) joined {found.name}"
        self.add(found, Line(now, Style.EVENT, text, nick=sender))
        return []

    # ACCOUNT <account | *>   (account-notify)
    def _on_account(self, message: Message, now: datetime) -> list[bytes]:
        account = message.param(0)
        folded = casefold(nick_of(message.source))
        for buffer in self.buffers.values():
            member = buffer.members.get(folded)
            if member is not None:
                member.account = "" if account == "*" else account
        return []

    # PART <room> [:<reason>]
    def _on_part(self, message: Message, now: datetime) -> list[bytes]:
        buffer = self.buffer(message.param(0))
        if buffer is None:
            return []
        sender = nick_of(message.source)
        reason = f" ({message.param(1)})" if message.param(1) else ""
        if self.is_me(message.source):
            buffer.joined = buffer.wanted = False
            buffer.members.clear()
            text = f"You left {buffer.name}{reason}"
        else:
            buffer.members.pop(casefold(sender), None)
            buffer.typing.stop(sender)
            text = f"{sender} left {buffer.name}{reason}"
        self.add(buffer, Line(now, Style.EVENT, text, nick=sender))
        return []

    # KICK <room> <nick> [:<reason>]
    def _on_kick(self, message: Message, now: datetime) -> list[bytes]:
        buffer = self.buffer(message.param(0))
        if buffer is None:
            return []
        kicked, by = message.param(1), nick_of(message.source)
        reason = f" ({message.param(2)})" if message.param(2) else ""
        if casefold(kicked) == casefold(self.nick):
            buffer.joined = buffer.wanted = False
            buffer.members.clear()
            text = f"You were kicked from {buffer.name} by {by}{reason}"
            self.add(buffer, Line(now, Style.ERROR, text, highlight=True))
            return []
        buffer.members.pop(casefold(kicked), None)
        self.add(buffer, Line(now, Style.EVENT, f"{kicked} was kicked by {by}{reason}"))
        return []

    # QUIT [:<reason>]
    def _on_quit(self, message: Message, now: datetime) -> list[bytes]:
        sender = nick_of(message.source)
        folded = casefold(sender)
        reason = f" ({message.param(0)})" if message.param(0) else ""
        for buffer in list(self.buffers.values()):
            buffer.typing.stop(sender)
            if buffer.members.pop(folded, None) is not None or buffer.key == folded:
                self.add(buffer, Line(now, Style.EVENT, f"{sender} quit{reason}", nick=sender))
        return []

    # NICK <newnick>
    def _on_nick(self, message: Message, now: datetime) -> list[bytes]:
        old, new = nick_of(message.source), message.param(0)
        if not new:
            return []
        if self.is_me(message.source):
            self.nick = self.wanted_nick = new
            text = f"You are now known as {new}"
            self.add(self.server, Line(now, Style.EVENT, text))
        else:
            text = f"{old} is now known as {new}"
        self._rename(old, new, text, now)
        return []

    def _rename(self, old: str, new: str, text: str, now: datetime) -> None:
        folded = casefold(old)
        for buffer in list(self.buffers.values()):
            member = buffer.members.pop(folded, None)
            for reactions in buffer.reactions.values():
                reactions.rename(old, new)
            if member is not None:
                buffer.members[casefold(new)] = Member(new, member.prefixes)
                buffer.recent = [new if casefold(r) == folded else r for r in buffer.recent]
            if buffer.kind is Kind.PRIVATE and buffer.key == folded:
                self._rename_private(buffer, new)
            if member is not None or buffer.key == casefold(new):
                self.add(buffer, Line(now, Style.EVENT, text))

    def _rename_private(self, buffer: Buffer, new: str) -> None:
        if casefold(new) in self.buffers:
            return  # a conversation with the new nick is already open: keep both
        was_shown = self.current == buffer.key
        old_key = buffer.key
        buffer.name = new
        # Rebuilt in the same order: buffer numbers (Alt-1…9) never move on a nick change.
        self.buffers = {
            (buffer.key if key == old_key else key): b for key, b in self.buffers.items()
        }
        if was_shown:
            self.current = buffer.key

    # TOPIC <room> :<topic>
    def _on_topic(self, message: Message, now: datetime) -> list[bytes]:
        buffer = self.buffer(message.param(0))
        if buffer is None:
            return []
        buffer.topic = message.param(1)
        who = nick_of(message.source)
        text = f"{who} changed the topic to: {buffer.topic}" if buffer.topic else ""
        self.add(buffer, Line(now, Style.EVENT, text or f"{who} cleared the topic"))
        return []

    # MODE <target> <modes> [args...]
    def _on_mode(self, message: Message, now: datetime) -> list[bytes]:
        target = message.param(0)
        who = nick_of(message.source) or "The server"
        change = " ".join(message.params[1:])
        buffer = self.buffer(target) if is_room_name(target) else self.server
        if buffer is None:
            return []
        if buffer.kind is Kind.ROOM:
            self._apply_room_modes(buffer, message.params[1:])
        self.add(buffer, Line(now, Style.EVENT, f"{who} sets mode {change} on {target}"))
        return []

    def _apply_room_modes(self, buffer: Buffer, params: tuple[str, ...]) -> None:
        """Follow +o/-o/+v/-v (PREFIX modes) so the nick list shows who is what."""
        if not params:
            return
        arguments = iter(params[1:])
        adding = True
        type_a, type_b, type_c = self.chanmodes
        for mode in params[0]:
            if mode in "+-":
                adding = mode == "+"
            elif mode in self.prefixes.modes:
                self._set_prefix(buffer, next(arguments, ""), mode, adding)
            elif mode in type_a + type_b or (mode in type_c and adding):
                next(arguments, None)  # a mode with a parameter we do not track

    def _set_prefix(self, buffer: Buffer, nick: str, mode: str, adding: bool) -> None:
        member = buffer.members.get(casefold(nick))
        if member is None:
            return
        symbol = self.prefixes.symbols[self.prefixes.modes.index(mode)]
        held = set(member.prefixes) | {symbol} if adding else set(member.prefixes) - {symbol}
        member.prefixes = "".join(s for s in self.prefixes.symbols if s in held)

    # INVITE <nick> <room>
    def _on_invite(self, message: Message, now: datetime) -> list[bytes]:
        who, room = nick_of(message.source), message.param(1)
        text = f"{who} invites you to {room} (type /join {room})"
        self.add(self.shown, Line(now, Style.EVENT, text, highlight=True))
        return []

    # FAIL <command> <code> [<context>...] :<description>   (IRCv3 standard replies)
    def _on_fail(self, message: Message, now: datetime) -> list[bytes]:
        command, description = message.param(0), message.params[-1]
        buffer = self.shown
        if command == "CHATHISTORY":
            # context: <subcommand> <target> when the failure is about one target; else
            # it answers a request made from the shown buffer. Either way it is answered.
            found = self.buffer(message.param(3)) if len(message.params) > 4 else None
            buffer = found or self.shown
            if buffer.history.pending:
                buffer.history.pending.popleft()
            text = f"History is not available here: {description}"
        else:
            text = f"{command} failed: {description}"
        self.add(buffer, Line(now, Style.ERROR, text))
        return []
