"""User modes (Modern IRC "User Modes"; ``MODE <own nick> [<modestring>]``).

- ``i`` invisible: hidden from WHO and the NAMES of rooms one does not share, counted as
  invisible by LUSERS.
- ``w`` wallops: receives WALLOPS (Modern IRC WALLOPS: "sent to all users with +w").
- ``o`` operator: given only by OPER; a client may drop it (``-o``), and ``+o`` is ignored
  (Modern IRC: "the attempt should be ignored").
- ``B`` bot (IRCv3 bot mode, ISUPPORT ``BOT=B``): its messages carry the ``bot`` tag, WHO
  shows ``B`` in its flags and WHOIS answers 335.

One ``MODE`` reply lists what changed; an unknown letter gets one 501.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from securechat.protocol import numerics as n
from securechat.protocol.message import build

if TYPE_CHECKING:
    from securechat.server.core import ServerCore
    from securechat.server.state import Session

BOT_MODE = "B"
USER_MODES = "iowB"  # in RPL_MYINFO order


def mode_string(session: Session) -> str:
    """RPL_UMODEIS: ``+`` and the modes set."""
    flags = [
        ("i", session.invisible),
        ("o", session.oper),
        ("w", session.wallops),
        (BOT_MODE, session.bot),
    ]
    return "+" + "".join(letter for letter, on in flags if on)


def change(core: ServerCore, session: Session, modestring: str) -> None:
    applied: list[str] = []
    sign, unknown = "+", False
    for letter in modestring:
        if letter in "+-":
            sign = letter
        elif letter in USER_MODES:
            if _set(session, letter, sign == "+"):
                applied.append(sign + letter)
        else:
            unknown = True
    if unknown:
        core.reply(session, n.ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag")
    if applied:
        core.send(session, build("MODE", [session.nick, _compact(applied)], session.source))


def _set(session: Session, letter: str, on: bool) -> bool:
    """Set one mode; True when it changed."""
    if letter == "o":
        if on or not session.oper:  # +o comes from OPER only
            return False
        session.oper = False
        return True
    attribute = {"i": "invisible", "w": "wallops", BOT_MODE: "bot"}[letter]
    if getattr(session, attribute) == on:
        return False
    setattr(session, attribute, on)
    return True


def _compact(changes: list[str]) -> str:
    """``["+i", "+w", "-B"]`` -> ``"+iw-B"``."""
    out, sign = "", ""
    for item in changes:
        if item[0] != sign:
            sign = item[0]
            out += sign
        out += item[1]
    return out
