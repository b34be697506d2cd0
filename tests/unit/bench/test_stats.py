from __future__ import annotations

import pytest

from securechat.bench.stats import latency_summary_ms, median, per_second, percentile, rate


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 90) == 90
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile(values, 0) == 1


def test_percentile_of_one_value_is_that_value() -> None:
    assert percentile([7], 50) == percentile([7], 99) == 7


def test_percentile_rejects_empty_and_out_of_range() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1], 101)


def test_latency_summary_converts_ns_to_ms_whatever_the_input_order() -> None:
    samples = [3_000_000, 1_000_000, 2_000_000, 4_000_000]
    summary = latency_summary_ms(samples)
    assert summary == {"p50": 2.0, "p90": 4.0, "p99": 4.0, "max": 4.0, "mean": 2.5}


def test_latency_summary_without_samples_is_all_none() -> None:
    assert set(latency_summary_ms([]).values()) == {None}


def test_rate_and_median() -> None:
    assert rate(10, 2.0) == 5.0
    assert rate(10, 0.0) is None
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 2.0, 3.0]) == 2.5


def test_per_second_is_the_rate_to_a_tenth_and_none_for_an_empty_interval() -> None:
    assert per_second(10, 3.0) == 3.3
    assert per_second(5, 0.0) is None
