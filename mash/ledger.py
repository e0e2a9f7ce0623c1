"""The send ledger and opt-outs, in the store's SQLite file (tables of their own).

One row per (month, recipient): ``sending`` is committed before the SMTP transaction
starts and ``sent`` after the server accepts the message, so a crash between the two
leaves the recipient "in doubt", never silently re-sent or skipped (see #6).
``deferred`` means the server surely did not take it (safe to retry); ``failed`` is a
permanent refusal. This module owns the tables ``ledger_meta``, ``send_ledger`` and
``opt_outs``; mash/store.py owns the rest of the file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mash.errors import StoreError

SENDING = "sending"
SENT = "sent"
DEFERRED = "deferred"
FAILED = "failed"
SCHEMA_VERSION = 1

_SCHEMA_1 = """
CREATE TABLE IF NOT EXISTS send_ledger (
    month TEXT NOT NULL,            -- the issue, YYYY-MM
    email TEXT NOT NULL,            -- address_key(): trimmed, lower-cased
    state TEXT NOT NULL CHECK (state IN ('sending', 'sent', 'deferred', 'failed')),
    message_id TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,  -- transactions started for this recipient
    error TEXT NOT NULL DEFAULT '',       -- last SMTP reply or exception, for the report
    updated TEXT NOT NULL,                -- UTC ISO 8601
    PRIMARY KEY (month, email)
);
CREATE TABLE IF NOT EXISTS opt_outs (
    email TEXT PRIMARY KEY,         -- address_key()
    list_id TEXT NOT NULL,
    source TEXT NOT NULL,           -- one-click | confirm-page | manual
    created TEXT NOT NULL
);
"""
_MIGRATIONS: dict[int, str] = {1: _SCHEMA_1}


@dataclass(frozen=True)
class LedgerEntry:
    """One recipient's state for one month."""

    email: str
    state: str
    message_id: str
    attempts: int
    error: str
    updated: str


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Ledger:
    """The send ledger and opt-outs of one database file; not thread-safe."""

    def __init__(self, db_path: Path, *, timeout: float = 30.0) -> None:
        try:
            db_path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(db_path, timeout=timeout, isolation_level=None)
            self.db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self.db.execute("PRAGMA journal_mode = WAL")
            self._sync = ""
            self._synchronous("FULL")
            self._migrate()
        except sqlite3.Error as e:
            raise StoreError("cannot open the send ledger", str(db_path)) from e
        self.path = db_path

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _synchronous(self, level: str) -> None:
        if level != self._sync:
            self.db.execute(f"PRAGMA synchronous = {level}")
            self._sync = level

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
        except sqlite3.Error as e:
            raise StoreError("send ledger write failed", str(getattr(self, "path", ""))) from e

    def _migrate(self) -> None:
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
        )
        while (version := self._version()) < SCHEMA_VERSION:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                # Read again under the write lock: another process may have migrated.
                if self._version() == version:
                    # not executescript: it would COMMIT before the version bump
                    for statement in _MIGRATIONS[version + 1].split(";"):
                        if statement.strip():
                            self.db.execute(statement)
                    self.db.execute(
                        "INSERT INTO ledger_meta(key, value) VALUES ('version', ?) "
                        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                        (str(version + 1),),
                    )
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"send ledger schema {version} is newer than this mash ({SCHEMA_VERSION})"
            )

    def _version(self) -> int:
        row = self.db.execute("SELECT value FROM ledger_meta WHERE key = 'version'").fetchone()
        return int(row[0]) if row else 0

    # --- the ledger ----------------------------------------------------------------------

    def entries(self, month: str) -> dict[str, LedgerEntry]:
        """Return every recipient recorded for a month, by address key."""
        rows = self.db.execute(
            "SELECT email, state, message_id, attempts, error, updated FROM send_ledger "
            "WHERE month = ?",
            (month,),
        ).fetchall()
        return {r[0]: LedgerEntry(*r) for r in rows}

    def mark_sending(self, month: str, email: str, message_id: str) -> None:
        """Commit that a transaction to ``email`` is about to start (before MAIL FROM)."""
        self._set(month, email, SENDING, message_id, "", attempt=True)

    def mark_sent(self, month: str, email: str, message_id: str) -> None:
        """Commit that the server accepted the message."""
        self._set(month, email, SENT, message_id, "")

    def mark_deferred(self, month: str, email: str, message_id: str, error: str) -> None:
        """Commit that the server surely did not take the message (safe to send again)."""
        self._set(month, email, DEFERRED, message_id, error)

    def mark_failed(self, month: str, email: str, message_id: str, error: str) -> None:
        """Commit a permanent refusal (5xx); a re-run reports it and does not retry."""
        self._set(month, email, FAILED, message_id, error)

    def note_in_doubt(self, month: str, email: str, error: str) -> None:
        """Record why a recipient stays ``sending`` (the server may have taken it)."""
        with self._transaction() as db:
            db.execute(
                "UPDATE send_ledger SET error = ?, updated = ? WHERE month = ? AND email = ?",
                (error, _now(), month, email),
            )

    def _set(
        self, month: str, email: str, state: str, message_id: str, error: str, attempt: bool = False
    ) -> None:
        # Only 'sending' must survive a power cut (FULL: fsync at commit). Any later state
        # lost to one falls back to 'sending', i.e. "in doubt": never a silent duplicate.
        # A process crash loses nothing either way (WAL in the OS cache). Halves the fsyncs.
        self._synchronous("FULL" if state == SENDING else "NORMAL")
        with self._transaction() as db:
            db.execute(
                "INSERT INTO send_ledger(month, email, state, message_id, attempts, error, updated)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(month, email) DO UPDATE SET"
                " state = excluded.state, message_id = excluded.message_id,"
                " attempts = attempts + ?, error = excluded.error, updated = excluded.updated",
                (month, email, state, message_id, int(attempt), error, _now(), int(attempt)),
            )

    # --- opt-outs --------------------------------------------------------------------------

    def add_opt_out(self, email: str, list_id: str, source: str) -> bool:
        """Record an opt-out; False when the address had already opted out."""
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO opt_outs(email, list_id, source, created) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(email) DO NOTHING",
                (email, list_id, source, _now()),
            )
            return cursor.rowcount == 1

    def remove_opt_out(self, email: str) -> bool:
        """Forget an opt-out (the person subscribed again); False when there was none."""
        with self._transaction() as db:
            return db.execute("DELETE FROM opt_outs WHERE email = ?", (email,)).rowcount == 1

    def opted_out(self) -> frozenset[str]:
        """Return every opted-out address key."""
        return frozenset(r[0] for r in self.db.execute("SELECT email FROM opt_outs"))


def open_ledger(db_path: Path) -> Ledger:
    """Open (and create or migrate) the ledger tables of a database file."""
    return Ledger(db_path)
