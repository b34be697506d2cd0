"""The reader thread: history reads on their own read-only connection, with deadlines."""

from __future__ import annotations

import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeVar

from securechat.server.records import (
    StoreError,
)
from securechat.server.store.db import Store
from securechat.server.store.jobs import Stop, leftovers, run_into
from securechat.server.store.schema import BUSY_TIMEOUT_MS, PROGRESS_STEPS

T = TypeVar("T")

# --- the reader thread -------------------------------------------------------------------------


@dataclass(slots=True)
class _Read:
    fn: Callable[[Store], Any]
    future: Future[Any]
    deadline: float  # time.monotonic() by which it must have finished


class StoreReader:
    """One thread with its own read-only connection for history queries, so that a slow
    read never delays a commit (and so a delivery) queued behind it on the writer. WAL lets
    readers run beside the writer; every read starts its own transaction, so it sees every
    commit that returned before it began (https://www.sqlite.org/wal.html#concurrency).

    Every read has a deadline ``timeout`` seconds after submission, waiting in the queue
    included: past it the read fails with ``StoreError`` (a SQLite progress handler interrupts
    a running query), so no request holds the queue for long. ``close()`` cancels what is
    queued and interrupts what runs: shutdown never waits for reads.
    """

    def __init__(self, timeout: float) -> None:
        self._queue: queue.SimpleQueue[_Read | Stop] = queue.SimpleQueue()
        self._timeout = timeout
        self._lock = threading.Lock()
        self._closed = False
        self._conn: sqlite3.Connection | None = None
        self._deadline = 0.0
        self._thread: threading.Thread | None = None

    @classmethod
    def open(cls, path: Path | str, timeout: float) -> Self:
        reader = cls(timeout)
        opened: Future[None] = Future()
        thread = threading.Thread(
            target=reader._run, args=(str(path), opened), name="store-reader", daemon=True
        )
        reader._thread = thread
        thread.start()
        opened.result()
        return reader

    def submit(self, fn: Callable[[Store], T]) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the store reader is closed")
            self._queue.put(_Read(fn, future, time.monotonic() + self._timeout))
        return future

    def close(self) -> None:
        """Cancel queued reads, interrupt the running one, close. Idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._queue.put(Stop())
                self._interrupt()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._join(self._thread)

    def _join(self, thread: threading.Thread) -> None:
        thread.join()

    def _run(self, label: str, opened: Future[None]) -> None:
        try:
            store = self._connect(label)
        except StoreError as exc:
            opened.set_exception(exc)
            return
        opened.set_result(None)
        try:
            self._serve(store)
        finally:
            self._disconnect(store)
            self._cancel_leftovers()

    # The backend's part (pg.py overrides these): connect read-only with the deadline
    # enforced, interrupt a running read from another thread, wait for the thread, disconnect.

    def _connect(self, label: str) -> Store:
        try:
            conn = sqlite3.connect(label, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA query_only = ON")
            conn.set_progress_handler(self._past_deadline, PROGRESS_STEPS)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open database {label} for reading: {exc}") from exc
        with self._lock:
            self._conn = conn
        return Store(conn, label)

    def _interrupt(self) -> None:
        """Called under ``_lock`` by ``close()``: make the running query fail, if any."""
        if self._conn is not None:
            self._conn.interrupt()  # thread-safe

    def _disconnect(self, store: Store) -> None:
        with self._lock:
            self._conn = None
        store.close()

    def _serve(self, store: Store) -> None:
        while True:
            job = self._queue.get()
            if isinstance(job, Stop):
                return
            if self._closed:
                job.future.cancel()
                continue  # up to the Stop that close() queued
            if not job.future.set_running_or_notify_cancel():
                continue
            self._deadline = job.deadline
            if time.monotonic() > job.deadline:
                job.future.set_exception(StoreError("the history query waited too long"))
                continue
            run_into(job.future, job.fn, store)

    def _past_deadline(self) -> int:
        # SQLite calls this every PROGRESS_STEPS virtual-machine steps; non-zero aborts.
        return int(self._closed or time.monotonic() > self._deadline)

    def _cancel_leftovers(self) -> None:
        with self._lock:
            self._closed = True
        for job in leftovers(self._queue):
            if not isinstance(job, Stop):
                job.future.cancel()
