"""Output memory over all connections: a global send-queue budget, and giving memory back.

Each connection's unsent output is bounded by ``sendq_bytes``; 500 readers that stop reading
still hold 500 times that (security review M4: RSS 98 → 575 MiB). ``SendBudget`` keeps the
total of what the network layer saw queued, per connection, so that when all of it exceeds
``sendq_total_bytes`` the largest queues are dropped first ("SendQ exceeded", as for one
overflowing queue): the clients furthest behind pay, the rest keep their output.

The sizes are what each transport held at the last look (after a flush, and refreshed once a
second): queues drain between looks, so the total may run high, never low — the budget is
checked against a fresh measurement before anyone is dropped. A dropped connection's buffer
stays counted until its socket is closed (up to the close grace): that memory is still held.

After such a burst the allocator keeps the freed memory (glibc's malloc returns only the top
of its heaps by itself): the process stays at its high-water mark. ``MemoryTrim`` says when
the queued total has fallen well below its high-water mark, and ``trim_memory`` then calls
glibc's ``malloc_trim(0)``, which releases free pages inside the heaps too; at most once per
``TRIM_INTERVAL_SECONDS``. On other C libraries there is nothing to call and it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
from collections.abc import Callable
from typing import Final, Generic, TypeVar

__all__ = ["MemoryTrim", "SendBudget", "trim_memory"]

K = TypeVar("K")

TRIM_HIGH_WATER_BYTES: Final = 16 * 1024 * 1024  # below this, what is retained is not worth it
TRIM_FALL_FACTOR: Final = 4  # trim once the total is down to a quarter of its high-water mark
TRIM_INTERVAL_SECONDS: Final = 10.0  # malloc_trim walks the whole heap: not more often


class SendBudget(Generic[K]):
    """Unsent bytes per connection (only those with some) and their total."""

    __slots__ = ("sizes", "total")

    def __init__(self) -> None:
        self.sizes: dict[K, int] = {}
        self.total = 0

    def update(self, key: K, size: int) -> None:
        self.total += size - self.sizes.get(key, 0)
        if size:
            self.sizes[key] = size
        else:
            self.sizes.pop(key, None)

    def forget(self, key: K) -> None:
        self.update(key, 0)

    def refresh(self, measure: Callable[[K], int]) -> None:
        """Measure every connection that had output queued at the last look."""
        for key in list(self.sizes):
            self.update(key, measure(key))

    def over(self, limit: int, leaving: Callable[[K], bool]) -> list[K]:
        """The largest queues, largest first, whose removal brings the total to ``limit``;
        queues already ``leaving`` (their connection is closing) count as gone."""
        staying = [(key, size) for key, size in self.sizes.items() if not leaving(key)]
        excess = sum(size for _, size in staying) - limit
        victims: list[K] = []
        for key, size in sorted(staying, key=lambda item: item[1], reverse=True):
            if excess <= 0:
                break
            victims.append(key)
            excess -= size
        return victims


class MemoryTrim:
    """Decides when to give memory back: after the queued total fell from a high-water mark."""

    __slots__ = ("_high", "_last")

    def __init__(self) -> None:
        self._high = 0
        self._last = float("-inf")

    def due(self, queued: int, now: float) -> bool:
        self._high = max(self._high, queued)
        if self._high < TRIM_HIGH_WATER_BYTES or queued * TRIM_FALL_FACTOR > self._high:
            return False
        if now - self._last < TRIM_INTERVAL_SECONDS:
            return False
        self._high, self._last = queued, now
        return True


def _load_malloc_trim() -> Callable[[int], int] | None:
    if platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        function = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int
    return function


_MALLOC_TRIM = _load_malloc_trim()


def trim_memory() -> bool:
    """Hand free heap memory back to the system; False where the C library cannot."""
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True
