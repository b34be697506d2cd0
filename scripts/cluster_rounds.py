"""Per-round figures of a `scripts/bench --cluster` run, side by side, from its raw JSONL.

    python scripts/cluster_rounds.py .bench/results.jsonl [MORE.jsonl ...]

For each scenario and round: CPU µs per message of one process and of the cluster (nodes,
Redis), their ratio in that round, latency p50/p99 of both, and XADD/XREAD calls per message
(Redis's INFO commandstats); then the medians, with the rounds' ratios sorted. The machine is
shared: the ratio of one round (both servers run back to back) is steadier than either figure.

Where the runs counted write calls (since session 8), each server's rounds are also fitted,
CPU per message = a + b · write calls per message (least squares): a round's CPU follows how
many records its flushes took (BENCHMARKS.md, "Records per delivery, counted"), so the
difference of the two a's is what replication adds per message at equal coalescing, and the
ratio at the rounds' median write calls is the comparison without the coalescing's spread.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from typing import Any


def row(one: dict[str, Any], cluster: dict[str, Any]) -> dict[str, float]:
    def per_message(report: dict[str, Any]) -> float:
        return float(report["server"]["cpu_s"] * 1e6 / report["messages_sent"])

    def writes_per_message(report: dict[str, Any]) -> float:
        calls = report["server"].get("io_calls_by_process", {})
        return sum(c["write_calls"] for c in calls.values()) / report["messages_sent"]

    figures, commands = cluster["cluster"], cluster["cluster"]["redis_commands"]
    return {
        "one": per_message(one),
        "total": per_message(cluster),
        "nodes": figures["nodes_cpu_us_per_message"],
        "redis": figures["redis_cpu_us_per_message"],
        "ratio": per_message(cluster) / per_message(one),
        "p50_one": one["latency_ms"]["p50"],
        "p50": cluster["latency_ms"]["p50"],
        "p99_one": one["latency_ms"]["p99"],
        "p99": cluster["latency_ms"]["p99"],
        "xadd": commands.get("xadd", {}).get("calls_per_message", 0.0),
        "xread": commands.get("xread", {}).get("calls_per_message", 0.0),
        "writes_one": writes_per_message(one),
        "writes": writes_per_message(cluster),
    }


def show(name: str, r: dict[str, float]) -> str:
    return (
        f"{name:28s} one {r['one']:6.1f} cluster {r['total']:6.1f} (nodes {r['nodes']:6.1f} "
        f"redis {r['redis']:5.1f}) ratio {r['ratio']:.2f}  p50 {r['p50_one']:.2f}/{r['p50']:.2f} "
        f"p99 {r['p99_one']:.1f}/{r['p99']:.1f}  xadd {r['xadd']:.3f} xread {r['xread']:.3f}"
    )


def main() -> None:
    runs: dict[tuple[str, int, int], dict[str, Any]] = defaultdict(dict)
    for file, path in enumerate(sys.argv[1:]):  # several runs' files: their rounds pooled
        with open(path) as lines:
            for line in lines:
                run = json.loads(line)
                runs[(run["scenario"], file, run["round"])][run["server"]] = run["report"]
    by_scenario: dict[str, list[dict[str, float]]] = defaultdict(list)
    for (scenario, file, number), servers in sorted(runs.items()):
        if "securechat" in servers and "securechat-cluster" in servers:
            figures = row(servers["securechat"], servers["securechat-cluster"])
            by_scenario[scenario].append(figures)
            print(show(f"{scenario} {file}.{number}", figures))
    for scenario, rows in by_scenario.items():
        medians = {key: statistics.median(r[key] for r in rows) for key in rows[0]}
        ratios = ", ".join(f"{r['ratio']:.2f}" for r in sorted(rows, key=lambda r: r["ratio"]))
        print(show(f"median {scenario}", medians) + f"  ratios: {ratios}")
        print(at_equal_records(scenario, rows))


def at_equal_records(scenario: str, rows: list[dict[str, float]]) -> str:
    counted = [r for r in rows if r["writes_one"] and r["writes"]]
    if len(counted) < 3:
        return f"{scenario}: fewer than 3 rounds with write calls counted, no fit"
    one = statistics.linear_regression(
        [r["writes_one"] for r in counted], [r["one"] for r in counted]
    )
    cluster = statistics.linear_regression(
        [r["writes"] for r in counted], [r["total"] for r in counted]
    )
    writes = statistics.median([r["writes_one"] for r in counted] + [r["writes"] for r in counted])
    at = (cluster.intercept + cluster.slope * writes) / (one.intercept + one.slope * writes)
    return (
        f"{scenario}: CPU µs / message = a + b · writes / message over {len(counted)} rounds: "
        f"one process a {one.intercept:.1f} b {one.slope:.2f}, cluster a {cluster.intercept:.1f} "
        f"b {cluster.slope:.2f}; replication adds {cluster.intercept - one.intercept:.1f} µs / "
        f"message at equal records; at the median {writes:.1f} writes / message the cluster "
        f"costs {at:.2f}x one process"
    )


if __name__ == "__main__":
    main()
