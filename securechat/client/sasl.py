"""Logging in while registering: SASL PLAIN and EXTERNAL (IRCv3 sasl-3.1). Pure.

Rules:
- SASL is asked for only when there is something to log in with: a password
  (PLAIN) or a client certificate (EXTERNAL). EXTERNAL goes first when the
  server offers it (``sasl=PLAIN,EXTERNAL`` in CAP LS 302; a server without a
  value may offer anything); when it fails, PLAIN is tried if there is a
  password. When every mechanism failed, registration carries on without an
  account: a wrong password must not keep anyone out of the chat.
- The payload is base64, sent in 400-byte ``AUTHENTICATE`` lines; a payload that
  is empty or an exact multiple of 400 bytes ends with ``AUTHENTICATE +``.
- The password is only ever put into the payload: never shown, never logged.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

CHUNK = 400
PLAIN = "PLAIN"
EXTERNAL = "EXTERNAL"


@dataclass(slots=True, frozen=True)
class Credentials:
    """What the user logs in with; ``account`` empty means "the nick"."""

    account: str = ""
    password: str | None = None
    certificate: bool = False  # a client certificate is presented (EXTERNAL may work)

    def __repr__(self) -> str:  # never print a password in a traceback or a log
        return f"Credentials(account={self.account!r}, certificate={self.certificate})"

    @property
    def any(self) -> bool:
        return bool(self.password) or self.certificate


def mechanisms(credentials: Credentials, offered: str | None) -> list[str]:
    """Mechanisms to try, in order, given the ``sasl`` cap value (None: not listed)."""
    listed = None if offered is None else {m.upper() for m in offered.split(",") if m}
    wanted = []
    if credentials.certificate and (not listed or EXTERNAL in listed):
        wanted.append(EXTERNAL)
    if credentials.password and (not listed or PLAIN in listed):
        wanted.append(PLAIN)
    return wanted


def payload(mechanism: str, credentials: Credentials, nick: str) -> bytes:
    """The bytes to send for ``mechanism``: RFC 4616 for PLAIN, empty for EXTERNAL."""
    if mechanism == EXTERNAL:
        return b""  # the server takes the account from the certificate
    account = credentials.account or nick
    return f"\0{account}\0{credentials.password or ''}".encode()


def chunks(data: bytes) -> list[str]:
    """``AUTHENTICATE`` arguments carrying ``data``: 400-byte base64 pieces, ``+`` to end."""
    encoded = base64.b64encode(data).decode("ascii")
    pieces = [encoded[i : i + CHUNK] for i in range(0, len(encoded), CHUNK)]
    if not pieces or len(pieces[-1]) == CHUNK:
        pieces.append("+")
    return pieces
