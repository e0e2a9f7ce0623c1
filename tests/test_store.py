"""The SQLite store: schema migrations (a real file)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from mash.store import MIGRATIONS, Store


def test_a_version_1_database_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "mash.db"
    db = sqlite3.connect(path, isolation_level=None)
    MIGRATIONS[0](db)
    db.execute("INSERT INTO feeds (url, fetch_url) VALUES ('https://a.example/feed', NULL)")
    db.execute("PRAGMA user_version = 1")
    db.close()
    with Store(path) as store:
        version = store.db.execute("PRAGMA user_version").fetchone()[0]
        indexes = {r[1] for r in store.db.execute("PRAGMA index_list(feeds)")}
        assert version == len(MIGRATIONS) == 2
        assert "feeds_fetch_url" in indexes
        assert store.feed_key("https://a.example/feed") == "https://a.example/feed"
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone() == ("ok",)
