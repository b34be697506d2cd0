"""Nicknames, room names, casefolding, and case-insensitive mask matching.

We advertise ``CASEMAPPING=ascii`` (Modern IRC "CASEMAPPING"): only A-Z fold
to a-z. It is the mapping every client implements correctly; rfc1459's
``[]\\~`` folding surprises people and buys nothing.
"""

from __future__ import annotations

import re

from securechat.protocol.masks import Glob, compile_mask

CASEMAPPING = "ascii"
NICKLEN = 30
CHANNELLEN = 50
CHANTYPES = "#"

_ASCII_FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
# RFC 2812 §2.3.1: nickname = ( letter / special ) *( letter / digit / special / "-" )
_NICK_RE = re.compile(r"[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]*")
# Modern IRC "Channels": no space, comma or BELL; we also refuse control characters.
_ROOM_FORBIDDEN = re.compile(r"[\x00-\x20,\x07:\x7f]")


def casefold(name: str) -> str:
    folded = name.translate(_ASCII_FOLD)
    return name if folded == name else folded  # keep one string, not two, per lowercase name


def is_valid_nick(nick: str, max_len: int = NICKLEN) -> bool:
    return 0 < len(nick) <= max_len and _NICK_RE.fullmatch(nick) is not None


def is_room_name(name: str) -> bool:
    """True when the target names a room (by its prefix), valid or not."""
    return name[:1] in CHANTYPES


def is_valid_room(name: str, max_len: int = CHANNELLEN) -> bool:
    return is_room_name(name) and 1 < len(name) <= max_len and _ROOM_FORBIDDEN.search(name) is None


def compile_folded(mask: str) -> Glob:
    """The case-insensitive matcher for ``mask``: match it against ``casefold(text)``."""
    return compile_mask(casefold(mask))


def mask_matches(mask: str, hostmask: str) -> bool:
    """Glob match (``*`` and ``?``, see ``protocol.masks``) of a ``nick!user@host`` ban or
    a ``user@host`` K-line or oper mask, case-insensitive under CASEMAPPING."""
    return compile_folded(mask).matches(casefold(hostmask))
