"""The worker-process side: an event loop, a pipe to the coordinator, and one scenario.

Messages on the pipe are ``(kind, payload)`` tuples. A worker sends ``ready`` (or ``failed``),
waits for ``go``, streams ``progress`` every half second, and on ``stop`` sends its ``result``
and then disconnects its clients. The coordinator never waits for a worker without a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from securechat.bench.ircconn import IrcConnection
from securechat.bench.target import Target

PROGRESS_INTERVAL_S = 0.5
MAX_ERRORS_REPORTED = 5  # distinct error texts in a worker's result: enough to tell the cause
Message = tuple[str, Any]


class Channel:
    """The worker's two pipe ends: commands in (watched by the event loop), reports out.

    Two one-way pipes rather than one duplex pipe: an event loop puts the descriptors it watches
    in non-blocking mode, and a multi-megabyte result must be written with a blocking write.
    """

    def __init__(self, commands: Connection, reports: Connection) -> None:
        self._commands = commands
        self._reports = reports
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        asyncio.get_running_loop().add_reader(commands.fileno(), self._readable)

    def _readable(self) -> None:
        try:
            while self._commands.poll():
                self._inbox.put_nowait(self._commands.recv())
        except (EOFError, OSError):
            # The coordinator is gone: behave as if told to stop, so the worker cleans up.
            asyncio.get_running_loop().remove_reader(self._commands.fileno())
            self._inbox.put_nowait(("stop", None))

    def send(self, kind: str, payload: Any = None) -> None:
        self._reports.send((kind, payload))

    async def expect(self, kind: str) -> Any:
        """Wait for a message of ``kind``; an early ``stop`` raises ``Stopped``."""
        while True:
            got, payload = await self._inbox.get()
            if got == kind:
                return payload
            if got == "stop":
                raise Stopped


class Stopped(Exception):
    """The coordinator said stop before the phase this worker was waiting for."""


@dataclass(frozen=True)
class Share:
    """Which part of the load this worker carries: worker ``index`` of ``count``."""

    index: int
    count: int

    def items(self, total: int) -> range:
        """The item numbers (clients, loops) this worker owns: every count-th from index."""
        return range(self.index, total, self.count)


WorkerFn = Callable[[Any, Target, Share, Channel], Awaitable[None]]


def worker_main(
    scenario: WorkerFn,
    plan: Any,
    target: Target,
    share: Share,
    commands: Connection,
    reports: Connection,
) -> None:
    """Process entry point (spawned): run one scenario's worker coroutine to completion."""
    _raise_open_files_limit()

    async def main() -> None:
        channel = Channel(commands, reports)
        try:
            await scenario(plan, target, share, channel)
        except Stopped:
            pass
        except Exception as exc:  # reported to the coordinator, which fails the run with it
            channel.send("failed", f"worker {share.index}: {describe(exc)}")

    _event_loop_runner()(main())
    commands.close()
    reports.close()


def describe(exc: BaseException) -> str:
    """One line for an error; for a TaskGroup's group, how many failed and the first cause."""
    if isinstance(exc, BaseExceptionGroup):
        leaves = _leaves(exc)
        return f"{len(leaves)} task(s) failed, first: {describe(leaves[0])}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def connection_losses(
    conns: Iterable[IrcConnection], errors: Iterable[str] = ()
) -> tuple[int, list[str]]:
    """How many of ``conns`` were lost unexpectedly, and the first MAX_ERRORS_REPORTED distinct
    error texts, theirs and ``errors``, sorted: what a worker's result says about its losses."""
    lost = [conn for conn in conns if conn.lost_unexpectedly]
    texts = {conn.error or "?" for conn in lost}.union(errors)
    return len(lost), sorted(texts)[:MAX_ERRORS_REPORTED]


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    leaves: list[BaseException] = []
    for exc in group.exceptions:
        leaves.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return leaves


async def report_progress(channel: Channel, snapshot: Callable[[], dict[str, Any]]) -> None:
    """Send ``snapshot()`` every PROGRESS_INTERVAL_S until cancelled."""
    while True:
        channel.send("progress", snapshot())
        await asyncio.sleep(PROGRESS_INTERVAL_S)


async def cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _raise_open_files_limit() -> None:
    # Thousands of idle clients need thousands of descriptors; the hard limit is ours to use.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _event_loop_runner() -> Callable[[Coroutine[Any, Any, None]], None]:
    """uvloop when installed (a faster client wastes less of the shared core), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    run: Callable[[Coroutine[Any, Any, None]], None] = uvloop.run
    return run
