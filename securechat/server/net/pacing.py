"""When the server writes what it has queued: adaptive write coalescing.

A delivery's cost is mostly the kernel's: one ``SSL_write`` and one ``write(2)`` per recipient
per flush, and on loopback the receiver's side of TCP runs in the sender's time too
(BENCHMARKS.md, "Adaptive write coalescing"). Writing each message the moment it is routed gives
the lowest latency, and is right while the server is idle; under load it costs a record and a
system call per message per recipient, where waiting a little would put several messages in one.

So flushes are paced the way a network card moderates its interrupts: when output is asked for
while the last flush had barely finished (sooner than that flush took), the server is busy, and
the next flush waits ``factor`` times as long as the last one took, at most ``max_pause``. That
bounds the time spent writing to about 1 / (1 + factor) of the loop while busy, and lines that
arrive meanwhile leave together. A lightly loaded server never waits: its flushes are far apart.
"""

from __future__ import annotations

from typing import Final

__all__ = ["FLUSH_PAUSE_FACTOR", "MAX_FLUSH_PAUSE", "FlushPacer"]

FLUSH_PAUSE_FACTOR: Final = 3.0
MAX_FLUSH_PAUSE: Final = 0.002  # seconds: the most a busy server adds to a line's latency


class FlushPacer:
    """Times are seconds on one monotonic clock (``time.perf_counter``)."""

    __slots__ = ("_ended", "_not_before", "_requested", "factor", "max_pause")

    def __init__(
        self, factor: float = FLUSH_PAUSE_FACTOR, max_pause: float = MAX_FLUSH_PAUSE
    ) -> None:
        self.factor = factor
        self.max_pause = max_pause
        self._not_before = 0.0
        self._requested = 0.0
        self._ended = float("-inf")

    def requested(self, now: float) -> float:
        """Output was queued at ``now`` with no flush pending: seconds to wait before flushing."""
        self._requested = now
        return max(0.0, self._not_before - now)

    def flushed(self, started: float, ended: float) -> None:
        """A flush ran from ``started`` to ``ended``: set when the next one may start."""
        took = ended - started
        busy = self._requested - self._ended < took
        self._ended = ended
        self._not_before = ended + min(took * self.factor, self.max_pause) if busy else 0.0
