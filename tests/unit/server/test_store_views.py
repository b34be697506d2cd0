"""Who reads which rows (room incarnations, +i/+k join times), bounded queries, the reader
thread, and refusing empty or damaged database files at start."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securechat.server.records import Reaction, Redaction
from securechat.server.store import (
    MIGRATIONS,
    PRIVATE_EPOCH,
    Anchor,
    HistoryRecord,
    Store,
    StoreError,
    StoreReader,
    StoreWriter,
    View,
    migrate,
    private_target,
    room_epoch,
)

T0 = 1_700_000_000.0
OLD, NOW = room_epoch(T0 - 86400), room_epoch(T0)  # two incarnations of "#room"
TIMEOUT = 10.0


def msg(n: int, epoch: int = NOW, restricted: bool = False, target: str = "#room") -> HistoryRecord:
    return HistoryRecord(
        f"m{n}", target, target, "a!a@h", "alice", T0 + n, "PRIVMSG", f"line {n}", epoch, restricted
    )


def texts(records: list[HistoryRecord]) -> list[str]:
    return [record.text for record in records]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "securechat.db"


@pytest.fixture
def store(any_store: Store) -> Store:
    """Each test that takes ``store`` runs on SQLite and on PostgreSQL (tests/conftest.py)."""
    return any_store


@pytest.fixture
def sqlite_store(db_path: Path) -> Iterator[Store]:
    with Store.open(db_path) as opened:
        yield opened


# ---- incarnations -----------------------------------------------------------------------------


def test_a_reader_sees_restricted_rows_of_its_rooms_current_incarnation_only(
    store: Store,
) -> None:
    store.append_history([msg(1, OLD, True), msg(2, OLD, True), msg(3, NOW, True)])
    view = View(NOW)
    assert texts(store.latest("#room", 10, view=view)) == ["line 3"]
    assert texts(store.before("#room", Anchor.at_time(T0 + 10), 10, view=view)) == ["line 3"]
    assert texts(store.after("#room", Anchor.at_time(T0), 10, view=view)) == ["line 3"]
    start, end = Anchor.at_time(0), Anchor.at_time(T0 + 10)
    assert texts(store.between("#room", start, end, 10, view=view)) == ["line 3"]
    assert store.targets({"#room": View(room_epoch(T0 + 5))}, None, 0, T0 + 10, 10) == []


def test_public_rows_are_read_by_every_incarnation_of_the_room(store: Store) -> None:
    """Sent while the room was public: anyone could have read them, so they outlive it."""
    store.append_history([msg(1, OLD), msg(2, OLD, True), msg(3, NOW)])
    assert texts(store.latest("#room", 10, view=View(NOW))) == ["line 1", "line 3"]
    later = room_epoch(T0 + 5)
    assert store.targets({"#room": View(later)}, None, 0, T0 + 10, 10) == [("#room", T0 + 3)]


def test_a_msgid_of_an_earlier_incarnations_restricted_row_is_unknown(store: Store) -> None:
    store.append_history([msg(1, OLD, True), msg(2, NOW)])
    assert store.around("#room", Anchor.at_msgid("m1"), 10, view=View(NOW)) == []
    assert store.after("#room", Anchor.at_msgid("m1"), 10, view=View(NOW)) == []
    assert texts(store.around("#room", Anchor.at_msgid("m2"), 10, view=View(NOW))) == ["line 2"]


def test_restricted_messages_are_readable_only_from_the_readers_join(store: Store) -> None:
    """Sent while the room was +i or +k: only those who were in it could read along."""
    store.append_history(
        [msg(1), msg(2, restricted=True), msg(3, restricted=True), msg(4), msg(5, restricted=True)]
    )
    joined_before_3 = View(NOW, since=T0 + 3)
    assert texts(store.latest("#room", 10, view=joined_before_3)) == [
        "line 1",
        "line 3",
        "line 4",
        "line 5",
    ]
    assert texts(store.latest("#room", 2, view=joined_before_3)) == ["line 4", "line 5"]
    assert store.around("#room", Anchor.at_msgid("m2"), 10, view=joined_before_3) == []
    everything = View(NOW, since=None)
    assert len(store.latest("#room", 10, view=everything)) == 5


def test_targets_report_the_latest_message_the_reader_may_see(store: Store) -> None:
    store.append_history([msg(1), msg(2, restricted=True)])
    assert store.targets({"#room": View(NOW, since=T0 + 2)}, None, 0, T0 + 10, 10) == [
        ("#room", T0 + 2)
    ]
    assert store.targets({"#room": View(NOW, since=T0 + 3)}, None, 0, T0 + 10, 10) == [
        ("#room", T0 + 1)
    ]


def test_targets_find_every_private_conversation_of_the_account(store: Store) -> None:
    peers = [f"peer{n:02d}" for n in range(30)]
    store.append_history(
        [
            HistoryRecord(
                f"p{n}", private_target("me", peer), peer, "me!a@h", "me", T0 + n, "PRIVMSG", "hi"
            )
            for n, peer in enumerate(peers)
        ]
    )
    found = store.targets({}, "me", 0, T0 + 100, 100)
    assert [target for target, _ in found] == [private_target("me", peer) for peer in peers]
    assert len(store.targets({}, "me", 0, T0 + 100, 100, max_private=5)) == 5


# ---- bounded, indexed queries -----------------------------------------------------------------


def plans(store: Store, query: Callable[[Store], Any]) -> list[str]:
    """EXPLAIN QUERY PLAN of every statement ``query`` runs on the history table."""
    statements: list[str] = []
    conn: sqlite3.Connection = store._conn  # the store's own connection, to trace its SQL
    conn.set_trace_callback(statements.append)
    try:
        query(store)
    finally:
        conn.set_trace_callback(None)
    details = []
    for statement in statements:
        if "FROM history" in statement and not statement.startswith(("EXPLAIN", "DELETE")):
            rows = conn.execute("EXPLAIN QUERY PLAN " + statement).fetchall()
            details += [str(row[-1]) for row in rows]
    return details


QUERIES: dict[str, Callable[[Store], Any]] = {
    "latest": lambda s: s.latest("#room", 50, view=View(NOW, T0)),
    "latest after": lambda s: s.latest("#room", 50, Anchor.at_msgid("m5"), View(NOW, T0)),
    "before": lambda s: s.before("#room", Anchor.at_msgid("m9"), 50, View(NOW, T0)),
    "after": lambda s: s.after("#room", Anchor.at_time(T0), 50, View(NOW, T0)),
    "around": lambda s: s.around("#room", Anchor.at_msgid("m5"), 50, View(NOW, T0)),
    "between": lambda s: s.between(
        "#room", Anchor.at_time(0), Anchor.at_time(T0 + 99), 50, View(NOW, T0)
    ),
    "targets": lambda s: s.targets({"#room": View(NOW, T0), "#b": View(1)}, "alice", 0, T0, 50),
    "prune by count": lambda s: s.prune_history(T0 + 10, None, 5, max_rows=3),
    "message by msgid": lambda s: s.message_by_msgid("m5"),
    "redact": lambda s: s.redact("#room", "m5", lambda _: "NO", Redaction("x!y@z", T0)),
    "react": lambda s: s.add_reaction(Reaction("r1", "#room", "m5", "b!b@h", "bob", T0, "+1"), 10),
}


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_every_history_query_is_an_index_search(sqlite_store: Store, name: str) -> None:
    """No plan step scans the history table: each costs O(limit · log n), not O(n).
    (SQLite's plans; PostgreSQL's planner picks by table statistics, not by the query.)"""
    store = sqlite_store
    store.append_history([msg(n, restricted=n % 2 == 0) for n in range(1, 20)])
    store.append_history(
        [
            HistoryRecord(
                "p1", private_target("alice", "bob"), "bob", "a!a@h", "alice", T0, "PRIVMSG", "x"
            )
        ]
    )
    steps = plans(store, QUERIES[name])
    assert steps, "no statement on the history table was traced"
    assert [step for step in steps if step.startswith("SCAN")] == []
    assert [step for step in steps if "TEMP B-TREE" in step] == []  # no sort of all matches


def test_a_delete_of_retention_is_an_index_search(sqlite_store: Store) -> None:
    """The DELETEs themselves (traced statements above skip them to keep the rows)."""
    store = sqlite_store
    for statement in (
        "DELETE FROM history WHERE seq IN (SELECT seq FROM history WHERE time_ms < 1 ORDER BY"
        " time_ms LIMIT 5)",
        "DELETE FROM history WHERE seq IN (SELECT seq FROM history WHERE target = '#room' AND"
        " epoch = 0 AND restricted = 0 AND (time_ms, seq) <= (1, 1) ORDER BY time_ms, seq"
        " LIMIT 5)",
        "DELETE FROM history WHERE seq IN (SELECT seq FROM history WHERE target = '#room' AND"
        " epoch IS NULL AND restricted = 0 AND (time_ms, seq) <= (1, 1) ORDER BY time_ms, seq"
        " LIMIT 5)",
        "DELETE FROM history WHERE party_a = 'alice' OR party_b = 'alice'",  # DROP's
    ):
        steps = [str(row[-1]) for row in store._conn.execute("EXPLAIN QUERY PLAN " + statement)]
        assert [step for step in steps if step.startswith("SCAN")] == []


def test_retention_by_count_keeps_the_newest_across_every_view_partition(store: Store) -> None:
    """Public rows, +i/+k rows of two incarnations, interleaved in time: the newest 4 of the
    room stay whichever partition of history_view they are in, and only those."""
    epochs = [(NOW, False), (NOW, True), (OLD, True), (NOW, False), (OLD, True)]
    store.append_history([msg(n, *epochs[n % 5]) for n in range(1, 16)])
    store.append_history([msg(n, target="#b") for n in range(20, 23)])
    assert store.prune_history(T0 + 100, None, 4) == 11
    left = store._conn.execute("SELECT msgid FROM history ORDER BY time_ms").fetchall()
    assert [row[0] for row in left] == ["m12", "m13", "m14", "m15", "m20", "m21", "m22"]


def test_retention_by_count_reaches_rows_migrated_without_an_epoch(db_path: Path) -> None:
    """Rows of rooms unregistered at migration v4 have no epoch: still counted and pruned."""
    with Store.open(db_path) as store:
        store.append_history([msg(n) for n in (2, 4)])
        for n in (1, 3, 5):
            store._conn.execute(
                "INSERT INTO history (msgid, target, display_target, sender, time_ms, command,"
                " text, epoch, restricted) VALUES (?, '#room', '#room', 'a!a@h', ?, 'PRIVMSG',"
                " 'old', NULL, 0)",
                (f"m{n}", int((T0 + n) * 1000)),
            )
        assert store.prune_history(T0 + 100, None, 2) == 3
        left = store._conn.execute("SELECT msgid FROM history ORDER BY time_ms").fetchall()
        assert [row[0] for row in left] == ["m4", "m5"]


def test_version_6_database_loses_only_the_redundant_indexes(db_path: Path) -> None:
    """Migration v7 drops history_party_a/b and history_target_time: every query keeps an
    index (the plan tests above), and the data is kept."""
    db_path.parent.mkdir(parents=True)
    conn = sqlite3.connect(db_path, isolation_level=None)
    migrate(conn, "test", MIGRATIONS[:6])
    conn.execute("INSERT INTO accounts VALUES ('alice', 'alice', 'hash', 0)")
    conn.close()
    with Store.open(db_path) as store:
        store.append_history([msg(1), msg(2, target=private_target("alice", "bob"))])
        indexes = {
            row[0]
            for row in store._conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'history'"
            )
        }
        assert not {"history_party_a", "history_party_b", "history_target_time"} & indexes
        assert {"history_view", "history_party_a_target", "history_party_b_target"} <= indexes
        assert store.targets({}, "alice", 0, T0 + 10, 10) == [
            (private_target("alice", "bob"), T0 + 2)
        ]
        assert store.drop_account("alice")
        assert store.latest(private_target("alice", "bob"), 10) == []
        assert [record.msgid for record in store.latest("#room", 10)] == ["m1"]


def test_retention_deletes_at_most_a_batch_per_call(store: Store) -> None:
    store.append_history(
        [msg(n) for n in range(10)] + [msg(n + 10, target="#b") for n in range(10)]
    )
    assert store.prune_history(T0 + 100, None, 2, max_rows=5) == 5
    calls = [store.prune_history(T0 + 100, None, 2, max_rows=5) for _ in range(4)]
    assert calls == [5, 5, 1, 0]
    view = View(NOW)
    assert texts(store.latest("#room", 50, view=view)) == ["line 8", "line 9"]
    assert texts(store.latest("#b", 50, view=view)) == ["line 18", "line 19"]


# ---- migration v4 -----------------------------------------------------------------------------


def test_migration_hides_old_rows_of_unregistered_rooms_and_keeps_registered_ones(
    db_path: Path,
) -> None:
    db_path.parent.mkdir(parents=True)
    conn = sqlite3.connect(db_path, isolation_level=None)
    migrate(conn, "test", MIGRATIONS[:3])
    conn.execute("INSERT INTO accounts VALUES ('alice', 'alice', 'hash', 0)")
    registered_at = T0 + 5
    conn.execute(
        "INSERT INTO rooms (name_cf, name, founder_cf, registered_at, modes)"
        " VALUES ('#reg', '#reg', 'alice', ?, 'int')",
        (registered_at,),
    )
    rows = [
        ("u1", "#open", None, None, T0),
        ("r1", "#reg", None, None, T0),  # before the registration
        ("r2", "#reg", None, None, T0 + 10),
        ("p1", "alice,bob", "alice", "bob", T0),
    ]
    conn.executemany(
        "INSERT INTO history (msgid, target, display_target, sender, account, time_ms, command,"
        " text, party_a, party_b) VALUES (?, ?, ?, 'a!a@h', 'alice', ?, 'PRIVMSG', 'x', ?, ?)",
        [(m, t, t, round(when * 1000), a, b) for m, t, a, b, when in rows],
    )
    conn.close()

    with Store.open(db_path) as store:
        assert store.schema_version == len(MIGRATIONS)
        registered = View(room_epoch(registered_at), since=None)
        assert [r.msgid for r in store.latest("#reg", 10, view=registered)] == ["r2"]
        assert store.latest("#reg", 10, view=registered)[0].restricted  # +i now: restricted
        assert store.latest("#open", 10, view=View(room_epoch(T0))) == []
        assert [r.msgid for r in store.latest("alice,bob", 10, view=View(PRIVATE_EPOCH))] == ["p1"]


# ---- the reader thread ------------------------------------------------------------------------

SLOW = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"


def test_a_read_past_its_deadline_fails_and_the_reader_goes_on(db_path: Path) -> None:
    Store.open(db_path).close()
    reader = StoreReader.open(db_path, timeout=0.2)
    try:
        endless = reader.submit(lambda store: store._conn.execute(SLOW).fetchone())
        with pytest.raises(sqlite3.OperationalError, match="interrupted"):
            endless.result(TIMEOUT)
        assert reader.submit(lambda store: store.latest("#room", 5)).result(TIMEOUT) == []
    finally:
        reader.close()


def test_closing_the_reader_interrupts_the_running_read_and_cancels_queued_ones(
    db_path: Path,
) -> None:
    Store.open(db_path).close()
    reader = StoreReader.open(db_path, timeout=3600)
    started = threading.Event()

    def endless(store: Store) -> object:
        started.set()
        return store._conn.execute(SLOW).fetchone()

    running = reader.submit(endless)
    queued = reader.submit(lambda store: store.latest("#room", 5))
    assert started.wait(TIMEOUT)
    reader.close()
    with pytest.raises(sqlite3.OperationalError):
        running.result(TIMEOUT)
    with pytest.raises(CancelledError):
        queued.result(TIMEOUT)


def test_reads_do_not_wait_for_a_busy_writer(db_path: Path) -> None:
    """A read runs on its own connection while the writer thread is held inside a job."""
    writer = StoreWriter.open(db_path)
    release = threading.Event()
    try:
        writer.append_history([msg(1)]).result(TIMEOUT)
        busy = writer.submit(lambda store: release.wait(TIMEOUT))
        read = writer.read(lambda store: store.latest("#room", 5, view=View(NOW)))
        assert texts(read.result(TIMEOUT)) == ["line 1"]
        assert not busy.done()
    finally:
        release.set()
        writer.close()


# ---- refusing a database at start -------------------------------------------------------------


def test_an_empty_database_file_is_refused_without_init(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"")
    with pytest.raises(StoreError, match=r"empty \(0 bytes\).*--init-database"):
        Store.open(db_path)
    assert db_path.stat().st_size == 0
    with Store.open(db_path, init=True) as store:
        assert store.get_account("alice") is None


def test_a_missing_database_file_is_created_without_init(db_path: Path) -> None:
    with Store.open(db_path, check=True) as store:
        assert store.schema_version == len(MIGRATIONS)
    assert db_path.stat().st_size > 0


def test_a_damaged_database_fails_the_check_at_start(db_path: Path) -> None:
    with Store.open(db_path) as store:
        store.append_history([msg(n) for n in range(3000)])
    size = db_path.stat().st_size
    with db_path.open("r+b") as raw:
        raw.seek(size // 2)
        raw.write(b"\xa5" * 16384)
    with pytest.raises(StoreError, match=r"damaged|malformed") as refused:
        Store.open(db_path, check=True)
    assert "\n" not in str(refused.value)


# ---- property: the merged scans are exactly the rows a reader may see -------------------------

rows_strategy = st.lists(st.tuples(st.sampled_from([OLD, NOW]), st.booleans()), max_size=30)


@settings(max_examples=150, deadline=None)
@given(
    rows=rows_strategy,
    since=st.none() | st.integers(0, 31),
    limit=st.integers(1, 12),
    anchor=st.integers(0, 31),
)
def test_reads_return_exactly_the_visible_rows_nearest_the_anchor(
    rows: list[tuple[int, bool]], since: int | None, limit: int, anchor: int
) -> None:
    records = [msg(n, epoch, restricted) for n, (epoch, restricted) in enumerate(rows)]
    view = View(NOW, None if since is None else T0 + since)
    visible = [
        record.msgid
        for record in records
        if not record.restricted
        or (record.epoch == NOW and (view.since is None or record.time >= view.since))
    ]
    with Store.open(":memory:") as store:
        if records:
            store.append_history(records)
        assert [r.msgid for r in store.latest("#room", limit, view=view)] == visible[-limit:]
        at = Anchor.at_time(T0 + anchor)
        before = [m for m in visible if int(m[1:]) < anchor]
        after = [m for m in visible if int(m[1:]) > anchor]
        assert [r.msgid for r in store.before("#room", at, limit, view=view)] == before[-limit:]
        assert [r.msgid for r in store.after("#room", at, limit, view=view)] == after[:limit]
