"""The draft/chathistory queries: every one bounded index seeks on ``history_view``."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from securechat.protocol.names import casefold, is_room_name
from securechat.server.records import (
    PRIVATE_EPOCH,
    PUBLIC_EPOCH,
    Anchor,
    HistoryRecord,
    Reaction,
    Redaction,
    StoreError,
    View,
    private_parties,
)
from securechat.server.store.dbapi import Connection
from securechat.server.store.schema import DEFAULT_MAX_PRIVATE_TARGETS, _transaction

# --- the store ---------------------------------------------------------------------------------

_Key = tuple[int, int]  # (time_ms, seq): a position in a target's total order
_Point = tuple[int, int | None]  # an anchor: (time_ms, seq) for a msgid, (time_ms, None) for a time
_SEQ_MAX = 2**63 - 1
_BOTTOM: _Key = (-(2**63), 0)
_TOP: _Key = (_SEQ_MAX, _SEQ_MAX)
_HISTORY_COLUMNS = (
    "msgid, target, display_target, sender, account, time_ms, command, text, epoch, restricted,"
    " tags, lines, redacted_by, redacted_ms, redact_reason"
)
# A new message's row (as _history_params makes it). It binds no None: sqlite3 adapts a None
# parameter through the adaptation protocol, whose failed attribute lookup raises and clears
# an AttributeError (~3,000 instructions, six per room message: BENCHMARKS.md, "Fifth
# round"). A missing account or private party is bound as '' and stored as NULL (no account
# or party name is empty); the redaction columns keep their default, NULL.
_HISTORY_INSERT = (
    "INSERT INTO history (msgid, target, display_target, sender, account, time_ms, command,"
    " text, epoch, restricted, tags, lines, party_a, party_b)"
    " VALUES (?, ?, ?, ?, NULLIF(?, ''), ?, ?, ?, ?, ?, ?, ?, NULLIF(?, ''), NULLIF(?, ''))"
)
_REACTION_COLUMNS = "msgid, target, parent, sender, account, time_ms, reaction"
_ALL = View(PRIVATE_EPOCH)


class HistoryQueries:
    """The read side of ``Store`` (its base class): history by target, anchor and view."""

    _conn: Connection
    _sqlite: sqlite3.Connection  # the same connection, typed for SQLite's transactions
    label: str
    # What orders the reactions of one millisecond: the order they were stored in (SQLite's
    # rowid; PostgreSQL has none and gives the table a seq column instead).
    _REACTION_ORDER = "rowid"

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        # A read transaction gives multi-statement reads (an account and its fingerprints)
        # one consistent snapshot. (PgStore overrides this and ``_writing``.)
        try:
            with _transaction(self._sqlite, write=False):
                yield self._conn
        except sqlite3.Error as exc:
            raise StoreError(f"{self.label}: {exc}") from exc

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
        return self._beside(target, anchor, limit, view, before=True)

    def after(
        self, target: str, anchor: Anchor, limit: int, view: View = _ALL
    ) -> list[HistoryRecord]:
        """AFTER: the ``limit`` messages closest after ``anchor``."""
        return self._beside(target, anchor, limit, view, before=False)

    def _beside(
        self, target: str, anchor: Anchor, limit: int, view: View, *, before: bool
    ) -> list[HistoryRecord]:
        """The ``limit`` messages closest to ``anchor`` on one side of it (BEFORE or AFTER)."""
        _check_limit(limit)
        with self._reading() as conn:
            point = self._resolve(conn, target, view, anchor)
            if point is None:
                return []
            if before:
                return self._select(conn, target, view, _BOTTOM, _upper(point), limit, newest=True)
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
    def _private_targets(conn: Connection, account_cf: str, most: int) -> list[str]:
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
    def _resolve(conn: Connection, target: str, view: View, anchor: Anchor) -> _Point | None:
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
        conn: Connection,
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
        records = _with_reactions(conn, records, self._REACTION_ORDER)
        return records[::-1] if newest else records

    @staticmethod
    def _select_keys(
        conn: Connection,
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


def _history_params(record: HistoryRecord) -> tuple[object, ...]:
    """The parameters of ``_HISTORY_INSERT`` for ``record`` (none of them None)."""
    target = record.target
    if is_room_name(target):
        party_a = party_b = ""
    else:
        parties = private_parties(target)
        party_a, party_b = parties if parties is not None else ("", "")
    restricted = record.restricted
    return (
        record.msgid,
        casefold(target),
        record.display_target,
        record.sender,
        record.account or "",
        round(record.time * 1000),
        record.command,
        record.text,
        record.epoch if restricted else PUBLIC_EPOCH,
        1 if restricted else 0,
        record.tags,
        json.dumps(record.lines) if record.lines else "",
        party_a,
        party_b,
    )


def _history_row(record: HistoryRecord) -> tuple[object, ...]:
    """Every column of ``_HISTORY_COLUMNS`` for ``record``, then the private parties
    (PostgreSQL's COPY, where None is NULL at no cost)."""
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
        record.tags,
        json.dumps(record.lines) if record.lines else "",
        None,
        None,
        None,
        party_a,
        party_b,
    )


def _history_record(row: Sequence[Any]) -> HistoryRecord:
    msgid, target, display_target, sender, account, time_ms, command, text, epoch = row[:9]
    restricted, tags, lines, redacted_by, redacted_ms, reason = row[9:]
    redaction = None
    if redacted_by is not None:
        redaction = Redaction(redacted_by, (redacted_ms or 0) / 1000, reason or "")
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
        tags,
        tuple((str(line), bool(concat)) for line, concat in json.loads(lines)) if lines else (),
        redaction,
    )


def _reaction(row: Sequence[Any]) -> Reaction:
    msgid, target, parent, sender, account, time_ms, reaction = row
    return Reaction(msgid, target, parent, sender, account, time_ms / 1000, reaction)


def _with_reactions(
    conn: Connection, records: list[HistoryRecord], order: str
) -> list[HistoryRecord]:
    """The records with the reactions each received (one indexed query for the page; the
    number per message is bounded when they are stored)."""
    if not records:
        return records
    found: dict[str, list[Reaction]] = {}
    for target in {record.target for record in records}:
        # One index probe first: most targets have no reaction at all, and then the page
        # costs no more than before reactions were kept.
        if (
            conn.execute("SELECT 1 FROM reactions WHERE target = ? LIMIT 1", (target,)).fetchone()
            is None
        ):
            continue
        msgids = [r.msgid for r in records if r.target == target and r.redaction is None]
        for start in range(0, len(msgids), 500):  # SQLite's bound on host parameters
            chunk = msgids[start : start + 500]
            rows = conn.execute(
                f"SELECT {_REACTION_COLUMNS} FROM reactions WHERE target = ?"
                f" AND parent IN ({','.join('?' * len(chunk))}) ORDER BY time_ms, {order}",
                (target, *chunk),
            ).fetchall()
            for row in rows:
                found.setdefault(row[2], []).append(_reaction(row))
    if not found:
        return records
    return [
        replace(record, reactions=tuple(found[record.msgid])) if record.msgid in found else record
        for record in records
    ]


def _group(rows: Iterable[Sequence[Any]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for key, value in rows:
        grouped.setdefault(key, []).append(value)
    return grouped
