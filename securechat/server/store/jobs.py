"""The job plumbing the reader and writer threads share: the stop marker, running one job
into its future, and taking what is still queued when a thread stops."""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

from securechat.server.store.db import Store

J = TypeVar("J")


class Stop:
    """Queued by ``close()``: the thread finishes the jobs before it, then stops."""


def run_into(future: Future[Any], fn: Callable[[Store], Any], store: Store) -> None:
    """Run ``fn`` on ``store``; its result or exception goes into ``future``."""
    try:
        result = fn(store)
    except Exception as exc:
        future.set_exception(exc)
    else:
        future.set_result(result)


def leftovers(jobs: queue.SimpleQueue[J]) -> Iterator[J]:
    """The jobs still queued, taken without waiting."""
    while True:
        try:
            yield jobs.get_nowait()
        except queue.Empty:
            return
