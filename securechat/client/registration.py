"""Registration: capability negotiation (CAP 302), SASL, and the account state it yields."""

from __future__ import annotations

from datetime import datetime

from securechat.client import sasl
from securechat.client.session_base import (
    WANTED_CAPS,
    SessionBase,
    _cap_end,
    _cap_values,
)
from securechat.protocol import numerics as n
from securechat.protocol.message import Message, build


class Registration(SessionBase):
    """CAP and SASL while registering; 900/901, 396 and away replies after."""

    # CAP <nick> LS|ACK|NAK|NEW|DEL [*] :<caps>
    def _on_cap(self, message: Message, now: datetime) -> list[bytes]:
        subcommand = message.param(1).upper()
        more = message.param(2) == "*" and len(message.params) > 3
        values = _cap_values(message.params[-1] if len(message.params) > 2 else "")
        names = set(values)
        if subcommand == "LS":
            self._cap_ls.update(values)
            if more:
                return []
            return self._request_caps(set(self._cap_ls), now)
        if subcommand == "NEW":
            self._cap_ls.update(values)
            return self._request_caps(names, now)
        if subcommand == "ACK":
            self.caps |= {c for c in names if not c.startswith("-")}
            self.caps -= {c[1:] for c in names if c.startswith("-")}
        elif subcommand == "DEL":
            self.caps -= names
        if self.registered or subcommand not in ("ACK", "NAK"):
            return []
        return self._start_sasl(now)

    def _request_caps(self, offered: set[str], now: datetime) -> list[bytes]:
        wanted = [c for c in self._wanted_caps() if c in offered and c not in self.caps]
        if wanted:
            return [build("CAP", ["REQ", " ".join(wanted)])]
        return [] if self.registered else self._start_sasl(now)

    def _wanted_caps(self) -> tuple[str, ...]:
        # sasl only while registering, and only with something to log in with.
        login = self.credentials.any and not self.registered
        return (*WANTED_CAPS, "sasl") if login else WANTED_CAPS

    # ---- SASL ---------------------------------------------------------------------------

    def _start_sasl(self, now: datetime) -> list[bytes]:
        """Capabilities settled: log in with SASL when we can, else end negotiation."""
        if self._sasl_mechanism is not None:
            return []  # an exchange is under way; it ends negotiation when it is over
        if not self.credentials.any or self._sasl_tried:
            return _cap_end()
        self._sasl_tried = True
        if "sasl" not in self.caps:
            self.status("This server does not offer SASL: connecting without logging in.", now)
            return _cap_end()
        self._sasl_left = sasl.mechanisms(self.credentials, self._cap_ls.get("sasl"))
        return self._next_mechanism(now)

    def _next_mechanism(self, now: datetime) -> list[bytes]:
        if not self._sasl_left:
            self._sasl_mechanism = None
            if self.account is None:
                text = "Continuing without logging in; type /login PASSWORD to try again."
                self.status(text, now)
            return _cap_end()
        self._sasl_mechanism = self._sasl_left.pop(0)
        self.status(f"Logging in with SASL {self._sasl_mechanism}…", now)
        return [build("AUTHENTICATE", [self._sasl_mechanism])]

    # AUTHENTICATE +   (the server is ready for our payload)
    def _on_authenticate(self, message: Message, now: datetime) -> list[bytes]:
        if self._sasl_mechanism is None or message.param(0) != "+":
            return []
        data = sasl.payload(self._sasl_mechanism, self.credentials, self.nick)
        # The last parameter must not become a trailing ":+" (build() makes it one).
        return [f"AUTHENTICATE {chunk}\r\n".encode() for chunk in sasl.chunks(data)]

    # 903 RPL_SASLSUCCESS / 907 ERR_SASLALREADY / 906 ERR_SASLABORTED: the exchange is over
    def _on_sasl_done(self, message: Message, now: datetime) -> list[bytes]:
        if self._sasl_mechanism is None or self.registered:
            return []
        self._sasl_left.clear()
        return self._next_mechanism(now)

    # 904 ERR_SASLFAIL / 905 ERR_SASLTOOLONG / 902 ERR_NICKLOCKED: try the next mechanism
    def _on_sasl_failed(self, message: Message, now: datetime) -> list[bytes]:
        if self._sasl_mechanism is None or self.registered:
            return []
        return self._next_mechanism(now)

    # 900 <nick> <nick!user@host> <account> :You are now logged in as <account>
    def _on_logged_in(self, message: Message, now: datetime) -> list[bytes]:
        self.account = message.param(2) or None
        self._learn_userhost(message.param(1))
        return []

    def _learn_userhost(self, mask: str) -> None:
        if "!" in mask and "@" in mask:
            self.userhost = mask.split("!", 1)[1]

    # 396 <nick> <host> :is now your displayed host
    def _on_visible_host(self, message: Message, now: datetime) -> list[bytes]:
        user = (self.userhost or f"{self.username}@").split("@", 1)[0]
        if message.param(1):
            self.userhost = f"{user}@{message.param(1)}"
        return []

    # 306 RPL_NOWAWAY / 305 RPL_UNAWAY
    def _on_away_state(self, message: Message, now: datetime) -> list[bytes]:
        self.away = message.command == n.RPL_NOWAWAY
        return []

    # 901 <nick> <nick!user@host> :You are now logged out
    def _on_logged_out(self, message: Message, now: datetime) -> list[bytes]:
        self.account = None
        return []
