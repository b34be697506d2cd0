"""Running a call that may block for good (reading operator files) without the event loop.

A reload reads the config file, the certificate, the key and the CA. Each read refuses
FIFOs and devices (securechat.regular_files), but a regular file can still hang: a dead
NFS mount, a FUSE file system that never answers. So the reading runs on a thread of its
own, and the loop waits for it at most ``timeout`` seconds (review L5).

Why not ``loop.run_in_executor``: the default executor's threads are joined when
``asyncio.run`` ends, so one read stuck for good would keep SIGTERM from ever stopping the
server. A daemon thread is abandoned at exit instead; a stuck one costs one idle thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["call_in_daemon_thread", "hand_to_loop", "outcome_of"]

T = TypeVar("T")


async def call_in_daemon_thread(job: Callable[[], T], timeout: float, name: str) -> T:
    """``job()``'s result (or exception), computed on a daemon thread; TimeoutError after
    ``timeout`` seconds, the thread then left to finish (or not) on its own."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(outcome: T | BaseException, failed: bool) -> None:
        if future.done():  # timed out meanwhile: nobody wants the outcome any more
            return
        if failed:
            assert isinstance(outcome, BaseException)
            future.set_exception(outcome)
        else:
            future.set_result(outcome)  # type: ignore[arg-type]

    def work() -> None:
        try:
            outcome: T | BaseException = job()
            failed = False
        except BaseException as exc:  # handed to the awaiting coroutine, which decides
            outcome, failed = exc, True
        with contextlib.suppress(RuntimeError):  # the loop has closed: the server stopped
            loop.call_soon_threadsafe(settle, outcome, failed)

    threading.Thread(target=work, name=name, daemon=True).start()
    return await asyncio.wait_for(future, timeout)


# Threads hand their results back to the loop through these two.
def hand_to_loop(
    loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: Any
) -> None:
    """Hand a store thread's result to the loop; after shutdown nobody is left to tell."""
    with contextlib.suppress(RuntimeError):  # the loop closed: the server has stopped
        loop.call_soon_threadsafe(callback, *args)


def outcome_of(future: Future[Any] | asyncio.Future[Any]) -> Any:
    """A finished future's result, or the exception it raised."""
    error = future.exception()
    return error if error is not None else future.result()
