"""The store's always-on side: account settings, saved always-on users, and the messages kept
for offline accounts (presence_accounts.py and offline_messages.py say what they mean).

Rooms of a saved user are one text column, the names joined by commas: a comma is valid in no
room name (names.room_name_problem), so the list splits back exactly.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from securechat.protocol.names import casefold
from securechat.server.records import HistoryRecord, PresenceRecord, StoredPresences
from securechat.server.store.dbapi import Connection
from securechat.server.store.queries import _HISTORY_INSERT, _history_params, _ms

ROOM_SEPARATOR = ","


class PresenceQueries:
    """Mixed into ``Store``: ``_writing``/``_reading`` and ``append_history`` are its own."""

    def _writing(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _reading(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def set_always_on(self, account: str, on: bool) -> None:
        with self._writing() as conn:
            conn.execute(
                "INSERT INTO account_settings (account_cf, always_on) VALUES (?, ?)"
                " ON CONFLICT (account_cf) DO UPDATE SET always_on = excluded.always_on",
                (casefold(account), int(on)),
            )

    def save_presence(self, record: PresenceRecord) -> None:
        """Add or replace an always-on user (an account dropped meanwhile: nothing is saved)."""
        row = (
            casefold(record.account),
            record.nick,
            record.user,
            record.realname,
            record.host,
            record.away,
            ROOM_SEPARATOR.join(record.rooms),
            record.detached_at,
        )
        with self._writing() as conn:
            conn.execute(
                # An upsert both SQLite and PostgreSQL speak (not SQLite's INSERT OR REPLACE).
                "INSERT INTO presences"
                " (account_cf, nick, username, realname, host, away, rooms, detached_at)"
                " SELECT ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS"
                " (SELECT 1 FROM accounts WHERE name_cf = ?)"
                " ON CONFLICT (account_cf) DO UPDATE SET nick = excluded.nick,"
                " username = excluded.username, realname = excluded.realname,"
                " host = excluded.host, away = excluded.away, rooms = excluded.rooms,"
                " detached_at = excluded.detached_at",
                (*row, row[0]),
            )

    def drop_presence(self, account: str) -> None:
        with self._writing() as conn:
            conn.execute("DELETE FROM presences WHERE account_cf = ?", (casefold(account),))

    def load_presences(self) -> StoredPresences:
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT a.name, p.nick, p.username, p.realname, p.host, p.away, p.rooms,"
                " p.detached_at FROM presences p JOIN accounts a ON a.name_cf = p.account_cf"
                " ORDER BY a.name_cf"
            ).fetchall()
            settings = conn.execute(
                "SELECT account_cf, always_on FROM account_settings"
                " WHERE always_on IS NOT NULL ORDER BY account_cf"
            ).fetchall()
        return StoredPresences(
            tuple(_presence(row) for row in rows),
            tuple((account_cf, bool(on)) for account_cf, on in settings),
        )

    # --- messages kept for offline accounts ------------------------------------------------

    def keep_offline(
        self, record: HistoryRecord, limit: int, history: HistoryRecord | None = None
    ) -> bool:
        """Queue ``record`` for the account ``record.target`` names (and, in the same
        transaction, ``history`` in the history table); False, keeping nothing, when the
        account already has ``limit`` messages waiting."""
        with self._writing() as conn:
            waiting = conn.execute(
                "SELECT count(*) FROM offline_messages WHERE account_cf = ?", (record.target,)
            ).fetchone()[0]
            if waiting >= limit:
                return False
            conn.execute(
                "INSERT INTO offline_messages (account_cf, msgid, display_target, sender,"
                " sender_account, time_ms, command, text) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.target,
                    record.msgid,
                    record.display_target,
                    record.sender,
                    record.account,
                    _ms(record.time),
                    record.command,
                    record.text,
                ),
            )
            if history is not None:  # as Store.append_history, in this transaction
                conn.execute(_HISTORY_INSERT, _history_params(history))
        return True

    def offline_for(self, account: str) -> tuple[list[HistoryRecord], int]:
        """The messages waiting for ``account``, oldest first, and the last one's position
        (for ``forget_offline``); ([], 0) when none."""
        account_cf = casefold(account)
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT seq, msgid, display_target, sender, sender_account, time_ms, command,"
                " text FROM offline_messages WHERE account_cf = ? ORDER BY seq",
                (account_cf,),
            ).fetchall()
        records = [_offline(account_cf, row) for row in rows]
        return records, (rows[-1][0] if rows else 0)

    def forget_offline(self, account: str, up_to: int) -> int:
        with self._writing() as conn:
            return conn.execute(
                "DELETE FROM offline_messages WHERE account_cf = ? AND seq <= ?",
                (casefold(account), up_to),
            ).rowcount


def _presence(row: Any) -> PresenceRecord:
    name, nick, user, realname, host, away, rooms, detached_at = row
    listed = tuple(room for room in rooms.split(ROOM_SEPARATOR) if room)
    return PresenceRecord(name, nick, user, realname, host, away, listed, detached_at)


def _offline(account_cf: str, row: Any) -> HistoryRecord:
    _, msgid, display_target, sender, account, time_ms, command, text = row
    return HistoryRecord(
        msgid, account_cf, display_target, sender, account, time_ms / 1000, command, text
    )
