"""The store's always-on side (store/presence.py): settings, saved users, offline messages."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from securechat.server.records import PresenceRecord
from securechat.server.store import MIGRATIONS, SCHEMA_VERSION, HistoryRecord, Store, migrate

T0 = 1_700_000_000.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "db.sqlite") as opened:
        opened.create_account("Alice", "hash", T0)
        yield opened


def kept(n: int, account: str = "alice") -> HistoryRecord:
    return HistoryRecord(f"m{n}", account, "Alice", "bob!b@host", None, T0 + n, "PRIVMSG", f"{n}")


ALICE = PresenceRecord("Alice", "Alice", "~alice", "Alice A", "host", None, ("#a", "#B"), T0)


def test_a_saved_always_on_user_loads_back_as_saved(store: Store) -> None:
    store.save_presence(ALICE)
    store.save_presence(replace(ALICE, away="gone", rooms=("#c",)))  # replaces
    assert store.load_presences().presences == (replace(ALICE, away="gone", rooms=("#c",)),)
    store.drop_presence("ALICE")
    assert store.load_presences().presences == ()


def test_a_presence_of_an_unknown_account_is_not_saved(store: Store) -> None:
    store.save_presence(replace(ALICE, account="nobody"))
    assert store.load_presences().presences == ()


def test_the_always_on_setting_is_kept_per_account(store: Store) -> None:
    store.set_always_on("ALICE", True)
    store.set_always_on("alice", False)
    assert store.load_presences().always_on == (("alice", False),)


def test_offline_messages_are_bounded_read_in_order_and_forgotten_up_to_a_point(
    store: Store,
) -> None:
    assert store.keep_offline(kept(1), limit=2) and store.keep_offline(kept(2), limit=2)
    assert not store.keep_offline(kept(3), limit=2)
    records, last = store.offline_for("ALICE")
    assert [r.text for r in records] == ["1", "2"] and records[0].time == T0 + 1
    assert store.keep_offline(kept(3), limit=5)  # arrives while the first two are delivered
    store.forget_offline("alice", last)
    assert [r.text for r in store.offline_for("alice")[0]] == ["3"]


def test_keeping_an_offline_message_can_add_it_to_private_history_at_once(store: Store) -> None:
    record = kept(1)
    store.keep_offline(record, limit=5, history=replace(record, target="alice,bob"))
    assert [r.text for r in store.latest("alice,bob", 5)] == ["1"]


def test_dropping_the_account_drops_its_presence_setting_and_messages(store: Store) -> None:
    store.save_presence(ALICE)
    store.set_always_on("alice", True)
    store.keep_offline(kept(1), limit=5)
    store.drop_account("alice")
    assert store.load_presences().presences == () and store.load_presences().always_on == ()
    assert store.offline_for("alice") == ([], 0)


def test_a_version_4_database_gains_the_presence_tables(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, str(path), MIGRATIONS[:4])
    conn.close()
    with Store.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
        store.create_account("alice", "hash", T0)
        assert store.keep_offline(kept(1), limit=1)
