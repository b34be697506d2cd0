from __future__ import annotations

import os
import queue
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from concurrent.futures import Future, wait
from pathlib import Path

import pytest

from securechat.server.store import (
    Commit,
    HistoryRecord,
    Store,
    StoreError,
    StoreWriter,
    WriterStats,
)

T0 = 1_700_000_000.0
TIMEOUT = 10.0
REPO_ROOT = Path(__file__).resolve().parents[3]


def msg(n: int, target: str = "#room") -> HistoryRecord:
    return HistoryRecord(
        f"m{n}", target, target, "alice!a@host", "alice", T0 + n, "PRIVMSG", f"line {n}"
    )


def committed_msgids(path: Path) -> set[str]:
    """Read the file through a connection of our own, as a restarted server would."""
    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute("SELECT msgid FROM history")}
    finally:
        conn.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "securechat.db"


@pytest.fixture
def writer(db_path: Path) -> Iterator[StoreWriter]:
    opened = StoreWriter.open(db_path)
    yield opened
    opened.close()


class Gate:
    """Holds the writer thread inside a job so that work queues up behind it."""

    def __init__(self, writer: StoreWriter) -> None:
        self._entered = threading.Event()
        self._release = threading.Event()
        self.future = writer.submit(self._hold)
        assert self._entered.wait(TIMEOUT)

    def _hold(self, store: Store) -> None:
        self._entered.set()
        self._release.wait(TIMEOUT)

    def open(self) -> None:
        self._release.set()
        self.future.result(TIMEOUT)


def test_submit_runs_on_the_writer_thread_and_returns_the_result(writer: StoreWriter) -> None:
    def create(store: Store) -> str:
        store.create_account("alice", "hash", T0)
        return threading.current_thread().name

    assert writer.submit(create).result(TIMEOUT) == "store-writer"
    account = writer.submit(lambda store: store.get_account("ALICE")).result(TIMEOUT)
    assert account is not None and account.name == "alice"


def test_exception_in_a_job_reaches_its_future_and_the_writer_goes_on(writer: StoreWriter) -> None:
    def fail(store: Store) -> None:
        raise KeyError("bug in a job")

    with pytest.raises(KeyError):
        writer.submit(fail).result(TIMEOUT)
    assert writer.submit(lambda store: store.schema_version).result(TIMEOUT) >= 1


def test_append_is_on_disk_when_its_future_resolves(writer: StoreWriter, db_path: Path) -> None:
    writer.append_history([msg(1), msg(2)]).result(TIMEOUT)
    assert committed_msgids(db_path) == {"m1", "m2"}


def test_appends_queued_together_commit_in_one_transaction(
    writer: StoreWriter, db_path: Path
) -> None:
    gate = Gate(writer)
    futures = [writer.append_history([msg(n)]) for n in range(1, 6)]
    assert not any(future.done() for future in futures)
    gate.open()
    for future in futures:
        future.result(TIMEOUT)
    assert writer.stats == WriterStats(commits=1, appends=5, records=5)
    assert committed_msgids(db_path) == {f"m{n}" for n in range(1, 6)}


def test_group_is_capped_at_the_batch_size(db_path: Path) -> None:
    writer = StoreWriter.open(db_path, max_batch_records=2)
    try:
        gate = Gate(writer)
        futures = [writer.append_history([msg(n)]) for n in range(1, 6)]
        gate.open()
        wait(futures, TIMEOUT)
        assert writer.stats == WriterStats(commits=3, appends=5, records=5)
    finally:
        writer.close()


def test_bad_append_fails_alone_in_its_group(writer: StoreWriter, db_path: Path) -> None:
    writer.append_history([msg(1)]).result(TIMEOUT)
    gate = Gate(writer)
    good_before = writer.append_history([msg(2)])
    duplicate = writer.append_history([msg(3), msg(1)])
    good_after = writer.append_history([msg(4)])
    gate.open()
    good_before.result(TIMEOUT)
    good_after.result(TIMEOUT)
    with pytest.raises(StoreError, match="UNIQUE"):
        duplicate.result(TIMEOUT)
    assert committed_msgids(db_path) == {"m1", "m2", "m4"}  # m3 went with its batch


class Listener:
    """What ``append_soon`` calls on the writer thread: records what was settled by then."""

    def __init__(self, commits: list[Commit]) -> None:
        self.commits = commits
        self.calls: queue.SimpleQueue[list[bool]] = queue.SimpleQueue()

    def __call__(self) -> None:
        self.calls.put([commit.done() for commit in self.commits])


def test_a_group_of_soon_appends_is_settled_then_told_once(
    writer: StoreWriter, db_path: Path
) -> None:
    """One listener call per COMMIT (one loop wake-up), after every append in it is done."""
    gate = Gate(writer)
    commits: list[Commit] = []
    listener = Listener(commits)
    commits += [writer.append_soon([msg(n)], listener) for n in range(1, 6)]
    assert not any(commit.done() for commit in commits)
    gate.open()
    assert listener.calls.get(timeout=TIMEOUT) == [True] * 5
    assert writer.submit(lambda store: None).result(TIMEOUT) is None  # the writer moved on
    assert listener.calls.empty()
    assert [commit.exception() for commit in commits] == [None] * 5
    assert writer.stats == WriterStats(commits=1, appends=5, records=5)
    assert committed_msgids(db_path) == {f"m{n}" for n in range(1, 6)}


def test_bad_soon_append_fails_alone_and_the_group_is_told_once(
    writer: StoreWriter, db_path: Path
) -> None:
    writer.append_history([msg(1)]).result(TIMEOUT)
    gate = Gate(writer)
    commits: list[Commit] = []
    listener = Listener(commits)
    commits += [writer.append_soon(records, listener) for records in ([msg(2)], [msg(1)])]
    kept = writer.append_history([msg(3)])  # a Future append in the same group
    gate.open()
    assert listener.calls.get(timeout=TIMEOUT) == [True, True]
    kept.result(TIMEOUT)
    assert commits[0].exception() is None
    assert isinstance(commits[1].exception(), StoreError)
    assert listener.calls.empty()
    assert committed_msgids(db_path) == {"m1", "m2", "m3"}


def test_jobs_keep_submission_order_around_a_group(writer: StoreWriter) -> None:
    gate = Gate(writer)
    first = writer.append_history([msg(1)])
    seen = writer.submit(lambda store: store.message_by_msgid("m2"))
    second = writer.append_history([msg(2)])
    gate.open()
    assert seen.result(TIMEOUT) is None  # submitted before m2 was appended
    first.result(TIMEOUT)
    second.result(TIMEOUT)
    assert writer.stats.commits == 2  # the read split the two appends


def test_read_after_a_resolved_append_sees_it(writer: StoreWriter) -> None:
    writer.append_history([msg(1)]).result(TIMEOUT)
    found = writer.submit(lambda store: store.latest("#room", 10)).result(TIMEOUT)
    assert [record.msgid for record in found] == ["m1"]


def test_cancelled_append_is_not_written(writer: StoreWriter, db_path: Path) -> None:
    gate = Gate(writer)
    cancelled = writer.append_history([msg(1)])
    kept = writer.append_history([msg(2)])
    assert cancelled.cancel()
    gate.open()
    kept.result(TIMEOUT)
    assert committed_msgids(db_path) == {"m2"}


def test_close_drains_the_queue(db_path: Path) -> None:
    writer = StoreWriter.open(db_path)
    futures: list[Future[None]] = [writer.append_history([msg(n)]) for n in range(200)]
    writer.close()
    assert all(future.done() and future.exception() is None for future in futures)
    assert len(committed_msgids(db_path)) == 200


def test_closed_writer_refuses_work_and_closes_once(db_path: Path) -> None:
    writer = StoreWriter.open(db_path)
    writer.close()
    writer.close()
    with pytest.raises(RuntimeError):
        writer.append_history([msg(1)])
    with pytest.raises(RuntimeError):
        writer.submit(lambda store: None)


def test_data_survives_close_and_reopen(db_path: Path) -> None:
    writer = StoreWriter.open(db_path)
    writer.submit(lambda store: store.create_account("alice", "hash", T0)).result(TIMEOUT)
    writer.append_history([msg(1)]).result(TIMEOUT)
    writer.close()
    with Store.open(db_path) as store:
        assert store.get_account("alice") is not None
        assert [record.msgid for record in store.latest("#room", 5)] == ["m1"]


def test_open_failure_is_raised_to_the_caller(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.db"
    path.write_bytes(b"\x00garbage" * 1000)
    with pytest.raises(StoreError) as caught:
        StoreWriter.open(path)
    assert str(path) in str(caught.value)


_BURST_WRITER = textwrap.dedent(
    """
    import sys
    from securechat.server.store import HistoryRecord, StoreWriter

    writer = StoreWriter.open(sys.argv[1])
    n = 0
    while True:  # bursts of 8 concurrent appends, like 8 connections talking at once
        futures = []
        for _ in range(8):
            record = HistoryRecord(
                f"m{n}", "#burst", "#burst", "a!a@h", None, 1e9 + n, "PRIVMSG", "x" * 100
            )
            futures.append((record.msgid, writer.append_history([record])))
            n += 1
        for msgid, future in futures:
            future.result()
            print(msgid, flush=True)  # acknowledged: a client may have seen it
    """
)


def _pump(proc: subprocess.Popen[str], lines: queue.Queue[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.put(line)


def test_sigkill_mid_burst_loses_no_acknowledged_message(db_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _BURST_WRITER, str(db_path)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=_pump, args=(proc, lines))
    reader.start()
    acknowledged: list[str] = []
    try:
        while len(acknowledged) < 500:
            acknowledged.append(lines.get(timeout=TIMEOUT).strip())
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(TIMEOUT)
        reader.join(TIMEOUT)
    while not lines.empty():  # printed before the kill landed: acknowledged too
        acknowledged.append(lines.get_nowait().strip())

    assert proc.returncode == -signal.SIGKILL
    with Store.open(db_path) as store:  # recovers the WAL like a restarting server
        stored = {record.msgid for record in store.latest("#burst", 100_000)}
    assert set(acknowledged) <= stored
