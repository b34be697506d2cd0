"""Abuse limits, sans-I/O: flood control per client and connection limits per address.

Flood control is a token bucket per client (ergo's approach): ``flood_burst``
lines at once, then ``flood_rate`` lines per second. A line beyond the budget
is not dropped: the network layer holds it until ``flood_delay`` says it may
go (fake lag), so a pasted paragraph arrives whole, just paced. Only a client
whose held backlog exceeds ``flood_max_backlog`` lines is disconnected
("Excess flood").

Connections are bounded in total, per address, and in how fast one address
may open new ones (another token bucket). Addresses in an ``exempt`` CIDR —
trusted bots, loopback benchmarks — skip the per-address limits and flood
control; the total bound always applies.

Those limits (``AddressLimits``) answer with a readable ``ERROR`` line, so they run after the
TLS handshake. In front of them ``AcceptGate`` bounds what one address can make the server do
*before* any TLS work (security review M3): sockets it holds open, handshakes it has in
progress, and how fast it opens sockets; a socket over those is closed the moment it is
accepted (nothing can be said before TLS). Its bounds sit above the friendly ones, so a
client a little over them still reads why; only a flood meets the silent close.
An "address" there is a group: an IPv4 address, or the IPv6 /64 around one (one end site's
prefix, RFC 6177 — what ergo and Solanum group by too), since a host given a /64 can connect
from a new address every time. Loopback is not exempt by default (neither ergo nor Solanum
exempt it): a reverse proxy or a loopback benchmark goes into ``exempt``.

The gate also keeps descriptors for everyone: when the sockets it counts reach
``fd_budget`` (the process's descriptor limit less ``fd_reserve``), the newest handshake of
the group with the most handshakes in progress is shed (``shed``), so a flood from one place
cannot take the last descriptors from the clients already here or from new ones.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from functools import lru_cache
from typing import Any

from securechat.server.config import ServerConfig
from securechat.server.state import Session


def flood_delay(session: Session, config: ServerConfig, now: float) -> float:
    """Seconds until ``session`` may send its next line; 0 spends one token now."""
    burst = config.flood_burst
    tokens = session.flood_tokens + (now - session.flood_updated) * config.flood_rate
    if tokens > burst:
        tokens = burst
    session.flood_updated = now
    if tokens >= 1.0:
        session.flood_tokens = tokens - 1.0
        return 0.0
    session.flood_tokens = tokens
    return (1.0 - tokens) / config.flood_rate


class AddressLimits:
    """Open connections per address and a new-connection token bucket per address."""

    __slots__ = ("_buckets", "_config", "_networks", "open_by_address", "total")

    def __init__(self, config: ServerConfig) -> None:
        self._config = config
        self._networks = tuple(ipaddress.ip_network(cidr) for cidr in config.exempt)
        self.open_by_address: Counter[str] = Counter()
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, updated)
        self.total = 0

    def reconfigure(self, config: ServerConfig) -> None:
        self._config = config
        self._networks = tuple(ipaddress.ip_network(cidr) for cidr in config.exempt)

    def is_exempt(self, host: str) -> bool:
        return bool(self._networks) and _in_networks(host, self._networks)

    def refusal(self, host: str, now: float) -> str | None:
        """Why a new connection from ``host`` is refused, or None to admit (and count) it."""
        config = self._config
        if self.total >= config.max_connections:
            return "Server is full"
        if not self.is_exempt(host):
            if self.open_by_address[host] >= config.max_connections_per_address:
                return "Too many connections from your address"
            if not self._take_token(host, now):
                return "Connecting too fast; try again in a few seconds"
        self.total += 1
        self.open_by_address[host] += 1
        return None

    def release(self, host: str) -> None:
        self.total -= 1
        self.open_by_address[host] -= 1
        if self.open_by_address[host] <= 0:
            del self.open_by_address[host]

    def _take_token(self, host: str, now: float) -> bool:
        config = self._config
        tokens, updated = self._buckets.get(host, (float(config.connect_burst), now))
        tokens = min(float(config.connect_burst), tokens + (now - updated) * config.connect_rate)
        if tokens < 1.0:
            self._buckets[host] = (tokens, now)
            return False
        self._buckets[host] = (tokens - 1.0, now)
        return True

    def prune(self, now: float) -> None:
        """Forget buckets that have refilled: an address that stopped connecting costs nothing."""
        config = self._config
        full = float(config.connect_burst)
        self._buckets = {
            host: (tokens, updated)
            for host, (tokens, updated) in self._buckets.items()
            if tokens + (now - updated) * config.connect_rate < full
        }


class AcceptGate:
    """Sockets, handshakes in progress and new sockets per address group, at accept.

    ``pending`` maps a group to its handshakes in progress, oldest first (insertion order):
    a key the caller chooses (the socket's descriptor) to whatever it needs to cancel one.
    """

    __slots__ = ("_buckets", "_config", "_networks", "fd_budget", "pending", "sockets", "total")

    def __init__(self, config: ServerConfig, fd_budget: int) -> None:
        self._config = config
        self._networks = tuple(ipaddress.ip_network(cidr) for cidr in config.exempt)
        self.fd_budget = fd_budget
        self.sockets: Counter[str] = Counter()
        self.pending: dict[str, dict[int, Any]] = {}
        self._buckets: dict[str, tuple[float, float]] = {}  # group -> (tokens, updated)
        self.total = 0

    def reconfigure(self, config: ServerConfig) -> None:
        self._config = config
        self._networks = tuple(ipaddress.ip_network(cidr) for cidr in config.exempt)

    def refusal(self, group: str, now: float) -> str | None:
        """Why a socket just accepted from ``group`` is closed unheard, or None to go on."""
        if self._networks and _in_networks(group.partition("/")[0], self._networks):
            return None
        config = self._config
        if len(self.pending.get(group, ())) >= config.max_handshakes_per_address:
            return "handshakes"
        if self.sockets[group] >= config.max_sockets_per_address:
            return "sockets"
        if not self._take_token(group, now):
            return "rate"
        return None

    def opened(self, group: str, key: int, handshake: Any) -> None:
        self.total += 1
        self.sockets[group] += 1
        self.pending.setdefault(group, {})[key] = handshake

    def handshake_ended(self, group: str, key: int) -> None:
        handshakes = self.pending.get(group)
        if handshakes is not None and handshakes.pop(key, None) is not None and not handshakes:
            del self.pending[group]

    def closed(self, group: str) -> None:
        if self.sockets[group] > 0:
            self.total -= 1
            self.sockets[group] -= 1
        if self.sockets[group] <= 0:
            del self.sockets[group]

    @property
    def handshakes(self) -> int:
        return sum(len(handshakes) for handshakes in self.pending.values())

    def shed(self) -> tuple[str, Any] | None:
        """Over the descriptor budget: the newest handshake of the group with the most in
        progress (no longer counted as a handshake; the caller cancels it and calls
        ``closed``), or None while within budget or with no handshake left to shed."""
        if self.total <= self.fd_budget or not self.pending:
            return None
        group = max(self.pending, key=lambda g: len(self.pending[g]))
        handshakes = self.pending[group]
        key = next(reversed(handshakes))
        handshake = handshakes.pop(key)
        if not handshakes:
            del self.pending[group]
        return group, handshake

    def _take_token(self, group: str, now: float) -> bool:
        config = self._config
        burst = float(config.accept_burst)
        tokens, updated = self._buckets.get(group, (burst, now))
        tokens = min(burst, tokens + (now - updated) * config.accept_rate)
        if tokens < 1.0:
            self._buckets[group] = (tokens, now)
            return False
        self._buckets[group] = (tokens - 1.0, now)
        return True

    def prune(self, now: float) -> None:
        """Forget buckets that have refilled."""
        config = self._config
        full = float(config.accept_burst)
        self._buckets = {
            group: (tokens, updated)
            for group, (tokens, updated) in self._buckets.items()
            if tokens + (now - updated) * config.accept_rate < full
        }


@lru_cache(maxsize=4096)
def address_group(host: str, ipv6_prefix: int = 64) -> str:
    """The group an address is counted in: IPv4 as it is (``::ffff:a.b.c.d`` too), IPv6 as
    its ``ipv6_prefix`` network, e.g. ``2001:db8:1:2::/64``; anything else as given."""
    address = _address(host)
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, ipv6_prefix), strict=False))
    return str(address) if address is not None else host


def _in_networks(
    host: str, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
) -> bool:
    address = _address(host)
    return address is not None and any(address in network for network in networks)


@lru_cache(maxsize=4096)
def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1 for exemptions
    return address
