"""Taking a snapshot in a forked child, so the leader's clients do not wait for it.

Walking the replicated state costs ~30 µs per user (1.1 s at 35,000 users; BENCHMARKS.md,
"Snapshot pause"), and the walk must see the state exactly as it is after one stream entry,
so it cannot run beside the event loop in a thread. ``fork()`` gives the walk that state for
free: the child holds a copy-on-write image of the process at the instant of the fork, walks
and encodes it at its own pace, writes the bytes to a pipe and exits, while the parent goes
on applying events and serving its clients. This is how Redis writes its RDB files (BGSAVE).
The leader's pause becomes the fork itself: copying the page tables, milliseconds.

Forking a process that has other threads (the store's writer, the executors) is safe only
when the child touches nothing another thread may have held locked at that instant. The child
here runs only the walk (Python objects, under its own GIL), ``json``, ``zlib`` and
``os.write``: glibc re-arms malloc's locks across ``fork``, CPython re-creates the GIL and
the child's thread state. Nothing in it logs, imports or uses OpenSSL: the one call that did
(the schema's SHA-256) is computed by the parent first (``snapshot.schema`` caches it). It
ends with ``os._exit``: no ``atexit`` handler, no buffered output and no ``finally`` of the
parent's frames runs twice. Its signals go back to the defaults first, so a Ctrl-C or
SIGTERM meant for the server ends the child too instead of waking the parent's loop twice.

The price is memory: the pages the walk touches (reference counts are writes) are copied, up
to the size of the replicated state, for the second or so the child lives.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import warnings
from collections.abc import Callable
from typing import NoReturn

from securechat.server.cluster.snapshot import Unencodable

__all__ = ["ChildFailed", "SnapshotChild", "can_fork"]

_UNENCODABLE = 3  # the child's exit status when the state held what a snapshot cannot carry
_READ_SIZE = 1 << 20


class ChildFailed(OSError):
    """The child died or exited without a snapshot (said in one line)."""


def can_fork() -> bool:
    return hasattr(os, "fork")


class SnapshotChild:
    """A child forked now, encoding a snapshot with ``encode``; ``result()`` gives its bytes.

    A thread of the default executor reads the pipe and reaps the child from the start,
    whether or not anyone awaits the result, so no child is ever left a zombie (a node that
    stops cancels the wait before it began, say)."""

    def __init__(self, encode: Callable[[], bytes]) -> None:
        read_fd, write_fd = os.pipe()
        try:
            with warnings.catch_warnings():
                # Python 3.12+ warns of any fork in a process with threads; the module doc says
                # why this child is safe
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
        except OSError:
            os.close(read_fd)
            os.close(write_fd)
            raise
        if pid == 0:
            _run_child(encode, read_fd, write_fd)
        os.close(write_fd)
        self.pid: int | None = pid
        self._ended = asyncio.get_running_loop().run_in_executor(None, self._collect, read_fd)

    async def result(self) -> bytes:
        """The encoded snapshot. Unencodable: the state held a value a snapshot cannot carry;
        ChildFailed: the child died. Cancelled: the child is killed (and reaped)."""
        try:
            data, status = await asyncio.shield(self._ended)
        except asyncio.CancelledError:
            self.kill()
            raise
        code = os.waitstatus_to_exitcode(status)
        if code == _UNENCODABLE:
            raise Unencodable(data.decode("utf-8", "replace"))
        if code != 0:
            cause = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
            raise ChildFailed(f"the snapshot's child process {cause}")
        return data

    async def ended(self) -> int:
        """The child's wait status, once it is gone and reaped."""
        _, status = await asyncio.shield(self._ended)
        return status

    def kill(self) -> None:
        """Stop a child still running; the reading thread then sees the pipe end and reaps it."""
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)

    def _collect(self, read_fd: int) -> tuple[bytes, int]:
        """In a thread: everything the child writes, then its wait status. The pipe is closed
        here, by the one thread reading it, so a reader never finds the number of the
        descriptor reused by another file."""
        chunks = []
        try:
            while chunk := os.read(read_fd, _READ_SIZE):
                chunks.append(chunk)
        finally:
            os.close(read_fd)
        assert self.pid is not None
        _, status = os.waitpid(self.pid, 0)
        self.pid = None
        return b"".join(chunks), status


def _run_child(encode: Callable[[], bytes], read_fd: int, write_fd: int) -> NoReturn:
    status = 1  # whatever goes wrong before the bytes are written, the parent learns it so
    try:
        os.close(read_fd)
        _default_signals()
        try:
            data, result = encode(), 0
        except Unencodable as exc:
            data, result = str(exc).encode(), _UNENCODABLE
        view = memoryview(data)
        while view:
            view = view[os.write(write_fd, view) :]
        status = result
    finally:
        os._exit(status)


def _default_signals() -> None:
    # the loop's handlers write the signal's number to its wake-up socket, which the child
    # shares with the parent: the parent would act on the child's signals
    with contextlib.suppress(ValueError, OSError):
        signal.set_wakeup_fd(-1)
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError, OSError):
            signal.signal(number, signal.SIG_DFL)
