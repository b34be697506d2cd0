"""Persistence, part of the I/O shell: the schema and its migrations, the ``Store``
(accounts, rooms, K-lines, history) and the writer and reader threads. SQLite by default;
PostgreSQL (``--database``) in pg.py and pg_schema.py, the same ``Store`` queries through
dbapi.py's connection protocol. The records it stores
and returns live in server/records.py (the core imports those, never this package); they are
re-exported here so that ``from securechat.server.store import Store, Account`` works."""

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
    RoomExists,
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
from securechat.server.store.db import (
    Store,
)
from securechat.server.store.reader import (
    StoreReader,
)
from securechat.server.store.schema import (
    MEMORY,
    MIGRATIONS,
    SCHEMA_VERSION,
    Synchronous,
    migrate,
)
from securechat.server.store.writer import (
    Commit,
    StoreWriter,
    WriterStats,
)

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
    "Commit",
    "HistoryRecord",
    "KLine",
    "RoomExists",
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
