"""Counters and the Prometheus text exposition (format version 0.0.4).

The core and the network layer bump plain integer attributes (no locks, no
per-event allocation: the fan-out path pays one addition per Send). The
optional endpoint in net/metrics_http.py renders them with the current gauges on
``GET /metrics`` from 127.0.0.1 only.
"""

from __future__ import annotations

from collections.abc import Mapping

COUNTERS = {
    "connections_accepted": "TLS connections that reached the IRC layer",
    "connections_refused": "connections refused by a limit or a K-line",
    "accept_refusals": "sockets closed at accept by a per-address bound, before any TLS work",
    "handshakes_shed": "TLS handshakes in progress closed to keep descriptors free",
    "registrations": "clients that completed registration",
    "lines_in": "protocol lines received from clients",
    "messages_in": "PRIVMSG and NOTICE lines received",
    "deliveries": "lines queued to a client (one per recipient)",
    "sendq_drops": "clients closed because their send queue overflowed",
    "sendq_budget_drops": "clients closed because all send queues together were over budget",
    "memory_trims": "times freed memory was handed back to the system (malloc_trim)",
    "flood_delays": "lines held back by flood control",
    "excess_floods": "clients closed for excess flood",
    "tls_handshake_failures": "TLS handshakes that failed or timed out",
    "plaintext_refusals": "plaintext clients told the port requires TLS",
    "ping_timeouts": "clients closed for not answering PING",
    "kills": "clients removed by an operator (KILL or K-line)",
    "history_write_failures": "messages refused because their history commit failed",
    "history_read_failures": "history reads that failed or ran out of time",
}


class Metrics:
    """Every counter in COUNTERS, as a plain attribute."""

    __slots__ = tuple(COUNTERS)

    def __init__(self) -> None:
        self.connections_accepted = 0
        self.connections_refused = 0
        self.accept_refusals = 0
        self.handshakes_shed = 0
        self.registrations = 0
        self.lines_in = 0
        self.messages_in = 0
        self.deliveries = 0
        self.sendq_drops = 0
        self.sendq_budget_drops = 0
        self.memory_trims = 0
        self.flood_delays = 0
        self.excess_floods = 0
        self.tls_handshake_failures = 0
        self.plaintext_refusals = 0
        self.ping_timeouts = 0
        self.kills = 0
        self.history_write_failures = 0
        self.history_read_failures = 0

    def snapshot(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNTERS}


def render(counters: Mapping[str, int], gauges: Mapping[str, tuple[float, str]]) -> str:
    """Prometheus text format: ``securechat_<name>_total`` counters, then gauges."""
    lines: list[str] = []
    for name, count in counters.items():
        lines += _family(f"securechat_{name}_total", "counter", COUNTERS[name], str(count))
    for name, (value, help_text) in gauges.items():
        lines += _family(f"securechat_{name}", "gauge", help_text, _number(value))
    return "\n".join(lines) + "\n"


def _family(metric: str, kind: str, help_text: str, value: str) -> list[str]:
    return [f"# HELP {metric} {help_text}", f"# TYPE {metric} {kind}", f"{metric} {value}"]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.6f}"
