"""SQLite persistence: accounts, registered rooms and message history.

The values it stores and returns (``HistoryRecord``, ``RoomRecord``, ``View`` …, the errors, and
the names of private targets) are in records.py and re-exported here.

This module and net.py are the only server modules that do I/O. It never imports asyncio: the
event loop talks to it through ``StoreWriter``, which owns one thread and one connection.

Rules:

- **Durability.** The database runs in WAL mode with ``synchronous=NORMAL`` by default. In WAL
  mode a COMMIT appends the transaction to the ``-wal`` file with write(2) before it returns, so
  the data is in the operating system's page cache and survives the process dying in any way,
  SIGKILL included; only the fsync is deferred to checkpoints. The SQLite documentation
  (https://www.sqlite.org/pragma.html#pragma_synchronous and https://www.sqlite.org/wal.html)
  states it: "WAL mode is always consistent with synchronous=NORMAL, but WAL mode does lose
  durability. A transaction committed in WAL mode with synchronous=NORMAL might roll back
  following a power loss or system crash. Transactions are durable across application crashes
  regardless of the synchronous setting or journal mode." Pass ``synchronous="FULL"`` to also
  survive power loss and kernel crashes, at the cost of one fsync per commit (group commit in
  ``StoreWriter`` amortizes it over every message that arrived together).
- **Schema.** ``PRAGMA user_version`` holds the number of migrations applied; ``MIGRATIONS`` is
  the ordered list. Each runs in its own ``BEGIN IMMEDIATE`` transaction, so a crash mid-upgrade
  leaves the previous version intact and two processes cannot both apply it. A database written
  by a newer release is refused, never modified.
- **Errors.** Opening reports a corrupt file, a file that is not a database, an unwritable file
  or directory, or a newer schema as one ``StoreError`` line that names the path. Every later
  SQLite failure surfaces as ``StoreError`` (or one of its subclasses) too.
- **Names.** Accounts and rooms are keyed by their casefolded name (``names.casefold``) with the
  display name stored beside it, as ergo does. Account names given to any method may be in any
  case.
- **History order.** Messages of one target are totally ordered by (server time, insertion
  order): ``seq`` is an AUTOINCREMENT key, so two messages in the same millisecond keep the order
  in which they were appended, and msgid pagination is deterministic as draft/chathistory asks.
  Times are kept as integer milliseconds, the precision of IRCv3 ``server-time``, so a
  ``timestamp=`` a client copies from a message compares exactly equal to the stored one.
- **History queries** follow draft/chathistory: every anchor is exclusive, results are always
  oldest-first, an unknown msgid (or one belonging to another target) yields an empty list.
  Targets may be given in any case. The store does not check who may read what: the caller
  passes only targets the user may see.
- **Private messages** are stored under ``private_target`` (records.py).
- **Privacy on DROP.** Dropping an account deletes its certificate fingerprints, the rooms it
  founded, its operator entries and its private message history, so that whoever registers the
  name next inherits none of it. Room messages it sent stay: they belong to the room.
- **Threads.** A ``Store`` belongs to the thread that opened it (sqlite3 enforces this). Writes
  (and account lookups, which must see the writes before them) go through ``StoreWriter``'s
  thread; history reads go through ``StoreReader``'s own thread and read-only connection, so a
  slow read never delays a commit. In WAL mode a read transaction sees every commit that
  returned before it began, so a read submitted after a write's future resolved sees it.
- **Who reads what.** Room rows say whether the room was +i/+k when sent (``restricted``);
  restricted rows carry the room incarnation (``epoch``) they were sent in, public rows
  ``PUBLIC_EPOCH``. A ``View`` selects every public row, and the restricted rows of one epoch
  from a join time on. history.py decides the view; every query here honours it with
  bounded index seeks (``history_view``), whatever the number of rows.
- **At start.** An existing 0-byte file is refused unless ``init`` (it is what a lost database
  looks like); ``check`` runs ``PRAGMA quick_check(1)`` so damage stops the start, not a login.
"""

from __future__ import annotations

import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from securechat.protocol.names import casefold
from securechat.server.records import (
    PRIVATE_EPOCH,
    PRIVATE_SEPARATOR,
    PUBLIC_EPOCH,
    Account,
    AccountExists,
    Anchor,
    CertfpInUse,
    HistoryRecord,
    KLine,
    RoomRecord,
    StoreError,
    UnknownAccount,
    View,
    normalize_certfp,
    private_parties,
    private_peer,
    private_target,
    room_epoch,
)

# The records live in records.py; importers may take them from here too.
__all__ = [
    "MEMORY",
    "MIGRATIONS",
    "PRIVATE_EPOCH",
    "PRIVATE_SEPARATOR",
    "PUBLIC_EPOCH",
    "SCHEMA_VERSION",
    "Account",
    "AccountExists",
    "Anchor",
    "CertfpInUse",
    "HistoryRecord",
    "KLine",
    "RoomRecord",
    "Store",
    "StoreError",
    "StoreReader",
    "StoreWriter",
    "Synchronous",
    "UnknownAccount",
    "View",
    "WriterStats",
    "migrate",
    "normalize_certfp",
    "private_parties",
    "private_peer",
    "private_target",
    "room_epoch",
]

T = TypeVar("T")
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


MIGRATIONS: tuple[Migration, ...] = (
    _v1_accounts_and_rooms,
    _v2_history,
    _v3_klines,
    _v4_room_incarnations,
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
    conn.execute("PRAGMA foreign_keys = ON")


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
        migrate(conn, label, MIGRATIONS)
    except BaseException:
        conn.close()
        raise
    return conn


# --- the store ---------------------------------------------------------------------------------

_Key = tuple[int, int]  # (time_ms, seq): a position in a target's total order
_Point = tuple[int, int | None]  # an anchor: (time_ms, seq) for a msgid, (time_ms, None) for a time
_SEQ_MAX = 2**63 - 1
_BOTTOM: _Key = (-(2**63), 0)
_TOP: _Key = (_SEQ_MAX, _SEQ_MAX)
_HISTORY_COLUMNS = (
    "msgid, target, display_target, sender, account, time_ms, command, text, epoch, restricted"
)
_ALL = View(PRIVATE_EPOCH)


class Store:
    """One SQLite connection. Open with ``Store.open``; use from the opening thread only."""

    def __init__(self, conn: sqlite3.Connection, label: str) -> None:
        self._conn = conn
        self.label = label

    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        synchronous: Synchronous = "NORMAL",
        init: bool = False,
        check: bool = False,
    ) -> Store:
        """Open (creating and migrating as needed) the database at ``path`` or ``":memory:"``.

        ``init`` allows starting on an existing 0-byte file; ``check`` runs a quick_check."""
        label = str(path)
        try:
            return cls(_connect(label, synchronous, init=init, check=check), label)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open database {label}: {exc}") from exc
        except OSError as exc:
            raise StoreError(f"cannot open database {label}: {exc.strerror or exc}") from exc

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        with self._reading():
            return _user_version(self._conn)

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        try:
            with _transaction(self._conn, write=True):
                yield self._conn
        except sqlite3.Error as exc:
            raise StoreError(f"{self.label}: {exc}") from exc

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        # A read transaction gives multi-statement reads (an account and its fingerprints)
        # one consistent snapshot.
        try:
            with _transaction(self._conn, write=False):
                yield self._conn
        except sqlite3.Error as exc:
            raise StoreError(f"{self.label}: {exc}") from exc

    # --- accounts ------------------------------------------------------------------------------

    def create_account(self, name: str, password_hash: str, now: float) -> Account:
        with self._writing() as conn:
            cursor = conn.execute(
                "INSERT INTO accounts (name_cf, name, password_hash, created_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (name_cf) DO NOTHING",
                (casefold(name), name, password_hash, now),
            )
            if cursor.rowcount == 0:
                raise AccountExists(f"account {name} is already registered")
        return Account(name, password_hash, now)

    def get_account(self, name: str) -> Account | None:
        with self._reading() as conn:
            return self._account(conn, casefold(name))

    def account_by_certfp(self, fingerprint: str) -> Account | None:
        fp = normalize_certfp(fingerprint)
        with self._reading() as conn:
            row = conn.execute("SELECT account_cf FROM certfps WHERE fp = ?", (fp,)).fetchone()
            return None if row is None else self._account(conn, row[0])

    def drop_account(self, name: str) -> bool:
        """Delete the account and everything only it could see. False if it did not exist."""
        name_cf = casefold(name)
        with self._writing() as conn:
            conn.execute("DELETE FROM history WHERE party_a = ? OR party_b = ?", (name_cf, name_cf))
            cursor = conn.execute("DELETE FROM accounts WHERE name_cf = ?", (name_cf,))
            return cursor.rowcount > 0

    def set_password_hash(self, name: str, password_hash: str) -> None:
        with self._writing() as conn:
            cursor = conn.execute(
                "UPDATE accounts SET password_hash = ? WHERE name_cf = ?",
                (password_hash, casefold(name)),
            )
            if cursor.rowcount == 0:
                raise UnknownAccount(f"no account named {name}")

    def add_certfp(self, account: str, fingerprint: str) -> None:
        """Attach a fingerprint to an account; adding one it already has is a no-op."""
        fp = normalize_certfp(fingerprint)
        account_cf = casefold(account)
        with self._writing() as conn:
            self._require_accounts(conn, [account_cf])
            row = conn.execute("SELECT account_cf FROM certfps WHERE fp = ?", (fp,)).fetchone()
            if row is not None and row[0] != account_cf:
                raise CertfpInUse("that certificate fingerprint belongs to another account")
            conn.execute(
                "INSERT OR IGNORE INTO certfps (fp, account_cf) VALUES (?, ?)", (fp, account_cf)
            )

    def remove_certfp(self, account: str, fingerprint: str) -> bool:
        fp = normalize_certfp(fingerprint)
        with self._writing() as conn:
            cursor = conn.execute(
                "DELETE FROM certfps WHERE fp = ? AND account_cf = ?", (fp, casefold(account))
            )
            return cursor.rowcount > 0

    def list_certfps(self, account: str) -> tuple[str, ...]:
        with self._reading() as conn:
            return self._certfps(conn, casefold(account))

    def _account(self, conn: sqlite3.Connection, name_cf: str) -> Account | None:
        row = conn.execute(
            "SELECT name, password_hash, created_at FROM accounts WHERE name_cf = ?", (name_cf,)
        ).fetchone()
        if row is None:
            return None
        return Account(row[0], row[1], row[2], self._certfps(conn, name_cf))

    @staticmethod
    def _certfps(conn: sqlite3.Connection, name_cf: str) -> tuple[str, ...]:
        rows = conn.execute(
            "SELECT fp FROM certfps WHERE account_cf = ? ORDER BY fp", (name_cf,)
        ).fetchall()
        return tuple(row[0] for row in rows)

    @staticmethod
    def _require_accounts(conn: sqlite3.Connection, names_cf: Iterable[str]) -> None:
        for name_cf in names_cf:
            found = conn.execute("SELECT 1 FROM accounts WHERE name_cf = ?", (name_cf,))
            if found.fetchone() is None:
                raise UnknownAccount(f"no account named {name_cf}")

    # --- rooms ---------------------------------------------------------------------------------

    def save_room(self, room: RoomRecord) -> None:
        """Insert or replace the registration of ``room`` (keyed by its casefolded name)."""
        name_cf = room.name_cf
        founder = casefold(room.founder)
        operators = sorted({casefold(op) for op in room.operators})
        with self._writing() as conn:
            self._require_accounts(conn, [founder, *operators])
            conn.execute(
                "INSERT INTO rooms (name_cf, name, founder_cf, registered_at, topic, topic_set_by,"
                " topic_set_at, modes, join_key, user_limit) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (name_cf) DO UPDATE SET name = excluded.name,"
                " founder_cf = excluded.founder_cf, registered_at = excluded.registered_at,"
                " topic = excluded.topic, topic_set_by = excluded.topic_set_by,"
                " topic_set_at = excluded.topic_set_at, modes = excluded.modes,"
                " join_key = excluded.join_key, user_limit = excluded.user_limit",
                (
                    name_cf,
                    room.name,
                    founder,
                    room.registered_at,
                    room.topic,
                    room.topic_set_by,
                    room.topic_set_at,
                    room.modes,
                    room.key,
                    room.limit,
                ),
            )
            conn.execute("DELETE FROM room_operators WHERE room_cf = ?", (name_cf,))
            conn.executemany(
                "INSERT INTO room_operators (room_cf, account_cf) VALUES (?, ?)",
                [(name_cf, op) for op in operators],
            )
            conn.execute("DELETE FROM room_bans WHERE room_cf = ?", (name_cf,))
            conn.executemany(
                "INSERT INTO room_bans (room_cf, position, mask) VALUES (?, ?, ?)",
                [(name_cf, position, mask) for position, mask in enumerate(room.bans)],
            )

    def load_rooms(self) -> list[RoomRecord]:
        """Every registered room, ordered by casefolded name."""
        with self._reading() as conn:
            return self._rooms(conn, None)

    def get_room(self, name: str) -> RoomRecord | None:
        with self._reading() as conn:
            rooms = self._rooms(conn, casefold(name))
        return rooms[0] if rooms else None

    def drop_room(self, name: str) -> bool:
        with self._writing() as conn:
            cursor = conn.execute("DELETE FROM rooms WHERE name_cf = ?", (casefold(name),))
            return cursor.rowcount > 0

    @staticmethod
    def _rooms(conn: sqlite3.Connection, only: str | None) -> list[RoomRecord]:
        # "?1 IS NULL" selects every room when no name is given.
        where = "WHERE ?1 IS NULL OR room_cf = ?1"
        operators = _group(
            conn.execute(
                f"SELECT room_cf, account_cf FROM room_operators {where} ORDER BY 1, 2", (only,)
            )
        )
        bans = _group(
            conn.execute(
                f"SELECT room_cf, mask FROM room_bans {where} ORDER BY room_cf, position", (only,)
            )
        )
        rows = conn.execute(
            "SELECT name_cf, name, founder_cf, registered_at, topic, topic_set_by, topic_set_at,"
            " modes, join_key, user_limit FROM rooms WHERE ?1 IS NULL OR name_cf = ?1"
            " ORDER BY name_cf",
            (only,),
        ).fetchall()
        return [
            RoomRecord(
                name=row[1],
                founder=row[2],
                registered_at=row[3],
                topic=row[4],
                topic_set_by=row[5],
                topic_set_at=row[6],
                modes=row[7],
                key=row[8],
                limit=row[9],
                operators=tuple(operators.get(row[0], ())),
                bans=tuple(bans.get(row[0], ())),
            )
            for row in rows
        ]

    # --- history: writing ----------------------------------------------------------------------

    def save_kline(self, kline: KLine) -> None:
        """Add or replace a server ban (K-line) by its casefolded mask."""
        with self._writing() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO klines VALUES (?, ?, ?, ?, ?, ?)",
                (
                    casefold(kline.mask),
                    kline.mask,
                    kline.reason,
                    kline.set_by,
                    kline.set_at,
                    kline.expires_at,
                ),
            )

    def drop_kline(self, mask: str) -> bool:
        with self._writing() as conn:
            return (
                conn.execute("DELETE FROM klines WHERE mask_cf = ?", (casefold(mask),)).rowcount > 0
            )

    def load_klines(self) -> list[KLine]:
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT mask, reason, set_by, set_at, expires_at FROM klines ORDER BY set_at"
            ).fetchall()
        return [KLine(*row) for row in rows]

    def append_history(self, records: Sequence[HistoryRecord]) -> None:
        """Store ``records`` in one transaction: all of them are durable, or none."""
        rows = [_history_row(record) for record in records]
        with self._writing() as conn:
            conn.executemany(
                f"INSERT INTO history ({_HISTORY_COLUMNS}, party_a, party_b)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def prune_history(
        self,
        now: float,
        max_age_seconds: float | None,
        max_per_target: int | None,
        max_rows: int = DEFAULT_PRUNE_BATCH_ROWS,
    ) -> int:
        """Delete messages older than ``max_age_seconds`` and all but the newest
        ``max_per_target`` of each target. None disables a limit. Returns the rows deleted:
        at most ``max_rows``, so one transaction never holds the writer for long; call again
        while it returns ``max_rows``. Index seeks only, never a scan of the whole table."""
        deleted = 0
        with self._writing() as conn:
            if max_age_seconds is not None:
                deleted += conn.execute(
                    "DELETE FROM history WHERE seq IN (SELECT seq FROM history"
                    " WHERE time_ms < ? ORDER BY time_ms LIMIT ?)",
                    (_ms(now - max_age_seconds), max_rows),
                ).rowcount
            if max_per_target is not None and deleted < max_rows:
                deleted += self._keep_newest(conn, max(max_per_target, 0), max_rows - deleted)
        return deleted

    @staticmethod
    def _keep_newest(conn: sqlite3.Connection, keep: int, budget: int) -> int:
        """Walk the distinct targets (skipping from one to the next in history_target_time);
        for each, find the newest row beyond ``keep`` and delete from there back."""
        deleted, last = 0, ""
        while deleted < budget:
            row = conn.execute(
                "SELECT target FROM history WHERE target > ? ORDER BY target LIMIT 1", (last,)
            ).fetchone()
            if row is None:
                break
            last = str(row[0])
            edge = conn.execute(
                "SELECT time_ms, seq FROM history WHERE target = ?"
                " ORDER BY time_ms DESC, seq DESC LIMIT 1 OFFSET ?",
                (last, keep),
            ).fetchone()
            if edge is not None:
                deleted += conn.execute(
                    "DELETE FROM history WHERE seq IN (SELECT seq FROM history WHERE target = ?"
                    " AND (time_ms, seq) <= (?, ?) ORDER BY time_ms, seq LIMIT ?)",
                    (last, edge[0], edge[1], budget - deleted),
                ).rowcount
        return deleted

    # --- history: draft/chathistory queries ----------------------------------------------------
    #
    # Every query is an index seek on history_view (target, epoch, restricted, time_ms) with a
    # LIMIT: a reader's rows are the unrestricted rows of its epoch plus the restricted rows from
    # its ``since`` on, so each query is two bounded range scans merged here. Its cost depends on
    # the limit, not on how many messages the target has (tests check the plans).

    def latest(
        self, target: str, limit: int, after: Anchor | None = None, view: View = _ALL
    ) -> list[HistoryRecord]:
        """LATEST: the newest ``limit`` messages, only those after ``after`` when given."""
        _check_limit(limit)
        with self._reading() as conn:
            if after is None:
                return self._select(conn, target, view, _BOTTOM, _TOP, limit, newest=True)
            point = self._resolve(conn, target, view, after)
            if point is None:
                return []
            return self._select(conn, target, view, _lower(point), _TOP, limit, newest=True)

    def before(
        self, target: str, anchor: Anchor, limit: int, view: View = _ALL
    ) -> list[HistoryRecord]:
        """BEFORE: the ``limit`` messages closest before ``anchor``."""
        _check_limit(limit)
        with self._reading() as conn:
            point = self._resolve(conn, target, view, anchor)
            if point is None:
                return []
            return self._select(conn, target, view, _BOTTOM, _upper(point), limit, newest=True)

    def after(
        self, target: str, anchor: Anchor, limit: int, view: View = _ALL
    ) -> list[HistoryRecord]:
        """AFTER: the ``limit`` messages closest after ``anchor``."""
        _check_limit(limit)
        with self._reading() as conn:
            point = self._resolve(conn, target, view, anchor)
            if point is None:
                return []
            return self._select(conn, target, view, _lower(point), _TOP, limit, newest=False)

    def around(
        self, target: str, anchor: Anchor, limit: int, view: View = _ALL
    ) -> list[HistoryRecord]:
        """AROUND: up to ``limit`` messages centred on ``anchor``.

        A msgid anchor's own message is included (it is the context being asked for); about
        half the rest come from before it, and a short side leaves its room to the other.
        """
        _check_limit(limit)
        with self._reading() as conn:
            point = self._resolve(conn, target, view, anchor)
            if point is None:
                return []
            split = _upper(point)
            older = self._select(conn, target, view, _BOTTOM, split, limit, newest=True)
            from_anchor = (split[0], split[1] - 1)  # exclusive bound just below the anchor
            newer = self._select(conn, target, view, from_anchor, _TOP, limit, newest=False)
        n_older = min(len(older), max(limit // 2, limit - len(newer)))
        n_newer = min(len(newer), limit - n_older)
        return older[len(older) - n_older :] + newer[:n_newer]

    def between(
        self, target: str, start: Anchor, end: Anchor, limit: int, view: View = _ALL
    ) -> list[HistoryRecord]:
        """BETWEEN: messages strictly between ``start`` and ``end``, counted from ``start``.

        ``end`` may be earlier than ``start``: then the ``limit`` messages nearest ``start``
        going back in time are returned (still oldest-first).
        """
        _check_limit(limit)
        with self._reading() as conn:
            first = self._resolve(conn, target, view, start)
            last = self._resolve(conn, target, view, end)
            if first is None or last is None:
                return []
            if _upper(first) <= _upper(last):
                return self._select(
                    conn, target, view, _lower(first), _upper(last), limit, newest=False
                )
            return self._select(conn, target, view, _lower(last), _upper(first), limit, newest=True)

    def targets(
        self,
        rooms: Mapping[str, View] | Iterable[str],
        account: str | None,
        start: float,
        end: float,
        limit: int,
        max_private: int = DEFAULT_MAX_PRIVATE_TARGETS,
    ) -> list[tuple[str, float]]:
        """TARGETS: (target, time of its latest message in the window) for targets with
        messages strictly between ``start`` and ``end``, oldest-first.

        Only the given ``rooms`` (each with what the reader may see of it) and, when
        ``account`` is given, up to ``max_private`` private targets it takes part in are
        considered: the caller passes what the user may read. One indexed lookup per target.
        As with BETWEEN, ``end < start`` returns the ``limit`` most recent rather than the
        earliest targets. Map a private target to the name to show with ``private_peer``.
        """
        _check_limit(limit)
        if start == end:
            return []
        low, high = sorted((_ms(start), _ms(end)))
        window = ((low, _SEQ_MAX), (high, 0))
        with self._reading() as conn:
            given = rooms if isinstance(rooms, Mapping) else dict.fromkeys(rooms, _ALL)
            views = {casefold(room): view for room, view in given.items()}
            if account is not None:
                for target in self._private_targets(conn, casefold(account), max_private):
                    views[target] = _ALL
            found: list[tuple[int, str]] = []
            for target, view in sorted(views.items()):
                newest = self._select_keys(conn, target, view, *window, 1, newest=True)
                if newest:
                    found.append((newest[0][0][0], target))
        found.sort(reverse=end < start)
        chosen = sorted(found[:limit])
        return [(target, time_ms / 1000) for time_ms, target in chosen]

    def message_by_msgid(self, msgid: str) -> HistoryRecord | None:
        """The message with that msgid in any target: the caller checks the reader may see it."""
        with self._reading() as conn:
            row = conn.execute(
                f"SELECT {_HISTORY_COLUMNS} FROM history WHERE msgid = ?", (msgid,)
            ).fetchone()
        return None if row is None else _history_record(row)

    @staticmethod
    def _private_targets(conn: sqlite3.Connection, account_cf: str, most: int) -> list[str]:
        """The private targets ``account_cf`` takes part in, found by skipping from one
        distinct target to the next in the party indexes: O(conversations · log n)."""
        found: set[str] = set()
        for column in ("party_a", "party_b"):
            last = ""
            while len(found) < most:
                row = conn.execute(
                    f"SELECT target FROM history WHERE {column} = ? AND target > ?"
                    " ORDER BY target LIMIT 1",
                    (account_cf, last),
                ).fetchone()
                if row is None:
                    break
                last = str(row[0])
                found.add(last)
        return sorted(found)[:most]

    @staticmethod
    def _resolve(
        conn: sqlite3.Connection, target: str, view: View, anchor: Anchor
    ) -> _Point | None:
        """The anchor's position; None for a msgid this reader cannot see (as if unknown)."""
        if anchor.time is not None:
            return (_ms(anchor.time), None)
        row = conn.execute(
            "SELECT time_ms, seq, restricted, epoch FROM history WHERE msgid = ? AND target = ?",
            (anchor.msgid, casefold(target)),
        ).fetchone()
        if row is None or row[3] != _scan_epoch(view, row[2]):
            return None
        if row[2] and view.since is not None and row[0] < _since_ms(view):
            return None
        return (row[0], row[1])

    def _select(
        self,
        conn: sqlite3.Connection,
        target: str,
        view: View,
        lower: _Key,
        upper: _Key,
        limit: int,
        newest: bool,
    ) -> list[HistoryRecord]:
        """Messages of ``target`` this reader sees strictly between two keys: the ``limit``
        nearest ``upper`` when ``newest``, else nearest ``lower``; oldest-first either way."""
        keyed = self._select_keys(conn, casefold(target), view, lower, upper, limit, newest)
        records = [_history_record(row) for _, row in keyed]
        return records[::-1] if newest else records

    @staticmethod
    def _select_keys(
        conn: sqlite3.Connection,
        target_cf: str,
        view: View,
        lower: _Key,
        upper: _Key,
        limit: int,
        newest: bool,
    ) -> list[tuple[_Key, Sequence[Any]]]:
        """The two range scans (unrestricted rows; restricted rows from ``since``), merged;
        in scan order (newest first when ``newest``)."""
        order = "DESC" if newest else "ASC"
        scans = [(0, lower)]
        restricted_lower = lower if view.since is None else max(lower, (_since_ms(view), 0))
        if restricted_lower < upper:
            scans.append((1, restricted_lower))
        keyed: list[tuple[_Key, Sequence[Any]]] = []
        for restricted, low in scans:
            rows = conn.execute(
                f"SELECT time_ms, seq, {_HISTORY_COLUMNS} FROM history"
                " WHERE target = ? AND epoch = ? AND restricted = ?"
                " AND (time_ms, seq) > (?, ?) AND (time_ms, seq) < (?, ?)"
                f" ORDER BY time_ms {order}, seq {order} LIMIT ?",
                (target_cf, _scan_epoch(view, restricted), restricted, *low, *upper, limit),
            ).fetchall()
            keyed += [((row[0], row[1]), row[2:]) for row in rows]
        keyed.sort(key=lambda item: item[0], reverse=newest)
        return keyed[:limit]


def _scan_epoch(view: View, restricted: int) -> int:
    """The epoch a reader's rows carry: its room incarnation for +i/+k rows, else public."""
    return view.epoch if restricted else PUBLIC_EPOCH


def _since_ms(view: View) -> int:
    # Floor, like message_time: a message sent in the reader's join millisecond is theirs.
    return int((view.since or 0.0) * 1000)


def _lower(point: _Point) -> _Key:
    """``point`` as an exclusive lower bound: a bare time excludes its whole millisecond."""
    time_ms, seq = point
    return (time_ms, _SEQ_MAX if seq is None else seq)


def _upper(point: _Point) -> _Key:
    """``point`` as an exclusive upper bound: a bare time excludes its whole millisecond."""
    time_ms, seq = point
    return (time_ms, 0 if seq is None else seq)


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError("a history limit is at least 1")


def _history_row(record: HistoryRecord) -> tuple[object, ...]:
    parties = private_parties(record.target)
    party_a, party_b = parties if parties is not None else (None, None)
    return (
        record.msgid,
        casefold(record.target),
        record.display_target,
        record.sender,
        record.account,
        _ms(record.time),
        record.command,
        record.text,
        record.epoch if record.restricted else PUBLIC_EPOCH,
        int(record.restricted),
        party_a,
        party_b,
    )


def _history_record(row: Sequence[Any]) -> HistoryRecord:
    msgid, target, display_target, sender, account, time_ms, command, text, epoch, restricted = row
    return HistoryRecord(
        msgid,
        target,
        display_target,
        sender,
        account,
        time_ms / 1000,
        command,
        text,
        epoch,
        bool(restricted),
    )


def _group(rows: Iterable[Sequence[Any]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for key, value in rows:
        grouped.setdefault(key, []).append(value)
    return grouped


# --- the writer thread -------------------------------------------------------------------------


@dataclass(slots=True)
class _Call:
    fn: Callable[[Store], Any]
    future: Future[Any]


@dataclass(slots=True)
class _Append:
    records: tuple[HistoryRecord, ...]
    future: Future[None]


class _Stop:
    pass


_Job = _Call | _Append | _Stop


@dataclass(frozen=True, slots=True)
class WriterStats:
    """Counters of successful history commits, for logs and ``securechat bench``."""

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
        writer = cls(max_batch_records)
        opened: Future[None] = Future()
        # A daemon thread, so a forgotten close() cannot hang interpreter exit; nothing
        # acknowledged is lost that way, since a future only resolves after its commit.
        thread = threading.Thread(
            target=writer._run,
            args=(path, synchronous, init, check, opened),
            name="store-writer",
            daemon=True,
        )
        writer._thread = thread
        thread.start()
        opened.result()
        if str(path) != MEMORY:  # a second connection to ":memory:" would be another database
            try:
                writer._reader = StoreReader.open(path, read_timeout)
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
                self._queue.put(_Stop())
        if self._thread is not None:
            self._thread.join()

    def _put(self, job: _Job) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the store writer is closed")
            self._queue.put(job)

    # --- on the writer thread ------------------------------------------------------------------

    def _run(
        self,
        path: Path | str,
        synchronous: Synchronous,
        init: bool,
        check: bool,
        opened: Future[None],
    ) -> None:
        try:
            store = Store.open(path, synchronous=synchronous, init=init, check=check)
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
            if isinstance(job, _Stop):
                return
            if isinstance(job, _Call):
                _run_call(store, job)
                continue
            group, pending = self._gather(job)
            self._commit_group(store, group)

    def _gather(self, first: _Append) -> tuple[list[_Append], _Job | None]:
        """``first`` plus the appends queued right behind it, up to the batch size; also the
        first non-append job met, which must run after this group to keep FIFO order."""
        group = [first]
        size = len(first.records)
        while size < self._max_batch_records:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return group, None
            if not isinstance(job, _Append):
                return group, job
            group.append(job)
            size += len(job.records)
        return group, None

    def _commit_group(self, store: Store, group: list[_Append]) -> None:
        live = [job for job in group if job.future.set_running_or_notify_cancel()]
        if not live:
            return
        try:
            store.append_history([record for job in live for record in job.records])
        except Exception as exc:
            if len(live) == 1:
                live[0].future.set_exception(exc)
                return
            for job in live:  # the group rolled back; find out which append was at fault
                self._commit_alone(store, job)
            return
        self._count_commit(live)
        for job in live:
            job.future.set_result(None)

    def _commit_alone(self, store: Store, job: _Append) -> None:
        try:
            store.append_history(job.records)
        except Exception as exc:
            job.future.set_exception(exc)
            return
        self._count_commit([job])
        job.future.set_result(None)

    def _count_commit(self, jobs: list[_Append]) -> None:
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
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if not isinstance(job, _Stop) and job.future.set_running_or_notify_cancel():
                job.future.set_exception(StoreError("the store writer stopped"))


def _run_call(store: Store, job: _Call) -> None:
    if not job.future.set_running_or_notify_cancel():
        return
    try:
        result = job.fn(store)
    except Exception as exc:
        job.future.set_exception(exc)
    else:
        job.future.set_result(result)


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
        self._queue: queue.SimpleQueue[_Read | _Stop] = queue.SimpleQueue()
        self._timeout = timeout
        self._lock = threading.Lock()
        self._closed = False
        self._conn: sqlite3.Connection | None = None
        self._deadline = 0.0
        self._thread: threading.Thread | None = None

    @classmethod
    def open(cls, path: Path | str, timeout: float) -> StoreReader:
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
                self._queue.put(_Stop())
                if self._conn is not None:
                    self._conn.interrupt()  # thread-safe: makes the running query fail
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self, label: str, opened: Future[None]) -> None:
        try:
            conn = sqlite3.connect(label, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA query_only = ON")
            conn.set_progress_handler(self._past_deadline, PROGRESS_STEPS)
        except sqlite3.Error as exc:
            opened.set_exception(StoreError(f"cannot open database {label} for reading: {exc}"))
            return
        with self._lock:
            self._conn = conn
        opened.set_result(None)
        store = Store(conn, label)
        try:
            self._serve(store)
        finally:
            with self._lock:
                self._conn = None
            conn.close()
            self._cancel_leftovers()

    def _serve(self, store: Store) -> None:
        while True:
            job = self._queue.get()
            if isinstance(job, _Stop):
                return
            if self._closed:
                job.future.cancel()
                continue  # up to the _Stop that close() queued
            if not job.future.set_running_or_notify_cancel():
                continue
            self._deadline = job.deadline
            if time.monotonic() > job.deadline:
                job.future.set_exception(StoreError("the history query waited too long"))
                continue
            try:
                result = job.fn(store)
            except Exception as exc:
                job.future.set_exception(exc)
            else:
                job.future.set_result(result)

    def _past_deadline(self) -> int:
        # SQLite calls this every PROGRESS_STEPS virtual-machine steps; non-zero aborts.
        return int(self._closed or time.monotonic() > self._deadline)

    def _cancel_leftovers(self) -> None:
        with self._lock:
            self._closed = True
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if not isinstance(job, _Stop):
                job.future.cancel()
