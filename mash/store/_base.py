"""The engine seam of the store: what SQLite and PostgreSQL do differently, and only that.

The domain modules (feeds, posts, issues, sends) write each query once, with ``?``
placeholders, and run it through an ``Engine``. An engine connects, translates the
placeholders, adapts datetimes (aware UTC ``datetime`` in and out; SQLite keeps ISO text
on disk), runs transactions, keeps the schema version, takes named locks across
processes, and maps its driver's errors once, by a table, to ``StoreBusy`` (another run
holds the store: try again) or ``StoreError``. No query of a domain lives here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

from mash.errors import StoreBusy, StoreError

Params = Sequence[object]


class Row(Protocol):
    """A result row, read by column name (sqlite3.Row, or psycopg's dict row)."""

    def __getitem__(self, key: str, /) -> Any: ...


Migration = Callable[["Engine"], None]

# Tables that keep the schema's version, not data: never copied, counted or compared.
BOOKKEEPING = ("mash_schema", "ledger_meta")


def quoted(name: str) -> str:
    """Return a table or column name as a quoted SQL identifier (both engines)."""
    return '"' + name.replace('"', '""') + '"'


def as_datetime(value: str | datetime | None) -> datetime | None:
    """Return a stored timestamp (ISO text from SQLite, datetime from PostgreSQL) as UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(UTC)


def iso(value: datetime | None) -> str | None:
    """Return a datetime as the store's ISO text (UTC, seconds), as SQLite keeps it."""
    return value.astimezone(UTC).isoformat(timespec="seconds") if value else None


class Engine(ABC):
    """One connection to one store, SQLite or PostgreSQL; not thread-safe."""

    kind: ClassVar[str]  # "sqlite" | "postgresql"
    # The DDL words that differ between the engines, filled into the schema's {names}.
    types: ClassVar[Mapping[str, str]]
    # An expression's YYYY-MM (UTC), e.g. "substr({}, 1, 7)" on SQLite's ISO text.
    month_sql: ClassVar[str]
    # (driver error class, test of the error): StoreBusy when it matches; else StoreError
    busy_errors: ClassVar[Sequence[tuple[type[Exception], Callable[[Exception], bool]]]] = ()
    driver_error: ClassVar[type[Exception]] = Exception

    def __init__(self, name: str) -> None:
        self.name = name  # the path, or the URL with its password masked: for messages

    # --- the error table ---------------------------------------------------------------

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Turn the driver's errors into StoreBusy or StoreError naming the store."""
        try:
            yield
        except StoreError:
            raise
        except self.driver_error as e:
            if any(isinstance(e, kind) and test(e) for kind, test in self.busy_errors):
                raise StoreBusy(
                    f"another mash run holds the store {self.name}; try again when it finishes"
                ) from e
            raise StoreError("database error", self.name) from e

    # --- queries -----------------------------------------------------------------------

    @abstractmethod
    def query(self, sql: str, params: Params = ()) -> list[Row]:
        """Return every row of a SELECT (or of a statement with RETURNING)."""

    def one(self, sql: str, params: Params = ()) -> Row | None:
        """Return the first row of a query, or None."""
        rows = self.query(sql, params)
        return rows[0] if rows else None

    @abstractmethod
    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return the number of rows it changed."""

    @abstractmethod
    def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        """Run one statement for each row of parameters."""

    @abstractmethod
    def transaction(self, *, durable: bool = False) -> AbstractContextManager[None]:
        """Run a block in one write transaction, rolled back if it raises.

        ``durable``: the commit must survive a power cut (SQLite: synchronous FULL; a
        PostgreSQL commit always is). Not re-entrant.
        """

    @abstractmethod
    def snapshot(self) -> AbstractContextManager[None]:
        """Run a block's reads in one read-only transaction: they all see the store as
        it was at the first read, whatever other runs commit meanwhile. Not re-entrant."""

    @abstractmethod
    def lock(self, name: str) -> AbstractContextManager[None]:
        """Hold the store's lock ``name`` while the block runs, across processes and
        (on PostgreSQL) machines; raise StoreBusy naming the holder when it is taken."""

    @abstractmethod
    def close(self) -> None: ...

    # --- the catalog: what `mash db copy` and `mash db check` walk (see #15) ------------

    @abstractmethod
    def identity(self) -> tuple[object, ...]:
        """Return what tells this store from any other (SQLite: the file; PG: server, db)."""

    @abstractmethod
    def tables(self) -> list[str]:
        """Return the names of the store's own tables, bookkeeping (versions) left out."""

    @abstractmethod
    def columns(self, table: str) -> list[tuple[str, str]]:
        """Return a table's columns in order, each (name, kind): kind "timestamp", "bool"
        where the engine has that type (PostgreSQL), else "other"."""

    @abstractmethod
    def parents(self, table: str) -> set[str]:
        """Return the tables a table's foreign keys point to."""

    @abstractmethod
    def integrity_problems(self) -> list[str]:
        """Return what the engine finds broken: corrupt pages, rows whose foreign key
        points nowhere (each naming table and row); empty when all holds."""

    @abstractmethod
    def stream(self, sql: str, size: int = 500) -> Iterator[list[tuple[object, ...]]]:
        """Yield the rows of a query (as tuples) in batches of ``size``, not all at once;
        call inside ``snapshot()``."""

    def defer_foreign_keys(self) -> None:  # noqa: B027 (an engine may have none)
        """Check foreign keys at the commit of the running transaction, not per row."""

    def reset_identities(self, table: str) -> None:  # noqa: B027 (SQLite: rowid follows)
        """Set a table's generated ids past the ids it holds, after ids were copied."""

    @abstractmethod
    def clone(self) -> Engine:
        """Open another connection to the same store (for another thread)."""

    # --- the schema version ------------------------------------------------------------

    @abstractmethod
    def version(self) -> int:
        """Return the schema version of the store (0: empty)."""

    @abstractmethod
    def set_version(self, version: int) -> None:
        """Record the schema version (inside the migration's transaction)."""

    def migration_lock(self) -> AbstractContextManager[None]:
        """Keep a second process from migrating at the same time (default: nothing)."""
        return _nothing()

    def check_version(self, known: int) -> int:
        """Return the store's version; refuse a store newer than this mash, touching nothing."""
        version = self.version()
        if version > known:
            raise StoreError(
                f"the store {self.name} is schema version {version}, newer than this mash "
                f"(it knows version {known}); upgrade mash to use it"
            )
        return version

    def migrate(self, steps: Sequence[Migration]) -> None:
        """Run the migrations the store lacks, each in one transaction with its version.

        The version is read again inside each transaction: a process that lost the race
        to migrate skips what the winner did.
        """
        with self.migration_lock():
            start = self.check_version(len(steps))
            for number in range(start, len(steps)):
                with self.transaction():
                    if self.version() > number:
                        continue
                    steps[number](self)
                    self.set_version(number + 1)
            if start < len(steps):
                self.after_migrations()

    def after_migrations(self) -> None:  # noqa: B027 (most engines have nothing to do)
        """Engine clean-up once migrations ran (SQLite: drop the old pages from the WAL)."""


@contextmanager
def _nothing() -> Iterator[None]:
    yield
