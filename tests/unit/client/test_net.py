"""Reconnect backoff: doubling, capped, jittered, reset after a good connection."""

from __future__ import annotations

from securechat.client.net import Backoff


def test_delays_double_from_the_base() -> None:
    backoff = Backoff(base=1.0, cap=60.0, rand=lambda: 1.0)
    assert [backoff.next_delay() for _ in range(4)] == [1.0, 2.0, 4.0, 8.0]


def test_delays_are_capped() -> None:
    backoff = Backoff(base=1.0, cap=10.0, rand=lambda: 1.0)
    assert [backoff.next_delay() for _ in range(6)][-2:] == [10.0, 10.0]


def test_jitter_keeps_between_half_and_all_of_the_delay() -> None:
    low = Backoff(base=4.0, rand=lambda: 0.0).next_delay()
    high = Backoff(base=4.0, rand=lambda: 1.0).next_delay()
    assert (low, high) == (2.0, 4.0)


def test_reset_starts_from_the_base_again() -> None:
    backoff = Backoff(base=1.0, rand=lambda: 1.0)
    backoff.next_delay()
    backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() == 1.0


def test_many_failures_never_overflow() -> None:
    backoff = Backoff(base=1.0, cap=60.0, rand=lambda: 1.0)
    assert [backoff.next_delay() for _ in range(2000)][-1] == 60.0
