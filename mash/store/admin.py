"""Whole-store work: `mash db copy` (one store into another, across engines) and
`mash db check` (engine, version, row counts, integrity) (see #15).

Both walk the engines' catalogs (``Engine.tables``, ``columns``, ``parents``), so a table
a later migration adds is copied and checked with no change here. The copy runs in one
transaction on the target: all the rows, or none; it reads the source in one snapshot.
It copies the ids as they are (posts keep theirs) and, on PostgreSQL, sets the generated
ids past them. It does not copy the version bookkeeping (each store keeps its own) nor a
table only one side has (``ledger_meta`` of stores older than #15).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from graphlib import TopologicalSorter
from pathlib import Path
from typing import ParamSpec, TypeVar

from mash.errors import StoreBusy, StoreError
from mash.store import open_engine, open_store
from mash.store._base import Engine, as_datetime, quoted
from mash.store._sqlite import SqliteEngine
from mash.store.schema import MIGRATIONS

Counts = tuple[tuple[str, int], ...]
P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class CopyReport:
    """What `mash db copy` did; made by copy_database, printed by the cli."""

    source: str  # the stores' names for messages: passwords masked
    target: str
    rows: Counts  # per table, in the order copied
    replaced: Counts  # the rows the target held before, emptied by --replace


@dataclass(frozen=True)
class CheckReport:
    """What `mash db check` found; made by check_database, printed by the cli."""

    engine: str
    store: str  # password masked
    version: int
    known: int  # the version this mash makes
    rows: tuple[tuple[str, int | None], ...]  # None: the table could not be read
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


# --- copy ------------------------------------------------------------------------------


def copy_database(source: str | Path, target: str | Path, *, replace: bool = False) -> CopyReport:
    """Copy every table of the store ``source`` into ``target`` (created or migrated to
    this mash's schema first), in one transaction; refuse a target holding any row
    unless ``replace``, which empties it in that same transaction."""
    with open_store(source) as src, open_store(target) as dst:
        return copy_store(src.engine, dst.engine, replace=replace)


def copy_store(src: Engine, dst: Engine, *, replace: bool = False) -> CopyReport:
    """Copy src's rows into dst (both at this mash's schema); see copy_database."""
    if src.identity() == dst.identity():
        raise StoreError("the source and the target are one store; nothing copied", dst.name)
    tables = _copy_order(src, dst)
    with dst.transaction(durable=True):
        dst.defer_foreign_keys()
        held = tuple((t, n) for t in tables if (n := count_rows(dst, t)))
        if held and not replace:
            raise StoreError(
                f"the target already holds data ({_listed(held)}); nothing copied. "
                "Add --replace to empty it and copy",
                dst.name,
            )
        for table in reversed(tables):  # children first
            dst.execute(f"DELETE FROM {quoted(table)}")
        with src.snapshot():
            rows = tuple((table, _copy_table(src, dst, table)) for table in tables)
        for table in tables:
            dst.reset_identities(table)
    return CopyReport(source=src.name, target=dst.name, rows=rows, replaced=held)


def _copy_order(src: Engine, dst: Engine) -> list[str]:
    """Return the tables both stores have, each after the tables its foreign keys name."""
    shared = set(src.tables()) & set(dst.tables())
    graph = {t: dst.parents(t) & shared for t in sorted(shared)}
    return list(TopologicalSorter(graph).static_order())


def _copy_table(src: Engine, dst: Engine, table: str) -> int:
    columns = dst.columns(table)
    missing = {n for n, _ in columns} - {n for n, _ in src.columns(table)}
    if missing:
        raise StoreError(
            f"the source's table {table} lacks the columns {', '.join(sorted(missing))}",
            src.name,
        )
    names = ", ".join(quoted(n) for n, _ in columns)
    insert = f"INSERT INTO {quoted(table)} ({names}) VALUES ({', '.join('?' * len(columns))})"
    convert = [_CONVERT[kind] for _, kind in columns]
    copied = 0
    for batch in src.stream(f"SELECT {names} FROM {quoted(table)}"):
        dst.executemany(insert, (_converted(convert, row) for row in batch))
        copied += len(batch)
    return copied


def _converted(
    convert: list[Callable[[object], object]], row: tuple[object, ...]
) -> tuple[object, ...]:
    return tuple(f(v) for f, v in zip(convert, row, strict=True))


def _as_bool(value: object) -> object:
    return None if value is None else bool(value)  # SQLite's 0/1 into a PostgreSQL boolean


def _as_timestamp(value: object) -> object:
    # SQLite's ISO text into timestamptz; a datetime (PostgreSQL's) as it is
    return as_datetime(value) if isinstance(value, str) else value


# A value as the target's column type wants it (SQLite takes any: its engine writes
# a datetime as ISO text and a bool as 0/1).
_CONVERT: dict[str, Callable[[object], object]] = {
    "timestamp": _as_timestamp,
    "bool": _as_bool,
    "other": lambda value: value,
}


def count_rows(engine: Engine, table: str) -> int:
    row = engine.one(f"SELECT count(*) AS n FROM {quoted(table)}")
    return int(row["n"]) if row else 0


def _listed(counts: Iterable[tuple[str, int]]) -> str:
    return ", ".join(f"{table} {n} rows" for table, n in counts)


# --- check -----------------------------------------------------------------------------

# mash's own invariants, beyond what the engines enforce: one query each, returning the
# number of offending rows (n) and one of them (example). Both engines run them as written.
_INVARIANTS = (
    (
        "posts: (feed, guid) pairs held by more than one post",
        "SELECT count(*) AS n, min(feed_url || ' ' || guid) AS example FROM"
        " (SELECT feed_url, guid FROM posts GROUP BY feed_url, guid HAVING count(*) > 1) d",
    ),
    (
        "posts: (feed, url) pairs held by more than one post",
        "SELECT count(*) AS n, min(feed_url || ' ' || url_key) AS example FROM"
        " (SELECT feed_url, url_key FROM posts GROUP BY feed_url, url_key"
        " HAVING count(*) > 1) d",
    ),
    (
        "posts: an unknown text source (feed, page, pending, failed)",
        "SELECT count(*) AS n, min(source) AS example FROM posts"
        " WHERE source NOT IN ('feed', 'page', 'pending', 'failed')",
    ),
    (
        "issues: volumes given to more than one month",
        "SELECT count(*) AS n, min(volume) AS example FROM"
        " (SELECT volume FROM issues GROUP BY volume HAVING count(*) > 1) d",
    ),
    (
        "issues: a month that is not YYYY-MM",
        "SELECT count(*) AS n, min(month) AS example FROM issues"
        " WHERE length(month) <> 7 OR substr(month, 5, 1) <> '-'",
    ),
)
# Columns holding a JSON list (TEXT on both engines): (table, key column, JSON column).
_JSON_LISTS = (("posts", "id", "categories"), ("issues", "month", "picks"))


def check_database(database: str | Path) -> CheckReport:
    """Check a store without changing it (no migration): its version against this mash's,
    its tables against the schema, each table's rows, the engine's integrity checks and
    mash's invariants. Raise StoreError only where it cannot be opened at all."""
    if "://" not in str(database) and not Path(database).is_file():  # a URL: open_engine's
        raise StoreError("no store here: nothing to check", str(database))
    engine = open_engine(database)
    try:
        return check_engine(engine)
    finally:
        engine.close()


def check_engine(engine: Engine) -> CheckReport:
    """Check one open store (see check_database); a part that fails is a problem."""
    known = len(MIGRATIONS)
    version = engine.version()
    problems: list[str] = []
    if version != known:
        fix = "upgrade mash" if version > known else "any mash command migrates it"
        problems.append(f"schema version {version}, this mash knows {known}: {fix}")
    tables = engine.tables()
    if version == known:
        problems += _schema_problems(engine, tables)
    rows: list[tuple[str, int | None]] = []
    for table in tables:
        counted = _attempt(problems, f"{table}: cannot count its rows", count_rows, engine, table)
        rows.append((table, counted))
    # the invariants read the tables and columns the schema promises, readable
    readable = not problems
    problems += _attempt(problems, "integrity", engine.integrity_problems) or []
    if readable:
        problems += _attempt(problems, "invariants", _invariant_problems, engine) or []
    return CheckReport(engine.kind, engine.name, version, known, tuple(rows), tuple(problems))


def _attempt(
    problems: list[str], what: str, run: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T | None:
    """Run one part of the check; a store error (a corrupt page) becomes a problem."""
    try:
        return run(*args, **kwargs)
    except StoreBusy:
        raise
    except StoreError as e:
        problems.append(f"{what}: {e.__cause__ or e}")
        return None


@lru_cache(maxsize=1)
def _schema() -> dict[str, frozenset[str]]:
    """Return the tables and columns this mash's migrations make (in a memory store)."""
    engine = SqliteEngine(Path(":memory:"))
    try:
        engine.migrate(MIGRATIONS)
        return {t: frozenset(n for n, _ in engine.columns(t)) for t in engine.tables()}
    finally:
        engine.close()


def _schema_problems(engine: Engine, tables: list[str]) -> list[str]:
    problems = []
    for table, columns in _schema().items():
        if table not in tables:
            problems.append(f"{table}: the table is missing")
            continue
        lacking = columns - {n for n, _ in engine.columns(table)}
        if lacking:
            problems.append(f"{table}: lacks the columns {', '.join(sorted(lacking))}")
    return problems


def _invariant_problems(engine: Engine) -> list[str]:
    problems = []
    for what, sql in _INVARIANTS:
        row = engine.one(sql)
        if row and row["n"]:
            problems.append(f"{what}: {row['n']} (e.g. {row['example']!r})")
    for table, key, column in _JSON_LISTS:
        rows = engine.query(f"SELECT {key} AS k, {column} AS v FROM {table}")
        bad = [r["k"] for r in rows if not _is_json_list(r["v"])]
        if bad:
            problems.append(
                f"{table}.{column}: not a JSON list in {len(bad)} rows (e.g. {bad[0]!r})"
            )
    return problems


def _is_json_list(text: str) -> bool:
    try:
        return isinstance(json.loads(text), list)
    except (TypeError, ValueError):
        return False
