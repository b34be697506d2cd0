"""The store's issue-16 tables: reactions, redactions and read markers (store/chat.py), on
SQLite and on PostgreSQL (conftest's any_store)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from securechat.server.records import HistoryRecord, Reaction, Redaction
from securechat.server.store import MIGRATIONS, SCHEMA_VERSION, Store, migrate

T0 = 1_700_000_000.0


@pytest.fixture
def store(any_store: Store) -> Store:
    """Each test below that takes ``store`` runs on SQLite and on PostgreSQL."""
    return any_store


def message(msgid: str, target: str = "#a", text: str = "hi") -> HistoryRecord:
    return HistoryRecord(msgid, target, target, "alice!a@h", "alice", T0, "PRIVMSG", text)


def reaction(msgid: str, parent: str, who: str = "bob", value: str = "👍") -> Reaction:
    return Reaction(msgid, "#a", parent, f"{who}!b@h", who, T0 + 1, value)


def test_a_version_5_database_keeps_its_history_and_gains_the_chat_tables(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, str(path), MIGRATIONS[:5])
    conn.execute(
        "INSERT INTO history (msgid, target, display_target, sender, account, time_ms, command,"
        " text, epoch, restricted) VALUES ('m1', '#a', '#a', 'x!y@z', NULL, 1, 'PRIVMSG', 'old',"
        " 0, 0)"
    )
    conn.close()
    with Store.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
        (old,) = store.latest("#a", 10)
        assert (old.text, old.tags, old.lines, old.redaction) == ("old", "", (), None)
        assert store.add_reaction(reaction("r1", "m1"), 10) == "stored"


def test_a_version_7_database_keeps_its_history_and_reactions_without_autoincrement(
    tmp_path: Path,
) -> None:
    """Migration v8 copies the history table without AUTOINCREMENT: rows, their seq and order
    and the reactions pointing into it are kept, and foreign keys are enforced after."""
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, str(path), MIGRATIONS[:7])
    for n in (1, 2, 3):
        conn.execute(
            "INSERT INTO history (msgid, target, display_target, sender, time_ms, command,"
            " text, epoch, restricted) VALUES (?, '#a', '#a', 'x!y@z', 5, 'PRIVMSG', ?, 0, 0)",
            (f"m{n}", f"line {n}"),
        )
    conn.execute("DELETE FROM history WHERE msgid = 'm3'")  # the sequence stays at 3
    conn.execute(
        "INSERT INTO reactions (msgid, target, parent, sender, reactor, time_ms, reaction)"
        " VALUES ('r1', '#a', 'm1', 'b!b@h', 'b', 6, '+1')"
    )
    conn.close()
    with Store.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
        (sql,) = store._conn.execute("SELECT sql FROM sqlite_master WHERE name = 'history'")
        assert "AUTOINCREMENT" not in sql[0]
        store.append_history([message("m4")])  # one above every row: m3's seq, free again
        rows = store._conn.execute("SELECT msgid, seq FROM history ORDER BY seq").fetchall()
        assert rows == [("m1", 1), ("m2", 2), ("m4", 3)]
        (first, *_) = store.latest("#a", 10)
        assert [reaction.msgid for reaction in first.reactions] == ["r1"]
        assert store.prune_history(T0 + 100, None, 1) == 2  # m1 goes, and its reaction with it
        assert store._conn.execute("SELECT count(*) FROM reactions").fetchone() == (0,)


def test_reactions_need_a_parent_in_the_same_target_and_are_bounded(store: Store) -> None:
    store.append_history([message("m1"), message("p1", target="#other")])
    assert store.add_reaction(reaction("r0", "p1"), 10) == "no-parent"  # #other's msgid
    assert store.add_reaction(reaction("r1", "m1"), 2) == "stored"
    assert store.add_reaction(reaction("r2", "m1"), 2) == "duplicate"  # bob's 👍 again
    assert store.add_reaction(reaction("r3", "m1", who="carol"), 2) == "stored"
    assert store.add_reaction(reaction("r4", "m1", who="dave"), 2) == "limit"
    (stored,) = store.latest("#a", 10)
    assert [r.msgid for r in stored.reactions] == ["r1", "r3"]
    assert store.remove_reaction("#a", "m1", "bob", "👍")
    (stored,) = store.latest("#a", 10)
    assert [r.msgid for r in stored.reactions] == ["r3"]


def test_reactions_of_one_millisecond_come_back_in_the_order_they_were_stored(
    store: Store,
) -> None:
    """Not msgid order ("r10" < "r9" as text): SQLite's rowid, PostgreSQL's reactions.seq."""
    store.append_history([message("m1")])
    for msgid, who in (("r9", "bob"), ("r10", "carol"), ("r2", "dave")):
        assert store.add_reaction(reaction(msgid, "m1", who=who), 10) == "stored"
    (stored,) = store.latest("#a", 10)
    assert [r.msgid for r in stored.reactions] == ["r9", "r10", "r2"]


def test_a_multiline_message_and_its_tags_round_trip(store: Store) -> None:
    record = HistoryRecord(
        "m1", "#a", "#a", "alice!a@h", "alice", T0, "PRIVMSG", "ab\nc", tags="+draft/reply=x",
        lines=(("a", False), ("b", True), ("c", False)),
    )  # fmt: skip
    store.append_history([record])
    for stored in (store.latest("#a", 10)[0], store.message_by_msgid("m1")):
        assert stored is not None
        assert (stored.text, stored.tags, stored.lines) == (record.text, record.tags, record.lines)


def test_pruning_a_message_drops_its_reactions(store: Store) -> None:
    store.append_history([message("m1")])
    store.add_reaction(reaction("r1", "m1"), 10)
    assert store.prune_history(T0 + 10, max_age_seconds=5, max_per_target=None) == 1
    store.append_history([message("m1")])  # the same msgid again: no reaction is left
    (stored,) = store.latest("#a", 10)
    assert stored.reactions == ()


def test_a_redaction_keeps_the_row_and_forgets_text_tags_and_reactions(store: Store) -> None:
    record = HistoryRecord(
        "m1", "#a", "#a", "alice!a@h", "alice", T0, "PRIVMSG", "a\nb", tags="+draft/reply=x",
        lines=(("a", False), ("b", False)),
    )  # fmt: skip
    store.append_history([record])
    store.add_reaction(reaction("r1", "m1"), 10)
    redaction = Redaction("op!o@h", T0 + 5, "spam")
    code, found = store.redact("#a", "m1", lambda found: None, redaction)
    assert code is None and isinstance(found, HistoryRecord) and found.text == "a\nb"
    (stored,) = store.latest("#a", 10)
    assert (stored.text, stored.tags, stored.lines, stored.reactions) == ("", "", (), ())
    assert stored.redaction == redaction
    assert store.redact("#b", "m1", lambda found: None, redaction)[0] == "UNKNOWN_MSGID"


def test_a_refused_redaction_changes_nothing(store: Store) -> None:
    store.append_history([message("m1", text="keep me")])
    code, _ = store.redact("#a", "m1", lambda found: "REDACT_FORBIDDEN", Redaction("x", T0))
    assert code == "REDACT_FORBIDDEN"
    assert store.latest("#a", 10)[0].text == "keep me"


def test_read_markers_only_move_forward_and_are_bounded(store: Store) -> None:
    store.create_account("alice", "hash", T0)
    store.save_read_marker("Alice", "#A", T0 + 10, most=2)
    store.save_read_marker("alice", "#a", T0 + 5, most=2)  # older: ignored
    assert store.read_markers("ALICE", 10) == {"#a": T0 + 10}
    store.save_read_marker("alice", "bob", T0 + 11, most=2)
    store.save_read_marker("alice", "carol", T0 + 12, most=2)
    assert store.read_markers("alice", 10) == {"bob": T0 + 11, "carol": T0 + 12}
    store.drop_account("alice")
    assert store.read_markers("alice", 10) == {}
