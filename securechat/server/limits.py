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
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from functools import lru_cache

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
