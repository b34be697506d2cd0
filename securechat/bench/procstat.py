"""Server CPU time and resident memory from Linux /proc, sampled before and after a phase.

CPU seconds consumed (utime + stime, all threads, and the children waited for) divided by the
work done is a figure that holds on a noisy shared machine far better than wall time: other load
slows the server down but does not make it spend more CPU per delivery.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# /proc/PID/stat fields after "(comm)": state is field 3, utime 14, stime 15, and the CPU of
# the children it waited for, cutime 16 and cstime 17 (proc(5), 1-based).
_FIELDS_BEFORE_STATE = 3
_UTIME_FIELD = 14
_CSTIME_FIELD = 17


@dataclass(frozen=True)
class ProcSample:
    """One reading of a process: CPU seconds used so far and resident set size in bytes."""

    cpu_s: float
    rss_bytes: int


def parse_cpu_seconds(stat_text: str, clock_ticks: int) -> float:
    """utime + stime + cutime + cstime in seconds from the text of /proc/PID/stat: the
    process's own CPU and that of the children it has waited for (a cluster leader's snapshot
    child, a server's helper processes), which is work done for the load too.

    The command name sits in parentheses and may itself contain spaces or ')', so fields are
    counted from the last ')'.
    """
    _, close, rest = stat_text.rpartition(")")
    if not close:
        raise ValueError("not a /proc/PID/stat line: no ')' after the command name")
    fields = rest.split()
    first, last = _UTIME_FIELD - _FIELDS_BEFORE_STATE, _CSTIME_FIELD - _FIELDS_BEFORE_STATE
    return sum(int(tick) for tick in fields[first : last + 1]) / clock_ticks


def parse_rss_bytes(status_text: str) -> int:
    """VmRSS from the text of /proc/PID/status, in bytes (the kernel reports kB)."""
    for line in status_text.splitlines():
        if line.startswith("VmRSS:"):
            value, unit = line.split()[1:3]
            if unit != "kB":
                raise ValueError(f"unexpected VmRSS unit {unit!r}")
            return int(value) * 1024
    raise ValueError("no VmRSS line (a kernel thread or a zombie process?)")


def parse_io_calls(io_text: str) -> tuple[int, int]:
    """(syscr, syscw) from the text of /proc/PID/io: the process's read- and write-family
    system calls (read, readv, pread…; write, writev, pwrite…). ``send``/``sendmsg`` and
    ``recv``/``recvmsg`` are not counted there, so compare these only between servers that
    use ``read``/``write`` on their sockets (securechat, its cluster nodes and Redis)."""
    counts = dict(line.split(": ", 1) for line in io_text.splitlines() if ": " in line)
    try:
        return int(counts["syscr"]), int(counts["syscw"])
    except (KeyError, ValueError):
        raise ValueError("no syscr/syscw lines in /proc/PID/io") from None


def io_calls(pid: int, proc_root: Path = Path("/proc")) -> tuple[int, int] | None:
    """The process's (read calls, write calls) so far, or None where /proc/PID/io is not ours
    to read (another user's process without CAP_SYS_PTRACE)."""
    try:
        return parse_io_calls((proc_root / str(pid) / "io").read_text())
    except PermissionError:
        return None


def sample(pid: int, proc_root: Path = Path("/proc")) -> ProcSample:
    """Read the process's CPU time and RSS now; raises OSError when the process is gone."""
    base = proc_root / str(pid)
    ticks = os.sysconf("SC_CLK_TCK")
    return ProcSample(
        cpu_s=parse_cpu_seconds((base / "stat").read_text(), ticks),
        rss_bytes=parse_rss_bytes((base / "status").read_text()),
    )
