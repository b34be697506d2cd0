"""Every process that serves a run's load, sampled together: one server, or cluster nodes and the
Redis they share.

A cluster's cost is the sum over all of them: work a node hands to Redis does not vanish, it
moves. So the total CPU time (and RSS) is summed over every pid, and kept per process too, so a
report can say where it went (``node0``, ``node1``, ``redis``). Redis is found by its unix socket
(``INFO server`` gives its pid), and its per-command counters are read at the same instants.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from securechat.bench import procstat, redis_probe
from securechat.bench.procstat import ProcSample
from securechat.bench.redis_probe import CommandStat

REDIS = "redis"


@dataclass(frozen=True)
class Reading:
    """All processes at one instant: the sum, each process's CPU seconds, Redis's counters and
    the memory it has allocated (0 without Redis)."""

    total: ProcSample
    cpu_s: dict[str, float]
    commands: dict[str, CommandStat]
    redis_memory: int = 0
    io_calls: dict[str, tuple[int, int]] = field(default_factory=dict)  # (read, write) calls


class ServerProcesses:
    def __init__(self, pids: Sequence[int], redis_socket: str | None = None) -> None:
        if not pids and redis_socket is None:
            raise ValueError("no server process to sample")
        self.redis_socket = redis_socket
        # One securechat process is "server"; several are the nodes of a cluster.
        names = ["server"] if len(pids) == 1 else [f"node{i}" for i in range(len(pids))]
        self.pids: dict[str, int] = dict(zip(names, pids, strict=True))
        if redis_socket is not None:
            self.pids[REDIS] = redis_probe.pid(redis_socket)

    @property
    def is_cluster(self) -> bool:
        return self.redis_socket is not None

    def sample(self) -> Reading:
        """Read every process now; OSError when one is gone, RedisProbeError when Redis is."""
        samples = {name: procstat.sample(pid) for name, pid in self.pids.items()}
        calls = {name: procstat.io_calls(pid) for name, pid in self.pids.items()}
        commands: dict[str, CommandStat] = {}
        memory = 0
        if self.redis_socket is not None:
            commands = redis_probe.command_stats(self.redis_socket)
            memory = redis_probe.used_memory(self.redis_socket)
        total = ProcSample(
            cpu_s=sum(s.cpu_s for s in samples.values()),
            rss_bytes=sum(s.rss_bytes for s in samples.values()),
        )
        cpu_s = {name: s.cpu_s for name, s in samples.items()}
        readable = {name: pair for name, pair in calls.items() if pair is not None}
        return Reading(total, cpu_s, commands, memory, readable)


def cpu_used(before: Reading, after: Reading) -> dict[str, float]:
    """CPU seconds each process used between two readings."""
    return {name: round(after.cpu_s[name] - before.cpu_s[name], 3) for name in after.cpu_s}


def io_calls_used(before: Reading, after: Reading) -> dict[str, dict[str, int]]:
    """Read and write system calls each process made between two readings (those whose
    /proc/PID/io could be read both times)."""
    return {
        name: {
            "read_calls": after.io_calls[name][0] - before.io_calls[name][0],
            "write_calls": after.io_calls[name][1] - before.io_calls[name][1],
        }
        for name in after.io_calls
        if name in before.io_calls
    }
