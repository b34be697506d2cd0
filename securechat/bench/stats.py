"""Percentiles and latency summaries over exact samples.

Samples are kept exactly (nanosecond integers) rather than bucketed: a run's delivery count is
fixed by its parameters, so memory is bounded by the scenario, and exact values keep the p99/max
of small runs honest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

PERCENTILES: tuple[tuple[str, float], ...] = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0))


def percentile(sorted_values: Sequence[int], pct: float) -> int:
    """Nearest-rank percentile of an ascending sequence (the value at rank ceil(pct% of n))."""
    if not sorted_values:
        raise ValueError("percentile of an empty sequence")
    if not 0.0 <= pct <= 100.0:
        raise ValueError(f"percentile out of range: {pct}")
    rank = max(1, math.ceil(pct / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


def latency_summary_ms(samples_ns: Sequence[int]) -> dict[str, float | None]:
    """p50/p90/p99/max/mean in milliseconds; every figure is None when there are no samples."""
    keys = [name for name, _ in PERCENTILES] + ["max", "mean"]
    if not samples_ns:
        return dict.fromkeys(keys)
    ordered = sorted(samples_ns)
    summary: dict[str, float | None] = {
        name: _ms(percentile(ordered, pct)) for name, pct in PERCENTILES
    }
    summary["max"] = _ms(ordered[-1])
    summary["mean"] = _ms(sum(ordered) / len(ordered))
    return summary


def rate(count: int, seconds: float) -> float | None:
    """Events per second, or None when the interval is empty (nothing to divide by)."""
    return count / seconds if seconds > 0 else None


def per_second(count: int, seconds: float) -> float | None:
    """``rate`` as reports print it: to a tenth of an event per second."""
    value = rate(count, seconds)
    return None if value is None else round(value, 1)


def median(values: Sequence[float]) -> float:
    """Median of a non-empty sequence (mean of the middle two for even lengths)."""
    if not values:
        raise ValueError("median of an empty sequence")
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[mid])
    return (ordered[mid - 1] + ordered[mid]) / 2.0


def _ms(value_ns: float) -> float:
    return round(value_ns / 1_000_000.0, 3)
