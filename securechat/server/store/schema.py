"""The database file: the schema's migrations and opening a connection (store/__init__.py
states the rules: one migration per transaction, a newer schema refused, damage found at start)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from securechat.server.records import (
    PRIVATE_EPOCH,
    PUBLIC_EPOCH,
    StoreError,
)

Synchronous = Literal["NORMAL", "FULL"]

MEMORY = ":memory:"  # a database that lives and dies with its connection: tests only
BUSY_TIMEOUT_MS = 5000
DEFAULT_MAX_BATCH_RECORDS = 1000
DEFAULT_READ_TIMEOUT_SECONDS = 2.0
DEFAULT_PRUNE_BATCH_ROWS = 5000  # rows one retention transaction deletes at most
PROGRESS_STEPS = 10_000  # SQLite VM steps between two deadline checks of a read (~1 ms)
DEFAULT_MAX_PRIVATE_TARGETS = 1000  # private conversations one TARGETS request looks at


# --- schema ------------------------------------------------------------------------------------

Migration = Callable[[sqlite3.Connection], None]


def _v1_accounts_and_rooms(conn: sqlite3.Connection) -> None:
    _execute_all(
        conn,
        """CREATE TABLE accounts (
            name_cf TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            created_at REAL NOT NULL
        )""",
        """CREATE TABLE certfps (
            fp TEXT PRIMARY KEY,
            account_cf TEXT NOT NULL REFERENCES accounts(name_cf) ON DELETE CASCADE
        )""",
        "CREATE INDEX certfps_account ON certfps(account_cf)",
        # A founder's room goes with the founder's account: a later registrant of the same
        # name must not inherit it.
        """CREATE TABLE rooms (
            name_cf TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            founder_cf TEXT NOT NULL REFERENCES accounts(name_cf) ON DELETE CASCADE,
            registered_at REAL NOT NULL,
            topic TEXT,
            topic_set_by TEXT,
            topic_set_at REAL,
            modes TEXT NOT NULL,
            join_key TEXT,
            user_limit INTEGER
        )""",
        "CREATE INDEX rooms_founder ON rooms(founder_cf)",
        """CREATE TABLE room_operators (
            room_cf TEXT NOT NULL REFERENCES rooms(name_cf) ON DELETE CASCADE,
            account_cf TEXT NOT NULL REFERENCES accounts(name_cf) ON DELETE CASCADE,
            PRIMARY KEY (room_cf, account_cf)
        ) WITHOUT ROWID""",
        "CREATE INDEX room_operators_account ON room_operators(account_cf)",
        """CREATE TABLE room_bans (
            room_cf TEXT NOT NULL REFERENCES rooms(name_cf) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            mask TEXT NOT NULL,
            PRIMARY KEY (room_cf, position)
        ) WITHOUT ROWID""",
    )


def _v2_history(conn: sqlite3.Connection) -> None:
    _execute_all(
        conn,
        # party_a/party_b: the two accounts of a private target (NULL for rooms), so that
        # TARGETS and DROP find a user's conversations through an index.
        """CREATE TABLE history (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            msgid TEXT NOT NULL UNIQUE,
            target TEXT NOT NULL,
            display_target TEXT NOT NULL,
            sender TEXT NOT NULL,
            account TEXT,
            time_ms INTEGER NOT NULL,
            command TEXT NOT NULL CHECK (command IN ('PRIVMSG', 'NOTICE')),
            text TEXT NOT NULL,
            party_a TEXT,
            party_b TEXT
        )""",
        # Every index of a rowid table ends with the rowid, so this one orders (time_ms, seq).
        "CREATE INDEX history_target_time ON history(target, time_ms)",
        "CREATE INDEX history_time ON history(time_ms)",
        "CREATE INDEX history_party_a ON history(party_a, time_ms) WHERE party_a IS NOT NULL",
        "CREATE INDEX history_party_b ON history(party_b, time_ms) WHERE party_b IS NOT NULL",
    )


def _v3_klines(conn: sqlite3.Connection) -> None:
    _execute_all(
        conn,
        """CREATE TABLE klines (
            mask_cf TEXT PRIMARY KEY,
            mask TEXT NOT NULL,
            reason TEXT NOT NULL,
            set_by TEXT NOT NULL,
            set_at REAL NOT NULL,
            expires_at REAL
        )""",
    )


def _v4_room_incarnations(conn: sqlite3.Connection) -> None:
    _execute_all(
        conn,
        "ALTER TABLE history ADD COLUMN epoch INTEGER",
        "ALTER TABLE history ADD COLUMN restricted INTEGER NOT NULL DEFAULT 0",
        f"UPDATE history SET epoch = {PRIVATE_EPOCH} WHERE party_a IS NOT NULL",
        # Rows of a registered room sent since its registration stay readable: flagged
        # restricted, in the registration's epoch, when the room is +i or +k now (the best guess
        # for then), else public. Every other room row keeps epoch NULL, which no reader has:
        # nothing says whether an unregistered room was +i/+k then, so its old rows are hidden.
        """UPDATE history SET
            epoch = (SELECT CAST(r.registered_at * 1000000 AS INTEGER) FROM rooms r
                     WHERE r.name_cf = history.target),
            restricted = (SELECT instr(r.modes, 'i') > 0 OR r.join_key IS NOT NULL FROM rooms r
                          WHERE r.name_cf = history.target)
           WHERE target IN (SELECT name_cf FROM rooms)
             AND time_ms >= (SELECT CAST(r.registered_at * 1000 AS INTEGER)
                             FROM rooms r WHERE r.name_cf = history.target)""",
        f"UPDATE history SET epoch = {PUBLIC_EPOCH}"
        " WHERE party_a IS NULL AND epoch IS NOT NULL AND restricted = 0",
        # What every history read seeks: one target, one incarnation, restricted or not, a time
        # range (then seq: the rowid ends every index).
        "CREATE INDEX history_view ON history(target, epoch, restricted, time_ms)",
        # TARGETS walks a user's private conversations one distinct target at a time.
        "CREATE INDEX history_party_a_target ON history(party_a, target) WHERE party_a IS NOT NULL",
        "CREATE INDEX history_party_b_target ON history(party_b, target) WHERE party_b IS NOT NULL",
    )


def _v5_presences(conn: sqlite3.Connection) -> None:
    """Always-on users and the messages kept for offline accounts (presence_accounts.py,
    offline_messages.py); all of it goes with the account (DROP)."""
    _execute_all(
        conn,
        """CREATE TABLE account_settings (
            account_cf TEXT PRIMARY KEY REFERENCES accounts(name_cf) ON DELETE CASCADE,
            always_on INTEGER
        ) WITHOUT ROWID""",
        """CREATE TABLE presences (
            account_cf TEXT PRIMARY KEY REFERENCES accounts(name_cf) ON DELETE CASCADE,
            nick TEXT NOT NULL,
            username TEXT NOT NULL,
            realname TEXT NOT NULL,
            host TEXT NOT NULL,
            away TEXT,
            rooms TEXT NOT NULL,
            detached_at REAL
        ) WITHOUT ROWID""",
        """CREATE TABLE offline_messages (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            account_cf TEXT NOT NULL REFERENCES accounts(name_cf) ON DELETE CASCADE,
            msgid TEXT NOT NULL,
            display_target TEXT NOT NULL,
            sender TEXT NOT NULL,
            sender_account TEXT,
            time_ms INTEGER NOT NULL,
            command TEXT NOT NULL,
            text TEXT NOT NULL
        )""",
        "CREATE INDEX offline_messages_account ON offline_messages(account_cf, seq)",
    )


def _v6_modern_chat(conn: sqlite3.Connection) -> None:
    """Issue 16: client tags, multiline composition and redactions on history rows; stored
    reactions; read markers."""
    _execute_all(
        conn,
        "ALTER TABLE history ADD COLUMN tags TEXT NOT NULL DEFAULT ''",
        # JSON [[line, concat], ...] of a draft/multiline message; '' for one line.
        "ALTER TABLE history ADD COLUMN lines TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE history ADD COLUMN redacted_by TEXT",
        "ALTER TABLE history ADD COLUMN redacted_ms INTEGER",
        "ALTER TABLE history ADD COLUMN redact_reason TEXT",
        # A reaction goes with the message it points to: pruning or dropping that message
        # drops its reactions (history.msgid is UNIQUE, so it can be a foreign key's parent).
        """CREATE TABLE reactions (
            msgid TEXT PRIMARY KEY,
            target TEXT NOT NULL,
            parent TEXT NOT NULL REFERENCES history(msgid) ON DELETE CASCADE,
            sender TEXT NOT NULL,
            account TEXT,
            reactor TEXT NOT NULL,
            time_ms INTEGER NOT NULL,
            reaction TEXT NOT NULL,
            UNIQUE (parent, reactor, reaction)
        )""",
        "CREATE INDEX reactions_target_parent ON reactions(target, parent)",
        # draft/read-marker: one timestamp per (account, target), only ever moving forward.
        """CREATE TABLE read_markers (
            account_cf TEXT NOT NULL REFERENCES accounts(name_cf) ON DELETE CASCADE,
            target TEXT NOT NULL,
            time_ms INTEGER NOT NULL,
            PRIMARY KEY (account_cf, target)
        ) WITHOUT ROWID""",
    )


def _v7_fewer_history_indexes(conn: sqlite3.Connection) -> None:
    """Issue 17: every index of the history table is one more B-tree insert per message, on
    the writer thread, before the message may be delivered, and one more page each COMMIT
    writes (BENCHMARKS.md, "Fifth round"). history_party_a/b (party, time_ms) serve no query
    that history_party_a/b_target (party, target) does not: TARGETS walks the latter, DROP's
    OR of the parties uses either. history_target_time (target, time_ms) served only the
    retention by count, which now walks history_view one (epoch, restricted) at a time."""
    _execute_all(
        conn,
        "DROP INDEX IF EXISTS history_party_a",
        "DROP INDEX IF EXISTS history_party_b",
        "DROP INDEX IF EXISTS history_target_time",
    )


def _v8_history_without_autoincrement(conn: sqlite3.Connection) -> None:
    """Issue 17: AUTOINCREMENT costs every message an update of ``sqlite_sequence`` (one
    more B-tree write and one more WAL page per COMMIT: BENCHMARKS.md, "Fifth round"). Its
    only promise, that a deleted seq is never given again, nothing needs: seq orders the
    messages of one millisecond, and a new row still gets one above every row there is.
    SQLite cannot drop it in place: the table is copied (its seq kept), the SQLite way
    (https://www.sqlite.org/lang_altertable.html#otheralter), which needs foreign keys off
    (``_connect`` turns them on after the migrations): dropping the old table would
    otherwise delete the reactions that point into it."""
    # Every column the table has (v2 and the migrations after it), not a second list of them;
    # one the new table lacks fails the INSERT and rolls the migration back.
    columns = ", ".join(row[1] for row in conn.execute("PRAGMA table_info(history)"))
    _execute_all(
        conn,
        """CREATE TABLE history_new (
            seq INTEGER PRIMARY KEY,
            msgid TEXT NOT NULL UNIQUE,
            target TEXT NOT NULL,
            display_target TEXT NOT NULL,
            sender TEXT NOT NULL,
            account TEXT,
            time_ms INTEGER NOT NULL,
            command TEXT NOT NULL CHECK (command IN ('PRIVMSG', 'NOTICE')),
            text TEXT NOT NULL,
            party_a TEXT,
            party_b TEXT,
            epoch INTEGER,
            restricted INTEGER NOT NULL DEFAULT 0,
            tags TEXT NOT NULL DEFAULT '',
            lines TEXT NOT NULL DEFAULT '',
            redacted_by TEXT,
            redacted_ms INTEGER,
            redact_reason TEXT
        )""",
        f"INSERT INTO history_new ({columns}) SELECT {columns} FROM history",
        "DROP TABLE history",
        "ALTER TABLE history_new RENAME TO history",
        "DELETE FROM sqlite_sequence WHERE name = 'history'",
        "CREATE INDEX history_time ON history(time_ms)",
        "CREATE INDEX history_view ON history(target, epoch, restricted, time_ms)",
        "CREATE INDEX history_party_a_target ON history(party_a, target) WHERE party_a IS NOT NULL",
        "CREATE INDEX history_party_b_target ON history(party_b, target) WHERE party_b IS NOT NULL",
    )
    if conn.execute("PRAGMA foreign_key_check").fetchone() is not None:
        raise StoreError("history copy broke a foreign key; the migration is rolled back")


MIGRATIONS: tuple[Migration, ...] = (
    _v1_accounts_and_rooms,
    _v2_history,
    _v3_klines,
    _v4_room_incarnations,
    _v5_presences,
    _v6_modern_chat,
    _v7_fewer_history_indexes,
    _v8_history_without_autoincrement,
)
SCHEMA_VERSION = len(MIGRATIONS)


def _execute_all(conn: sqlite3.Connection, *statements: str) -> None:
    # Not executescript(): it would COMMIT first and break the migration's transaction.
    for statement in statements:
        conn.execute(statement)


def migrate(conn: sqlite3.Connection, label: str, migrations: Sequence[Migration]) -> None:
    """Bring the schema up to version ``len(migrations)``, one transaction per step."""
    newest = len(migrations)
    while True:
        with _transaction(conn, write=True):
            version = _user_version(conn)
            if version > newest:
                raise StoreError(
                    f"{label}: database schema version {version} is newer than this server "
                    f"supports ({newest}); upgrade securechat or use another data directory"
                )
            if version == newest:
                # Rewriting the version is a real write: it proves now, at start, that the
                # file is writable, instead of failing on the first message.
                conn.execute(f"PRAGMA user_version = {version}")
                return
            migrations[version](conn)
            conn.execute(f"PRAGMA user_version = {version + 1}")


def _user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


@contextmanager
def _transaction(conn: sqlite3.Connection, *, write: bool) -> Iterator[None]:
    # The connection is in autocommit mode (isolation_level=None); transactions are explicit.
    # IMMEDIATE takes the write lock up front, so a write never fails half-way on SQLITE_BUSY.
    conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        yield
    except BaseException:
        if conn.in_transaction:  # some errors (SQLITE_FULL, SQLITE_IOERR) roll back by themselves
            conn.execute("ROLLBACK")
        raise
    try:
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


# --- opening -----------------------------------------------------------------------------------


def _prepare_file(path: Path, init: bool) -> None:
    """Create the data directory and an empty database file readable by its owner only.

    An existing file of 0 bytes is refused unless ``init``: SQLite would take it for a new
    database, so a file emptied by accident (a bad copy, a full disk, a truncating editor)
    would silently start a server with every account gone.

    History holds private messages; SQLite would create the file with the umask's permissions
    (often world-readable), and it gives the -wal and -shm files the database file's mode.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if not init and path.is_file() and path.stat().st_size == 0:
            raise StoreError(
                f"{path}: the database file is empty (0 bytes), so every account, room and "
                "message would be gone; restore it from a backup, or start once with "
                "--init-database to begin with a new database"
            ) from None
        return
    os.close(fd)


def _configure(conn: sqlite3.Connection, label: str, synchronous: Synchronous) -> None:
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if label != MEMORY:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"{label}: cannot use WAL journal mode (got {mode!r})")
    conn.execute(f"PRAGMA synchronous = {synchronous}")


def _check_integrity(conn: sqlite3.Connection, label: str) -> None:
    """``PRAGMA quick_check(1)``: stop at the first problem. It reads every page (without
    the index cross-checks of integrity_check), so a damaged file is refused at start instead
    of failing logins and history at runtime (https://www.sqlite.org/pragma.html#pragma_quick_check)."""
    row = conn.execute("PRAGMA quick_check(1)").fetchone()
    verdict = " ".join(str(row[0]).split()) if row is not None else "no answer"  # one line
    if verdict != "ok":
        raise StoreError(
            f"{label}: the database is damaged ({verdict}); restore it from a backup "
            "(the file was not modified)"
        )


def _connect(
    label: str, synchronous: Synchronous, *, init: bool = False, check: bool = False
) -> sqlite3.Connection:
    if label != MEMORY:
        _prepare_file(Path(label), init)
    conn = sqlite3.connect(label, isolation_level=None)
    try:
        _configure(conn, label, synchronous)
        if check:
            _check_integrity(conn, label)
        # Foreign keys are off while migrating (migration v8 copies a table they point into);
        # the pragma is a no-op inside a transaction, so it is set between them.
        migrate(conn, label, MIGRATIONS)
        conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return conn
