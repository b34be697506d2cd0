"""Adaptive write coalescing: when ChatServer.flush_all may run again (server/net/pacing.py)."""

from __future__ import annotations

import pytest

from securechat.server.net.pacing import FlushPacer


def test_the_first_flush_runs_at_once() -> None:
    assert FlushPacer().requested(10.0) == 0.0


def test_output_asked_for_long_after_the_last_flush_goes_out_at_once() -> None:
    pacer = FlushPacer(factor=3.0, max_pause=0.002)
    pacer.requested(10.0)
    pacer.flushed(10.0, 10.0001)  # took 100 µs
    assert pacer.requested(10.01) == 0.0  # 10 ms later: an idle server never waits


def test_output_asked_for_while_the_last_flush_had_barely_ended_waits_factor_times_its_length() -> (
    None
):
    pacer = FlushPacer(factor=3.0, max_pause=0.002)
    pacer.requested(10.0)
    pacer.flushed(10.0, 10.0001)
    pacer.requested(10.00012)  # 20 µs after a 100 µs flush: busy
    pacer.flushed(10.00012, 10.00022)
    assert pacer.requested(10.00023) == pytest.approx(0.0003 - 0.00001)


def test_the_pause_never_exceeds_max_pause() -> None:
    pacer = FlushPacer(factor=3.0, max_pause=0.002)
    pacer.requested(10.0)
    pacer.flushed(10.0, 10.01)
    pacer.requested(10.0101)
    pacer.flushed(10.0101, 10.0201)  # a 10 ms flush, requested 0.1 ms after the last one
    assert pacer.requested(10.0201) == pytest.approx(0.002)


def test_a_paused_flush_that_was_requested_in_time_keeps_the_server_busy() -> None:
    """The pause itself must not read as idleness: the request time decides, not the start."""
    pacer = FlushPacer(factor=3.0, max_pause=0.002)
    pacer.requested(10.0)
    pacer.flushed(10.0, 10.0001)
    pacer.requested(10.00005 + 0.0001)  # busy
    pacer.flushed(10.00015, 10.00025)
    wait = pacer.requested(10.00026)  # requested during the pause
    assert wait > 0.0
    pacer.flushed(10.00026 + wait, 10.00026 + wait + 0.0001)
    assert pacer.requested(10.00026 + wait + 0.00011) > 0.0
