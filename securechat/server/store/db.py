"""SQLite persistence: accounts, registered rooms and message history.

The values it stores and returns (``HistoryRecord``, ``RoomRecord``, ``View`` …, the errors, and
the names of private targets) are in server/records.py, re-exported by store/__init__.py.

The store package and server/net/ are the server's I/O shell. The store never imports asyncio:
the event loop talks to it through ``StoreWriter`` (writer.py), which owns one thread and one
connection, and ``StoreReader`` (reader.py).

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

import heapq
import itertools
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from securechat.protocol.names import casefold
from securechat.server.records import (
    Account,
    AccountExists,
    CertfpInUse,
    HistoryRecord,
    KLine,
    RoomExists,
    RoomRecord,
    StoreError,
    UnknownAccount,
    normalize_certfp,
)
from securechat.server.store.chat import ChatStore
from securechat.server.store.dbapi import Connection
from securechat.server.store.presence import PresenceQueries
from securechat.server.store.queries import (
    _HISTORY_INSERT,
    HistoryQueries,
    _group,
    _history_params,
    _ms,
)
from securechat.server.store.schema import (
    DEFAULT_PRUNE_BATCH_ROWS,
    Synchronous,
    _connect,
    _transaction,
    _user_version,
)


class Store(HistoryQueries, ChatStore, PresenceQueries):
    """One SQLite connection. Open with ``Store.open``; use from the opening thread only."""

    def __init__(self, conn: sqlite3.Connection, label: str) -> None:
        self._conn: Connection = conn
        self._sqlite = conn
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
        self._sqlite.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        with self._reading():
            return _user_version(self._sqlite)

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        try:
            with _transaction(self._sqlite, write=True):
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

    def add_certfp(self, account: str, fingerprint: str) -> None:
        """Attach a fingerprint to an account; adding one it already has is a no-op."""
        fp = normalize_certfp(fingerprint)
        account_cf = casefold(account)
        with self._writing() as conn:
            self._require_accounts(conn, [account_cf])
            # Insert first, then look whose it is: a check before the insert could race
            # another server process sharing the database (docs/CLUSTER.md).
            conn.execute(
                "INSERT INTO certfps (fp, account_cf) VALUES (?, ?) ON CONFLICT (fp) DO NOTHING",
                (fp, account_cf),
            )
            row = conn.execute("SELECT account_cf FROM certfps WHERE fp = ?", (fp,)).fetchone()
            if row is not None and row[0] != account_cf:
                raise CertfpInUse("that certificate fingerprint belongs to another account")

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

    def _account(self, conn: Connection, name_cf: str) -> Account | None:
        row = conn.execute(
            "SELECT name, password_hash, created_at FROM accounts WHERE name_cf = ?", (name_cf,)
        ).fetchone()
        if row is None:
            return None
        return Account(row[0], row[1], row[2], self._certfps(conn, name_cf))

    @staticmethod
    def _certfps(conn: Connection, name_cf: str) -> tuple[str, ...]:
        rows = conn.execute(
            "SELECT fp FROM certfps WHERE account_cf = ? ORDER BY fp", (name_cf,)
        ).fetchall()
        return tuple(row[0] for row in rows)

    @staticmethod
    def _require_accounts(conn: Connection, names_cf: Iterable[str]) -> None:
        for name_cf in names_cf:
            found = conn.execute("SELECT 1 FROM accounts WHERE name_cf = ?", (name_cf,))
            if found.fetchone() is None:
                raise UnknownAccount(f"no account named {name_cf}")

    # --- rooms ---------------------------------------------------------------------------------

    def save_room(self, room: RoomRecord, *, new: bool = False) -> None:
        """Insert or replace the registration of ``room`` (keyed by its casefolded name).
        ``new``: a registration, refused with RoomExists if the name is registered already
        (by another server process sharing the database, whose registry this one lacks)."""
        name_cf = room.name_cf
        founder = casefold(room.founder)
        operators = sorted({casefold(op) for op in room.operators})
        on_conflict = (
            "DO NOTHING"
            if new
            else "DO UPDATE SET name = excluded.name,"
            " founder_cf = excluded.founder_cf, registered_at = excluded.registered_at,"
            " topic = excluded.topic, topic_set_by = excluded.topic_set_by,"
            " topic_set_at = excluded.topic_set_at, modes = excluded.modes,"
            " join_key = excluded.join_key, user_limit = excluded.user_limit"
        )
        with self._writing() as conn:
            self._require_accounts(conn, [founder, *operators])
            cursor = conn.execute(
                "INSERT INTO rooms (name_cf, name, founder_cf, registered_at, topic, topic_set_by,"
                " topic_set_at, modes, join_key, user_limit) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                f" ON CONFLICT (name_cf) {on_conflict}",
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
            if cursor.rowcount == 0:
                raise RoomExists(f"{room.name} is already registered")
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
    def _rooms(conn: Connection, only: str | None) -> list[RoomRecord]:
        # "? IS NULL" selects every room when no name is given (typed for PostgreSQL, which
        # cannot infer the type of a bare NULL parameter).
        where = "WHERE CAST(? AS TEXT) IS NULL OR room_cf = ?"
        operators = _group(
            conn.execute(
                f"SELECT room_cf, account_cf FROM room_operators {where} ORDER BY 1, 2",
                (only, only),
            ).fetchall()
        )
        bans = _group(
            conn.execute(
                f"SELECT room_cf, mask FROM room_bans {where} ORDER BY room_cf, position",
                (only, only),
            ).fetchall()
        )
        rows = conn.execute(
            "SELECT name_cf, name, founder_cf, registered_at, topic, topic_set_by, topic_set_at,"
            " modes, join_key, user_limit FROM rooms WHERE CAST(? AS TEXT) IS NULL OR name_cf = ?"
            " ORDER BY name_cf",
            (only, only),
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
                "INSERT INTO klines (mask_cf, mask, reason, set_by, set_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (mask_cf) DO UPDATE SET"
                " mask = excluded.mask, reason = excluded.reason, set_by = excluded.set_by,"
                " set_at = excluded.set_at, expires_at = excluded.expires_at",
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
        rows = [_history_params(record) for record in records]
        with self._writing() as conn:
            conn.executemany(_HISTORY_INSERT, rows)

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
    def _keep_newest(conn: Connection, keep: int, budget: int) -> int:
        """Walk the distinct targets (skipping from one to the next in history_view); for each,
        find the newest row beyond ``keep`` and delete from there back, one view partition
        (epoch, restricted) at a time, so that every step is a seek on history_view."""
        deleted, last = 0, ""
        while deleted < budget:
            row = conn.execute(
                "SELECT target FROM history WHERE target > ? ORDER BY target LIMIT 1", (last,)
            ).fetchone()
            if row is None:
                break
            last = str(row[0])
            parts = _partitions(conn, last)
            edge = _edge(conn, last, parts, keep)
            if edge is None:
                continue
            for where, params in parts:
                if deleted >= budget:
                    break
                deleted += conn.execute(
                    "DELETE FROM history WHERE seq IN (SELECT seq FROM history WHERE target = ?"
                    f" AND {where} AND (time_ms, seq) <= (?, ?) ORDER BY time_ms, seq LIMIT ?)",
                    (last, *params, *edge, budget - deleted),
                ).rowcount
        return deleted


_Partition = tuple[str, tuple[int, ...]]  # a condition on (epoch, restricted), its parameters


def _partitions(conn: Connection, target: str) -> list[_Partition]:
    """The (epoch, restricted) pairs ``target``'s rows carry, one seek each on history_view.
    Rows that migration v4 left without an epoch make up to two more."""
    found: list[_Partition] = [
        ("epoch IS NULL AND restricted = ?", (restricted,))
        for restricted in (0, 1)
        if conn.execute(
            "SELECT 1 FROM history WHERE target = ? AND epoch IS NULL AND restricted = ? LIMIT 1",
            (target, restricted),
        ).fetchone()
        is not None
    ]
    row = conn.execute(
        "SELECT epoch, restricted FROM history WHERE target = ? AND epoch IS NOT NULL"
        " ORDER BY epoch, restricted LIMIT 1",
        (target,),
    ).fetchone()
    while row is not None:
        epoch, restricted = int(row[0]), int(row[1])
        found.append(("epoch = ? AND restricted = ?", (epoch, restricted)))
        row = conn.execute(
            "SELECT epoch, restricted FROM history WHERE target = ?"
            " AND (epoch, restricted) > (?, ?) ORDER BY epoch, restricted LIMIT 1",
            (target, epoch, restricted),
        ).fetchone()
    return found


def _edge(
    conn: Connection, target: str, parts: list[_Partition], keep: int
) -> tuple[int, int] | None:
    """The newest (time_ms, seq) of ``target`` beyond its ``keep`` newest rows, if any: one
    OFFSET walk in the usual case of one partition, else the partitions' ``keep + 1`` newest
    keys merged (a room switched between public and +i/+k, or recreated while +i/+k)."""
    newest = "SELECT time_ms, seq FROM history WHERE target = ? AND {}"
    newest += " ORDER BY time_ms DESC, seq DESC LIMIT ? OFFSET ?"
    if len(parts) == 1:
        ((where, params),) = parts
        row = conn.execute(newest.format(where), (target, *params, 1, keep)).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))
    scans = [
        [(int(time_ms), int(seq)) for time_ms, seq in conn.execute(sql, parameters).fetchall()]
        for sql, parameters in (
            (newest.format(where), (target, *params, keep + 1, 0)) for where, params in parts
        )
    ]
    return next(itertools.islice(heapq.merge(*scans, reverse=True), keep, None), None)
