"""The store: every piece of state of a newsletter, in SQLite (default) or PostgreSQL.

``open_store(config)`` opens the store the config names: ``MASH_DATABASE_URL`` from the
environment wins, else ``paths.database`` (a file path, or a ``postgresql://`` URL).
``Store`` composes one mixin per domain, each with its SQL (feeds, posts, issues and
page views, the send ledger and opt-outs, subscribers, bounce mails read) over one
engine (``_sqlite``, ``_postgres``): the only package of mash with SQL. Opening
migrates the schema (``schema.MIGRATIONS``) or refuses a store newer than this mash.
Not thread-safe: one Store per thread.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path

from mash.errors import StoreError
from mash.records import Config
from mash.store._base import Engine
from mash.store.feeds import FeedRow
from mash.store.issues import IssuesMixin
from mash.store.leases import FetchRun, LeasesMixin
from mash.store.mails import MailsMixin, SeenMails
from mash.store.posts import PostRow, PostsMixin, post_rows
from mash.store.schema import MIGRATIONS
from mash.store.sends import (
    CLAIM,
    DEFERRED,
    DOUBT,
    FAILED,
    SENDING,
    SENT,
    LedgerEntry,
    LedgerWrite,
    SendsMixin,
)
from mash.store.signups import Confirmation, SignupAnswer, SignupsMixin
from mash.store.subscribers import SubscribersMixin
from mash.urls import redact_url

__all__ = [
    "CLAIM",
    "DEFERRED",
    "DOUBT",
    "FAILED",
    "SENDING",
    "SENT",
    "Confirmation",
    "SignupAnswer",
    "ENV_URL",
    "FeedRow",
    "FetchRun",
    "LedgerEntry",
    "LedgerWrite",
    "PostRow",
    "SeenMails",
    "Store",
    "database_of",
    "is_database_url",
    "open_engine",
    "open_store",
    "post_rows",
]

ENV_URL = "MASH_DATABASE_URL"
_URL_SCHEMES = ("postgresql://", "postgres://")


class Store(
    PostsMixin, IssuesMixin, SendsMixin, SignupsMixin, SubscribersMixin, MailsMixin, LeasesMixin
):
    """One open store; made by open_store. Methods by domain: see feeds, posts, issues,
    sends, subscribers, signups, mails, leases."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        try:
            engine.migrate(MIGRATIONS)
        except BaseException:
            engine.close()
            raise

    @property
    def name(self) -> str:
        """The store for messages: its path, or its URL with the password masked."""
        return self.engine.name

    def lock(self, name: str) -> AbstractContextManager[None]:
        """Hold the run lock ``name`` ("fetch", "send") while the block runs; a second
        holder, on this machine or (PostgreSQL) any other, is refused with StoreBusy."""
        return self.engine.lock(name)

    def snapshot(self) -> AbstractContextManager[None]:
        """Read everything inside the block from one snapshot of the store (REPEATABLE
        READ on PostgreSQL, one read transaction on SQLite): a fetch writing meanwhile
        is seen whole or not at all. Not for writes."""
        return self.engine.snapshot()

    def close(self) -> None:
        self.engine.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def is_database_url(database: str | Path) -> bool:
    """True when database names a PostgreSQL server rather than a SQLite file."""
    return isinstance(database, str) and database.startswith(_URL_SCHEMES)


def database_of(config: Config, environ: Mapping[str, str] | None = None) -> str | Path:
    """Return the store a config names: $MASH_DATABASE_URL, else paths.database."""
    env = os.environ if environ is None else environ
    return env.get(ENV_URL, "").strip() or config.database_url or config.db_path


def open_store(where: Config | str | Path, environ: Mapping[str, str] | None = None) -> Store:
    """Open (creating or migrating) the store of a config, a SQLite path or a URL."""
    database = database_of(where, environ) if isinstance(where, Config) else where
    return Store(open_engine(database))


def open_engine(database: str | Path) -> Engine:
    """Connect to a SQLite path or a PostgreSQL URL without migrating anything."""
    engine: Engine
    if is_database_url(database):
        from mash.store._postgres import PostgresEngine  # psycopg only for PostgreSQL

        engine = PostgresEngine(str(database))
    elif isinstance(database, str) and "://" in database:
        raise StoreError(
            "not a store: use a file path or a postgresql:// URL", redact_url(database)
        )
    else:
        from mash.store._sqlite import SqliteEngine

        engine = SqliteEngine(Path(database))
    return engine
