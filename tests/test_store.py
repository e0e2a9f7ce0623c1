"""The SQLite store: schema migrations (a real file)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from mash.records import FeedSpec, FetchResult
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
        post_indexes = {r[1] for r in store.db.execute("PRAGMA index_list(posts)")}
        assert version == len(MIGRATIONS) == 3
        assert "feeds_fetch_url" in indexes
        assert "posts_published" not in post_indexes  # no query could use it (migration 3)
        assert store.feed_key("https://a.example/feed") == "https://a.example/feed"
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_304_answers_are_recorded_together_and_keep_what_they_do_not_resend(
    tmp_path: Path,
) -> None:
    """One call records every 304: the feed is healthy again, its validators kept or renewed."""
    now = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
    moved, plain = "https://old.example/feed", "https://plain.example/rss"
    with Store(tmp_path / "mash.db") as store:
        store.sync_feeds([FeedSpec(moved), FeedSpec(plain)])
        store.db.execute(
            "UPDATE feeds SET fetch_url = 'https://new.example/feed', etag = '\"v1\"',"
            " consecutive_failures = 2, last_error = 'HTTP 503', next_attempt = 'x'"
            " WHERE url = ?",
            (moved,),
        )
        store.record_not_modified(
            [
                FetchResult(url="https://new.example/feed", status=304, last_modified="Sun"),
                FetchResult(url=plain, status=304, etag='"p2"'),
            ],
            now,
        )
        rows = {r.url: r for r in store.feed_rows()}
    assert rows[moved].etag == '"v1"' and rows[moved].last_modified == "Sun"
    assert rows[plain].etag == '"p2"' and rows[plain].last_modified is None
    for row in rows.values():
        assert row.last_status == 304 and row.consecutive_failures == 0
        assert row.last_error is None and row.next_attempt is None
        assert row.last_success == row.last_attempt == now.isoformat()
