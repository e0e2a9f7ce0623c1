"""The SQLite engine: one file, the embedded default (``paths.database: data/mash.db``).

WAL journal, a 30 s busy timeout, ``BEGIN IMMEDIATE`` write transactions, synchronous
NORMAL except for durable writes (the send ledger's ``sending``: FULL). The schema
version is ``PRAGMA user_version``; a store made before #15 may also hold the send
ledger's own version in ``ledger_meta`` (version 1, now migration 6). Timestamps are
ISO 8601 text on disk. A lock is an flock on a file beside the database
(mash.lifetime.hold_lock), dropped by the kernel when the run dies.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from mash.errors import StoreBusy, StoreError
from mash.lifetime import LockBusy, hold_lock
from mash.store._base import BOOKKEEPING, Engine, Migration, Params, Row, iso, quoted

TIMEOUT = 30.0
LEDGER_VERSION = 1  # the last version ledger_meta knew; later ones are store migrations


def _adapt(params: Params) -> tuple[object, ...]:
    return tuple(iso(p) if isinstance(p, datetime) else p for p in params)


def _locked(e: Exception) -> bool:
    return "locked" in str(e) or "busy" in str(e)


class SqliteEngine(Engine):
    kind = "sqlite"
    types = {
        "id": "INTEGER PRIMARY KEY",
        "timestamp": "TEXT",  # ISO 8601, UTC
        "bool": "INTEGER",
        "false": "0",
        "deferrable": "",
    }
    month_sql = "substr({}, 1, 7)"
    busy_errors = ((sqlite3.OperationalError, _locked),)
    driver_error = sqlite3.Error

    def __init__(self, path: Path, *, timeout: float = TIMEOUT) -> None:
        super().__init__(str(path))
        self.path = path
        self._sync = ""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError("cannot create the folder of the database", str(path)) from e
        with self.errors():
            self.db = sqlite3.connect(path, timeout=timeout, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self.db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")

    def close(self) -> None:
        self.db.close()

    def clone(self) -> SqliteEngine:
        return SqliteEngine(self.path)

    def query(self, sql: str, params: Params = ()) -> list[Row]:
        with self.errors():
            rows: list[Row] = self.db.execute(sql, _adapt(params)).fetchall()
            return rows

    def execute(self, sql: str, params: Params = ()) -> int:
        with self.errors():
            return self.db.execute(sql, _adapt(params)).rowcount

    def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        with self.errors():
            self.db.executemany(sql, (_adapt(r) for r in rows))

    @contextmanager
    def transaction(self, *, durable: bool = False) -> Iterator[None]:
        with self.errors():
            self._synchronous("FULL" if durable else "NORMAL")
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        # a deferred transaction in WAL mode: its first read fixes what all of them see
        with self.errors():
            self.db.execute("BEGIN DEFERRED")
            try:
                yield
            finally:
                self.db.execute("COMMIT")

    def _synchronous(self, level: str) -> None:
        # Only durable writes pay an fsync at commit; the rest lose nothing to a process
        # crash (WAL in the OS cache), and a power cut at worst re-does a fetch (see #6).
        if level != self._sync:
            self.db.execute(f"PRAGMA synchronous = {level}")
            self._sync = level

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        path = self.path.with_name(f"{self.path.name}.{name}.lock")
        try:
            with hold_lock(path):
                yield
        except LockBusy as e:
            raise StoreBusy(
                f"another `mash {name}` is running ({e.holder}); this one stops. Lock file: {path}"
            ) from None

    # --- the catalog ---------------------------------------------------------------------

    def identity(self) -> tuple[object, ...]:
        return ("sqlite", str(self.path.resolve()))

    def tables(self) -> list[str]:
        rows = self.query(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " ORDER BY name"
        )
        return [r["name"] for r in rows if r["name"] not in BOOKKEEPING]

    def columns(self, table: str) -> list[tuple[str, str]]:
        # declared types say TEXT for timestamps: the values themselves are ISO text
        return [(r["name"], "other") for r in self.query(f"PRAGMA table_info({quoted(table)})")]

    def parents(self, table: str) -> set[str]:
        return {r["table"] for r in self.query(f"PRAGMA foreign_key_list({quoted(table)})")}

    def integrity_problems(self) -> list[str]:
        found = [r["integrity_check"] for r in self.query("PRAGMA integrity_check")]
        problems = [f"integrity_check: {line}" for line in found if line != "ok"]
        for r in self.query("PRAGMA foreign_key_check"):
            problems.append(
                f"{r['table']} row {r['rowid']}: its foreign key points to no row of {r['parent']}"
            )
        return problems

    def stream(self, sql: str, size: int = 500) -> Iterator[list[tuple[object, ...]]]:
        with self.errors():
            cursor = self.db.execute(sql)
            while batch := cursor.fetchmany(size):
                yield [tuple(row) for row in batch]

    def defer_foreign_keys(self) -> None:
        self.execute("PRAGMA defer_foreign_keys = ON")  # until the transaction ends

    # --- the schema version ------------------------------------------------------------

    def version(self) -> int:
        with self.errors():
            return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def set_version(self, version: int) -> None:
        self.execute(f"PRAGMA user_version = {int(version)}")

    def migrate(self, steps: Sequence[Migration]) -> None:
        # refuse a newer store (or send ledger) before anything changes the file
        self.check_version(len(steps))
        self._check_ledger_version()
        with self.errors():
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA foreign_keys = ON")
        super().migrate(steps)

    def _check_ledger_version(self) -> None:
        has_meta = self.one(
            "SELECT 1 AS found FROM sqlite_master WHERE type = 'table' AND name = 'ledger_meta'"
        )
        row = has_meta and self.one("SELECT value FROM ledger_meta WHERE key = 'version'")
        if row and int(row["value"]) > LEDGER_VERSION:
            raise StoreError(
                f"the send ledger in {self.name} is version {row['value']}, newer than this "
                f"mash (it knows version {LEDGER_VERSION}); upgrade mash to use it"
            )

    def after_migrations(self) -> None:
        # the WAL may still hold the old pages of what a migration rewrote (see #21)
        with self.errors():
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
