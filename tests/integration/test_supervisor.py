"""The supervisor of `serve --workers` with real child processes: small Python scripts that
report on stderr what they are and which signals reach them (supervisor.py)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from securechat.server.supervisor import RestartPolicy, Supervisor

TIMEOUT = 20.0

# argv: behaviour slot restart. Says "READY slot restart" once its handlers are in place,
# then prints every signal it gets; SIGTERM/SIGINT end it with status 0 unless it is "stubborn".
CHILD = textwrap.dedent(
    """
    import signal, sys
    behaviour, slot, restart = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    if behaviour == "fail":
        sys.exit(print("child: error: cannot reach redis://nowhere", file=sys.stderr) or 2)
    if behaviour == "crash" and restart:
        sys.exit(print(f"READY {slot} {restart}", file=sys.stderr, flush=True) or 3)
    def on(signum, frame):
        print(f"GOT {signal.Signals(signum).name} {slot} {restart}", file=sys.stderr, flush=True)
        if signum == signal.SIGUSR1 and behaviour in ("die", "crash") and slot == 1:
            sys.exit(3)
        if signum in (signal.SIGTERM, signal.SIGINT) and behaviour != "stubborn":
            sys.exit(0)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
        signal.signal(s, on)
    print(f"up {slot} {restart}", file=sys.stderr, flush=True)
    print(f"READY {slot} {restart}", file=sys.stderr, flush=True)
    while True:
        signal.pause()
    """
)


class Lines:
    """What the supervisor relays, with a way to wait for a line."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._changed = asyncio.Event()

    def write(self, text: str) -> int:
        self.lines.append(text)
        self._changed.set()
        return len(text)

    def flush(self) -> None:
        pass

    def count(self, needle: str) -> int:
        return sum(needle in line for line in self.lines)

    async def wait_for(self, needle: str, count: int = 1) -> None:
        async with asyncio.timeout(TIMEOUT):
            while self.count(needle) < count:
                self._changed.clear()
                await self._changed.wait()


def children(tmp_path: Path, behaviour: str) -> tuple[Callable[[int, int], list[str]], list]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    calls: list[tuple[int, int]] = []

    def command_for(slot: int, restart: int) -> list[str]:
        calls.append((slot, restart))
        return [sys.executable, str(script), behaviour, str(slot), str(restart)]

    return command_for, calls


def make(tmp_path: Path, behaviour: str, count: int = 2, **policy: float) -> tuple:
    command_for, calls = children(tmp_path, behaviour)
    out = Lines()
    ready: list[bool] = []
    supervisor = Supervisor(
        count,
        command_for,
        "READY",
        RestartPolicy(**policy),  # type: ignore[arg-type]
        on_ready=lambda: ready.append(True),
        once_prefixes=("child: error:",),
        out=out,
    )
    return supervisor, out, calls, ready


async def start(supervisor: Supervisor) -> asyncio.Task[int]:
    task = asyncio.create_task(supervisor.run())
    async with asyncio.timeout(TIMEOUT):
        await supervisor.started.wait()
    return task


def test_forwards_hup_to_every_child_and_stops_them_cleanly(tmp_path: Path) -> None:
    supervisor, out, calls, ready = make(tmp_path, "serve")

    async def scenario() -> int:
        task = await start(supervisor)
        assert ready == [True]
        assert out.count("READY") == 0  # the parent says "ready" once, in on_ready
        supervisor.forward(signal.SIGHUP)
        await out.wait_for("GOT SIGHUP", count=2)
        supervisor.forward(signal.SIGTERM)
        return await asyncio.wait_for(task, TIMEOUT)

    assert asyncio.run(scenario()) == 0
    assert out.count("GOT SIGTERM") == 2
    assert sorted(calls) == [(1, 0), (2, 0)]  # nobody was restarted after being told to stop


@pytest.mark.logs_error
def test_a_start_failure_is_shown_once_and_never_restarted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    supervisor, out, calls, ready = make(tmp_path, "fail", count=3)
    assert asyncio.run(asyncio.wait_for(supervisor.run(), TIMEOUT)) == 2  # the child's status
    assert out.count("child: error: cannot reach redis://nowhere") == 1
    assert ready == []
    assert all(restart == 0 for _, restart in calls)
    assert "event=worker_failed_at_start" in caplog.text


def test_a_child_that_dies_is_restarted_with_its_restart_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    supervisor, out, calls, ready = make(tmp_path, "die", first_delay=0.01)

    async def scenario() -> int:
        task = await start(supervisor)
        supervisor.forward(signal.SIGUSR1)  # slot 1 exits with status 3 on it; slot 2 carries on
        await out.wait_for("up 1 1")  # the new child's handlers are in place
        supervisor.forward(signal.SIGHUP)  # reaches the new child as well as the old slot 2
        await out.wait_for("GOT SIGHUP 1 1")
        await out.wait_for("GOT SIGHUP 2 0")
        supervisor.forward(signal.SIGTERM)
        return await asyncio.wait_for(task, TIMEOUT)

    assert asyncio.run(scenario()) == 0
    assert sorted(calls) == [(1, 0), (1, 1), (2, 0)]
    assert ready == [True]  # a restart does not announce the server again
    assert "event=worker_died slot=1 status=3 restart_in=0.01" in caplog.text


@pytest.mark.logs_error
def test_a_crash_loop_stops_everything_with_status_1(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    supervisor, out, calls, _ = make(tmp_path, "crash", first_delay=0.01, max_per_minute=2)

    async def scenario() -> int:
        task = await start(supervisor)
        supervisor.forward(signal.SIGUSR1)  # slot 1 exits; every restart of it exits at once
        return await asyncio.wait_for(task, TIMEOUT)

    assert asyncio.run(scenario()) == 1
    assert [restart for slot, restart in calls if slot == 1] == [0, 1, 2]
    assert out.count("GOT SIGTERM 2 0") == 1  # the healthy one was stopped, not abandoned
    assert "restart_in=0.01" in caplog.text and "restart_in=0.02" in caplog.text  # doubling
    assert "event=worker_crash_loop slot=1" in caplog.text


@pytest.mark.logs_error
def test_a_child_that_ignores_the_stop_is_killed_and_the_status_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    supervisor, out, _, _ = make(tmp_path, "stubborn", count=1, stop_timeout=0.2)

    async def scenario() -> int:
        task = await start(supervisor)
        supervisor.forward(signal.SIGTERM)
        return await asyncio.wait_for(task, TIMEOUT)

    assert asyncio.run(scenario()) == 1
    assert out.count("GOT SIGTERM") == 1
    assert "event=worker_killed slot=1" in caplog.text


def test_back_off_doubles_up_to_its_bound() -> None:
    policy = RestartPolicy(first_delay=0.5, max_delay=3.0)
    assert [policy.delay(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


# The parent as `serve --workers` runs it: real signals to a real process (workers.supervise).
PARENT = textwrap.dedent(
    """
    import asyncio, signal, sys
    from securechat.server.supervisor import Supervisor
    script = sys.argv[1]
    def command_for(slot, restart):
        return [sys.executable, script, "serve", str(slot), str(restart)]
    async def main():
        supervisor = Supervisor(2, command_for, "READY", on_ready=lambda: print("ALL READY",
                                file=sys.stderr, flush=True))
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            asyncio.get_running_loop().add_signal_handler(s, supervisor.forward, s)
        return await supervisor.run()
    sys.exit(asyncio.run(main()))
    """
)


def test_signals_to_the_parents_process_group_reach_every_child_once(tmp_path: Path) -> None:
    """As Ctrl-C or a terminal hangup do, the signal goes to the parent's whole process
    group; the children, in groups of their own, get it once, forwarded by the parent."""
    (tmp_path / "child.py").write_text(CHILD)
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path / "child.py")],
        stderr=subprocess.PIPE,
        text=True,
        process_group=0,
    )
    assert parent.stderr is not None
    try:
        lines = iter(parent.stderr)  # each read blocks until a line; the test timeout bounds it
        assert "ALL READY" in next(line for line in lines if "READY" in line)
        os.killpg(parent.pid, signal.SIGHUP)
        hups = [next(line for line in lines if "GOT" in line) for _ in range(2)]
        assert sorted(h.split()[:3] for h in hups) == [
            ["GOT", "SIGHUP", "1"],
            ["GOT", "SIGHUP", "2"],
        ]
        os.killpg(parent.pid, signal.SIGINT)
        rest = parent.stderr.read()
        assert parent.wait(TIMEOUT) == 0
        assert rest.count("GOT SIGINT") == 2 and "GOT SIGHUP" not in rest  # once each
    finally:
        if parent.poll() is None:
            parent.kill()


def test_children_do_not_outlive_a_killed_parent(tmp_path: Path) -> None:
    """SIGKILL leaves the supervisor no chance to stop anyone: the kernel tells the children
    (PR_SET_PDEATHSIG), so no worker holds the port unsupervised."""
    (tmp_path / "child.py").write_text(CHILD)
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path / "child.py")],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert parent.stderr is not None
    assert "ALL READY" in next(line for line in parent.stderr if "READY" in line)
    task = Path(f"/proc/{parent.pid}/task/{parent.pid}/children")
    pidfds = [os.pidfd_open(int(pid)) for pid in task.read_text().split()]
    assert len(pidfds) == 2
    parent.kill()
    parent.wait(TIMEOUT)
    try:
        for fd in pidfds:  # readable once that process has exited
            assert select.select([fd], [], [], TIMEOUT)[0] == [fd]
    finally:
        for fd in pidfds:
            with contextlib.suppress(ProcessLookupError):  # gone, as it should be
                signal.pidfd_send_signal(fd, signal.SIGKILL)
            os.close(fd)
