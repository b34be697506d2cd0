"""Commands that act on one message: ``/reply``, ``/react``, ``/unreact``, ``/edit``, ``/delete``.

Pure parsing: the session resolves the reference against the buffer and builds the lines.

A reference (REF) names a message of the current buffer:
- ``-N``: the Nth latest message (``-1`` the latest), whoever wrote it;
- a nick: that person's latest message here.
``/react`` and ``/unreact`` without a REF mean the latest message; ``/edit`` and
``/delete`` without one mean your own latest message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from securechat.client.reactions import valid_reaction

_POSITION = re.compile(r"-([1-9][0-9]{0,3})")


class ActError(ValueError):
    """What is wrong with the command, as one hint."""


@dataclass(slots=True, frozen=True)
class Ref:
    position: int = 0  # -N: the Nth latest message (1 = latest); 0 when a nick or default
    nick: str = ""  # that person's latest message
    own: bool = False  # default: our own latest message

    @classmethod
    def parse(cls, word: str) -> Ref:
        match = _POSITION.fullmatch(word)
        if match is not None:
            return cls(position=int(match[1]))
        return cls(nick=word)


LATEST = Ref(position=1)
OWN_LATEST = Ref(own=True)


@dataclass(slots=True, frozen=True)
class Act:
    """What to do with which message."""

    kind: str  # "reply" | "react" | "unreact" | "edit" | "delete" | "markread"
    ref: Ref = LATEST
    text: str = ""


def _words(args: str, count: int) -> list[str]:
    parts = args.split(None, count - 1)
    return parts + [""] * (count - len(parts))


def reply(args: str) -> Act:
    """``/reply REF TEXT``."""
    ref, text = _words(args, 2)
    if not ref or not text.strip():
        raise ActError("Give the message (-1 is the latest, or a nick) and your reply.")
    return Act("reply", Ref.parse(ref), text)


def react(args: str, kind: str = "react") -> Act:
    """``/react [REF] EMOJI`` and ``/unreact [REF] EMOJI``."""
    words = args.split()
    if not words or len(words) > 2:
        raise ActError("Give the reaction (one emoji or short word), optionally after the message.")
    ref = Ref.parse(words[0]) if len(words) == 2 else LATEST
    text = words[-1]
    if not valid_reaction(text):
        raise ActError("A reaction is one emoji or a short word (64 bytes at most).")
    return Act(kind, ref, text)


def unreact(args: str) -> Act:
    return react(args, kind="unreact")


def edit(args: str) -> Act:
    """``/edit [-N] TEXT``: your latest message (or the Nth latest, if yours) says TEXT now."""
    first, rest = _words(args, 2)
    match = _POSITION.fullmatch(first)
    ref, text = (Ref(position=int(match[1])), rest) if match else (OWN_LATEST, args)
    if not text.strip():
        raise ActError("Give the corrected text.")
    return Act("edit", ref, text)


def delete(args: str) -> Act:
    """``/delete [REF] [REASON]``: your latest message by default."""
    first, reason = _words(args, 2)
    ref = Ref.parse(first) if first else OWN_LATEST
    return Act("delete", ref, reason)


def markread(args: str) -> Act:
    """``/markread``: everything in this buffer is read (on every device)."""
    if args:
        raise ActError("/markread takes no arguments: it marks the current buffer read.")
    return Act("markread")


# name: (parser, syntax, summary) for commands.py's table and /help
SYNTAX: dict[str, tuple[Callable[[str], Act], str, str]] = {
    "reply": (reply, "REF TEXT", "reply to a message (REF: -1 the latest, or a nick)"),
    "react": (react, "[REF] EMOJI", "react to a message (the latest by default)"),
    "unreact": (unreact, "[REF] EMOJI", "take a reaction back"),
    "edit": (edit, "[-N] TEXT", "correct your last message (or the Nth latest)"),
    "delete": (delete, "[REF] [REASON]", "delete your last message (or another)"),
    "markread": (markread, "", "mark this buffer read on every device"),
}
