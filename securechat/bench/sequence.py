"""Per-sender sequence tracking: what a receiver got versus what it should have got.

Every fan-out message carries ``(sender, seq)`` with seq counting 0, 1, 2 ... per sender. A
receiver keeps one ``Stream`` per sender. A stream remembers only the next sequence it expects
and the set of sequences it skipped over (the gaps), so its memory stays small while delivery is
in order, which is the normal case:

- ``seq == next``: in order;
- ``seq > next``: the sequences in between are missing for now (a gap);
- ``seq < next`` and missing: a late arrival (counted as reordered, and no longer lost);
- ``seq < next`` and not missing: a duplicate.

Loss is whatever is still missing at the end, plus everything after the highest sequence seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields


class Stream:
    """Delivery state of one sender's messages as seen by one receiver."""

    __slots__ = ("duplicates", "expected", "gaps", "invalid", "missing", "next_seq", "reordered")

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.next_seq = 0
        self.missing: set[int] = set()
        self.duplicates = 0
        self.reordered = 0
        self.gaps = 0
        self.invalid = 0

    def record(self, seq: int) -> bool:
        """Account for one arrival; True when it is the first arrival of a valid sequence."""
        if seq < 0 or seq >= self.expected:
            self.invalid += 1
            return False
        if seq == self.next_seq:
            self.next_seq += 1
            return True
        if seq > self.next_seq:
            self.gaps += 1
            self.missing.update(range(self.next_seq, seq))
            self.next_seq = seq + 1
            return True
        if seq in self.missing:
            self.missing.discard(seq)
            self.reordered += 1
            return True
        self.duplicates += 1
        return False

    @property
    def unique(self) -> int:
        return self.next_seq - len(self.missing)

    @property
    def lost(self) -> int:
        return self.expected - self.unique


@dataclass
class Tally:
    """Totals over many streams; the unit the workers report and the coordinator sums."""

    expected: int = 0
    unique: int = 0
    duplicates: int = 0
    reordered: int = 0
    gaps: int = 0
    invalid: int = 0

    @property
    def lost(self) -> int:
        return self.expected - self.unique

    def add_stream(self, stream: Stream) -> None:
        self._add(stream)

    def merge(self, other: Tally) -> None:
        self._add(other)

    def _add(self, counts: Stream | Tally) -> None:
        """Add every count a Stream and a Tally share (this dataclass's fields)."""
        for name in TALLY_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(counts, name))


@dataclass
class Receiver:
    """All streams one client expects: one per sender sharing its room (never itself)."""

    streams: dict[int, Stream] = field(default_factory=dict)
    unexpected_senders: int = 0

    @classmethod
    def expecting(cls, senders: list[int], messages: int) -> Receiver:
        return cls({sender: Stream(messages) for sender in senders})

    def record(self, sender: int, seq: int) -> bool:
        stream = self.streams.get(sender)
        if stream is None:
            self.unexpected_senders += 1
            return False
        return stream.record(seq)

    def tally(self) -> Tally:
        total = Tally(invalid=self.unexpected_senders)
        for stream in self.streams.values():
            total.add_stream(stream)
        return total


TALLY_FIELDS = tuple(f.name for f in fields(Tally))
