"""What the client and the server agree on about services and accounts, named once."""

from __future__ import annotations

NICKSERV = "NickServ"
CHANSERV = "ChanServ"
# Characters; the server checks it when a password is set (never when one is verified), the
# client before it sends one, so a short password is refused without a round trip.
MIN_PASSWORD_LENGTH = 8
