"""The global send-queue budget and the memory-trim decision (sans-I/O parts of sendq.py)."""

from securechat.server.net.sendq import (
    TRIM_HIGH_WATER_BYTES,
    TRIM_INTERVAL_SECONDS,
    MemoryTrim,
    SendBudget,
)


def test_budget_keeps_the_total_of_the_last_size_seen_per_connection() -> None:
    budget: SendBudget[str] = SendBudget()
    budget.update("a", 100)
    budget.update("b", 50)
    budget.update("a", 30)
    assert budget.total == 80
    budget.forget("b")
    assert budget.total == 30 and budget.sizes == {"a": 30}
    budget.update("a", 0)
    assert budget.total == 0 and not budget.sizes


def test_over_budget_the_largest_queues_go_first_until_the_rest_fit() -> None:
    budget: SendBudget[str] = SendBudget()
    for key, size in {"small": 10, "large": 500, "medium": 200, "tiny": 1}.items():
        budget.update(key, size)
    assert budget.over(1000, lambda key: False) == []
    assert budget.over(400, lambda key: False) == ["large"]
    assert budget.over(100, lambda key: False) == ["large", "medium"]


def test_queues_already_leaving_count_as_gone_and_are_not_dropped_again() -> None:
    budget: SendBudget[str] = SendBudget()
    for key, size in {"closing": 500, "medium": 200, "small": 10}.items():
        budget.update(key, size)
    assert budget.over(300, lambda key: key == "closing") == []
    assert budget.over(100, lambda key: key == "closing") == ["medium"]


def test_refresh_measures_again_and_drops_drained_queues() -> None:
    budget: SendBudget[str] = SendBudget()
    budget.update("a", 100)
    budget.update("b", 100)
    budget.refresh({"a": 0, "b": 40}.__getitem__)
    assert budget.total == 40 and budget.sizes == {"b": 40}


def test_memory_is_trimmed_once_the_total_falls_to_a_quarter_of_a_high_water_mark() -> None:
    trim = MemoryTrim()
    high = TRIM_HIGH_WATER_BYTES * 4
    assert not trim.due(high, 0.0)
    assert not trim.due(high // 2, 1.0)
    assert trim.due(high // 4, 2.0)
    assert not trim.due(0, 3.0)  # the mark starts over from what was left


def test_memory_trim_waits_for_its_interval_and_ignores_small_peaks() -> None:
    trim = MemoryTrim()
    assert not trim.due(TRIM_HIGH_WATER_BYTES - 1, 0.0)
    assert not trim.due(0, 1.0)  # a small peak is not worth a trim
    trim.due(TRIM_HIGH_WATER_BYTES, 2.0)
    assert trim.due(0, 3.0)
    trim.due(TRIM_HIGH_WATER_BYTES, 4.0)
    assert not trim.due(0, 5.0)
    assert trim.due(0, 3.0 + TRIM_INTERVAL_SECONDS)
