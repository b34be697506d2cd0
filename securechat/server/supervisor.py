"""Keep N child processes running: the parent side of `securechat serve --workers N`.

Rules, in the order a run meets them:

- Each slot (1..N) runs one child. A child is *ready* when it writes a line starting with
  ``ready_prefix`` to its stderr; the supervisor reads every child's stderr and relays the
  other lines to its own, so the operator sees one stream.
- Starting: if a child exits before every slot has been ready once, the start failed (a bad
  URL, a port in use): the others are stopped and ``run`` returns non-zero at once, never a
  restart loop. An error line (``once_prefixes``) that several children write word for word
  while starting is shown once, not N times.
- Running: a child that exits without being asked to is restarted after a back-off that
  doubles with each restart of that slot in the last minute; more than ``max_per_minute``
  such restarts is a crash loop: everything stops and ``run`` returns 1.
- ``forward(signum)``: SIGTERM and SIGINT begin a stop (forwarded to every child, which stops
  gracefully; any still running after ``stop_timeout`` is killed); other signals (SIGHUP) are
  only forwarded. After a stop every child's exit is expected and ``run`` returns 0.

The supervisor knows nothing of securechat's flags: ``command_for(slot, restart)`` builds each
argv, so the tests drive it with small Python scripts as children.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import logging
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from securechat.logs import event

log = logging.getLogger("securechat.workers")

STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})
RESTART_WINDOW = 60.0  # seconds over which restarts of one slot are counted

# (slot from 1, restarts of that slot so far) -> the child's argv
CommandFor = Callable[[int, int], list[str]]


class LineWriter(Protocol):
    def write(self, text: str, /) -> int: ...
    def flush(self) -> None: ...


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    first_delay: float = 0.5  # seconds before a slot's first restart in a minute...
    max_delay: float = 30.0  # ...doubling with each further one, up to this
    max_per_minute: int = 5  # more restarts of one slot within a minute: a crash loop, give up
    stop_timeout: float = 30.0  # after a stop is forwarded, children still running are killed

    def delay(self, recent_restarts: int) -> float:
        return float(min(self.first_delay * 2 ** max(recent_restarts - 1, 0), self.max_delay))


class Supervisor:
    def __init__(
        self,
        count: int,
        command_for: CommandFor,
        ready_prefix: str,
        policy: RestartPolicy | None = None,
        on_ready: Callable[[], None] | None = None,
        hidden_prefixes: tuple[str, ...] = (),
        once_prefixes: tuple[str, ...] = (),
        out: LineWriter | None = None,
    ) -> None:
        """``on_ready`` runs once, when every slot has been ready; lines starting with
        ``ready_prefix`` or one of ``hidden_prefixes`` are not relayed (the parent says
        once what N children would each say); while starting, a line starting with one of
        ``once_prefixes`` (an error line) is relayed once however many children write it."""
        self.count = count
        self.command_for = command_for
        self.ready_prefix = ready_prefix
        self.policy = policy or RestartPolicy()
        self.on_ready = on_ready
        self.hidden = (ready_prefix, *hidden_prefixes)
        self.once_prefixes = once_prefixes
        self.out: LineWriter = out or sys.stderr
        self.started = asyncio.Event()  # every slot has been ready once
        self.children: dict[int, asyncio.subprocess.Process] = {}
        self._ready: set[int] = set()
        self._shown_while_starting: set[str] = set()
        self._stop_signal: int | None = None
        self._stopped = asyncio.Event()
        self._exit_code = 0
        self._kill_timer: asyncio.TimerHandle | None = None

    async def run(self) -> int:
        try:
            await asyncio.gather(*(self._keep(slot) for slot in range(1, self.count + 1)))
        finally:
            if self._kill_timer is not None:
                self._kill_timer.cancel()
        return self._exit_code

    def forward(self, signum: int) -> None:
        if signum in STOP_SIGNALS and self._stop_signal is None:
            self._begin_stop(signum)
            return
        for child in list(self.children.values()):
            _send(child, signum)

    # ---- one slot -----------------------------------------------------------------------

    async def _keep(self, slot: int) -> None:
        restarts: collections.deque[float] = collections.deque()
        loop = asyncio.get_running_loop()
        for restart in range(sys.maxsize):
            code = await self._run_child(slot, restart)
            if self._stop_signal is not None:
                return
            if not self.started.is_set():
                event(log, "worker_failed_at_start", level=logging.ERROR, slot=slot, status=code)
                self._fail(code if code > 0 else 1)
                return
            now = loop.time()
            restarts.append(now)
            while restarts[0] < now - RESTART_WINDOW:
                restarts.popleft()
            if len(restarts) > self.policy.max_per_minute:
                event(log, "worker_crash_loop", level=logging.ERROR, slot=slot, status=code,
                      restarts_last_minute=len(restarts) - 1)  # fmt: skip
                self._fail(1)
                return
            delay = self.policy.delay(len(restarts))
            event(
                log, "worker_died", level=logging.WARNING, slot=slot, status=code, restart_in=delay
            )
            if await self._stopping_within(delay):
                return

    async def _run_child(self, slot: int, restart: int) -> int:
        argv = self.command_for(slot, restart)
        # A process group of its own: a signal to ours (Ctrl-C, a terminal hangup, `timeout`)
        # reaches the child once, through forward(), not twice (a second SIGHUP would make it
        # reload twice, the second failing as "already running").
        child = await asyncio.create_subprocess_exec(
            *argv,
            stderr=asyncio.subprocess.PIPE,
            process_group=0,
            preexec_fn=_die_with(os.getpid()),
        )
        self.children[slot] = child
        if self._stop_signal is not None:  # the stop came while it was being started
            _send(child, self._stop_signal)
        if restart:
            event(log, "worker_restarted", slot=slot, pid=child.pid, restarts=restart)
        assert child.stderr is not None
        async for raw in child.stderr:
            self._line(slot, raw.decode("utf-8", errors="replace"))
        code = await child.wait()
        del self.children[slot]
        return code

    def _line(self, slot: int, line: str) -> None:
        if line.startswith(self.ready_prefix):
            self._became_ready(slot)
        if line.startswith(self.hidden):
            return
        if not self.started.is_set() and line.startswith(self.once_prefixes):
            if line in self._shown_while_starting:
                return
            self._shown_while_starting.add(line)
        self.out.write(line if line.endswith("\n") else line + "\n")
        self.out.flush()

    def _became_ready(self, slot: int) -> None:
        self._ready.add(slot)
        if self.started.is_set():
            event(log, "worker_ready", slot=slot)
        elif len(self._ready) == self.count:
            self.started.set()
            self._shown_while_starting.clear()
            if self.on_ready is not None and self._stop_signal is None:
                self.on_ready()

    # ---- stopping -----------------------------------------------------------------------

    def _fail(self, code: int) -> None:
        if self._stop_signal is None:
            self._exit_code = code
            self._begin_stop(signal.SIGTERM)

    def _begin_stop(self, signum: int) -> None:
        self._stop_signal = signum
        self._stopped.set()
        for child in list(self.children.values()):
            _send(child, signum)
        loop = asyncio.get_running_loop()
        self._kill_timer = loop.call_later(self.policy.stop_timeout, self._kill_stragglers)

    def _kill_stragglers(self) -> None:
        for slot, child in list(self.children.items()):
            event(log, "worker_killed", level=logging.ERROR, slot=slot, reason="stop timed out")
            _send(child, signal.SIGKILL)
            self._exit_code = self._exit_code or 1

    async def _stopping_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._stopped.wait(), seconds)
        except TimeoutError:
            return False
        return True


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def _die_with(parent: int) -> Callable[[], None] | None:
    """Run in the child before exec (Linux): SIGTERM it when the supervisor dies, even by
    SIGKILL, so no worker outlives it holding the port under a name nobody restarts."""
    libc = _LIBC
    if libc is None:  # elsewhere an orphaned worker serves on until stopped by hand
        return None

    def in_child() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the supervisor died before prctl: nobody would tell us
            os.kill(os.getpid(), signal.SIGTERM)

    return in_child


def _send(child: asyncio.subprocess.Process, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it exited; its wait() tells its slot
        child.send_signal(signum)
