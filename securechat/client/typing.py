"""Typing notifications (IRCv3 ``+typing`` client tag, client-tags/typing.md). Pure.

Rules (the spec's):
- Sending: ``active`` while the user edits text that is not a /command, ``paused``
  once when they stop typing with text left, ``done`` once when they clear it
  without sending. No notification within ``THROTTLE`` (3 s) of the previous one
  for the same target: a change that comes too soon waits and goes out on a
  later ``tick`` if it still holds. Sending the message ends typing without a
  notification (receivers stop on the message itself).
- Receiving: someone counts as typing until a message from them, their part or
  quit, ``done``, 6 s after their last ``active`` or 30 s after their last ``paused``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from securechat.protocol.names import casefold

ACTIVE, PAUSED, DONE = "active", "paused", "done"
THROTTLE = timedelta(seconds=3)  # "not sent within 3 seconds of another one for a given target"
PAUSE_AFTER = timedelta(seconds=5)  # no keystroke for this long, text left: paused
ACTIVE_EXPIRES = timedelta(seconds=6)
PAUSED_EXPIRES = timedelta(seconds=30)


def is_typing_text(text: str) -> bool:
    """Text that is a message being written: not empty, not a /command (``//x`` is text)."""
    return bool(text.strip()) and (not text.startswith("/") or text.startswith("//"))


@dataclass(slots=True)
class Outgoing:
    """Our typing state towards one target, and when we last told it."""

    sent: str = DONE  # the last state we sent (DONE: none, or over)
    sent_at: datetime | None = None
    wanted: str = DONE  # what the input says now
    last_key: datetime | None = None


@dataclass(slots=True)
class Throttle:
    """Decides which ``+typing`` notifications to send, per target."""

    targets: dict[str, Outgoing] = field(default_factory=dict)

    def edited(self, target: str, text: str, now: datetime) -> str | None:
        """The input changed to ``text``: the state to send now, if any."""
        state = self.targets.setdefault(casefold(target), Outgoing())
        if is_typing_text(text):
            state.wanted, state.last_key = ACTIVE, now
        elif state.sent != DONE or state.wanted != DONE:
            state.wanted = DONE
        return self._due(state, now, repeat=state.wanted == ACTIVE)

    def tick(self, now: datetime) -> list[tuple[str, str]]:
        """Time passed: ``(target, state)`` notifications now due (paused, or a delayed change)."""
        due = []
        for key, state in self.targets.items():
            idle = state.last_key is not None and now - state.last_key >= PAUSE_AFTER
            if state.wanted == ACTIVE and idle:
                state.wanted = PAUSED
            sent = self._due(state, now, repeat=False)
            if sent is not None:
                due.append((key, sent))
        return due

    def sent_message(self, target: str) -> None:
        """The message went: typing is over without a notification."""
        state = self.targets.get(casefold(target))
        if state is not None:
            state.sent = state.wanted = DONE
            state.last_key = None

    def _due(self, state: Outgoing, now: datetime, repeat: bool) -> str | None:
        """``wanted`` when it must be said and the throttle allows it now."""
        changed = state.wanted != state.sent
        if not changed and not (repeat and state.wanted == ACTIVE):
            return None
        if state.sent_at is not None and now - state.sent_at < THROTTLE:
            return None
        state.sent, state.sent_at = state.wanted, now
        return state.wanted


@dataclass(slots=True)
class Typing:
    """Who is typing in one buffer, as others told us."""

    since: dict[str, tuple[str, str, datetime]] = field(default_factory=dict)  # folded -> state

    def update(self, nick: str, state: str, now: datetime) -> bool:
        """A ``+typing`` from ``nick``; True when what is shown changes."""
        folded = casefold(nick)
        if state in (ACTIVE, PAUSED):
            before = self.since.get(folded)
            self.since[folded] = (nick, state, now)
            return before is None or before[1] != state
        return self.stop(nick)

    def stop(self, nick: str) -> bool:
        """A message, part, quit or ``done`` from ``nick``."""
        return self.since.pop(casefold(nick), None) is not None

    def expire(self, now: datetime) -> bool:
        """Forget stale states (6 s after active, 30 s after paused); True when any went."""
        stale = [
            folded
            for folded, (_, state, at) in self.since.items()
            if now - at >= (ACTIVE_EXPIRES if state == ACTIVE else PAUSED_EXPIRES)
        ]
        for folded in stale:
            del self.since[folded]
        return bool(stale)

    def active(self) -> list[str]:
        """Nicks typing now (``active``), in the order they started."""
        return [nick for nick, state, _ in self.since.values() if state == ACTIVE]


def describe(nicks: list[str]) -> str:
    """``alice is typing…``, ``alice and bob are typing…``, ``3 people are typing…``."""
    if not nicks:
        return ""
    if len(nicks) == 1:
        return f"{nicks[0]} is typing…"
    if len(nicks) == 2:
        return f"{nicks[0]} and {nicks[1]} are typing…"
    return f"{len(nicks)} people are typing…"
