"""The writer thread: the one thread that owns the ``Store`` and commits in groups."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from securechat.server.records import (
    HistoryRecord,
    StoreError,
)
from securechat.server.store.db import Store
from securechat.server.store.jobs import Stop, leftovers, run_into
from securechat.server.store.reader import StoreReader
from securechat.server.store.schema import (
    DEFAULT_MAX_BATCH_RECORDS,
    DEFAULT_READ_TIMEOUT_SECONDS,
    MEMORY,
    Synchronous,
)

T = TypeVar("T")

# --- the writer thread -------------------------------------------------------------------------


@dataclass(slots=True)
class _Call:
    fn: Callable[[Store], Any]
    future: Future[Any]


@dataclass(slots=True)
class _Append:
    records: Sequence[HistoryRecord]
    future: Future[None]


class Commit:
    """An append made with ``StoreWriter.append_soon``: ``done()`` once the COMMIT of its group
    returned or failed, ``exception()`` then says which (None: durable). The writer sets both
    before it calls the append's ``listener``; whoever reads them after the listener's
    hand-over sees them (the GIL orders the two stores). Cheaper than a Future: no lock,
    no condition, no callback list."""

    __slots__ = ("_done", "_error", "listener", "records")

    def __init__(self, records: Sequence[HistoryRecord], listener: Callable[[], None]) -> None:
        self.records = records
        self.listener = listener
        self._done = False
        self._error: BaseException | None = None

    def done(self) -> bool:
        return self._done

    def exception(self) -> BaseException | None:
        return self._error

    def settle(self, error: BaseException | None) -> None:
        self._error = error
        self._done = True


_Job = _Call | _Append | Commit | Stop


@dataclass(frozen=True, slots=True)
class WriterStats:
    """Counters of successful history commits: appends / commits is the group-commit factor."""

    commits: int = 0  # transactions; appends / commits is the group-commit factor
    appends: int = 0  # append_history() calls made durable
    records: int = 0  # HistoryRecords made durable


class StoreWriter:
    """One thread that owns the ``Store``; the event loop hands it work and awaits futures.

    - ``submit(fn)`` runs ``fn(store)`` on the thread; jobs run in submission order.
    - ``append_history(records)`` is the durable path for messages. Appends that queue up while
      the thread is busy are committed together in one transaction (group commit, no timer, so
      no added latency), and each future resolves only after COMMIT returned: deliver a message
      once its future is done and it is durable. If a group fails (say a duplicate msgid), each
      append is retried alone, so only the bad one fails.
    - ``append_soon(records, listener)`` is the same durable path without a Future, for the
      event loop's messages: the ``Commit`` it returns is settled on the writer thread, then
      ``listener()`` is called once per group however many of the group's appends name it:
      one loop wake-up per COMMIT, not one per message (BENCHMARKS.md, "Fifth round").
    - Futures resolve on the writer thread; ``asyncio.wrap_future`` moves them to the loop.
      Cancelling a future before the thread reaches it skips the job.
    - ``close()`` runs everything already submitted, then closes the connection.
    """

    def __init__(self, max_batch_records: int) -> None:
        self._reader: StoreReader | None = None
        self._queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._max_batch_records = max_batch_records
        self._thread: threading.Thread | None = None
        self._stats = WriterStats()
        # msgids' prefix reserved in a store that several processes share (pg.py); None: the
        # core picks a random one, as a store of its own needs no more.
        self.msgid_prefix: str | None = None

    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        synchronous: Synchronous = "NORMAL",
        max_batch_records: int = DEFAULT_MAX_BATCH_RECORDS,
        init: bool = False,
        check: bool = False,
        read_timeout: float = DEFAULT_READ_TIMEOUT_SECONDS,
    ) -> StoreWriter:
        """Start the thread and open the store on it, then the reader (``read``); blocks until
        opened. Raises StoreError. ``init`` and ``check``: see ``Store.open``."""

        def open_store() -> Store:
            return Store.open(path, synchronous=synchronous, init=init, check=check)

        def open_reader() -> StoreReader:
            return StoreReader.open(path, read_timeout)

        # A second connection to ":memory:" would be another database: no reader then.
        reader = None if str(path) == MEMORY else open_reader
        return cls.start(open_store, reader, max_batch_records=max_batch_records)

    @classmethod
    def start(
        cls,
        open_store: Callable[[], Store],
        open_reader: Callable[[], StoreReader] | None,
        *,
        max_batch_records: int = DEFAULT_MAX_BATCH_RECORDS,
    ) -> StoreWriter:
        """``open``, for any backend: ``open_store`` runs on the new thread (the connection
        belongs to it), then ``open_reader`` (if any) starts the reader."""
        writer = cls(max_batch_records)
        opened: Future[None] = Future()
        # A daemon thread, so a forgotten close() cannot hang interpreter exit; nothing
        # acknowledged is lost that way, since a future only resolves after its commit.
        thread = threading.Thread(
            target=writer._run, args=(open_store, opened), name="store-writer", daemon=True
        )
        writer._thread = thread
        thread.start()
        opened.result()
        if open_reader is not None:
            try:
                writer._reader = open_reader()
            except BaseException:
                writer.close()
                raise
        return writer

    def read(self, fn: Callable[[Store], T]) -> Future[T]:
        """Run the read-only ``fn(store)`` on the reader thread (see ``StoreReader``), beside
        the writer; on the writer's own queue when there is no reader (``":memory:"``)."""
        if self._reader is None:
            return self.submit(fn)
        return self._reader.submit(fn)

    def stop_reads(self) -> None:
        """Cancel queued reads and interrupt the running one (shutdown does not wait)."""
        if self._reader is not None:
            self._reader.close()

    def submit(self, fn: Callable[[Store], T]) -> Future[T]:
        future: Future[T] = Future()
        self._put(_Call(fn, future))
        return future

    def append_history(self, records: Sequence[HistoryRecord]) -> Future[None]:
        future: Future[None] = Future()
        self._put(_Append(tuple(records), future))
        return future

    def append_soon(self, records: Sequence[HistoryRecord], listener: Callable[[], None]) -> Commit:
        """Make ``records`` durable; ``listener()`` (which must not raise) runs on the writer
        thread after the COMMIT of their group returned or failed (``Commit``)."""
        commit = Commit(records, listener)
        self._put(commit)
        return commit

    @property
    def stats(self) -> WriterStats:
        with self._lock:
            return self._stats

    def close(self) -> None:
        """Finish all submitted work and close the store. Idempotent; blocks until done."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("StoreWriter.close() called from its own thread")
        self.stop_reads()
        with self._lock:
            if not self._closed:
                self._closed = True
                self._queue.put(Stop())
        if self._thread is not None:
            self._thread.join()

    def _put(self, job: _Job) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the store writer is closed")
            self._queue.put(job)

    # --- on the writer thread ------------------------------------------------------------------

    def _run(self, open_store: Callable[[], Store], opened: Future[None]) -> None:
        try:
            store = open_store()
        except BaseException as exc:
            opened.set_exception(exc)
            return
        opened.set_result(None)
        try:
            self._serve(store)
        finally:
            store.close()
            self._fail_leftovers()

    def _serve(self, store: Store) -> None:
        pending: _Job | None = None
        while True:
            job = pending if pending is not None else self._queue.get()
            pending = None
            if isinstance(job, Stop):
                return
            if isinstance(job, _Call):
                _run_call(store, job)
                continue
            group, pending = self._gather(job)
            self._commit_group(store, group)

    def _gather(self, first: _Append | Commit) -> tuple[list[_Append | Commit], _Job | None]:
        """``first`` plus the appends queued right behind it, up to the batch size; also the
        first non-append job met, which must run after this group to keep FIFO order."""
        group = [first]
        size = len(first.records)
        while size < self._max_batch_records:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return group, None
            if not isinstance(job, _Append | Commit):
                return group, job
            group.append(job)
            size += len(job.records)
        return group, None

    def _commit_group(self, store: Store, group: list[_Append | Commit]) -> None:
        live = [
            job
            for job in group
            if isinstance(job, Commit) or job.future.set_running_or_notify_cancel()
        ]
        if not live:
            return
        try:
            store.append_history([record for job in live for record in job.records])
        except Exception as exc:
            if len(live) == 1:
                _settle(live[0], exc)
            else:
                for job in live:  # the group rolled back; find out which append was at fault
                    self._commit_alone(store, job)
            _notify(live)
            return
        self._count_commit(live)
        for job in live:
            _settle(job, None)
        _notify(live)

    def _commit_alone(self, store: Store, job: _Append | Commit) -> None:
        try:
            store.append_history(job.records)
        except Exception as exc:
            _settle(job, exc)
            return
        self._count_commit([job])
        _settle(job, None)

    def _count_commit(self, jobs: list[_Append | Commit]) -> None:
        # Counted before the futures resolve, so a caller that saw its future done sees it.
        with self._lock:
            old = self._stats
            self._stats = WriterStats(
                commits=old.commits + 1,
                appends=old.appends + len(jobs),
                records=old.records + sum(len(job.records) for job in jobs),
            )

    def _fail_leftovers(self) -> None:
        # Only reached with jobs still queued if the loop died of a bug: fail them rather than
        # leave callers waiting forever.
        with self._lock:
            self._closed = True
        failed: list[_Append | Commit] = []
        for job in leftovers(self._queue):
            if isinstance(job, Commit):
                failed.append(job)
            elif not isinstance(job, Stop) and job.future.set_running_or_notify_cancel():
                job.future.set_exception(StoreError("the store writer stopped"))
        for commit in failed:
            _settle(commit, StoreError("the store writer stopped"))
        _notify(failed)


def _settle(job: _Append | Commit, error: BaseException | None) -> None:
    if isinstance(job, Commit):
        job.settle(error)
    elif error is None:
        job.future.set_result(None)
    else:
        job.future.set_exception(error)


def _notify(jobs: list[_Append | Commit]) -> None:
    """Call each listener of the settled ``jobs`` once (their order kept)."""
    listeners = {job.listener: None for job in jobs if isinstance(job, Commit)}
    for listener in listeners:
        listener()


def _run_call(store: Store, job: _Call) -> None:
    if not job.future.set_running_or_notify_cancel():
        return
    run_into(job.future, job.fn, store)
