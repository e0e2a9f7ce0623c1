"""The SQLite store: schema migrations (a real file)."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mash.errors import StoreError
from mash.records import Article, FeedSpec, FetchResult, Post
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
        columns = {r[1] for r in store.db.execute("PRAGMA table_info(posts)")}
        assert version == len(MIGRATIONS) == 5
        assert "feeds_fetch_url" in indexes
        assert "posts_published" not in post_indexes  # no query could use it (migration 3)
        assert {"excerpt", "page_description"} <= columns  # the author's summary (5, #20)
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


def test_the_authors_summaries_are_stored_and_read_back(tmp_path: Path) -> None:
    """The feed's excerpt and the page's description reach rank (migration 5, see #20)."""
    feed = "https://a.example/feed"
    when = datetime(2026, 10, 5, tzinfo=UTC)
    full = Post(feed, "g1", "https://a.example/full", "Full", published=when)
    full = replace(full, content_html="<p>Body.</p>", excerpt="Written for the feed.")
    teaser = Post(feed, "g2", "https://a.example/teaser", "Teaser", published=when)
    teaser = replace(teaser, summary_html="<p>Body …</p>")
    page = Article(html="<p>Body.</p>", text="Body.", source="page", reason="r")
    with Store(tmp_path / "mash.db") as store:
        store.sync_feeds([FeedSpec(feed)])
        ok = FetchResult(url=feed, status=200)
        store.save_feed(feed, ok, "A", "", [(full, None), (teaser, None)], when)
        store.save_article(teaser, replace(page, description="Written for the page."))
        # a later fetch whose excerpt changed updates it
        store.save_feed(feed, ok, "A", "", [(replace(full, excerpt="Rewritten."), None)], when)
        (pending,) = store.pending_posts()
        posts = store.posts_between(when - timedelta(days=5), when + timedelta(days=5), [])
    got = {p.url: (p.excerpt, p.page_description) for p in posts}
    assert got == {
        "https://a.example/full": ("Rewritten.", ""),
        "https://a.example/teaser": ("", "Written for the page."),
    }
    assert pending.url == "https://a.example/full" and pending.excerpt == "Rewritten."


def test_an_earlier_month_built_after_a_later_one_says_how_to_number_it(tmp_path: Path) -> None:
    """Backfilling September after October is volume 22 names the fix (volume_start)."""
    when = datetime(2026, 11, 2, tzinfo=UTC)
    with Store(tmp_path / "mash.db") as store:
        store.save_issue("2026-10", store.volume_for("2026-10", 22), "October", [], when)
        with pytest.raises(StoreError) as caught:
            store.volume_for("2026-09", 22)
        message = str(caught.value)
        assert "volume 22 is already 2026-10's" in message
        assert "set newsletter.volume_start to 21" in message
        assert store.volume_for("2026-09", 21) == 21  # as the hint says
        assert store.volume_for("2026-10", 21) == 22  # a given volume is kept
