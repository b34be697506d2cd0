"""The connections scenario: many idle TLS clients, ramped at a bounded rate, held a while.

Each client registers (waits for 001) and then only answers PING. After every client connected
(or failed), the coordinator holds them for ``hold_s`` seconds and samples the server, which
gives the server's RSS per connection held.
"""

from __future__ import annotations

import asyncio
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from securechat.bench.ircconn import IrcConnection, connect, monotonic_ns, quit_all
from securechat.bench.nicks import nick
from securechat.bench.report import Measurement, all_errors, merge_workers, server_figures
from securechat.bench.stats import latency_summary_ms, per_second
from securechat.bench.target import Target
from securechat.bench.worker import (
    Channel,
    Share,
    WorkerFn,
    cancel,
    connection_losses,
    report_progress,
)


@dataclass(frozen=True)
class ConnectionsPlan:
    clients: int
    ramp: float  # new connections per second, over all workers
    hold_s: float
    # Handshakes in flight over all workers: a ramp must not turn into a connect storm that
    # overflows a small listen backlog (SYN retries would then dominate the figures).
    max_pending: int = 64
    tag: str = "aa"

    def __post_init__(self) -> None:
        if self.clients < 1 or self.ramp <= 0 or self.hold_s < 0 or self.max_pending < 1:
            raise ValueError(
                "connections needs clients >= 1, ramp > 0, hold >= 0, max-pending >= 1"
            )


@dataclass
class Ramp:
    """One worker's connections and what happened to its attempts."""

    conns: list[IrcConnection] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    attempted: int = 0
    finished: bool = False
    first_ns: int = 0
    last_registered_ns: int = 0
    setup_ns: array[int] = field(default_factory=lambda: array("q"))

    def open_count(self) -> int:
        return sum(not conn.closed.done() for conn in self.conns)


async def run_worker(plan: ConnectionsPlan, target: Target, share: Share, channel: Channel) -> None:
    state = Ramp()
    try:
        channel.send("ready", {})
        await channel.expect("go")
        progress = asyncio.create_task(report_progress(channel, lambda: _snapshot(state)))
        ramp = asyncio.create_task(_ramp(plan, target, share, state))
        await channel.expect("stop")
        await cancel(ramp)
        await cancel(progress)
        channel.send("result", _result(state))
    finally:
        await quit_all(state.conns, timeout=5.0)


async def _ramp(plan: ConnectionsPlan, target: Target, share: Share, state: Ramp) -> None:
    """Start one connection every share.count / ramp seconds, a bounded number at a time."""
    loop = asyncio.get_running_loop()
    context = target.ssl_context()
    limit = asyncio.Semaphore(max(1, plan.max_pending // share.count))
    interval = share.count / plan.ramp
    start = loop.time() + interval * share.index / share.count
    state.first_ns = monotonic_ns()
    tasks: set[asyncio.Task[None]] = set()

    async def open_one(number: int) -> None:
        began = monotonic_ns()
        try:
            conn = await connect(target, nick("c", plan.tag, number), context)
        except (OSError, ConnectionError, TimeoutError) as exc:
            state.failures[type(exc).__name__] += 1
            return
        finally:
            limit.release()
        state.conns.append(conn)
        state.last_registered_ns = monotonic_ns()
        state.setup_ns.append(state.last_registered_ns - began)

    for position, number in enumerate(share.items(plan.clients)):
        delay = start + position * interval - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        await limit.acquire()
        state.attempted += 1
        task = asyncio.create_task(open_one(number))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks)
    state.finished = True


def _snapshot(state: Ramp) -> dict[str, Any]:
    return {
        "attempted": state.attempted,
        "registered": len(state.conns),
        "failed": sum(state.failures.values()),
        "open": state.open_count(),
        "finished": state.finished,
    }


def _result(state: Ramp) -> dict[str, Any]:
    lost, errors = connection_losses(state.conns)
    return {
        **_snapshot(state),
        "failures": dict(state.failures),
        "disconnects": lost,
        "errors": errors,
        "first_ns": state.first_ns,
        "last_registered_ns": state.last_registered_ns,
        "setup_ns": state.setup_ns.tobytes(),
    }


class ConnectionsDriver:
    name = "connections"

    def __init__(self, plan: ConnectionsPlan) -> None:
        self.worker: WorkerFn = run_worker  # an instance attribute: a class one would bind
        self.plan = plan
        self.hold_s = plan.hold_s

    def is_complete(self, progress: Sequence[dict[str, Any]], quiet_for_s: float) -> bool:
        return all(p["finished"] for p in progress)

    def progress_text(self, progress: Sequence[dict[str, Any]]) -> str:
        registered = sum(p["registered"] for p in progress)
        failed = sum(p["failed"] for p in progress)
        held = sum(p["open"] for p in progress)
        return f"registered {registered}/{self.plan.clients}, failed {failed}, open {held}"

    def report(
        self,
        ready: Sequence[dict[str, Any]],
        results: Sequence[dict[str, Any]],
        measured: Measurement,
    ) -> dict[str, Any]:
        registered = sum(r["registered"] for r in results)
        held = sum(r["open"] for r in results)
        failures, setup = merge_workers(results)
        ramp_s = (
            max(r["last_registered_ns"] for r in results) - min(r["first_ns"] for r in results)
        ) / 1e9
        return {
            "scenario": self.name,
            "params": asdict(self.plan),
            "attempted": sum(r["attempted"] for r in results),
            "registered": registered,
            "failed": sum(failures.values()),
            "failures": dict(failures),
            "disconnects": sum(r["disconnects"] for r in results),
            "errors": all_errors(results),
            "connections_held": held,
            "registrations_per_s": None if registered == 0 else per_second(registered, ramp_s),
            "registration_latency_ms": latency_summary_ms(setup),
            "server": server_figures(measured, {"registration": registered}, held),
        }
