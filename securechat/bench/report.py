"""What a run measured, turned into the report's figures and its human-readable form.

Server figures are per unit of work (CPU ms per 1,000 deliveries, per registration; RSS per
connection) because those survive a noisy machine; wall-clock rates are reported too, but read
them as "at least this fast".
"""

from __future__ import annotations

import json
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from securechat.bench.procstat import ProcSample
from securechat.bench.redis_probe import CommandStat
from securechat.bench.server_processes import REDIS


@dataclass(frozen=True)
class Measurement:
    """Server samples around the measured phase; all None when no --server-pid was given.

    ``baseline`` is taken before any client connects (for RSS per connection), ``before`` at
    "go" and ``after`` when the phase is complete (for CPU used by the phase itself). For a
    cluster the samples are sums over its nodes and Redis; ``parts`` is the CPU seconds each
    process used in the phase and ``redis_commands`` what Redis counted per command.
    """

    baseline: ProcSample | None
    before: ProcSample | None
    after: ProcSample | None
    elapsed_s: float
    timed_out: bool
    parts: dict[str, float] = field(default_factory=dict)
    redis_commands: dict[str, CommandStat] = field(default_factory=dict)
    redis_memory_grown: int = 0  # bytes Redis allocated during the phase (the stream grows)
    io_calls: dict[str, dict[str, int]] = field(default_factory=dict)  # per process, the phase's


def merge_workers(results: Sequence[dict[str, Any]]) -> tuple[Counter[str], array[int]]:
    """Every worker's failure counts and setup times (ns), added together."""
    failures: Counter[str] = Counter()
    setup: array[int] = array("q")
    for result in results:
        failures.update(result["failures"])
        setup.frombytes(result["setup_ns"])
    return failures, setup


def merged_latencies(results: Sequence[dict[str, Any]]) -> array[int]:
    """Every worker's latency samples (ns), in one array."""
    latencies: array[int] = array("q")
    for result in results:
        latencies.frombytes(result["latencies"])
    return latencies


def all_errors(results: Sequence[dict[str, Any]]) -> list[str]:
    """The distinct error texts of every worker, sorted."""
    return sorted({e for r in results for e in r["errors"]})


def server_figures(measured: Measurement, units: dict[str, float], held: int) -> dict[str, Any]:
    """Server CPU used in the phase, CPU ms per each unit of work, RSS and RSS per connection.

    ``units`` maps a name to an amount of work, e.g. {"1k_deliveries": 490.0} gives
    ``cpu_ms_per_1k_deliveries``.
    """
    if measured.before is None or measured.after is None or measured.baseline is None:
        return {"measured": False}
    cpu_s = measured.after.cpu_s - measured.before.cpu_s
    figures: dict[str, Any] = {
        "measured": True,
        "cpu_s": round(cpu_s, 3),
        "cpu_utilization": round(cpu_s / measured.elapsed_s, 3) if measured.elapsed_s else None,
        "rss_baseline_bytes": measured.baseline.rss_bytes,
        "rss_bytes": measured.after.rss_bytes,
    }
    for name, amount in units.items():
        figures[f"cpu_ms_per_{name}"] = round(cpu_s * 1000 / amount, 4) if amount else None
    grown = measured.after.rss_bytes - measured.baseline.rss_bytes
    figures["rss_per_connection_bytes"] = round(grown / held) if held else None
    if len(measured.parts) > 1:
        figures["cpu_s_by_process"] = measured.parts
    figures.update(_write_call_figures(measured.io_calls, units))
    return figures


def _write_call_figures(
    io_calls: dict[str, dict[str, int]], units: dict[str, float]
) -> dict[str, Any]:
    """write(2)-family calls per unit of work over every sampled process, and each process's
    read and write calls: how many records a delivery took (see procstat.parse_io_calls for
    what is counted)."""
    if not io_calls:
        return {}
    writes = sum(calls["write_calls"] for calls in io_calls.values())
    figures: dict[str, Any] = {
        f"write_calls_per_{name}": round(writes / amount, 3)
        for name, amount in units.items()
        if amount
    }
    figures["io_calls_by_process"] = io_calls
    return figures


def cluster_figures(measured: Measurement, messages: int, deliveries: int) -> dict[str, Any]:
    """Where a cluster's CPU went, per message sent (one room event) and per delivery: Redis's
    CPU time (as the kernel charged it), the nodes' together, and per Redis command the calls
    and the execution time Redis itself counted. Empty when Redis was not sampled."""
    if REDIS not in measured.parts or not messages:
        return {}
    redis_s = measured.parts[REDIS]
    nodes_s = sum(cpu for name, cpu in measured.parts.items() if name != REDIS)
    commands = {
        name: {
            "calls": stat.calls,
            "calls_per_message": round(stat.calls / messages, 3),
            "usec_per_call": round(stat.usec / stat.calls, 2),
            "usec_per_message": round(stat.usec / messages, 2),
        }
        for name, stat in sorted(measured.redis_commands.items())
        if name != "info"  # the bench's own readings
    }
    return {
        "redis_cpu_us_per_message": round(redis_s * 1e6 / messages, 2),
        "nodes_cpu_us_per_message": round(nodes_s * 1e6 / messages, 2),
        "nodes_cpu_ms_per_1k_deliveries": (
            round(nodes_s * 1e6 / deliveries, 4) if deliveries else None
        ),
        "redis_share_of_cpu": round(redis_s / (redis_s + nodes_s), 3) if redis_s else 0.0,
        "redis_memory_bytes_per_message": round(measured.redis_memory_grown / messages, 1),
        "redis_commands": commands,
    }


def render_text(report: dict[str, Any]) -> str:
    """A few lines a person reads: the scenario's headline figures, then the server's."""
    lines = [f"scenario: {report['scenario']}  target: {report['target']}"]
    for key, value in report.items():
        if key in ("scenario", "target", "params", "server", "latency_ms", "errors"):
            continue
        lines.append(f"  {key}: {value}")
    if "latency_ms" in report:
        lat = report["latency_ms"]
        lines.append("  latency ms: " + "  ".join(f"{k} {v}" for k, v in lat.items()))
    for error in report.get("errors", []):
        lines.append(f"  error: {error}")
    server = report.get("server", {})
    if server.get("measured"):
        lines.append(
            "  server: " + "  ".join(f"{k} {v}" for k, v in server.items() if k != "measured")
        )
    else:
        lines.append("  server: not measured (pass --server-pid PID)")
    return "\n".join(lines)


def to_json_line(report: dict[str, Any]) -> str:
    return json.dumps(report, separators=(",", ":"))
