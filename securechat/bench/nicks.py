"""Short, unique nicknames: RFC 2812 servers may cap nicks at 9 characters.

A nick is a scenario letter, a per-run tag (so a run never collides with the lingering clients of
the previous one) and a number in base 36.
"""

from __future__ import annotations

import secrets

_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def base36(number: int) -> str:
    if number < 0:
        raise ValueError("negative number")
    digits = []
    while True:
        number, rest = divmod(number, 36)
        digits.append(_DIGITS[rest])
        if number == 0:
            return "".join(reversed(digits))


def run_tag() -> str:
    """Two random letters; a nick must not start with a digit, so the tag follows a letter."""
    return "".join(secrets.choice(_DIGITS[10:]) for _ in range(2))


def nick(kind: str, tag: str, number: int) -> str:
    return f"{kind}{tag}{base36(number)}"
