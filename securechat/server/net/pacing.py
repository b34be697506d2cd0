"""When the server writes what it has queued: adaptive write coalescing.

A delivery's cost is mostly the kernel's: one ``SSL_write`` and one ``write(2)`` per recipient
per flush, and on loopback the receiver's side of TCP runs in the sender's time too
(BENCHMARKS.md, "Adaptive write coalescing"). Writing each message the moment it is routed gives
the lowest latency, and is right while the server is idle; under load it costs a record and a
system call per message per recipient, where waiting a little would put several messages in one.

So flushes are paced the way a network card moderates its interrupts: while output keeps
coming (asked for within ``stream_gap`` of the last flush's end, or sooner than that flush took),
the server is streaming, and the next flush starts no sooner than ``pause`` after the last one
ended; lines that arrive meanwhile leave together, one record per connection. A lightly loaded
server never waits: its flushes are far apart.

A pause is worth its price only when it merges lines: a paused flush costs one more wake-up of
the loop (a timer), which is all it buys when the lines of a stream go to different people (many
small rooms). So after a paused flush that gave no connection more than one line, the next
``skip_after_miss`` flushes go out at once, then a pause is tried again.

Why a gap of a few milliseconds, not "sooner than the last flush took" alone (the first rule,
BENCHMARKS.md "Adaptive write coalescing"): a flush's wall-clock time and the gap after it both
stretch with whatever else shares the core, so the first rule flipped between batching and a
record per line from one run to the next at the same load (fan-out 10 x 50 with the delivery
window: 0.75 or 4.3 ms of CPU per 1,000 deliveries), and a cluster node, whose output comes in
bursts after each stream read a few milliseconds apart, never counted as busy
(BENCHMARKS.md, "Flush pacing by stream gap").
"""

from __future__ import annotations

from typing import Final

__all__ = ["SKIP_AFTER_MISS", "STREAM_GAP", "FlushPacer"]

STREAM_GAP: Final = 0.005  # output asked for this soon after the last flush: a stream
SKIP_AFTER_MISS: Final = 8  # flushes not paused after a pause that merged no lines


class FlushPacer:
    """Times are seconds on one monotonic clock (``time.perf_counter``). ``pause`` is the most
    a streaming server adds to a line's latency: the server's ``flush_pause_ms`` setting
    (BENCHMARKS.md, "A 4 ms flush pause"); ``0``: never wait (every request is flushed in its
    own loop iteration)."""

    __slots__ = (
        "_ended",
        "_not_before",
        "_paused",
        "_requested",
        "_skips",
        "pause",
        "skip_after_miss",
        "stream_gap",
    )

    def __init__(
        self,
        pause: float,
        stream_gap: float = STREAM_GAP,
        skip_after_miss: int = SKIP_AFTER_MISS,
    ) -> None:
        self.pause = pause
        self.stream_gap = stream_gap
        self.skip_after_miss = skip_after_miss
        self._not_before = 0.0
        self._requested = 0.0
        self._ended = float("-inf")
        self._paused = False  # the flush being asked for waits
        self._skips = 0  # flushes still to go out at once after a pause that merged nothing

    def requested(self, now: float) -> float:
        """Output was queued at ``now`` with no flush pending: seconds to wait before flushing."""
        self._requested = now
        wait = self._not_before - now
        self._paused = wait > 0.0
        return wait if wait > 0.0 else 0.0

    def flushed(self, started: float, ended: float, merged: bool = True) -> None:
        """A flush ran from ``started`` to ``ended`` (``merged``: some connection got more than
        one line in it): set when the next one may start."""
        if self._paused and not merged:
            self._skips = self.skip_after_miss
        gap = self._requested - self._ended  # from the last flush's end to this one's request
        streaming = gap < max(ended - started, self.stream_gap)
        self._ended = ended
        if streaming and self._skips == 0:
            self._not_before = ended + self.pause
        else:
            self._not_before = 0.0
            if self._skips:
                self._skips -= 1
