"""What ``Store`` needs of a database connection: the DB-API calls it makes, as a Protocol.

A ``sqlite3.Connection`` is one as it is (the default path adds no wrapper and no call); the
PostgreSQL backend (pg.py) adapts psycopg's connection to it. The SQL ``Store`` sends is written
once for both: ``?`` placeholders, and only syntax both dialects accept (upserts with
``ON CONFLICT``, row-value comparisons, ``LIMIT``/``OFFSET``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> object: ...
