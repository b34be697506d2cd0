"""Side-by-side table of benchmark runs: the median of each figure per server, and our ratios.

Input is the JSON-lines file ``scripts/bench`` writes, one record per run:
``{"server": "ngircd", "scenario": "fanout-1x50", "round": 1, "report": {...}}`` or, for a run
that produced no report, ``{..., "error": "why"}``, and for a pair never run,
``{..., "skipped": "why"}``.

    python -m securechat.bench.compare RESULTS.jsonl [--markdown] [--ours securechat]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from securechat.bench.stats import median

ANOMALY_KEYS = (
    "loss",
    "duplicates",
    "reordered",
    "order_mismatches",
    "unexpected",
    "disconnects",
    "failed",
)


@dataclass(frozen=True)
class Figure:
    scenario: str
    label: str
    path: tuple[str, ...]
    higher_is_better: bool
    scale: float = 1.0
    servers: tuple[str, ...] = ()  # only servers whose names start so (empty: every server)

    def read(self, run: dict[str, Any]) -> float | None:
        """The figure from one run's record, None where it was not reported or not for it."""
        if self.servers and not str(run["server"]).startswith(self.servers):
            return None
        return self.value(run["report"])

    def value(self, report: dict[str, Any]) -> float | None:
        node: Any = report
        for key in self.path:
            if not isinstance(node, dict) or node.get(key) is None:
                return None
            node = node[key]
        return float(node) * self.scale


_CPU_1K = ("server", "cpu_ms_per_1k_deliveries")
# /proc/PID/io counts write(2) and writev(2) but not sendmsg(2) (ngircd's): compare it between
# securechat's servers; a delivery's cost follows the records it takes (BENCHMARKS.md).
WRITE_CALLS_FIGURES = tuple(
    Figure(
        scenario,
        "write(2) calls / 1k deliveries",
        ("server", "write_calls_per_1k_deliveries"),
        False,
        servers=("securechat", "inspircd"),  # ngircd's sendmsg(2) would read as none
    )
    for scenario in ("fanout-10x50-delivery", "fanout-1x50-delivery", "fanout-rate", "community-1k")
)
# Cluster runs only (another server's cell reads "-"): what Redis cost, what the nodes cost.
CLUSTER_FIGURES = tuple(
    figure
    for scenario in (
        "fanout-10x50-delivery",
        "fanout-10x50",
        "fanout-1x50-delivery",
        "fanout-1x50",
        "fanout-rate",
    )
    for figure in (
        Figure(scenario, "Redis CPU µs / message", ("cluster", "redis_cpu_us_per_message"), False),
        Figure(
            scenario,
            "nodes' CPU ms / 1k deliveries",
            ("cluster", "nodes_cpu_ms_per_1k_deliveries"),
            False,
        ),
    )
)
COMMUNITY_FIGURES = tuple(
    figure
    for scenario in ("community-1k", "community")
    for figure in (
        Figure(scenario, "server CPU %", ("server", "cpu_percent"), False),
        Figure(scenario, "server CPU ms / 1k deliveries", _CPU_1K, False),
        Figure(scenario, "latency p50 ms", ("latency_ms", "p50"), False),
        Figure(scenario, "latency p99 ms", ("latency_ms", "p99"), False),
        Figure(scenario, "latency max ms", ("latency_ms", "max"), False),
        Figure(scenario, "server RSS MiB", ("server", "rss_bytes"), False, 1 / 2**20),
        Figure(scenario, "deliveries / s", ("deliveries_per_s",), True),
        Figure(scenario, "load generator CPU %", ("load_cpu_percent",), False),
        Figure(scenario, "loss", ("loss",), False),
    )
)
FIGURES: tuple[Figure, ...] = (
    Figure("fanout-1x50", "server CPU ms / 1k deliveries", _CPU_1K, False),
    Figure("fanout-1x50", "deliveries / s", ("deliveries_per_s",), True),
    Figure("fanout-1x50-delivery", "server CPU ms / 1k deliveries", _CPU_1K, False),
    Figure("fanout-1x50-delivery", "deliveries / s", ("deliveries_per_s",), True),
    Figure("fanout-1x50-delivery", "latency p99 ms", ("latency_ms", "p99"), False),
    Figure("fanout-10x50", "server CPU ms / 1k deliveries", _CPU_1K, False),
    Figure("fanout-10x50", "deliveries / s", ("deliveries_per_s",), True),
    Figure("fanout-10x50-delivery", "server CPU ms / 1k deliveries", _CPU_1K, False),
    Figure("fanout-10x50-delivery", "deliveries / s", ("deliveries_per_s",), True),
    Figure("fanout-10x50-delivery", "latency p99 ms", ("latency_ms", "p99"), False),
    Figure("fanout-rate", "latency p50 ms", ("latency_ms", "p50"), False),
    Figure("fanout-rate", "latency p99 ms", ("latency_ms", "p99"), False),
    Figure("fanout-rate", "server CPU ms / 1k deliveries", _CPU_1K, False),
    Figure("fanout-pipeline", "loss", ("loss",), False),
    Figure("fanout-pipeline", "server CPU ms / 1k deliveries", _CPU_1K, False),
    Figure("connections", "connections held", ("connections_held",), True),
    Figure(
        "connections",
        "RSS KiB / connection",
        ("server", "rss_per_connection_bytes"),
        False,
        1 / 1024,
    ),
    Figure("connections", "registrations / s", ("registrations_per_s",), True),
    Figure("handshake", "registrations / s", ("registrations_per_s",), True),
    Figure(
        "handshake", "server CPU ms / registration", ("server", "cpu_ms_per_registration"), False
    ),
    *COMMUNITY_FIGURES,
    *CLUSTER_FIGURES,
    *WRITE_CALLS_FIGURES,
)


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def servers_in(records: Iterable[dict[str, Any]], ours: str) -> list[str]:
    """Server names in first-seen order, ours first."""
    names = list(dict.fromkeys(record["server"] for record in records))
    return sorted(names, key=lambda name: name != ours)


def cell(
    records: Sequence[dict[str, Any]], server: str, figure: Figure
) -> tuple[float | None, str]:
    """(median over rounds, text) for one server and figure; the text notes missing rounds."""
    runs = _runs(records, server, figure.scenario)
    if runs and all("skipped" in r for r in runs):
        return None, "skipped"
    values = [v for r in runs if "report" in r and (v := figure.read(r)) is not None]
    if not values:
        # every run reported, just not this figure (a cluster figure of a single server)
        reported = runs and all("report" in r for r in runs)
        return None, "-" if not runs or reported else f"failed ({len(runs)} runs)"
    mid = median(values)
    text = _number(mid)
    if len(values) < len(runs):
        text += f" ({len(values)}/{len(runs)} ok)"
    return mid, text


def anomalies(records: Sequence[dict[str, Any]], server: str, scenario: str) -> str:
    """Loss, duplicates, reordering, disconnects, failures, exits and errors summed over rounds."""
    runs = _runs(records, server, scenario)
    if not runs:
        return "-"
    if all("skipped" in r for r in runs):
        return f"skipped: {runs[0]['skipped']}"
    totals = dict.fromkeys(ANOMALY_KEYS, 0)
    extra: list[str] = []
    for run in runs:
        report = run.get("report")
        if report is None:
            extra.append("no report")
            continue
        for key in ANOMALY_KEYS:
            totals[key] += int(report.get(key) or 0)
        if report.get("server_exited"):
            extra.append("server exited")
        if report.get("timed_out"):
            extra.append("timed out")
    parts = [f"{key} {count}" for key, count in totals.items() if count]
    parts += [f"{extra.count(item)}x {item}" for item in dict.fromkeys(extra)]
    return ", ".join(parts) if parts else "none"


def _runs(records: Sequence[dict[str, Any]], server: str, scenario: str) -> list[dict[str, Any]]:
    """One server's records of one scenario; a record ``{"skipped": why}`` was never run."""
    return [r for r in records if r["server"] == server and r["scenario"] == scenario]


def ratio(ours: float | None, theirs: float | None) -> str:
    if ours is None or theirs is None or theirs == 0:
        return "-"
    return f"{ours / theirs:.2f}"


def round_ratios(
    records: Sequence[dict[str, Any]], ours: str, peer: str, figure: Figure
) -> list[float]:
    """ours / peer within each round both have the figure: side by side, so slow drift of a
    shared machine (which moves both) cancels out of each ratio."""
    by_round: dict[Any, dict[str, float]] = {}
    for name in (ours, peer):
        for run in _runs(records, name, figure.scenario):
            if "report" in run and (value := figure.read(run)) is not None:
                by_round.setdefault(run["round"], {})[name] = value
    return [
        pair[ours] / pair[peer]
        for _, pair in sorted(by_round.items())
        if len(pair) == 2 and pair[peer] != 0
    ]


def ratio_text(
    records: Sequence[dict[str, Any]], ours: str, peer: str, figure: Figure, medians: Any
) -> str:
    """The ratio of the medians; with two or more paired rounds also the median of the
    per-round ratios and their range, e.g. ``1.89 (per round 1.74, 1.70-2.02)``."""
    text = ratio(medians[ours][0], medians[peer][0])
    paired = round_ratios(records, ours, peer, figure)
    if len(paired) >= 2 and text != "-":
        text += f" (per round {median(paired):.2f}, {min(paired):.2f}-{max(paired):.2f})"
    return text


def table(records: Sequence[dict[str, Any]], ours: str) -> tuple[list[str], list[list[str]]]:
    servers = servers_in(records, ours)
    peers = [name for name in servers if name != ours]
    header = ["scenario", "figure", *servers]
    if ours in servers:
        header += [f"{ours}/{peer}" for peer in peers]
    rows: list[list[str]] = []
    scenarios = list(dict.fromkeys(r["scenario"] for r in records))
    for scenario in scenarios:
        for figure in (f for f in FIGURES if f.scenario == scenario):
            medians = {name: cell(records, name, figure) for name in servers}
            if all(text == "-" for _, text in medians.values()):
                continue  # no server reports it (a cluster figure in a run without a cluster)
            better = "higher" if figure.higher_is_better else "lower"
            row = [scenario, f"{figure.label} ({better} is better)"]
            row += [medians[name][1] for name in servers]
            if ours in servers:
                row += [ratio_text(records, ours, peer, figure, medians) for peer in peers]
            rows.append(row)
        row = [scenario, "anomalies over all rounds (want none)"]
        row += [anomalies(records, name, scenario) for name in servers]
        rows.append(row + [""] * (len(header) - len(row)))
    return header, rows


def render_markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def render_text(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True))
        for line in [header, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines)


def _number(value: float) -> str:
    if value == 0 or abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m securechat.bench.compare",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("results", type=Path, help="JSON-lines file written by scripts/bench")
    parser.add_argument(
        "--ours", default="securechat", help="our server's name (default securechat)"
    )
    parser.add_argument("--markdown", action="store_true", help="a markdown table")
    args = parser.parse_args(argv)
    header, rows = table(load(args.results), args.ours)
    print(render_markdown(header, rows) if args.markdown else render_text(header, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
