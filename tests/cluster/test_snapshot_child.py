"""A snapshot encoded in a forked child (cluster/snapshot_child.py): its bytes, its failures,
and a child that is no longer wanted."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from securechat.server.cluster.snapshot import Unencodable
from securechat.server.cluster.snapshot_child import ChildFailed, SnapshotChild


def test_the_childs_bytes_arrive_whole_even_far_beyond_a_pipes_buffer() -> None:
    payload = os.urandom(3 << 20)  # 3 MiB: the pipe holds 64 KiB, so the reader must drain it
    assert asyncio.run(SnapshotChild(lambda: payload).result()) == payload


def test_the_child_encodes_the_state_as_it_was_at_the_fork() -> None:
    state = ["before"]
    child = SnapshotChild(lambda: ",".join(state).encode())
    state.append("after")  # the parent goes on; the child's copy does not see it
    assert asyncio.run(child.result()) == b"before"


def test_a_state_the_child_cannot_encode_is_unencodable_in_the_parent() -> None:
    def refuse() -> bytes:
        raise Unencodable("a function in the state")

    with pytest.raises(Unencodable, match="a function in the state"):
        asyncio.run(SnapshotChild(refuse).result())


def test_a_child_that_fails_otherwise_is_one_line_with_its_status() -> None:
    def crash() -> bytes:
        raise RuntimeError("a bug")

    with pytest.raises(ChildFailed, match="exited with status 1"):
        asyncio.run(SnapshotChild(crash).result())


def test_a_cancelled_wait_kills_and_reaps_the_child() -> None:
    never = threading.Event()  # the child's copy is never set: it blocks until killed

    def block() -> bytes:
        never.wait()
        return b""

    async def cancel_it() -> int:
        child = SnapshotChild(block)
        pid = child.pid
        assert pid is not None
        task = asyncio.create_task(child.result())
        await asyncio.sleep(0)  # let it start reading the pipe
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return pid

    pid = asyncio.run(cancel_it())
    with pytest.raises(ChildProcessError):  # reaped: no zombie left behind
        os.waitpid(pid, os.WNOHANG)
