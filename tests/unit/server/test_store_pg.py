"""What only the PostgreSQL store has to do (the behaviour both backends share is tested on
both in test_store.py and test_store_views.py): its schema versions, several processes
opening one database, msgid prefixes, the read-only reader and its deadline, reconnecting."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from securechat.server.records import Reaction
from securechat.server.store import HistoryRecord, Store, StoreError, WriterStats
from securechat.server.store.pg import PgStore, PgStoreReader, open_postgres, reserve_msgid_prefix
from securechat.server.store.pg_schema import PG_MIGRATIONS, PG_SCHEMA_VERSION, pg_migrate
from tests.pg import PgCluster
from tests.unit.server.test_store_writer import Gate

T0 = 1_700_000_000.0


def record(n: int) -> HistoryRecord:
    return HistoryRecord(f"m{n}", "#room", "#room", "a!a@h", None, T0 + n, "PRIVMSG", f"line {n}")


@pytest.fixture
def store(pg_url: str) -> Iterator[PgStore]:
    with PgStore.connect(pg_url, check=True) as opened:
        yield opened


def test_a_new_database_gets_the_current_schema(store: PgStore) -> None:
    assert store.schema_version == PG_SCHEMA_VERSION


def test_a_schema_from_a_newer_release_is_refused_untouched(pg_url: str) -> None:
    PgStore.connect(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE securechat_schema SET version = 99")
    with pytest.raises(StoreError, match="schema version 99 is newer"):
        PgStore.connect(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute("SELECT version FROM securechat_schema").fetchone() == (99,)


def test_a_version_2_database_keeps_its_history_and_gains_the_chat_tables(pg_url: str) -> None:
    """Version 3 is SQLite's version 6 (issue 16): history rows of before read back with no
    tags, lines or redaction, and can be reacted to."""
    opened = PgStore(pg_url)
    try:
        pg_migrate(opened._in_transaction, "test", PG_MIGRATIONS[:2])
        with opened._writing() as conn:
            conn.execute(
                "INSERT INTO history (msgid, target, display_target, sender, account, time_ms,"
                " command, text, epoch, restricted) VALUES ('m1', '#room', '#room', 'x!y@z',"
                " NULL, 1, 'PRIVMSG', 'old', 0, 0)"
            )
    finally:
        opened.close()
    with PgStore.connect(pg_url, check=True) as store:
        assert store.schema_version == PG_SCHEMA_VERSION == 4
        indexes = store._conn.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'history'"
        ).fetchall()
        assert "history_target_time" not in {row[0] for row in indexes}  # gone in version 4
        (old,) = store.latest("#room", 10)
        assert (old.text, old.tags, old.lines, old.redaction) == ("old", "", (), None)
        reacted = Reaction("r1", "#room", "m1", "bob!b@h", "bob", T0, "+1")
        assert store.add_reaction(reacted, 10) == "stored"


def test_processes_starting_at_once_on_a_new_database_migrate_it_once(pg_url: str) -> None:
    with ThreadPoolExecutor(4) as pool:
        stores = list(pool.map(lambda _: PgStore.connect(pg_url), range(4)))
    for opened in stores:
        assert opened.schema_version == PG_SCHEMA_VERSION
        opened.close()


def test_every_opening_reserves_a_msgid_prefix_no_other_has(store: PgStore) -> None:
    prefixes = {reserve_msgid_prefix(store) for _ in range(20)}
    assert len(prefixes) == 20 and all(len(p) == 8 for p in prefixes)
    with store._reading() as conn:
        stored = {row[0] for row in conn.execute("SELECT prefix FROM msgid_prefixes").fetchall()}
    assert prefixes == stored


def test_the_reader_cannot_write(store: PgStore, pg_url: str) -> None:
    with (
        PgStore.connect(pg_url, read_only=True) as reader,
        pytest.raises(StoreError, match="read-only transaction"),
    ):
        reader.append_history([record(1)])


def sleep_in_database(seconds: float) -> object:
    def job(store: Store) -> None:
        with store._reading() as conn:
            conn.execute(f"SELECT pg_sleep({seconds})")

    return job


def test_a_read_past_its_deadline_fails_and_the_reader_goes_on(store: PgStore, pg_url: str) -> None:
    """The deadline is PostgreSQL's statement_timeout on the reader's connection."""
    store.append_history([record(1)])
    reader = PgStoreReader.open(pg_url, timeout=0.3)
    try:
        with pytest.raises(StoreError, match="statement timeout"):
            reader.submit(sleep_in_database(30)).result(10)  # type: ignore[arg-type]
        assert [r.msgid for r in reader.submit(lambda s: s.latest("#room", 5)).result(10)] == ["m1"]
    finally:
        reader.close()


def test_closing_the_reader_cancels_the_running_read(pg_url: str, store: PgStore) -> None:
    reader = PgStoreReader.open(pg_url, timeout=3600)
    started = threading.Event()

    def slow(opened: Store) -> None:
        started.set()
        sleep_in_database(3600)(opened)  # type: ignore[operator]

    running = reader.submit(slow)
    assert started.wait(10)
    reader.close()  # returns once the read was cancelled, not after an hour
    with pytest.raises(StoreError, match="cancel"):
        running.result(10)


@pytest.mark.timeout(60)
def test_a_writer_and_reader_reconnect_when_the_server_is_back(
    pg_url: str, pg_cluster: PgCluster
) -> None:
    """pg_ctl stop -m fast cuts every connection: the jobs meanwhile fail with StoreError;
    after pg_ctl start the next ones reconnect at once (the connections died while idle)."""
    writer = open_postgres(pg_url)
    try:
        writer.append_history([record(1)]).result(10)
        pg_cluster.stop()
        try:
            with pytest.raises(StoreError, match=r"cannot connect|terminat|closed"):
                writer.append_history([record(2)]).result(10)
        finally:
            pg_cluster.start()
        writer.append_history([record(3)]).result(10)  # nothing listened: retried at once
        read = writer.read(lambda s: [r.msgid for r in s.latest("#room", 5)]).result(10)
        assert read == ["m1", "m3"]  # the reader's connection died while idle: reconnected
    finally:
        writer.close()


def test_appends_queued_together_are_one_copy_and_a_bad_one_fails_alone(pg_url: str) -> None:
    """Group commit as with SQLite (test_store_writer.py): what queued behind a busy writer
    is stored by one COPY; a duplicate msgid fails only its own append."""
    writer = open_postgres(pg_url)
    try:
        writer.append_history([record(1)]).result(10)
        gate = Gate(writer)
        good_before = writer.append_history([record(2)])
        duplicate = writer.append_history([record(3), record(1)])
        good_after = writer.append_history([record(4)])
        gate.open()
        good_before.result(10)
        good_after.result(10)
        with pytest.raises(StoreError, match="duplicate key value"):
            duplicate.result(10)
        stored = writer.read(lambda s: [r.msgid for r in s.latest("#room", 10)]).result(10)
        assert stored == ["m1", "m2", "m4"]  # m3 went with its append
        assert writer.stats == WriterStats(commits=3, appends=3, records=3)
    finally:
        writer.close()
