"""The parent process: start workers, run the phases, sample the server, collect results.

Phases: workers connect and report ``ready``; the server is sampled and ``go`` is broadcast;
progress streams in until the scenario says it is complete (or the overall deadline passes);
an optional hold keeps the clients connected; the server is sampled again; ``stop`` collects the
results. Every wait has a deadline, and workers that do not exit are terminated.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import sys
import time
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, Protocol

from securechat.bench.procstat import ProcSample
from securechat.bench.redis_probe import CommandStat, RedisProbeError, command_delta
from securechat.bench.report import Measurement
from securechat.bench.server_processes import Reading, ServerProcesses, cpu_used, io_calls_used
from securechat.bench.target import Target
from securechat.bench.worker import Share, WorkerFn, worker_main

RESULT_GRACE_S = 15.0  # after "stop": time for workers to tally and send their results
EXIT_GRACE_S = 10.0  # then: time to QUIT their clients and exit before being terminated
PROGRESS_EVERY_S = 1.0


class BenchError(Exception):
    """The run could not be carried out (a worker failed, or never got ready in time)."""


class Driver(Protocol):
    """What a scenario tells the coordinator (see fanout.FanoutDriver for an example)."""

    name: str
    worker: WorkerFn
    plan: Any
    hold_s: float

    def is_complete(self, progress: Sequence[dict[str, Any]], quiet_for_s: float) -> bool: ...

    def progress_text(self, progress: Sequence[dict[str, Any]]) -> str: ...

    def report(
        self,
        ready: Sequence[dict[str, Any]],
        results: Sequence[dict[str, Any]],
        measured: Measurement,
    ) -> dict[str, Any]: ...


class Run:
    def __init__(
        self,
        driver: Driver,
        target: Target,
        procs: int,
        server_pid: int | None,
        timeout_s: float,
        show_progress: bool,
        servers: ServerProcesses | None = None,
    ) -> None:
        """``server_pid`` is the one server to sample; ``servers`` instead, every process of a
        cluster (its nodes and Redis)."""
        self.driver = driver
        self.target = target
        self.procs = procs
        if servers is None and server_pid is not None:
            servers = ServerProcesses([server_pid])
        self.servers = servers
        self.deadline = time.monotonic() + timeout_s
        self.show_progress = show_progress
        self.commands: list[Connection] = []  # coordinator -> worker
        self.reports: list[Connection] = []  # worker -> coordinator
        self.processes: list[BaseProcess] = []
        self.progress: list[dict[str, Any]] = []
        self.reported: set[int] = set()

    def execute(self) -> dict[str, Any]:
        baseline = self._sample()
        try:
            self._start_workers()
            ready = self._collect("ready", self.deadline)
            before = self._sample()
            started = time.monotonic()
            self._broadcast("go")
            timed_out = self._watch()
            after, server_exited = self._sample_after()
            elapsed = time.monotonic() - started
            self._broadcast("stop")
            results = self._collect("result", time.monotonic() + RESULT_GRACE_S)
        finally:
            self._reap()
        measured = Measurement(
            _total(baseline),
            _total(before),
            _total(after),
            elapsed,
            timed_out,
            parts=cpu_used(before, after) if before and after else {},
            redis_commands=_commands(before, after),
            redis_memory_grown=after.redis_memory - before.redis_memory if before and after else 0,
            io_calls=io_calls_used(before, after) if before and after else {},
        )
        report = self.driver.report(ready, results, measured)
        report["timed_out"] = timed_out
        if server_exited:
            report["server_exited"] = True
        return report

    # -- phases ---------------------------------------------------------------------------

    def _start_workers(self) -> None:
        # spawn, not fork: the caller may be a process with threads (a test running a server).
        context = multiprocessing.get_context("spawn")
        for index in range(self.procs):
            commands_in, commands_out = context.Pipe(duplex=False)
            reports_in, reports_out = context.Pipe(duplex=False)
            share = Share(index, self.procs)
            process = context.Process(
                target=worker_main,
                args=(
                    self.driver.worker,
                    self.driver.plan,
                    self.target,
                    share,
                    commands_in,
                    reports_out,
                ),
                name=f"bench-{self.driver.name}-{index}",
                daemon=True,
            )
            process.start()
            commands_in.close()
            reports_out.close()
            self.commands.append(commands_out)
            self.reports.append(reports_in)
            self.processes.append(process)
        self.progress = [{} for _ in range(self.procs)]

    def _watch(self) -> bool:
        """Follow progress until complete (then hold, if asked); True when the deadline hit."""
        last_change = time.monotonic()
        last_print = 0.0
        hold_until: float | None = None
        while True:
            now = time.monotonic()
            if now >= self.deadline:
                return True
            for index, kind, payload in self._messages(min(self.deadline, now + 0.25)):
                if kind == "progress" and payload != self.progress[index]:
                    self.progress[index] = payload
                    last_change = time.monotonic()
            now = time.monotonic()
            ready = all(self.progress)
            if (
                hold_until is None
                and ready
                and self.driver.is_complete(self.progress, now - last_change)
            ):
                hold_until = now + self.driver.hold_s
            if hold_until is not None and now >= hold_until:
                return False
            if self.show_progress and ready and now - last_print >= PROGRESS_EVERY_S:
                last_print = now
                self._print_progress(hold_until, now)

    def _print_progress(self, hold_until: float | None, now: float) -> None:
        text = self.driver.progress_text(self.progress)
        if hold_until is not None:
            text += f", holding {max(0.0, hold_until - now):.0f}s"
        print(f"[bench {self.driver.name}] {text}", file=sys.stderr, flush=True)

    def _collect(self, wanted: str, deadline: float) -> list[dict[str, Any]]:
        got: dict[int, dict[str, Any]] = {}
        while len(got) < self.procs:
            if time.monotonic() >= deadline:
                raise BenchError(f"{self.procs - len(got)} worker(s) sent no {wanted!r} in time")
            for index, kind, payload in self._messages(deadline):
                if kind == wanted:
                    got[index] = payload
        return [got[index] for index in range(self.procs)]

    def _messages(self, until: float) -> Iterator[tuple[int, str, Any]]:
        """Messages that arrive before ``until``; a worker's failure raises BenchError."""
        timeout = max(0.0, until - time.monotonic())
        # A worker that sent its result exits and its pipe reads EOF: stop listening to it.
        listening = [pipe for i, pipe in enumerate(self.reports) if i not in self.reported]
        for ready in wait(listening, timeout):
            assert isinstance(ready, Connection)
            index = self.reports.index(ready)
            try:
                kind, payload = ready.recv()
            except EOFError:
                process = self.processes[index]
                process.join(1.0)
                raise BenchError(
                    f"worker {index} exited unexpectedly (exit code {process.exitcode})"
                ) from None
            if kind == "failed":
                raise BenchError(str(payload))
            if kind == "result":
                self.reported.add(index)
            yield index, kind, payload

    def _broadcast(self, kind: str) -> None:
        for pipe in self.commands:
            pipe.send((kind, None))

    def _sample(self) -> Reading | None:
        if self.servers is None:
            return None
        try:
            return self.servers.sample()
        except (OSError, RedisProbeError) as exc:
            pids = " ".join(map(str, self.servers.pids.values()))
            raise BenchError(f"cannot read server process(es) {pids}: {exc}") from exc

    def _sample_after(self) -> tuple[Reading | None, bool]:
        """The closing sample; a server that died under load is a result, not a bench error."""
        try:
            return self._sample(), False
        except BenchError:
            return None, True

    def _reap(self) -> None:
        for pipe in self.commands:
            with contextlib.suppress(OSError):  # that worker is already gone
                pipe.send(("stop", None))
        exit_deadline = time.monotonic() + EXIT_GRACE_S
        for process in self.processes:
            process.join(max(0.0, exit_deadline - time.monotonic()))
            if process.is_alive():
                process.terminate()
                process.join(2.0)
        for pipe in self.commands + self.reports:
            pipe.close()


def _total(reading: Reading | None) -> ProcSample | None:
    return None if reading is None else reading.total


def _commands(before: Reading | None, after: Reading | None) -> dict[str, CommandStat]:
    if before is None or after is None:
        return {}
    return command_delta(before.commands, after.commands)
