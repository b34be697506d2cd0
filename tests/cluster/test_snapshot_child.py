"""A snapshot encoded in a forked child (cluster/snapshot_child.py): its bytes, its failures,
and a child that is no longer wanted."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Callable

import pytest

from securechat.server.cluster.snapshot import Unencodable
from securechat.server.cluster.snapshot_child import ChildFailed, SnapshotChild


def encoded_by_child(
    encode: Callable[[], bytes], after_fork: Callable[[], object] = lambda: None
) -> bytes:
    """What a child forked inside a running loop encodes; ``after_fork`` runs in the parent."""

    async def run() -> bytes:
        child = SnapshotChild(encode)
        after_fork()
        return await child.result()

    return asyncio.run(run())


def test_the_childs_bytes_arrive_whole_even_far_beyond_a_pipes_buffer() -> None:
    payload = os.urandom(3 << 20)  # 3 MiB: the pipe holds 64 KiB, so the reader must drain it
    assert encoded_by_child(lambda: payload) == payload


def test_the_child_encodes_the_state_as_it_was_at_the_fork() -> None:
    state = ["before"]
    # the parent goes on after the fork; the child's copy does not see it
    assert encoded_by_child(lambda: ",".join(state).encode(), lambda: state.append("after")) == (
        b"before"
    )


def test_a_state_the_child_cannot_encode_is_unencodable_in_the_parent() -> None:
    def refuse() -> bytes:
        raise Unencodable("a function in the state")

    with pytest.raises(Unencodable, match="a function in the state"):
        encoded_by_child(refuse)


def test_a_child_that_fails_otherwise_is_one_line_with_its_status() -> None:
    def crash() -> bytes:
        raise RuntimeError("a bug")

    with pytest.raises(ChildFailed, match="exited with status 1"):
        encoded_by_child(crash)


def test_a_cancelled_wait_kills_and_reaps_the_child() -> None:
    never = threading.Event()  # the child's copy is never set: it blocks until killed

    def block() -> bytes:
        never.wait()
        return b""

    async def cancel_it() -> tuple[int, int]:
        child = SnapshotChild(block)
        pid = child.pid
        assert pid is not None
        task = asyncio.create_task(child.result())
        await asyncio.sleep(0)  # let it start waiting
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return pid, await child.ended()

    pid, status = asyncio.run(cancel_it())
    assert os.waitstatus_to_exitcode(status) == -signal.SIGKILL
    with pytest.raises(ChildProcessError):  # reaped: no zombie left behind
        os.waitpid(pid, os.WNOHANG)


def test_a_child_nobody_waits_for_is_reaped_all_the_same() -> None:
    async def forget() -> int:
        child = SnapshotChild(lambda: b"unwanted")
        return os.waitstatus_to_exitcode(await child.ended())

    assert asyncio.run(forget()) == 0
