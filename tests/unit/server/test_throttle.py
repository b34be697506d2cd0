"""Bounded, expiring failure and attempt tables (server/throttle.py)."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from securechat.server.throttle import Backoff, Quota, backoff_delay, source_key


def test_failures_are_free_then_double_up_to_the_cap() -> None:
    delays = [backoff_delay(failures, free=3, max_delay=10) for failures in range(1, 8)]
    assert delays == [0, 0, 2, 4, 8, 10, 10]


def test_a_blocked_key_waits_and_others_do_not() -> None:
    table = Backoff(free=1, max_delay=300, memory=3600, max_entries=100)
    table.fail("a", now=0)
    assert table.wait("a", 1) == 1 and table.wait("b", 1) == 0


def test_failures_are_forgotten_after_the_memory_window() -> None:
    table = Backoff(free=3, max_delay=300, memory=60, max_entries=100)
    for _ in range(2):
        table.fail("a", now=0)
    assert table.failures("a", 59) == 2
    assert table.failures("a", 60) == 0 and len(table) == 0


def test_a_quota_counts_attempts_in_a_sliding_window() -> None:
    quota = Quota(limit=2, window=60, max_entries=100)
    quota.spend("a", 0)
    quota.spend("a", 10)
    assert quota.wait("a", 20) == 40
    assert quota.wait("a", 60) == 0


def test_ipv6_sources_are_grouped_by_64_and_ipv4_stands_alone() -> None:
    assert (
        source_key("2001:db8:1:2::1") == source_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    )
    assert source_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert source_key("192.0.2.1") != source_key("192.0.2.2")
    assert source_key("not-an-address") == "not-an-address"


@given(st.lists(st.tuples(st.integers(0, 50), st.floats(0, 1e6)), max_size=300))
def test_a_backoff_table_never_exceeds_its_bound(events: list[tuple[int, float]]) -> None:
    table = Backoff(free=2, max_delay=300, memory=60, max_entries=8)
    now = 0.0
    for key, step in events:
        now += step % 100
        table.fail(key, now)
        assert len(table) <= 8
        assert 0 <= table.wait(key, now) <= 300


@given(st.lists(st.tuples(st.integers(0, 50), st.floats(0, 100)), max_size=300))
@example([(0, 34.65446539740778), (0, 0.0), (0, 0.0)])  # t + 30 - t == 30.000000000000007
def test_a_quota_table_never_exceeds_its_bound(events: list[tuple[int, float]]) -> None:
    quota = Quota(limit=3, window=30, max_entries=8)
    now = 0.0
    for key, step in events:
        now += step
        quota.spend(key, now)
        assert len(quota) <= 8
        assert 0 <= quota.wait(key, now) <= 30
