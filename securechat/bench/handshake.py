"""The handshake scenario: K loops that connect, handshake TLS, register and QUIT, for a while.

A loop waits for the server to close the connection after QUIT before starting the next one, so
the server's work for each registration falls inside the measured time.
"""

from __future__ import annotations

import asyncio
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from securechat.bench.ircconn import connect, monotonic_ns
from securechat.bench.nicks import nick
from securechat.bench.report import Measurement, merge_workers, server_figures
from securechat.bench.stats import latency_summary_ms, per_second
from securechat.bench.target import Target
from securechat.bench.worker import Channel, Share, WorkerFn, cancel, report_progress

FAILURE_BACKOFF_S = 0.05  # after a failed attempt: a refusing server must not become a spin loop


@dataclass(frozen=True)
class HandshakePlan:
    workers: int  # concurrent connect/register/QUIT loops over all processes
    duration_s: float
    tag: str = "aa"

    def __post_init__(self) -> None:
        if self.workers < 1 or self.duration_s <= 0:
            raise ValueError("handshake needs workers >= 1 and duration > 0")


@dataclass
class Loops:
    registrations: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    finished: bool = False
    started_ns: int = 0
    finished_ns: int = 0
    setup_ns: array[int] = field(default_factory=lambda: array("q"))


async def run_worker(plan: HandshakePlan, target: Target, share: Share, channel: Channel) -> None:
    state = Loops()
    channel.send("ready", {})
    await channel.expect("go")
    progress = asyncio.create_task(report_progress(channel, lambda: _snapshot(state)))
    loops = asyncio.create_task(_run_loops(plan, target, share, state))
    await channel.expect("stop")
    await cancel(loops)
    await cancel(progress)
    channel.send("result", _result(state))


async def _run_loops(plan: HandshakePlan, target: Target, share: Share, state: Loops) -> None:
    loop = asyncio.get_running_loop()
    context = target.ssl_context()
    end = loop.time() + plan.duration_s
    state.started_ns = monotonic_ns()
    mine = share.items(plan.workers)

    async def one_loop(loop_number: int) -> None:
        attempt = 0
        while loop.time() < end:
            number = attempt * plan.workers + loop_number  # unique over all loops of the run
            attempt += 1
            began = monotonic_ns()
            try:
                conn = await connect(target, nick("h", plan.tag, number), context)
            except (OSError, ConnectionError, TimeoutError) as exc:
                state.failures[type(exc).__name__] += 1
                await asyncio.sleep(FAILURE_BACKOFF_S)
                continue
            state.registrations += 1
            state.setup_ns.append(monotonic_ns() - began)
            conn.quit()
            try:
                await asyncio.wait_for(conn.closed, target.connect_timeout)
            except TimeoutError:
                conn.abort()
                state.failures["no close after QUIT"] += 1

    await asyncio.gather(*(one_loop(n) for n in mine))
    state.finished_ns = monotonic_ns()
    state.finished = True


def _snapshot(state: Loops) -> dict[str, Any]:
    return {
        "registrations": state.registrations,
        "failed": sum(state.failures.values()),
        "finished": state.finished,
    }


def _result(state: Loops) -> dict[str, Any]:
    return {
        **_snapshot(state),
        "started_ns": state.started_ns,
        "finished_ns": state.finished_ns,
        "setup_ns": state.setup_ns.tobytes(),
        "failures": dict(state.failures),
    }


class HandshakeDriver:
    name = "handshake"
    hold_s = 0.0

    def __init__(self, plan: HandshakePlan) -> None:
        self.worker: WorkerFn = run_worker  # an instance attribute: a class one would bind
        self.plan = plan

    def is_complete(self, progress: Sequence[dict[str, Any]], quiet_for_s: float) -> bool:
        return all(p["finished"] for p in progress)

    def progress_text(self, progress: Sequence[dict[str, Any]]) -> str:
        registrations = sum(p["registrations"] for p in progress)
        return f"registrations {registrations}, failed {sum(p['failed'] for p in progress)}"

    def report(
        self,
        ready: Sequence[dict[str, Any]],
        results: Sequence[dict[str, Any]],
        measured: Measurement,
    ) -> dict[str, Any]:
        registrations = sum(r["registrations"] for r in results)
        failures, setup = merge_workers(results)
        # The workers' own clocks: the coordinator notices "finished" up to a progress tick late.
        duration_s = (
            max(r["finished_ns"] for r in results) - min(r["started_ns"] for r in results)
        ) / 1e9
        return {
            "scenario": self.name,
            "params": asdict(self.plan),
            "registrations": registrations,
            "failed": sum(failures.values()),
            "failures": dict(failures),
            "duration_s": round(duration_s, 3),
            "registrations_per_s": per_second(registrations, duration_s),
            "registration_latency_ms": latency_summary_ms(setup),
            "server": server_figures(measured, {"registration": registrations}, 0),
        }
