"""Adaptive write coalescing: when ChatServer.flush_all may run again (server/net/pacing.py)."""

from __future__ import annotations

import pytest

from securechat.server.net.pacing import FlushPacer


def test_the_first_flush_runs_at_once() -> None:
    assert FlushPacer(pause=0.004).requested(10.0) == 0.0


def test_output_asked_for_long_after_the_last_flush_goes_out_at_once() -> None:
    pacer = FlushPacer(pause=0.002, stream_gap=0.005)
    pacer.requested(10.0)
    pacer.flushed(10.0, 10.0001)  # took 100 µs
    pacer.requested(10.01)  # 10 ms later: not a stream
    pacer.flushed(10.01, 10.0101)
    assert pacer.requested(10.02) == 0.0  # an idle server never waits


def test_output_asked_for_within_the_stream_gap_waits_the_pause_after_the_last_flush() -> None:
    pacer = FlushPacer(pause=0.002, stream_gap=0.005)
    pacer.requested(10.0)
    pacer.flushed(10.0, 10.0001)
    pacer.requested(10.003)  # 2.9 ms after the last flush ended: a stream
    pacer.flushed(10.003, 10.0031)
    assert pacer.requested(10.0032) == pytest.approx(0.0019)  # until 2 ms after 10.0031


def test_a_request_later_than_the_pause_is_not_delayed_even_while_streaming() -> None:
    """The pause spaces flushes: it never adds to a line that comes after it is over."""
    pacer = FlushPacer(pause=0.002, stream_gap=0.005)
    pacer.requested(10.0)
    pacer.flushed(10.0, 10.0001)
    pacer.requested(10.001)
    pacer.flushed(10.001, 10.0011)
    assert pacer.requested(10.004) == 0.0


def test_a_flush_longer_than_the_stream_gap_counts_as_streaming_when_asked_for_during_it() -> None:
    pacer = FlushPacer(pause=0.002, stream_gap=0.005)
    pacer.requested(10.0)
    pacer.flushed(10.0, 10.01)  # a 10 ms flush
    pacer.requested(10.018)  # 8 ms after it ended: beyond the gap, but sooner than it took
    pacer.flushed(10.018, 10.028)
    assert pacer.requested(10.0281) == pytest.approx(0.0019)


def test_a_paused_flush_that_was_requested_in_time_keeps_the_server_streaming() -> None:
    """The pause itself must not read as idleness: the request time decides, not the start."""
    pacer = FlushPacer(pause=0.002, stream_gap=0.005)
    pacer.requested(10.0)
    pacer.flushed(10.0, 10.0001)
    pacer.requested(10.0002)  # streaming
    pacer.flushed(10.0002, 10.0003)
    wait = pacer.requested(10.0004)  # requested during the pause
    assert wait > 0.0
    pacer.flushed(10.0004 + wait, 10.0004 + wait + 0.0001)
    assert pacer.requested(10.0004 + wait + 0.0002) > 0.0


def test_a_pause_of_zero_never_waits() -> None:
    pacer = FlushPacer(pause=0.0)
    pacer.requested(10.0)
    pacer.flushed(10.0, 10.0001)
    pacer.requested(10.0002)
    pacer.flushed(10.0002, 10.0003)
    assert pacer.requested(10.0004) == 0.0


def _stream_until_paused(pacer: FlushPacer, now: float) -> tuple[float, float]:
    """Flushes 1 ms apart until one must wait: (its request time, the wait)."""
    for _ in range(5):
        wait = pacer.requested(now)
        if wait > 0.0:
            return now, wait
        pacer.flushed(now, now + 0.0001, merged=False)
        now += 0.001
    raise AssertionError("a stream never paused")


def test_after_a_pause_that_merged_no_lines_the_next_flushes_go_out_at_once() -> None:
    """A pause costs a loop wake-up; when the lines it waited for went to different people
    (small rooms), it bought nothing, so pausing stops for skip_after_miss flushes."""
    pacer = FlushPacer(pause=0.002, stream_gap=0.005, skip_after_miss=3)
    now, wait = _stream_until_paused(pacer, 10.0)
    pacer.flushed(now + wait, now + wait + 0.0001, merged=False)
    now += wait + 0.0002
    waits = []
    for _ in range(4):
        waits.append(pacer.requested(now))
        pacer.flushed(now, now + 0.0001, merged=False)
        now += 0.0002
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3] > 0.0  # then a pause is tried again


def test_a_pause_that_merged_lines_keeps_the_stream_paced() -> None:
    pacer = FlushPacer(pause=0.002, stream_gap=0.005, skip_after_miss=3)
    now, wait = _stream_until_paused(pacer, 10.0)
    pacer.flushed(now + wait, now + wait + 0.0001, merged=True)
    assert pacer.requested(now + wait + 0.0002) > 0.0


def test_flushes_that_did_not_wait_never_stop_the_pacing() -> None:
    """Only a pause can be judged: a flush that went out at once merged nothing by nature."""
    pacer = FlushPacer(pause=0.002, stream_gap=0.005, skip_after_miss=3)
    pacer.requested(10.0)
    pacer.flushed(10.0, 10.0001, merged=False)
    pacer.requested(10.003)  # not paused (3 ms > the pause), but streaming
    pacer.flushed(10.003, 10.0031, merged=False)
    assert pacer.requested(10.0032) > 0.0
