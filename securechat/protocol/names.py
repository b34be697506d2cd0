"""Nicknames, room names, casefolding, and case-insensitive mask matching.

We advertise ``CASEMAPPING=ascii`` (Modern IRC "CASEMAPPING"): only A-Z fold
to a-z. It is the mapping every client implements correctly; rfc1459's
``[]\\~`` folding surprises people and buys nothing.

Room names (``ROOM_NAME_RULE``, checked by ``room_name_problem``): after the
``#``, printable ASCII except space, comma and colon (Modern IRC "Channels"
forbids space, comma and BEL; ``:`` would start a trailing parameter), plus
non-ASCII letters, marks and decimal digits, under three rules that keep a name
from looking like another one (security review L1):

- The name is NFKC-stable (UAX #15): compatibility look-alikes such as
  fullwidth letters or ligatures are refused, not silently folded into a
  different name; accents must be precomposed.
- Outside ASCII only letters, marks and decimal digits (categories L*, M*, Nd):
  no invisible, control, format, bidi or space character (Cc, Cf, Z*), no
  symbol, no letter-like number such as U+217C (small Roman numeral fifty).
- Letters and digits come from one script, or from one of the mixes UTS #39 §5.2
  calls "highly restrictive" (Latin with Han and Hiragana/Katakana, with Han and
  Bopomofo, or with Han and Hangul): ``#lobby`` spelt with a Cyrillic U+043E is
  refused.
  A combining mark must belong to the script of the letter it follows (Devanagari
  vowel signs, Hebrew points); generic marks such as U+034F (invisible) are refused.
  A character's script is the first word of its Unicode name (the stdlib has no
  Script property); CJK ideographs count as Han.
"""

from __future__ import annotations

import re
import unicodedata

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
# The rules in words, shared by the server's error replies and our client's messages.
NICK_RULE = (
    f"a nick is 1 to {NICKLEN} characters: a letter or one of _[]\\`^{{|}} first, "
    "then letters, digits, - or _[]\\`^{|}"
)
ROOM_NAME_RULE = (
    f"a room name is # and 1 to {CHANNELLEN - 1} more characters: printable ASCII except "
    "space, comma and colon, or letters, digits and marks of one script (Latin may be "
    "mixed with Han and Japanese kana, Bopomofo or Hangul); no invisible, control, "
    "bidi, space or look-alike compatibility characters"
)
_HAN_WORDS = {"CJK": "HAN", "IDEOGRAPHIC": "HAN", "KATAKANA-HIRAGANA": "KATAKANA"}
# UTS #39 §5.2 "Highly Restrictive": the script mixes allowed besides a single script.
_SCRIPT_MIXES = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)


def casefold(name: str) -> str:
    folded = name.translate(_ASCII_FOLD)
    return name if folded == name else folded  # keep one string, not two, per lowercase name


def is_valid_nick(nick: str, max_len: int = NICKLEN) -> bool:
    return 0 < len(nick) <= max_len and _NICK_RE.fullmatch(nick) is not None


def is_room_name(name: str) -> bool:
    """True when the target names a room (by its prefix), valid or not."""
    return name[:1] in CHANTYPES


def is_valid_room(name: str, max_len: int = CHANNELLEN) -> bool:
    return room_name_problem(name, max_len) is None


def room_name_problem(name: str, max_len: int = CHANNELLEN) -> str | None:
    """Why ``name`` is not a valid room name (see ROOM_NAME_RULE), or None if it is."""
    if not is_room_name(name):
        return "a room name starts with #"
    if not 1 < len(name) <= max_len:
        return f"a room name is # and 1 to {max_len - 1} characters"
    if _ROOM_FORBIDDEN.search(name) is not None:
        return "a room name has no space, comma, colon or control character"
    if name.isascii():
        return None
    if not all(char.isascii() or _is_word_character(char) for char in name):
        return (
            "outside ASCII a room name has only letters, marks and digits (no invisible, "
            "control, bidi, space, symbol or number-like character)"
        )
    if unicodedata.normalize("NFKC", name) != name:
        return (
            "a room name must be NFKC-normalised (accents precomposed, no compatibility "
            "look-alikes such as fullwidth letters)"
        )
    return _script_problem(name)


def _is_word_character(char: str) -> bool:
    category = unicodedata.category(char)
    return category[0] in "LM" or category == "Nd"


def _script_problem(name: str) -> str | None:
    scripts: set[str] = set()
    base = ""  # the script of the letter a combining mark would attach to
    for char in name[1:]:
        script = _script_of(char)
        if unicodedata.category(char)[0] == "M":
            if script != base:
                return "a combining mark in a room name must follow a letter of its script"
        else:
            base = script
        if script:
            scripts.add(script)
    if len(scripts) > 1 and not any(scripts <= mix for mix in _SCRIPT_MIXES):
        return "a room name does not mix scripts (such as Latin and Cyrillic)"
    return None


def _script_of(char: str) -> str:
    """The script of a letter, mark or digit: the first word of its Unicode name."""
    if char.isascii():
        return "LATIN" if char.isalpha() else ""  # ASCII digits and punctuation: any script
    word = unicodedata.name(char, "?").split(" ", 1)[0]
    return _HAN_WORDS.get(word, word)


def compile_folded(mask: str) -> Glob:
    """The case-insensitive matcher for ``mask``: match it against ``casefold(text)``."""
    return compile_mask(casefold(mask))


def mask_matches(mask: str, hostmask: str) -> bool:
    """Glob match (``*`` and ``?``, see ``protocol.masks``) of a ``nick!user@host`` ban or
    a ``user@host`` K-line or oper mask, case-insensitive under CASEMAPPING."""
    return compile_folded(mask).matches(casefold(hostmask))
