"""The PostgreSQL store (``--database postgresql://…``, issue 15): the SQLite store's data and
behaviour in a database that several server processes may share.

- **Same code.** ``PgStore`` is a ``Store``: every query (accounts, rooms, K-lines, history
  with its views and draft/chathistory anchors, retention) is the one db.py and queries.py
  send to SQLite, through ``_PgConnection``, which turns ``?`` into psycopg's ``%s``. Only
  connecting, transactions and the schema (pg_schema.py) are PostgreSQL's own.
- **Threads.** psycopg 3 in its synchronous form, on the writer's and the reader's threads,
  one connection each, as with SQLite: the event loop never waits on the database, and group
  commit and command order work unchanged. (asyncpg would need the loop to own the
  connections, a second design of the store for one backend.) psycopg is imported only when
  a PostgreSQL URL is configured; it is the ``postgres`` extra.
- **Durability.** A COMMIT returns once PostgreSQL has it in its WAL (``synchronous_commit``
  on, its default); a message is delivered only after that, as with SQLite.
- **Failures.** A lost connection fails the job in hand with ``StoreError`` (so a message is
  refused with FAIL, exactly as when SQLite fails) and the next job reconnects (paced when
  attempts are slow: see ``_live``): recovery needs no restart.
- **Several processes.** Transactions are READ COMMITTED; writes that could race another
  process are single statements with ``ON CONFLICT`` or are checked after the fact (see
  db.py). Each process reserves its msgid prefix in ``msgid_prefixes``, so msgids are unique
  across every process that ever used the database. ``seq`` orders messages of one
  millisecond; nothing takes it for the order of commits.
- **Readers.** The reader's connection is read-only, and its deadline is PostgreSQL's
  ``statement_timeout``; closing cancels the running query.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Self

from securechat.server.database_url import mask_password
from securechat.server.records import HistoryRecord, StoreError
from securechat.server.store.db import Store
from securechat.server.store.dbapi import Cursor
from securechat.server.store.pg_schema import check_tables, pg_migrate
from securechat.server.store.queries import _HISTORY_COLUMNS, _history_row
from securechat.server.store.reader import StoreReader
from securechat.server.store.schema import (
    DEFAULT_MAX_BATCH_RECORDS,
    DEFAULT_READ_TIMEOUT_SECONDS,
)
from securechat.server.store.writer import StoreWriter

if TYPE_CHECKING:
    import psycopg

CONNECT_TIMEOUT_SECONDS = 5  # libpq's connect_timeout, unless the URL sets one
CANCEL_REPEAT_SECONDS = 0.2  # closing the reader: its cancel request again, this often
# TCP keepalives, unless the URL sets them: a silently dead server or network is noticed in
# about 15 s instead of the kernel's two hours (libpq keepalives_* parameters).
KEEPALIVES = {"keepalives": "1", "keepalives_idle": "5", "keepalives_interval": "2"}
MISSING_DRIVER = (
    "PostgreSQL support is not installed: install securechat with its postgres extra "
    "(pip install 'securechat[postgres]')"
)


@lru_cache(maxsize=256)
def _pg_sql(sql: str) -> str:
    """The store's SQL (``?`` placeholders) in psycopg's ``%s`` style; a literal ``%`` doubled."""
    return sql.replace("%", "%%").replace("?", "%s")


class _PgConnection:
    """psycopg's connection as the ``dbapi.Connection`` that ``Store`` queries."""

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor:
        return self.raw.execute(_pg_sql(sql), parameters)

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> object:
        with self.raw.cursor() as cursor:
            cursor.executemany(_pg_sql(sql), parameters)
        return None


def one_line(exc: BaseException) -> str:
    """psycopg's message on one line (libpq's span several, with tabs)."""
    return " ".join(str(exc).split()) or type(exc).__name__


class PgStore(Store):
    """One PostgreSQL connection, reopened when lost. Open with ``PgStore.connect``; like
    ``Store``, it belongs to one thread."""

    _REACTION_ORDER = "seq"  # pg_schema's reactions.seq: PostgreSQL tables have no rowid

    def __init__(self, url: str, *, read_only: bool = False, timeout: float | None = None):
        # Not Store.__init__: there is no SQLite connection; _reading/_writing are overridden.
        self.label = mask_password(url)
        self._url = url
        self._read_only = read_only
        self._timeout = timeout
        self._raw: psycopg.Connection[Any] | None = None
        self._pg: _PgConnection  # wraps _raw once connected (also Store's _conn)
        self._retry_at = 0.0
        self._last_error = ""

    @classmethod
    def connect(
        cls, url: str, *, check: bool = False, read_only: bool = False, timeout: float | None = None
    ) -> Self:
        """Connect, then create or migrate the schema (the writer) or check its version (a
        reader); ``check`` also reads every table. One-line StoreError naming the URL (its
        password masked) when the server cannot be reached, refuses the login, has no such
        database, or holds a newer schema."""
        store = cls(url, read_only=read_only, timeout=timeout)
        try:
            if read_only:  # the writer opened first and migrated
                with store._reading():
                    pass
            else:
                pg_migrate(store._in_transaction, store.label)
                if check:
                    with store._reading() as conn:
                        check_tables(conn)
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()
            self._raw = None

    def cancel(self) -> None:
        """Make the running query fail; thread-safe (libpq's cancel request)."""
        raw = self._raw
        if raw is not None and not raw.closed:
            try:
                raw.cancel_safe(timeout=1.0)
            except Exception:  # nothing running, or the server is gone: nothing to cancel
                return

    @property
    def schema_version(self) -> int:
        with self._reading() as conn:
            return int(conn.execute("SELECT version FROM securechat_schema").fetchone()[0])

    @contextmanager
    def _writing(self) -> Iterator[_PgConnection]:
        with self._in_transaction() as conn:
            yield conn

    @contextmanager
    def _reading(self) -> Iterator[_PgConnection]:
        with self._in_transaction() as conn:
            yield conn

    @contextmanager
    def _in_transaction(self) -> Iterator[_PgConnection]:
        driver = _driver()
        try:
            with ExitStack() as stack:
                try:
                    stack.enter_context(self._live().transaction())
                except driver.OperationalError:
                    # BEGIN failed: the connection died while idle (the server restarted or
                    # cut it). Nothing was sent yet, so once more on a new connection, and a
                    # server that is back serves this job instead of failing it.
                    self.close()
                    stack.enter_context(self._live().transaction())
                yield self._pg
        except driver.Error as exc:
            raise StoreError(f"{self.label}: {one_line(exc)}") from exc

    def append_history(self, records: Sequence[HistoryRecord]) -> None:
        """Store ``records`` with one COPY, outside an explicit transaction: a single statement
        is atomic by itself (all rows or none), and it costs one round trip instead of three
        (BEGIN, INSERT, COMMIT) and one row-parse instead of one statement per row. A COPY
        that fails on a connection which died while idle is retried once on a new one: a
        failed COPY stored nothing (if the server committed but its answer was lost, the
        retry fails on the unique msgid, and the message is refused although it was stored:
        the safe side of "nothing delivered that is not durable")."""
        rows = [_history_row(record) for record in records]
        driver = _driver()
        try:
            try:
                self._copy_history(self._live(), rows)
            except driver.OperationalError:
                if self._raw is not None and not (self._raw.closed or self._raw.broken):
                    raise
                self.close()
                self._copy_history(self._live(), rows)
        except driver.Error as exc:
            raise StoreError(f"{self.label}: {one_line(exc)}") from exc

    @staticmethod
    def _copy_history(raw: psycopg.Connection[Any], rows: list[tuple[object, ...]]) -> None:
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY history ({_HISTORY_COLUMNS}, party_a, party_b) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)

    def _live(self) -> psycopg.Connection[Any]:
        """The connection, reconnecting if it was lost."""
        raw = self._raw
        if raw is not None and not raw.closed and not raw.broken:
            return raw
        self.close()
        now = time.monotonic()
        if now < self._retry_at:
            raise StoreError(f"cannot connect to database {self.label}: {self._last_error}")
        driver = _driver()
        try:
            opened: psycopg.Connection[Any] = driver.connect(
                self._url, autocommit=True, **self._options()
            )
        except driver.Error as exc:
            # A server that does not answer costs connect_timeout per attempt: the next one
            # waits as long again, so at most half the thread's time goes into connecting. A
            # refusal (nothing listening) is immediate, and retried on the next job.
            self._retry_at = 2 * time.monotonic() - now
            self._last_error = one_line(exc)
            raise StoreError(f"cannot connect to database {self.label}: {one_line(exc)}") from exc
        self._raw = opened
        self._pg = self._conn = _PgConnection(opened)
        return opened

    def _options(self) -> dict[str, str]:
        """libpq parameters the URL does not set itself: timeouts, keepalives, the role of
        this connection (a reader is read-only, its deadline a statement_timeout)."""
        given = _driver().conninfo.conninfo_to_dict(self._url)
        defaults = {
            "connect_timeout": str(CONNECT_TIMEOUT_SECONDS),
            **KEEPALIVES,
            "application_name": "securechat-reader" if self._read_only else "securechat",
        }
        options = {key: value for key, value in defaults.items() if key not in given}
        settings = [str(given.get("options") or "")]
        if self._read_only:
            settings.append("-c default_transaction_read_only=on")
        if self._timeout is not None:
            settings.append(f"-c statement_timeout={max(1, round(self._timeout * 1000))}")
        if any(settings):
            options["options"] = " ".join(filter(None, settings))
        return options


def _driver() -> Any:
    """The psycopg module; StoreError if the postgres extra is not installed."""
    try:
        import psycopg
    except ImportError:
        raise StoreError(MISSING_DRIVER) from None
    return psycopg


class PgStoreReader(StoreReader):
    """``StoreReader`` on a read-only PostgreSQL connection (see the module docstring)."""

    _store: PgStore | None = None

    def _connect(self, label: str) -> Store:
        store = PgStore.connect(label, read_only=True, timeout=self._timeout)
        with self._lock:
            self._store = store
        return store

    def _interrupt(self) -> None:
        if self._store is not None:
            self._store.cancel()

    def _join(self, thread: threading.Thread) -> None:
        # A cancel request that reached the server between two statements of a read cancels
        # nothing (SQLite's progress handler has no such gap): repeat it until the thread is out.
        thread.join(CANCEL_REPEAT_SECONDS)
        while thread.is_alive():
            with self._lock:
                self._interrupt()
            thread.join(CANCEL_REPEAT_SECONDS)

    def _disconnect(self, store: Store) -> None:
        with self._lock:
            self._store = None
        store.close()


def reserve_msgid_prefix(store: Store) -> str:
    """8 hex digits no process has used on this database: ServerCore's msgid prefix."""
    while True:
        prefix = secrets.token_hex(4)
        with store._writing() as conn:
            inserted = conn.execute(
                "INSERT INTO msgid_prefixes (prefix, claimed_at) VALUES (?, ?)"
                " ON CONFLICT (prefix) DO NOTHING",
                (prefix, time.time()),
            ).rowcount
        if inserted:
            return prefix


def open_postgres(
    url: str,
    *,
    check: bool = False,
    read_timeout: float = DEFAULT_READ_TIMEOUT_SECONDS,
    max_batch_records: int = DEFAULT_MAX_BATCH_RECORDS,
) -> StoreWriter:
    """The server's store in PostgreSQL: a ``StoreWriter`` (and its reader) on ``url``, with
    a msgid prefix reserved. Raises StoreError (one line, password masked)."""
    _driver()  # the missing extra is reported before anything starts

    def open_store() -> Store:
        return PgStore.connect(url, check=check)

    def open_reader() -> StoreReader:
        return PgStoreReader.open(url, read_timeout)

    writer = StoreWriter.start(open_store, open_reader, max_batch_records=max_batch_records)
    try:
        writer.msgid_prefix = writer.submit(reserve_msgid_prefix).result()
    except BaseException:
        writer.close()
        raise
    return writer
