"""The store's issue-16 tables: reactions, redactions and read markers (store/chat.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from securechat.server.records import HistoryRecord, Reaction, Redaction
from securechat.server.store import MIGRATIONS, SCHEMA_VERSION, Store, migrate

T0 = 1_700_000_000.0


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


def test_reactions_need_a_parent_in_the_same_target_and_are_bounded(tmp_path: Path) -> None:
    with Store.open(tmp_path / "db.sqlite") as store:
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


def test_pruning_a_message_drops_its_reactions(tmp_path: Path) -> None:
    with Store.open(tmp_path / "db.sqlite") as store:
        store.append_history([message("m1")])
        store.add_reaction(reaction("r1", "m1"), 10)
        assert store.prune_history(T0 + 10, max_age_seconds=5, max_per_target=None) == 1
        store.append_history([message("m1")])  # the same msgid again: no reaction is left
        (stored,) = store.latest("#a", 10)
        assert stored.reactions == ()


def test_a_redaction_keeps_the_row_and_forgets_text_tags_and_reactions(tmp_path: Path) -> None:
    with Store.open(tmp_path / "db.sqlite") as store:
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


def test_a_refused_redaction_changes_nothing(tmp_path: Path) -> None:
    with Store.open(tmp_path / "db.sqlite") as store:
        store.append_history([message("m1", text="keep me")])
        code, _ = store.redact("#a", "m1", lambda found: "REDACT_FORBIDDEN", Redaction("x", T0))
        assert code == "REDACT_FORBIDDEN"
        assert store.latest("#a", 10)[0].text == "keep me"


def test_read_markers_only_move_forward_and_are_bounded(tmp_path: Path) -> None:
    with Store.open(tmp_path / "db.sqlite") as store:
        store.create_account("alice", "hash", T0)
        store.save_read_marker("Alice", "#A", T0 + 10, most=2)
        store.save_read_marker("alice", "#a", T0 + 5, most=2)  # older: ignored
        assert store.read_markers("ALICE", 10) == {"#a": T0 + 10}
        store.save_read_marker("alice", "bob", T0 + 11, most=2)
        store.save_read_marker("alice", "carol", T0 + 12, most=2)
        assert store.read_markers("alice", 10) == {"bob": T0 + 11, "carol": T0 + 12}
        store.drop_account("alice")
        assert store.read_markers("alice", 10) == {}
