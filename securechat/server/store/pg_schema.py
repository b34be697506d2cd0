"""The PostgreSQL schema and its migrations, for the store of pg.py.

The tables and indexes are SQLite's (schema.py; this version 3 is SQLite's 6), in PostgreSQL
types: times in seconds are ``DOUBLE PRECISION``, message times ``BIGINT`` milliseconds,
``seq`` an identity column. Text keys use the "C" collation, so names sort by code point as
in SQLite (ORDER BY and the skip scans of queries.py), whatever the database's locale.

The version is the one row of ``securechat_schema``. Every migration runs in its own
transaction holding a transaction-level advisory lock, so several server processes starting
at once on one database apply each step once, and a crash mid-step leaves the previous
version intact (PostgreSQL's DDL is transactional). A newer version is refused, untouched."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from securechat.server.records import StoreError

if TYPE_CHECKING:
    from securechat.server.store.dbapi import Connection

PgMigration = Callable[["Connection"], None]

# Any constant: the key of pg_advisory_xact_lock that serialises schema changes.
SCHEMA_LOCK = 0x5EC0C4A7
C_TEXT = 'TEXT COLLATE "C"'


def _v1_everything(conn: Connection) -> None:
    """SQLite's four versions in one: accounts, rooms, history with incarnations, K-lines;
    and msgid prefixes, which only a database that several processes share needs."""
    for statement in (
        f"""CREATE TABLE accounts (
            name_cf {C_TEXT} PRIMARY KEY,
            name TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL
        )""",
        f"""CREATE TABLE certfps (
            fp {C_TEXT} PRIMARY KEY,
            account_cf {C_TEXT} NOT NULL REFERENCES accounts(name_cf) ON DELETE CASCADE
        )""",
        "CREATE INDEX certfps_account ON certfps(account_cf)",
        f"""CREATE TABLE rooms (
            name_cf {C_TEXT} PRIMARY KEY,
            name TEXT NOT NULL,
            founder_cf {C_TEXT} NOT NULL REFERENCES accounts(name_cf) ON DELETE CASCADE,
            registered_at DOUBLE PRECISION NOT NULL,
            topic TEXT,
            topic_set_by TEXT,
            topic_set_at DOUBLE PRECISION,
            modes TEXT NOT NULL,
            join_key TEXT,
            user_limit INTEGER
        )""",
        "CREATE INDEX rooms_founder ON rooms(founder_cf)",
        f"""CREATE TABLE room_operators (
            room_cf {C_TEXT} NOT NULL REFERENCES rooms(name_cf) ON DELETE CASCADE,
            account_cf {C_TEXT} NOT NULL REFERENCES accounts(name_cf) ON DELETE CASCADE,
            PRIMARY KEY (room_cf, account_cf)
        )""",
        "CREATE INDEX room_operators_account ON room_operators(account_cf)",
        f"""CREATE TABLE room_bans (
            room_cf {C_TEXT} NOT NULL REFERENCES rooms(name_cf) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            mask TEXT NOT NULL,
            PRIMARY KEY (room_cf, position)
        )""",
        # seq comes from one sequence shared by every process: unique, and it orders messages
        # of the same millisecond; no process assumes it is the order of commits.
        f"""CREATE TABLE history (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            msgid {C_TEXT} NOT NULL UNIQUE,
            target {C_TEXT} NOT NULL,
            display_target TEXT NOT NULL,
            sender TEXT NOT NULL,
            account TEXT,
            time_ms BIGINT NOT NULL,
            command TEXT NOT NULL CHECK (command IN ('PRIVMSG', 'NOTICE')),
            text TEXT NOT NULL,
            party_a {C_TEXT},
            party_b {C_TEXT},
            epoch BIGINT,
            restricted INTEGER NOT NULL DEFAULT 0
        )""",
        # SQLite's indexes end with the rowid by themselves; here seq is spelled out.
        "CREATE INDEX history_target_time ON history(target, time_ms, seq)",
        "CREATE INDEX history_time ON history(time_ms)",
        "CREATE INDEX history_view ON history(target, epoch, restricted, time_ms, seq)",
        "CREATE INDEX history_party_a_target ON history(party_a, target) WHERE party_a IS NOT NULL",
        "CREATE INDEX history_party_b_target ON history(party_b, target) WHERE party_b IS NOT NULL",
        f"""CREATE TABLE klines (
            mask_cf {C_TEXT} PRIMARY KEY,
            mask TEXT NOT NULL,
            reason TEXT NOT NULL,
            set_by TEXT NOT NULL,
            set_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION
        )""",
        # One row per server process ever started on this database: its msgid prefix, so that
        # msgids stay unique across processes and restarts (pg.py reserve_msgid_prefix).
        f"""CREATE TABLE msgid_prefixes (
            prefix {C_TEXT} PRIMARY KEY,
            claimed_at DOUBLE PRECISION NOT NULL
        )""",
    ):
        conn.execute(statement)


def _v2_presences(conn: Connection) -> None:
    """SQLite's version 5: always-on users and the messages kept for offline accounts."""
    for statement in (
        f"""CREATE TABLE account_settings (
            account_cf {C_TEXT} PRIMARY KEY REFERENCES accounts(name_cf) ON DELETE CASCADE,
            always_on INTEGER
        )""",
        f"""CREATE TABLE presences (
            account_cf {C_TEXT} PRIMARY KEY REFERENCES accounts(name_cf) ON DELETE CASCADE,
            nick TEXT NOT NULL,
            username TEXT NOT NULL,
            realname TEXT NOT NULL,
            host TEXT NOT NULL,
            away TEXT,
            rooms TEXT NOT NULL,
            detached_at DOUBLE PRECISION
        )""",
        f"""CREATE TABLE offline_messages (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            account_cf {C_TEXT} NOT NULL REFERENCES accounts(name_cf) ON DELETE CASCADE,
            msgid TEXT NOT NULL,
            display_target TEXT NOT NULL,
            sender TEXT NOT NULL,
            sender_account TEXT,
            time_ms BIGINT NOT NULL,
            command TEXT NOT NULL,
            text TEXT NOT NULL
        )""",
        "CREATE INDEX offline_messages_account ON offline_messages(account_cf, seq)",
    ):
        conn.execute(statement)


def _v3_modern_chat(conn: Connection) -> None:
    """SQLite's version 6 (issue 16): client tags, multiline lines and redactions on history
    rows; stored reactions; read markers. Adding a column with a constant default rewrites
    no rows (PostgreSQL 11+), so this step is quick on a large history."""
    for statement in (
        "ALTER TABLE history ADD COLUMN tags TEXT NOT NULL DEFAULT ''",
        # JSON [[line, concat], ...] of a draft/multiline message; '' for one line.
        "ALTER TABLE history ADD COLUMN lines TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE history ADD COLUMN redacted_by TEXT",
        "ALTER TABLE history ADD COLUMN redacted_ms BIGINT",
        "ALTER TABLE history ADD COLUMN redact_reason TEXT",
        # A reaction goes with the message it points to (pruned, dropped). seq is what
        # SQLite's rowid is to its reactions: the order of reactions of one millisecond.
        f"""CREATE TABLE reactions (
            seq BIGINT GENERATED ALWAYS AS IDENTITY,
            msgid {C_TEXT} PRIMARY KEY,
            target {C_TEXT} NOT NULL,
            parent {C_TEXT} NOT NULL REFERENCES history(msgid) ON DELETE CASCADE,
            sender TEXT NOT NULL,
            account TEXT,
            reactor {C_TEXT} NOT NULL,
            time_ms BIGINT NOT NULL,
            reaction {C_TEXT} NOT NULL,
            UNIQUE (parent, reactor, reaction)
        )""",
        "CREATE INDEX reactions_target_parent ON reactions(target, parent)",
        # draft/read-marker: one timestamp per (account, target), only ever moving forward.
        f"""CREATE TABLE read_markers (
            account_cf {C_TEXT} NOT NULL REFERENCES accounts(name_cf) ON DELETE CASCADE,
            target {C_TEXT} NOT NULL,
            time_ms BIGINT NOT NULL,
            PRIMARY KEY (account_cf, target)
        )""",
    ):
        conn.execute(statement)


def _v4_fewer_history_indexes(conn: Connection) -> None:
    """SQLite's version 7 (issue 17): history_target_time served only the retention by
    count, which walks history_view one (epoch, restricted) at a time now; one index less
    to update per message (SQLite's history_party_a/b were never created here)."""
    conn.execute("DROP INDEX IF EXISTS history_target_time")


PG_MIGRATIONS: tuple[PgMigration, ...] = (
    _v1_everything,
    _v2_presences,
    _v3_modern_chat,
    _v4_fewer_history_indexes,
)
PG_SCHEMA_VERSION = len(PG_MIGRATIONS)
TABLES = (
    "accounts",
    "certfps",
    "rooms",
    "room_operators",
    "room_bans",
    "history",
    "klines",
    "msgid_prefixes",
    "account_settings",
    "presences",
    "offline_messages",
    "reactions",
    "read_markers",
)


def pg_migrate(
    transaction: Callable[[], AbstractContextManager[Connection]],
    label: str,
    migrations: Sequence[PgMigration] = PG_MIGRATIONS,
) -> None:
    """Bring the schema up to ``len(migrations)``, one locked transaction per step;
    ``transaction()`` opens one and gives its connection."""
    newest = len(migrations)
    while True:
        with transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(?)", (SCHEMA_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS securechat_schema (version INTEGER NOT NULL)")
            row = conn.execute("SELECT version FROM securechat_schema").fetchone()
            if row is None:
                conn.execute("INSERT INTO securechat_schema (version) VALUES (0)")
            version = 0 if row is None else int(row[0])
            if version > newest:
                raise StoreError(
                    f"{label}: database schema version {version} is newer than this server "
                    f"supports ({newest}); upgrade securechat or use another database"
                )
            if version == newest:
                # A real write: it proves now, at start, that this role may write.
                conn.execute("UPDATE securechat_schema SET version = ?", (version,))
                return
            migrations[version](conn)
            conn.execute("UPDATE securechat_schema SET version = ?", (version + 1,))


def check_tables(conn: Connection) -> None:
    """The start check (SQLite's quick_check has no cheap PostgreSQL twin; the server keeps
    its own pages checked): every table is there and readable by this role."""
    for table in TABLES:
        conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchall()
