from __future__ import annotations

import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from securechat.server.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    AccountExists,
    Anchor,
    CertfpInUse,
    HistoryRecord,
    KLine,
    RoomExists,
    RoomRecord,
    Store,
    StoreError,
    UnknownAccount,
    migrate,
    normalize_certfp,
    private_parties,
    private_peer,
    private_target,
)

T0 = 1_700_000_000.0
FP = "AB:CD:EF:01:23:45:67:89"


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


def msg(
    n: int,
    target: str = "#room",
    *,
    time: float | None = None,
    text: str | None = None,
    account: str | None = "alice",
) -> HistoryRecord:
    return HistoryRecord(
        msgid=f"m{n}",
        target=target,
        display_target="#Room" if target == "#room" else "bob",
        sender="alice!a@host",
        account=account,
        time=T0 + n if time is None else time,
        command="PRIVMSG",
        text=text if text is not None else f"line {n}",
    )


def ids(records: list[HistoryRecord]) -> list[str]:
    return [record.msgid for record in records]


def fill(store: Store, count: int, target: str = "#room", first: int = 1) -> None:
    store.append_history([msg(n, target) for n in range(first, first + count)])


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


# --- opening and schema ------------------------------------------------------------------------


def test_new_database_is_at_current_schema_version_in_wal_mode(db_path: Path) -> None:
    Store.open(db_path).close()
    conn = raw(db_path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == len(MIGRATIONS)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"accounts", "certfps", "rooms", "room_operators", "room_bans", "history"} <= tables


def test_history_has_only_the_indexes_its_queries_use(sqlite_store: Store, db_path: Path) -> None:
    """Each is one more B-tree insert per message before it may be delivered (issue 17)."""
    conn = raw(db_path)
    names = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'history'"
    )
    indexes = {
        name: [row[2] for row in conn.execute(f"PRAGMA index_info({name})")] for (name,) in names
    }
    assert indexes == {
        "sqlite_autoindex_history_1": ["msgid"],
        "history_time": ["time_ms"],
        "history_view": ["target", "epoch", "restricted", "time_ms"],
        "history_party_a_target": ["party_a", "target"],
        "history_party_b_target": ["party_b", "target"],
    }


def test_database_file_and_new_directory_are_private(db_path: Path) -> None:
    Store.open(db_path).close()
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(db_path.parent.stat().st_mode) == 0o700


def test_reopening_keeps_data_and_version(db_path: Path) -> None:
    with Store.open(db_path) as store:
        store.create_account("Alice", "hash", T0)
        fill(store, 3)
    with Store.open(db_path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.get_account("alice") is not None
        assert ids(store.latest("#room", 10)) == ["m1", "m2", "m3"]


def test_version_1_database_is_migrated_keeping_its_accounts(db_path: Path) -> None:
    db_path.parent.mkdir()
    conn = raw(db_path)
    migrate(conn, str(db_path), MIGRATIONS[:1])
    conn.execute(
        "INSERT INTO accounts (name_cf, name, password_hash, created_at) VALUES (?, ?, ?, ?)",
        ("alice", "Alice", "hash", T0),
    )
    conn.close()
    assert raw(db_path).execute("PRAGMA user_version").fetchone()[0] == 1

    with Store.open(db_path) as store:
        assert store.schema_version == SCHEMA_VERSION
        account = store.get_account("ALICE")
        assert account is not None and account.name == "Alice"
        fill(store, 1)
        assert ids(store.latest("#room", 5)) == ["m1"]


def test_failed_migration_leaves_previous_version_intact(db_path: Path) -> None:
    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("migration bug")

    db_path.parent.mkdir()
    conn = raw(db_path)
    with pytest.raises(RuntimeError):
        migrate(conn, str(db_path), (MIGRATIONS[0], broken))
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "half_done" not in tables and "accounts" in tables


def test_database_from_newer_release_is_refused_untouched(db_path: Path) -> None:
    Store.open(db_path).close()
    raw(db_path).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer") as caught:
        Store.open(db_path)
    assert str(db_path) in str(caught.value)
    assert raw(db_path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1


def test_file_that_is_not_a_database_gives_one_line_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is certainly not an sqlite database\n" * 200)
    with pytest.raises(StoreError) as caught:
        Store.open(path)
    message = str(caught.value)
    assert str(path) in message and "\n" not in message
    assert "not a database" in message


def test_directory_that_cannot_be_created_gives_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data directory should be")
    path = blocker / "securechat.db"
    with pytest.raises(StoreError, match="cannot open database") as caught:
        Store.open(path)
    assert str(path) in str(caught.value)


def test_path_that_is_a_directory_gives_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as caught:
        Store.open(tmp_path)
    assert str(tmp_path) in str(caught.value)


def skip_unless_permissions_are_enforced(locked: Path) -> None:
    """Root (with CAP_DAC_OVERRIDE) writes anywhere; find out rather than guess by uid."""
    probe = locked / "probe" if locked.is_dir() else locked
    try:
        with probe.open("ab"):
            pass
    except PermissionError:
        return
    if probe != locked:
        probe.unlink()
    pytest.skip("this user bypasses file permissions (root)")


def test_unwritable_directory_gives_store_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        skip_unless_permissions_are_enforced(locked)
        with pytest.raises(StoreError) as caught:
            Store.open(locked / "securechat.db")
        assert str(locked / "securechat.db") in str(caught.value)
    finally:
        locked.chmod(0o700)


def test_read_only_database_is_refused_at_open(db_path: Path) -> None:
    Store.open(db_path).close()
    db_path.chmod(0o400)
    skip_unless_permissions_are_enforced(db_path)
    with pytest.raises(StoreError) as caught:
        Store.open(db_path)
    assert str(db_path) in str(caught.value)


def test_in_memory_store_works_for_tests() -> None:
    with Store.open(":memory:") as store:
        store.create_account("alice", "hash", T0)
        assert store.get_account("alice") is not None


# --- accounts ----------------------------------------------------------------------------------


def test_account_round_trip_keeps_display_name(store: Store) -> None:
    created = store.create_account("Alice", "hash1", T0)
    loaded = store.get_account("aLiCe")
    assert loaded == created
    assert loaded is not None and (loaded.name, loaded.name_cf) == ("Alice", "alice")


def test_account_names_are_unique_casefolded(store: Store) -> None:
    store.create_account("Alice", "hash1", T0)
    with pytest.raises(AccountExists):
        store.create_account("ALICE", "hash2", T0)
    account = store.get_account("alice")
    assert account is not None and account.password_hash == "hash1"


def test_unknown_account_is_none(store: Store) -> None:
    assert store.get_account("nobody") is None


def test_certfps_are_normalized_listed_and_looked_up(store: Store) -> None:
    store.create_account("alice", "hash", T0)
    store.add_certfp("alice", FP)
    store.add_certfp("alice", "ff00")
    store.add_certfp("alice", FP.lower())  # the same fingerprint again: no-op
    assert store.list_certfps("Alice") == ("abcdef0123456789", "ff00")
    by_fp = store.account_by_certfp("abcdef0123456789")
    assert by_fp is not None and by_fp.name == "alice"
    assert by_fp.certfps == ("abcdef0123456789", "ff00")


def test_removed_certfp_no_longer_finds_the_account(store: Store) -> None:
    store.create_account("alice", "hash", T0)
    store.add_certfp("alice", FP)
    assert store.remove_certfp("alice", FP)
    assert not store.remove_certfp("alice", FP)
    assert store.account_by_certfp(FP) is None


def test_certfp_belongs_to_one_account(store: Store) -> None:
    store.create_account("alice", "hash", T0)
    store.create_account("bob", "hash", T0)
    store.add_certfp("alice", FP)
    with pytest.raises(CertfpInUse):
        store.add_certfp("bob", FP)
    assert not store.remove_certfp("bob", FP)
    assert store.list_certfps("alice") == (normalize_certfp(FP),)


def test_certfp_of_unknown_account_is_refused(store: Store) -> None:
    with pytest.raises(UnknownAccount):
        store.add_certfp("nobody", FP)


@pytest.mark.parametrize("bad", ["", ":", "not-hex", "abcg"])
def test_malformed_certfp_is_a_value_error(bad: str) -> None:
    with pytest.raises(ValueError):
        normalize_certfp(bad)


def test_drop_account_forgets_everything_a_new_registrant_must_not_inherit(store: Store) -> None:
    store.create_account("alice", "hash", T0)
    store.create_account("bob", "hash", T0)
    store.add_certfp("alice", FP)
    store.save_room(RoomRecord("#alice", founder="alice", registered_at=T0))
    store.save_room(RoomRecord("#bob", founder="bob", registered_at=T0, operators=("alice",)))
    dm = private_target("alice", "bob")
    store.append_history([msg(1, "#bob"), msg(2, dm), msg(3, private_target("bob", "carol"))])

    assert store.drop_account("ALICE")

    assert store.get_account("alice") is None
    assert store.account_by_certfp(FP) is None
    assert store.get_room("#alice") is None
    bob_room = store.get_room("#bob")
    assert bob_room is not None and bob_room.operators == ()
    assert store.latest(dm, 10) == []
    assert ids(store.latest("#bob", 10)) == ["m1"]  # room history belongs to the room
    assert ids(store.latest(private_target("bob", "carol"), 10)) == ["m3"]
    assert not store.drop_account("alice")


# --- rooms -------------------------------------------------------------------------------------


def full_room() -> RoomRecord:
    return RoomRecord(
        name="#Python",
        founder="alice",
        registered_at=T0,
        topic="Snakes",
        topic_set_by="alice!a@host",
        topic_set_at=T0 + 5,
        modes="+ntkl",
        key="s3cret",
        limit=42,
        operators=("alice", "bob"),
        bans=("*!*@spam.example", "troll!*@*"),
    )


@pytest.fixture
def founders(store: Store) -> Store:
    store.create_account("Alice", "hash", T0)
    store.create_account("Bob", "hash", T0)
    return store


def test_room_round_trips_every_field(founders: Store) -> None:
    founders.save_room(full_room())
    assert founders.load_rooms() == [full_room()]
    assert founders.get_room("#PYTHON") == full_room()


def test_room_with_no_optional_fields_round_trips(founders: Store) -> None:
    bare = RoomRecord("#bare", founder="alice", registered_at=T0, modes="")
    founders.save_room(bare)
    assert founders.get_room("#bare") == bare


def test_saving_a_room_again_replaces_its_lists(founders: Store) -> None:
    founders.save_room(full_room())
    changed = RoomRecord(
        name="#python",
        founder="bob",
        registered_at=T0,
        topic="New topic",
        modes="+m",
        operators=("Bob",),
        bans=("z!*@*", "a!*@*"),
    )
    founders.save_room(changed)
    rooms = founders.load_rooms()
    assert len(rooms) == 1
    assert rooms[0].name == "#python" and rooms[0].topic == "New topic"
    assert rooms[0].operators == ("bob",)
    assert rooms[0].bans == ("z!*@*", "a!*@*")  # the order they were set in, not sorted
    assert rooms[0].key is None and rooms[0].limit is None


def test_rooms_load_in_name_order(founders: Store) -> None:
    for name in ("#b", "#C", "#a"):
        founders.save_room(RoomRecord(name, founder="alice", registered_at=T0))
    assert [room.name for room in founders.load_rooms()] == ["#a", "#b", "#C"]


def test_room_needs_registered_founder_and_operators(founders: Store) -> None:
    with pytest.raises(UnknownAccount):
        founders.save_room(RoomRecord("#x", founder="nobody", registered_at=T0))
    with pytest.raises(UnknownAccount):
        founders.save_room(RoomRecord("#x", founder="alice", registered_at=T0, operators=("zed",)))
    assert founders.load_rooms() == []


def test_dropped_room_is_gone(founders: Store) -> None:
    founders.save_room(full_room())
    assert founders.drop_room("#python")
    assert not founders.drop_room("#python")
    assert founders.load_rooms() == []


def test_registering_a_taken_room_name_is_refused_and_keeps_the_first(founders: Store) -> None:
    """Another server process sharing the database may have registered it: ``new`` never
    overwrites, a plain save (a topic or mode change) does."""
    founders.save_room(RoomRecord("#python", founder="alice", registered_at=T0), new=True)
    with pytest.raises(RoomExists):
        founders.save_room(RoomRecord("#PYTHON", founder="bob", registered_at=T0 + 1), new=True)
    (kept,) = founders.load_rooms()
    assert (kept.founder, kept.registered_at) == ("alice", T0)


# --- private targets ---------------------------------------------------------------------------


def test_private_target_is_order_and_case_independent() -> None:
    assert private_target("Bob", "alice") == private_target("ALICE", "bob") == "alice,bob"


def test_private_target_splits_back_into_its_parties() -> None:
    assert private_parties(private_target("bob", "alice")) == ("alice", "bob")
    assert private_peer("alice,bob", "Alice") == "bob"
    assert private_peer("alice,bob", "bob") == "alice"
    assert private_peer("alice,bob", "carol") is None


def test_rooms_are_not_private_targets() -> None:
    assert private_parties("#room") is None
    assert private_parties("#odd,name") is None


@pytest.mark.parametrize(("a", "b"), [("", "bob"), ("al,ice", "bob")])
def test_private_target_refuses_names_that_would_be_ambiguous(a: str, b: str) -> None:
    with pytest.raises(ValueError):
        private_target(a, b)


# --- history: appending ------------------------------------------------------------------------


def test_record_round_trips(store: Store) -> None:
    record = msg(1, text="héllo \x01ACTION waves\x01", account=None)
    store.append_history([record])
    assert store.message_by_msgid("m1") == record
    assert store.message_by_msgid("nope") is None


def test_missing_account_and_parties_are_stored_as_null(sqlite_store: Store, db_path: Path) -> None:
    """The INSERT binds '' for them (no None parameter): NULL is what lands in the file."""
    sqlite_store.append_history([msg(1, account=None), msg(2, private_target("al", "bo"))])
    rows = raw(db_path).execute(
        "SELECT msgid, account, party_a, party_b, redacted_by, redacted_ms, redact_reason"
        " FROM history ORDER BY msgid"
    )
    assert rows.fetchall() == [
        ("m1", None, None, None, None, None, None),
        ("m2", "alice", "al", "bo", None, None, None),
    ]


def test_text_with_tabs_backslashes_and_control_bytes_round_trips(store: Store) -> None:
    """What COPY's text format escapes (PostgreSQL stores messages with COPY) comes back."""
    text = "a\tb \\N \\ \\t \x02bold\x0f \x7f end\\"
    store.append_history([msg(1, text=text)])
    stored = store.message_by_msgid("m1")
    assert stored is not None and stored.text == text


def test_room_targets_are_casefolded(store: Store) -> None:
    store.append_history([msg(1, "#Room")])
    assert ids(store.latest("#ROOM", 5)) == ["m1"]
    assert ids(store.after("#rOOm", Anchor.at_time(T0), 5)) == ["m1"]


def test_time_is_kept_to_the_millisecond(store: Store) -> None:
    store.append_history([msg(1, time=T0 + 0.1234)])
    found = store.message_by_msgid("m1")
    assert found is not None and found.time == pytest.approx(T0 + 0.123, abs=1e-9)


def test_batch_with_duplicate_msgid_stores_nothing(store: Store) -> None:
    store.append_history([msg(1)])
    with pytest.raises(StoreError):
        store.append_history([msg(2), msg(1)])
    assert ids(store.latest("#room", 10)) == ["m1"]


def test_command_other_than_privmsg_or_notice_is_refused(store: Store) -> None:
    record = HistoryRecord("x", "#room", "#room", "a!a@h", None, T0, "JOIN", "")
    with pytest.raises(StoreError):
        store.append_history([record])


# --- history: queries --------------------------------------------------------------------------


def test_latest_is_the_newest_messages_oldest_first(store: Store) -> None:
    fill(store, 10)
    assert ids(store.latest("#room", 3)) == ["m8", "m9", "m10"]
    assert ids(store.latest("#room", 50)) == [f"m{n}" for n in range(1, 11)]


def test_latest_only_reads_its_target(store: Store) -> None:
    fill(store, 3)
    store.append_history([msg(9, "#other")])
    assert ids(store.latest("#other", 10)) == ["m9"]
    assert store.latest("#empty", 10) == []


def test_latest_after_an_anchor_excludes_it(store: Store) -> None:
    fill(store, 10)
    assert ids(store.latest("#room", 50, after=Anchor.at_msgid("m7"))) == ["m8", "m9", "m10"]
    assert ids(store.latest("#room", 2, after=Anchor.at_msgid("m3"))) == ["m9", "m10"]
    assert ids(store.latest("#room", 50, after=Anchor.at_time(T0 + 8))) == ["m9", "m10"]


def test_before_excludes_the_anchor(store: Store) -> None:
    fill(store, 10)
    assert ids(store.before("#room", Anchor.at_msgid("m5"), 2)) == ["m3", "m4"]
    assert ids(store.before("#room", Anchor.at_msgid("m2"), 5)) == ["m1"]
    assert store.before("#room", Anchor.at_msgid("m1"), 5) == []


def test_before_a_time_excludes_that_millisecond(store: Store) -> None:
    fill(store, 10)
    assert ids(store.before("#room", Anchor.at_time(T0 + 5), 10)) == ["m1", "m2", "m3", "m4"]
    assert ids(store.before("#room", Anchor.at_time(T0 + 5.5), 2)) == ["m4", "m5"]


def test_after_excludes_the_anchor(store: Store) -> None:
    fill(store, 10)
    assert ids(store.after("#room", Anchor.at_msgid("m5"), 2)) == ["m6", "m7"]
    assert ids(store.after("#room", Anchor.at_time(T0 + 8), 10)) == ["m9", "m10"]
    assert store.after("#room", Anchor.at_msgid("m10"), 5) == []


def test_unknown_msgid_anchor_gives_nothing(store: Store) -> None:
    fill(store, 5)
    unknown = Anchor.at_msgid("no-such-id")
    assert store.before("#room", unknown, 5) == []
    assert store.after("#room", unknown, 5) == []
    assert store.around("#room", unknown, 5) == []
    assert store.latest("#room", 5, after=unknown) == []
    assert store.between("#room", unknown, Anchor.at_msgid("m3"), 5) == []


def test_msgid_of_another_target_is_not_an_anchor(store: Store) -> None:
    fill(store, 5)
    store.append_history([msg(99, "#secret")])
    assert store.after("#room", Anchor.at_msgid("m99"), 5) == []
    assert store.before("#room", Anchor.at_msgid("m99"), 5) == []


def test_ties_on_time_keep_insertion_order(store: Store) -> None:
    # Same millisecond, appended across two batches, in an order unlike their msgids' order.
    order = [5, 3, 9, 1]
    store.append_history([msg(n, time=T0) for n in order[:2]])
    store.append_history([msg(n, time=T0) for n in order[2:]])
    assert ids(store.latest("#room", 10)) == ["m5", "m3", "m9", "m1"]
    assert ids(store.latest("#room", 2)) == ["m9", "m1"]
    assert ids(store.before("#room", Anchor.at_msgid("m9"), 10)) == ["m5", "m3"]
    assert ids(store.after("#room", Anchor.at_msgid("m3"), 10)) == ["m9", "m1"]
    assert ids(store.between("#room", Anchor.at_msgid("m5"), Anchor.at_msgid("m1"), 10)) == [
        "m3",
        "m9",
    ]
    # A bare timestamp stands for its whole millisecond, on whichever side it bounds.
    assert store.after("#room", Anchor.at_time(T0), 10) == []
    assert store.before("#room", Anchor.at_time(T0), 10) == []


def test_order_is_by_server_time_first(store: Store) -> None:
    # Appended out of time order (e.g. a batch from several connections): time wins.
    store.append_history([msg(2, time=T0 + 2), msg(1, time=T0 + 1), msg(3, time=T0 + 3)])
    assert ids(store.latest("#room", 10)) == ["m1", "m2", "m3"]
    assert ids(store.after("#room", Anchor.at_msgid("m1"), 10)) == ["m2", "m3"]


def test_around_a_msgid_centres_on_it_and_includes_it(store: Store) -> None:
    fill(store, 20)
    assert ids(store.around("#room", Anchor.at_msgid("m10"), 5)) == [
        "m8",
        "m9",
        "m10",
        "m11",
        "m12",
    ]
    assert ids(store.around("#room", Anchor.at_msgid("m10"), 1)) == ["m10"]


def test_around_near_an_end_fills_from_the_other_side(store: Store) -> None:
    fill(store, 20)
    assert ids(store.around("#room", Anchor.at_msgid("m2"), 5)) == ["m1", "m2", "m3", "m4", "m5"]
    assert ids(store.around("#room", Anchor.at_msgid("m20"), 4)) == ["m17", "m18", "m19", "m20"]


def test_around_a_time(store: Store) -> None:
    fill(store, 20)
    assert ids(store.around("#room", Anchor.at_time(T0 + 10.5), 4)) == ["m9", "m10", "m11", "m12"]


def test_between_forwards_counts_from_the_start(store: Store) -> None:
    fill(store, 20)
    start, end = Anchor.at_msgid("m3"), Anchor.at_msgid("m10")
    assert ids(store.between("#room", start, end, 100)) == [f"m{n}" for n in range(4, 10)]
    assert ids(store.between("#room", start, end, 2)) == ["m4", "m5"]


def test_between_backwards_counts_from_the_start_and_returns_oldest_first(store: Store) -> None:
    fill(store, 20)
    start, end = Anchor.at_msgid("m10"), Anchor.at_msgid("m3")
    assert ids(store.between("#room", start, end, 2)) == ["m8", "m9"]
    assert ids(store.between("#room", start, end, 100)) == [f"m{n}" for n in range(4, 10)]


def test_between_mixes_msgids_and_times(store: Store) -> None:
    fill(store, 20)
    got = store.between("#room", Anchor.at_time(T0 + 3), Anchor.at_msgid("m6"), 10)
    assert ids(got) == ["m4", "m5"]
    got = store.between("#room", Anchor.at_time(T0 + 6.5), Anchor.at_time(T0 + 2), 10)
    assert ids(got) == ["m3", "m4", "m5", "m6"]


def test_between_the_same_point_is_empty(store: Store) -> None:
    fill(store, 5)
    assert store.between("#room", Anchor.at_msgid("m3"), Anchor.at_msgid("m3"), 10) == []


@pytest.mark.parametrize("limit", [0, -1])
def test_limit_below_one_is_a_value_error(store: Store, limit: int) -> None:
    fill(store, 3)
    with pytest.raises(ValueError):
        store.latest("#room", limit)
    with pytest.raises(ValueError):
        store.before("#room", Anchor.at_msgid("no-such-id"), limit)
    with pytest.raises(ValueError):
        store.targets(["#room"], None, T0, T0 + 100, limit)


def test_anchor_has_exactly_one_selector() -> None:
    with pytest.raises(ValueError):
        Anchor()
    with pytest.raises(ValueError):
        Anchor(msgid="m1", time=T0)


# --- history: TARGETS --------------------------------------------------------------------------


@pytest.fixture
def conversations(store: Store) -> Store:
    store.append_history(
        [
            msg(1, "#a", time=T0 + 1),
            msg(2, "#b", time=T0 + 2),
            msg(3, private_target("alice", "bob"), time=T0 + 3),
            msg(4, "#a", time=T0 + 4),
            msg(5, private_target("carol", "Alice"), time=T0 + 5),
            msg(6, private_target("bob", "carol"), time=T0 + 6),  # not alice's
            msg(7, "#hidden", time=T0 + 7),  # alice is not in it
        ]
    )
    return store


def test_targets_lists_readable_targets_with_latest_time(conversations: Store) -> None:
    got = conversations.targets(["#A", "#b"], "Alice", T0, T0 + 100, 10)
    assert got == [
        ("#b", T0 + 2),
        ("alice,bob", T0 + 3),
        ("#a", T0 + 4),
        ("alice,carol", T0 + 5),
    ]


def test_targets_latest_time_is_within_the_window(conversations: Store) -> None:
    got = conversations.targets(["#a"], None, T0, T0 + 4, 10)  # m4 sits on the exclusive end
    assert got == [("#a", T0 + 1)]


def test_targets_limit_counts_from_the_start(conversations: Store) -> None:
    forwards = conversations.targets(["#a", "#b"], "alice", T0, T0 + 100, 2)
    assert forwards == [("#b", T0 + 2), ("alice,bob", T0 + 3)]
    backwards = conversations.targets(["#a", "#b"], "alice", T0 + 100, T0, 2)
    assert backwards == [("#a", T0 + 4), ("alice,carol", T0 + 5)]


def test_targets_without_rooms_or_account_is_empty(conversations: Store) -> None:
    assert conversations.targets([], None, T0, T0 + 100, 10) == []
    assert conversations.targets([], "alice", T0, T0, 10) == []


def test_private_history_is_one_conversation_whoever_writes(store: Store) -> None:
    store.append_history(
        [msg(1, private_target("alice", "bob")), msg(2, private_target("Bob", "Alice"))]
    )
    assert ids(store.latest(private_target("bob", "alice"), 10)) == ["m1", "m2"]


# --- retention ---------------------------------------------------------------------------------


def test_prune_by_age_keeps_recent_messages(store: Store) -> None:
    fill(store, 10)
    store.append_history([msg(n, "#other", time=T0 + n - 100) for n in range(101, 105)])
    deleted = store.prune_history(T0 + 10, max_age_seconds=3, max_per_target=None)
    assert deleted == 6 + 4
    assert ids(store.latest("#room", 50)) == ["m7", "m8", "m9", "m10"]
    assert store.latest("#other", 50) == []


def test_prune_by_count_keeps_the_newest_of_each_target(store: Store) -> None:
    fill(store, 10)
    fill(store, 2, "#other", first=101)
    store.append_history([msg(n, "#ties", time=T0) for n in range(20, 25)])
    deleted = store.prune_history(T0 + 10, max_age_seconds=None, max_per_target=3)
    assert deleted == 7 + 0 + 2
    assert ids(store.latest("#room", 50)) == ["m8", "m9", "m10"]
    assert ids(store.latest("#other", 50)) == ["m101", "m102"]
    assert ids(store.latest("#ties", 50)) == ["m22", "m23", "m24"]


def test_prune_by_age_and_count(store: Store) -> None:
    fill(store, 10)
    deleted = store.prune_history(T0 + 10, max_age_seconds=5, max_per_target=2)
    assert deleted == 8
    assert ids(store.latest("#room", 50)) == ["m9", "m10"]


def test_prune_without_limits_deletes_nothing(store: Store) -> None:
    fill(store, 10)
    assert store.prune_history(T0 + 1e9, max_age_seconds=None, max_per_target=None) == 0
    assert len(store.latest("#room", 50)) == 10


def test_msgid_order_stays_monotonic_after_pruning_everything(store: Store) -> None:
    fill(store, 3)
    store.prune_history(T0 + 100, max_age_seconds=0, max_per_target=None)
    store.append_history([msg(7, time=T0), msg(8, time=T0)])
    store.append_history([msg(9, time=T0)])
    assert ids(store.after("#room", Anchor.at_msgid("m8"), 10)) == ["m9"]


def test_klines_round_trip_and_drop_case_insensitively(db_path: Path) -> None:
    kline = KLine("*@10.0.0.*", "spam", "oper", T0, expires_at=T0 + 60)
    with Store.open(db_path) as store:
        store.save_kline(kline)
    with Store.open(db_path) as store:
        assert store.load_klines() == [kline]
        assert store.drop_kline("*@10.0.0.*".upper())
        assert store.load_klines() == []
