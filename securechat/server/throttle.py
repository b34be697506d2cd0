"""Bounded, expiring tables of failures and of attempts, sans-I/O (time is passed in).

Rules kept here:

- ``Backoff`` counts failures per key (an address, an (account, address) pair, an account):
  the first ``free`` cost nothing; from the ``free``-th on each failure doubles a block (2, 4,
  8 ... seconds, at most ``max_delay``). A key whose last failure is older than ``memory``
  seconds and whose block has run out is forgotten, so one bad evening is not held forever.
- ``Quota`` counts attempts per key in a sliding window (at most ``limit`` per ``window``
  seconds): REGISTER per connection and per address, accounts created per address.
- Both tables are bounded: past ``max_entries`` the expired entries are dropped, then the
  least recently touched ones (a dict keeps insertion order and every update re-inserts).
  Evicting lets a forgotten key start afresh, which is the price of bounded memory; the
  default bound is far above what one server sees from honest clients.
- ``source_key`` names an address as throttles see it: an IPv6 client owns at least a /64,
  so its whole /64 is one source; IPv4 addresses stand alone.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from functools import lru_cache

FIRST_DELAY_SECONDS = 2.0
IPV6_SOURCE_PREFIX = 64


@lru_cache(maxsize=4096)
def source_key(host: str) -> str:
    """The throttling key of a client address: the /64 of an IPv6 address, else the address."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{host}/{IPV6_SOURCE_PREFIX}", strict=False))
    return str(address)


def backoff_delay(failures: int, free: int, max_delay: float) -> float:
    """Seconds of block after ``failures`` failures: 0 below ``free``, then 2, 4, 8 ... capped."""
    extra = failures - free
    if extra < 0:
        return 0.0
    return min(FIRST_DELAY_SECONDS * float(2 ** min(extra, 30)), max_delay)


@dataclass(slots=True)
class _Failures:
    failures: int = 0
    blocked_until: float = 0.0
    last_failure: float = 0.0


class Backoff:
    """Failures per key with an exponential block (see the module rules)."""

    __slots__ = ("_entries", "free", "max_delay", "max_entries", "memory")

    def __init__(
        self, free: int = 0, max_delay: float = 0.0, memory: float = 0.0, max_entries: int = 1
    ) -> None:
        self.free = free
        self.max_delay = max_delay
        self.memory = memory
        self.max_entries = max_entries
        self._entries: dict[Hashable, _Failures] = {}

    def wait(self, key: Hashable, now: float) -> float:
        """Seconds ``key`` is still blocked for (0: go ahead)."""
        entry = self._live(key, now)
        return max(entry.blocked_until - now, 0.0) if entry is not None else 0.0

    def failures(self, key: Hashable, now: float) -> int:
        entry = self._live(key, now)
        return entry.failures if entry is not None else 0

    def fail(self, key: Hashable, now: float) -> float:
        """Count one failure; return the block it starts (0 while failures are free)."""
        entry = self._entries.pop(key, None) or _Failures()
        if self._expired(entry, now):
            entry = _Failures()
        self._make_room(now)
        entry.failures += 1
        entry.last_failure = now
        delay = backoff_delay(entry.failures, self.free, self.max_delay)
        entry.blocked_until = max(entry.blocked_until, now + delay)
        self._entries[key] = entry  # re-inserted: the most recently touched is last
        return delay

    def clear(self, key: Hashable) -> None:
        self._entries.pop(key, None)

    def prune(self, now: float) -> None:
        for key in [k for k, e in self._entries.items() if self._expired(e, now)]:
            del self._entries[key]

    def reconfigure(self, free: int, max_delay: float, memory: float, max_entries: int) -> None:
        self.free, self.max_delay, self.memory, self.max_entries = (
            free,
            max_delay,
            memory,
            max_entries,
        )

    def __len__(self) -> int:
        return len(self._entries)

    def _live(self, key: Hashable, now: float) -> _Failures | None:
        entry = self._entries.get(key)
        if entry is not None and self._expired(entry, now):
            del self._entries[key]
            return None
        return entry

    def _expired(self, entry: _Failures, now: float) -> bool:
        return entry.blocked_until <= now and now - entry.last_failure >= self.memory

    def _make_room(self, now: float) -> None:
        if len(self._entries) < self.max_entries:
            return
        self.prune(now)
        while len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]  # the least recently touched


@dataclass(slots=True)
class _Window:
    times: deque[float] = field(default_factory=deque)


class Quota:
    """At most ``limit`` attempts per key in any ``window`` seconds (see the module rules)."""

    __slots__ = ("_entries", "limit", "max_entries", "window")

    def __init__(self, limit: int = 1, window: float = 1.0, max_entries: int = 1) -> None:
        self.limit = limit
        self.window = window
        self.max_entries = max_entries
        self._entries: dict[Hashable, _Window] = {}

    def wait(self, key: Hashable, now: float) -> float:
        """Seconds until ``key`` may make another attempt (0: now)."""
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        self._forget_old(entry, now)
        if len(entry.times) < self.limit:
            return 0.0
        # Never over the window: (t + window) - t can round up by an ulp (found by hypothesis).
        return min(max(entry.times[0] + self.window - now, 0.0), self.window)

    def spend(self, key: Hashable, now: float) -> None:
        entry = self._entries.pop(key, None) or _Window()
        self._forget_old(entry, now)
        self._make_room(now)
        entry.times.append(now)
        while len(entry.times) > self.limit:  # only the last ``limit`` matter
            entry.times.popleft()
        self._entries[key] = entry

    def prune(self, now: float) -> None:
        for key, entry in list(self._entries.items()):
            self._forget_old(entry, now)
            if not entry.times:
                del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)

    def _forget_old(self, entry: _Window, now: float) -> None:
        times = entry.times
        while times and times[0] <= now - self.window:
            times.popleft()

    def _make_room(self, now: float) -> None:
        if len(self._entries) < self.max_entries:
            return
        self.prune(now)
        while len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]
