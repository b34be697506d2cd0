"""Loss accounting for the community scenario: was every line delivered exactly once to each
member present when it was sent?

The bench cannot see the order in which the server handled a PRIVMSG and a member's JOIN, PART
or QUIT, only when each was sent and when its echo came back. So each (line, member) pair is:

- *expected* when the member's own JOIN echo had arrived before the line was sent (the server had
  handled the JOIN) and the member left more than ``grace`` after it (the server had long
  handled the line): it must arrive exactly once, or it is lost;
- *in flight* when the line was sent within ``grace`` of the member joining or leaving: it may
  arrive (once) or not, and is counted apart;
- otherwise *unexpected*: the member was not in the room, and an arrival is a server bug.

A stay's times are nanoseconds on the system-wide monotonic clock; ``left_ns`` is when the
member knows the server handled its leaving (PART echo, connection closed) or, for a member
still present at the end, when counting stopped.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from securechat.bench.community_plan import sender_of

NEVER = -1  # an echo that never came


@dataclass(frozen=True)
class Sent:
    message: int  # community_plan.message_id(sender, seq)
    room: int
    sent_ns: int


@dataclass(frozen=True)
class Stay:
    """One period of one member in one room."""

    room: int
    join_sent_ns: int
    joined_ns: int  # own JOIN echo arrived; NEVER if it did not
    leave_sent_ns: int  # PART or QUIT written, or counting stopped
    left_ns: int  # PART echo arrived or the connection closed (>= leave_sent_ns)


@dataclass
class Accounting:
    expected: int = 0
    delivered: int = 0  # expected pairs that arrived
    duplicates: int = 0  # arrivals beyond the first of a line at a member
    unexpected: int = 0  # arrivals at a member who was not in the room
    in_flight: int = 0  # pairs that may or may not arrive
    in_flight_delivered: int = 0
    unknown: int = 0  # arrivals of a line nobody sent

    @property
    def lost(self) -> int:
        return self.expected - self.delivered

    def merge(self, other: Accounting) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class RoomLog:
    """The lines said in one room, in order of sending (for range look-ups by time)."""

    times: list[int] = field(default_factory=list)
    messages: list[int] = field(default_factory=list)

    def between(self, first_ns: int, last_ns: int) -> list[int]:
        """Lines sent at ``first_ns <= t <= last_ns``."""
        if last_ns < first_ns:
            return []
        lo = bisect_left(self.times, first_ns)
        hi = bisect_right(self.times, last_ns)
        return self.messages[lo:hi]


def room_logs(sent: Iterable[Sent]) -> dict[int, RoomLog]:
    logs: dict[int, RoomLog] = {}
    for line in sorted(sent, key=lambda line: line.sent_ns):
        log = logs.setdefault(line.room, RoomLog())
        log.times.append(line.sent_ns)
        log.messages.append(line.message)
    return logs


def account_member(
    member: int,
    stays: Sequence[Stay],
    arrivals: Iterable[int],
    logs: dict[int, RoomLog],
    known: set[int] | frozenset[int],
    grace_ns: int,
) -> Accounting:
    """Classify every line of every room ``member`` was in, against what it received."""
    expected: set[int] = set()
    possible: set[int] = set()
    for stay in stays:
        log = logs.get(stay.room)
        if log is None:
            continue
        if stay.joined_ns != NEVER:
            expected.update(log.between(stay.joined_ns, stay.leave_sent_ns - grace_ns))
        possible.update(log.between(stay.join_sent_ns - grace_ns, stay.left_ns))
    own = {message for message in possible if sender_of(message) == member}
    expected -= own
    possible -= expected | own
    counts = Counter(arrivals)
    result = Accounting(expected=len(expected), in_flight=len(possible))
    for message, times in counts.items():
        result.duplicates += times - 1
        if message in expected:
            result.delivered += 1
        elif message in possible:
            result.in_flight_delivered += 1
        elif message in known:
            result.unexpected += 1
        else:
            result.unknown += 1
    return result
