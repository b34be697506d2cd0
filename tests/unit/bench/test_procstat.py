from __future__ import annotations

import os
from pathlib import Path

import pytest

from securechat.bench.procstat import (
    ProcSample,
    io_calls,
    parse_cpu_seconds,
    parse_io_calls,
    parse_rss_bytes,
    sample,
)
from securechat.bench.report import Measurement, server_figures

# proc(5): pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
# utime stime ...  The command name here holds a space and a ')' on purpose.
STAT = "4242 (ng ircd) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 150 0 0 20 0 1 0 77 1000 300"
IO = "rchar: 900\nwchar: 1200\nsyscr: 41\nsyscw: 57\nread_bytes: 0\nwrite_bytes: 0\n"
STATUS = "Name:\tngircd\nVmPeak:\t   10000 kB\nVmRSS:\t    7232 kB\nThreads:\t1\n"


def test_cpu_seconds_are_utime_plus_stime_over_clock_ticks() -> None:
    assert parse_cpu_seconds(STAT, clock_ticks=100) == 4.0


def test_cpu_seconds_count_the_children_the_process_waited_for() -> None:
    with_children = STAT.replace(" 250 150 0 0 ", " 250 150 30 20 ")
    assert parse_cpu_seconds(with_children, clock_ticks=100) == 4.5


def test_cpu_seconds_reject_a_line_without_command_name() -> None:
    with pytest.raises(ValueError):
        parse_cpu_seconds("garbage", clock_ticks=100)


def test_rss_is_read_in_bytes() -> None:
    assert parse_rss_bytes(STATUS) == 7232 * 1024


def test_rss_missing_is_an_error() -> None:
    with pytest.raises(ValueError):
        parse_rss_bytes("Name:\tkthreadd\n")


def test_sample_reads_a_proc_tree(tmp_path: Path) -> None:
    (tmp_path / "4242").mkdir()
    (tmp_path / "4242" / "stat").write_text(STAT)
    (tmp_path / "4242" / "status").write_text(STATUS)
    reading = sample(4242, proc_root=tmp_path)
    assert reading.rss_bytes == 7232 * 1024
    assert reading.cpu_s == 400 / os.sysconf("SC_CLK_TCK")


def test_sample_of_this_process_is_plausible() -> None:
    reading = sample(os.getpid())
    assert reading.cpu_s > 0 and reading.rss_bytes > 1024 * 1024


def test_io_calls_are_syscr_and_syscw() -> None:
    assert parse_io_calls(IO) == (41, 57)


def test_io_calls_missing_are_an_error() -> None:
    with pytest.raises(ValueError):
        parse_io_calls("rchar: 900\n")


def test_io_calls_of_this_process_count_a_write() -> None:
    before = io_calls(os.getpid())
    os.write(os.open(os.devnull, os.O_WRONLY), b"x")
    after = io_calls(os.getpid())
    assert before is not None and after is not None and after[1] > before[1]


def test_write_calls_are_reported_per_unit_of_work_over_every_process() -> None:
    sample_ = ProcSample(cpu_s=1.0, rss_bytes=1)
    calls = {
        "node0": {"read_calls": 5, "write_calls": 300},
        "node1": {"read_calls": 5, "write_calls": 100},
    }
    measured = Measurement(sample_, sample_, sample_, 1.0, False, io_calls=calls)
    figures = server_figures(measured, {"1k_deliveries": 2.0}, held=0)
    assert figures["write_calls_per_1k_deliveries"] == 200.0
    assert figures["io_calls_by_process"] == calls
