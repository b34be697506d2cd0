"""The store's part of issue 16: stored reactions, redactions and read markers.

Rules kept here (history.py and the command modules decide who may do what; this module
only keeps the data consistent):

- A reaction is stored only beside a message of the *same target* that is still there and not
  redacted, at most ``most`` per message, one of each kind per person (``Reaction.reactor``):
  a msgid from another room or conversation never links the two.
- A redaction keeps the row (the fact) and blanks its text, tags and multiline lines (the
  content); the message's reactions go with it, and so does its copy still waiting for an
  offline account. A redacted reaction is deleted.
- A read marker only moves forward (draft/read-marker "Read timestamp notes").
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Literal

from securechat.protocol.names import casefold
from securechat.server.records import HistoryRecord, Reaction, Redaction
from securechat.server.store.queries import (
    _HISTORY_COLUMNS,
    _REACTION_COLUMNS,
    _history_record,
    _ms,
    _reaction,
)

ReactionOutcome = Literal["stored", "no-parent", "limit", "duplicate"]
# A REDACT's permission check, run inside the transaction on what the msgid names: None
# to allow, else the FAIL REDACT code to answer.
RedactCheck = Callable[[HistoryRecord | Reaction], str | None]
Redacted = tuple[str | None, HistoryRecord | Reaction | None]


class ChatStore:
    """Mixed into ``Store``; every method is one transaction on the writer's connection."""

    _conn: sqlite3.Connection
    label: str

    def _writing(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # Store's

    # --- reactions (+draft/react) -----------------------------------------------------------

    def add_reaction(self, reaction: Reaction, most: int) -> ReactionOutcome:
        """Store ``reaction`` beside its parent message, if that is in the same target."""
        with self._writing() as conn:
            parent = conn.execute(
                "SELECT 1 FROM history WHERE msgid = ? AND target = ? AND redacted_by IS NULL",
                (reaction.parent, reaction.target),
            ).fetchone()
            if parent is None:
                return "no-parent"
            count = conn.execute(
                "SELECT count(*) FROM reactions WHERE target = ? AND parent = ?",
                (reaction.target, reaction.parent),
            ).fetchone()[0]
            if count >= most:
                return "limit"
            cursor = conn.execute(
                f"INSERT INTO reactions ({_REACTION_COLUMNS}, reactor)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (
                    reaction.msgid,
                    reaction.target,
                    reaction.parent,
                    reaction.sender,
                    reaction.account,
                    _ms(reaction.time),
                    reaction.reaction,
                    reaction.reactor,
                ),
            )
            return "stored" if cursor.rowcount else "duplicate"

    def remove_reaction(self, target: str, parent: str, reactor: str, reaction: str) -> bool:
        """``+draft/unreact``: forget that person's reaction of that kind, if stored."""
        with self._writing() as conn:
            cursor = conn.execute(
                "DELETE FROM reactions WHERE target = ? AND parent = ? AND reactor = ?"
                " AND reaction = ?",
                (target, parent, reactor, reaction),
            )
            return cursor.rowcount > 0

    # --- redaction (draft/message-redaction) ------------------------------------------------

    def redact(self, target: str, msgid: str, check: RedactCheck, redaction: Redaction) -> Redacted:
        """Redact the message or reaction ``msgid`` of ``target`` if ``check`` allows it.

        Returns (None, what was redacted) or (FAIL code, what it found or None)."""
        with self._writing() as conn:
            found = _find(conn, target, msgid)
            if found is None:
                return "UNKNOWN_MSGID", None
            refusal = check(found)
            if refusal is not None:
                return refusal, found
            if isinstance(found, Reaction):
                conn.execute("DELETE FROM reactions WHERE msgid = ?", (msgid,))
                return None, found
            conn.execute(
                "UPDATE history SET text = '', tags = '', lines = '', redacted_by = ?,"
                " redacted_ms = ?, redact_reason = ? WHERE msgid = ?",
                (redaction.by, _ms(redaction.time), redaction.reason, msgid),
            )
            conn.execute("DELETE FROM reactions WHERE parent = ?", (msgid,))
            # A private message still waiting for an offline account (offline_messages.py)
            # shares the msgid: it must not be delivered after its redaction.
            conn.execute("DELETE FROM offline_messages WHERE msgid = ?", (msgid,))
            return None, found

    # --- read markers (draft/read-marker) ---------------------------------------------------

    def read_markers(self, account: str, most: int) -> dict[str, float]:
        """The account's read markers (target -> time), the ``most`` most recent."""
        with self._writing() as conn:
            rows = conn.execute(
                "SELECT target, time_ms FROM read_markers WHERE account_cf = ?"
                " ORDER BY time_ms DESC LIMIT ?",
                (casefold(account), most),
            ).fetchall()
        return {str(target): time_ms / 1000 for target, time_ms in rows}

    def save_read_marker(self, account: str, target: str, time: float, most: int) -> None:
        """Move the marker forward to ``time`` (never back); keep the ``most`` newest."""
        account_cf = casefold(account)
        with self._writing() as conn:
            conn.execute(
                "INSERT INTO read_markers (account_cf, target, time_ms) VALUES (?, ?, ?)"
                " ON CONFLICT (account_cf, target)"
                " DO UPDATE SET time_ms = max(time_ms, excluded.time_ms)",
                (account_cf, casefold(target), _ms(time)),
            )
            conn.execute(
                "DELETE FROM read_markers WHERE account_cf = ?1 AND target NOT IN"
                " (SELECT target FROM read_markers WHERE account_cf = ?1"
                " ORDER BY time_ms DESC LIMIT ?2)",
                (account_cf, most),
            )


def _find(conn: sqlite3.Connection, target: str, msgid: str) -> HistoryRecord | Reaction | None:
    """The message or reaction ``msgid`` of ``target`` (another target's msgid: None)."""
    row = conn.execute(
        f"SELECT {_HISTORY_COLUMNS} FROM history WHERE msgid = ? AND target = ?",
        (msgid, target),
    ).fetchone()
    if row is not None:
        return _history_record(row)
    row = conn.execute(
        f"SELECT {_REACTION_COLUMNS} FROM reactions WHERE msgid = ? AND target = ?",
        (msgid, target),
    ).fetchone()
    return None if row is None else _reaction(row)
