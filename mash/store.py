"""The SQLite store: feeds, posts and issues. The only module with SQL for them.

WAL journal, one transaction per feed update, numbered migrations each in one
transaction with its version bump. Writes are idempotent upserts on the natural
key (feed, guid) and (feed, canonical URL), so a re-run never duplicates a post.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mash.errors import StoreError
from mash.records import Article, FeedSpec, FeedState, FetchResult, Post, StoredPost
from mash.urls import redact_url, restore_credentials, url_key

SCHEMA = """
CREATE TABLE feeds (
    url TEXT PRIMARY KEY,            -- as in feeds.yaml, any password masked (see #21)
    fetch_url TEXT,                  -- where it now lives after a permanent redirect
    title TEXT NOT NULL DEFAULT '',  -- the feed's own title
    link TEXT NOT NULL DEFAULT '',   -- the blog's home page
    etag TEXT,
    last_modified TEXT,
    last_status INTEGER,
    last_error TEXT,
    last_error_kind TEXT,            -- timeout, http-404, not-a-feed, ...
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    last_attempt TEXT,
    last_success TEXT,
    next_attempt TEXT,               -- backoff after repeated failures (see #3)
    retired INTEGER NOT NULL DEFAULT 0,  -- 410 Gone: kept, no longer fetched
    moved_to TEXT,                   -- a 301/308 target the editor should copy to feeds.yaml
    discovered_url TEXT              -- the feed a web page answer links to (autodiscovery)
);
CREATE TABLE posts (
    id INTEGER PRIMARY KEY,
    feed_url TEXT NOT NULL REFERENCES feeds(url),
    guid TEXT NOT NULL,
    url TEXT NOT NULL,               -- canonical: tracking parameters removed
    url_key TEXT NOT NULL,           -- url without scheme, www. and trailing slash
    title TEXT NOT NULL,
    author TEXT NOT NULL DEFAULT '',
    published TEXT,                  -- feed's published date, ISO 8601 UTC
    first_published TEXT,            -- the feed's date when first seen (re-dating, see #5)
    updated TEXT,                    -- feed's updated date
    page_published TEXT,             -- the date shown on the article page
    first_seen TEXT NOT NULL,
    summary_html TEXT NOT NULL DEFAULT '',
    content_html TEXT NOT NULL DEFAULT '',  -- the feed's full content, sanitised
    html TEXT NOT NULL DEFAULT '',   -- the chosen article, sanitised ('': the feed's HTML)
    text TEXT NOT NULL DEFAULT '',   -- plain text of html, for ranking and blurbs
    source TEXT NOT NULL DEFAULT 'pending',  -- feed | page | pending | failed
    source_reason TEXT NOT NULL DEFAULT '',
    comments INTEGER,                -- from the feed (slash:comments, thr:total)
    page_comments INTEGER,           -- shown on the page ("4 replies")
    image TEXT NOT NULL DEFAULT '',
    canonical TEXT NOT NULL DEFAULT '',  -- rel=canonical of the page
    language TEXT NOT NULL DEFAULT '',
    word_count INTEGER NOT NULL DEFAULT 0,
    categories TEXT NOT NULL DEFAULT '[]',  -- JSON list
    page_attempts INTEGER NOT NULL DEFAULT 0,
    UNIQUE (feed_url, guid),
    UNIQUE (feed_url, url_key)
);
CREATE INDEX posts_published ON posts(published);
CREATE INDEX posts_pending ON posts(source) WHERE source = 'pending';
CREATE TABLE issues (
    month TEXT PRIMARY KEY,          -- YYYY-MM
    volume INTEGER NOT NULL UNIQUE,
    title TEXT NOT NULL DEFAULT '',
    built_at TEXT NOT NULL,
    picks TEXT NOT NULL DEFAULT '[]'  -- JSON list of featured post URLs (never featured twice)
);
CREATE TABLE page_views (
    url_key TEXT NOT NULL,
    month TEXT NOT NULL,
    views INTEGER NOT NULL,
    source TEXT NOT NULL,            -- Plausible, GA4, Matomo
    PRIMARY KEY (url_key, month)
);
"""


def _migrate_1(db: sqlite3.Connection) -> None:
    # executescript() would COMMIT the migration's transaction; run statement by statement
    for statement in SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)


def _migrate_2(db: sqlite3.Connection) -> None:
    # feed_key looks a feed up by where it is fetched, once per feed per run: without an
    # index that is a scan of every feed each time (see #8)
    db.execute("CREATE INDEX feeds_fetch_url ON feeds(fetch_url)")


def _migrate_3(db: sqlite3.Connection) -> None:
    # no query used posts_published: the month's posts are chosen by
    # COALESCE(published, page_published, first_seen), which an index on published
    # cannot serve (EXPLAIN QUERY PLAN: SCAN). Each new post still updated it, at a
    # random place: a fifth of the store's CPU in a first run of 1000 feeds (#8).
    db.execute("DROP INDEX IF EXISTS posts_published")


def _migrate_4(db: sqlite3.Connection) -> None:
    # A password in a feed's URL was stored in clear in every column that quotes the URL
    # (see #21). Mask it in place; the old bytes are zeroed, not left in free pages.
    db.execute("PRAGMA secure_delete = ON")
    db.execute("PRAGMA defer_foreign_keys = ON")  # posts.feed_url follows feeds.url below
    db.create_function("mash_redact", 1, _redact_column, deterministic=True)
    columns = ("url", "fetch_url", "link", "last_error", "moved_to", "discovered_url")
    masked = ", ".join(f"{c} = mash_redact({c})" for c in columns)
    db.execute(
        f"UPDATE feeds SET {masked} WHERE " + " OR ".join(f"{c} LIKE '%@%'" for c in columns)
    )
    db.execute("UPDATE posts SET feed_url = mash_redact(feed_url) WHERE feed_url LIKE '%@%'")


def _redact_column(value: str | None) -> str | None:
    return redact_url(value) if value else value


def _migrate_5(db: sqlite3.Connection) -> None:
    # the author's own summary, for blurbs (#20): a hand-written excerpt the feed gives
    # beside the full content, and the page's description (both plain text)
    db.execute("ALTER TABLE posts ADD COLUMN excerpt TEXT NOT NULL DEFAULT ''")
    db.execute("ALTER TABLE posts ADD COLUMN page_description TEXT NOT NULL DEFAULT ''")


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _migrate_1,
    _migrate_2,
    _migrate_3,
    _migrate_4,
    _migrate_5,
)


@dataclass(frozen=True)
class FeedRow:
    """The stored state of one feed; made by Store.feed_rows, used by cli and health."""

    url: str
    fetch_url: str
    title: str
    etag: str | None
    last_modified: str | None
    last_status: int | None
    last_error: str | None
    last_error_kind: str | None
    consecutive_failures: int
    last_attempt: str | None
    last_success: str | None
    next_attempt: str | None
    retired: bool
    moved_to: str | None
    discovered_url: str | None = None


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="seconds") if value else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


# A post as its posts row, but for the feed and the first-seen time (which the store
# adds): guid, url, url_key, title, author, published, updated, summary_html,
# content_html, html, text, source, source_reason, comments, categories, word_count,
# first_published, excerpt. Plain tuples: cheap to send back from a parse worker (see #8).
PostRow = tuple[object, ...]


def post_rows(posts: Sequence[tuple[Post, Article | None]]) -> list[PostRow]:
    """Return posts (with their articles, if extracted) as rows for save_feed_rows."""
    return [_post_row(post, article) for post, article in posts]


def _post_row(post: Post, article: Article | None) -> PostRow:
    html, text, source, reason, words = "", "", "pending", "", 0
    if article is not None:
        html, text, source, reason = article.html, article.text, article.source, article.reason
        words = article.word_count
        if html == (post.content_html or post.summary_html):
            html = ""  # the feed's own HTML: read back from there, not stored twice
    published = _iso(post.published)
    return (
        post.guid,
        post.url,
        url_key(post.url),
        post.title,
        post.author,
        published,
        _iso(post.updated) if post.updated != post.published else published,
        post.summary_html,
        post.content_html,
        html,
        text,
        source,
        reason,
        post.comments,
        json.dumps(list(post.categories)),
        words,
        published,
        post.excerpt,
    )


class Store:
    """A SQLite file holding feeds, posts and issues."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.Error as e:
            raise StoreError(f"cannot open the database {str(path)!r}") from e

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run a block in one IMMEDIATE transaction; sqlite3 errors become StoreError."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
        except sqlite3.Error as e:
            raise StoreError(f"database error in {str(self.path)!r}") from e

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StoreError(
                f"the database {str(self.path)!r} is version {version}, newer than this mash "
                f"(knows {len(MIGRATIONS)}); upgrade mash"
            )
        for number in range(version, len(MIGRATIONS)):
            with self.transaction() as db:
                MIGRATIONS[number](db)
                db.execute(f"PRAGMA user_version = {number + 1}")
        if version < len(MIGRATIONS):
            # the WAL may still hold the old pages of what a migration rewrote (see #21)
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # --- feeds ------------------------------------------------------------------------
    # A feed's key is its feeds.yaml URL with any password masked (redact_url): the store
    # never holds a password, and the fetch takes the real URL from the config (see #21).

    def sync_feeds(self, feeds: Sequence[FeedSpec]) -> None:
        """Add the feeds of the config that the store does not know yet."""
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO feeds(url, fetch_url) VALUES (?, ?) ON CONFLICT(url) DO NOTHING",
                [(key, key) for key in {redact_url(f.url): None for f in feeds}],
            )

    def feed_states(self, feeds: Sequence[FeedSpec], now: datetime) -> list[FeedState]:
        """Return what fetch needs for each feed due now (not retired, not backed off)."""
        rows = {r["url"]: r for r in self.db.execute("SELECT * FROM feeds")}
        states = []
        for feed in feeds:
            row = rows.get(redact_url(feed.url))
            if row is None:
                states.append(FeedState(feed.url))
                continue
            if row["retired"] or (row["next_attempt"] and _dt(row["next_attempt"]) > now):  # type: ignore[operator]
                continue
            moved = row["fetch_url"] if row["fetch_url"] != row["url"] else None
            url = restore_credentials(moved, feed.url) if moved else feed.url
            states.append(FeedState(url, row["etag"], row["last_modified"]))
        return states

    def feed_key(self, fetch_url: str) -> str:
        """Return the key (feeds.yaml URL, masked) of a feed fetched at fetch_url."""
        fetch_url = redact_url(fetch_url)
        row = self.db.execute(
            "SELECT url FROM feeds WHERE fetch_url = ? OR url = ? LIMIT 1", (fetch_url, fetch_url)
        ).fetchone()
        return str(row["url"]) if row else fetch_url

    def feed_rows(self) -> list[FeedRow]:
        """Return every feed's stored state."""
        return [
            FeedRow(
                url=r["url"],
                fetch_url=r["fetch_url"] or r["url"],
                title=r["title"],
                etag=r["etag"],
                last_modified=r["last_modified"],
                last_status=r["last_status"],
                last_error=r["last_error"],
                last_error_kind=r["last_error_kind"],
                consecutive_failures=r["consecutive_failures"],
                last_attempt=r["last_attempt"],
                last_success=r["last_success"],
                next_attempt=r["next_attempt"],
                retired=bool(r["retired"]),
                moved_to=r["moved_to"],
                discovered_url=r["discovered_url"],
            )
            for r in self.db.execute("SELECT * FROM feeds ORDER BY url")
        ]

    def consecutive_failures(self, feed: str) -> int:
        """Return how many fetches of feed failed in a row."""
        row = self.db.execute(
            "SELECT consecutive_failures FROM feeds WHERE url = ?", (redact_url(feed),)
        ).fetchone()
        return int(row[0]) if row else 0

    def record_failure(
        self,
        feed: str,
        result: FetchResult,
        error: str,
        kind: str,
        now: datetime,
        next_attempt: datetime | None,
        discovered: str | None = None,
    ) -> None:
        """Record a failed fetch or parse of a feed; 410 Gone retires it."""
        with self.transaction() as db:
            db.execute(
                """UPDATE feeds SET last_status = ?, last_error = ?, last_error_kind = ?,
                   consecutive_failures = consecutive_failures + 1, last_attempt = ?,
                   next_attempt = ?, retired = retired OR ?, discovered_url = ?
                   WHERE url = ?""",
                (
                    result.status,
                    redact_url(error),
                    kind,
                    _iso(now),
                    _iso(next_attempt),
                    result.status == 410,
                    discovered and redact_url(discovered),
                    redact_url(feed),
                ),
            )

    def post_stats(self, start: datetime, end: datetime) -> dict[str, tuple[int, datetime | None]]:
        """Return per feed: posts dated in [start, end) and the date of its latest post."""
        rows = self.db.execute(
            """SELECT feed_url,
                      sum(COALESCE(published, page_published, first_seen) >= ?
                          AND COALESCE(published, page_published, first_seen) < ?),
                      max(COALESCE(published, page_published, first_seen))
               FROM posts GROUP BY feed_url""",
            (_iso(start), _iso(end)),
        )
        return {r[0]: (int(r[1] or 0), _dt(r[2])) for r in rows}

    def save_feed(
        self,
        feed: str,
        result: FetchResult,
        title: str,
        link: str,
        posts: Sequence[tuple[Post, Article | None]],
        now: datetime,
        warning: tuple[str, str] | None = None,
    ) -> int:
        """Store a fetched feed and its posts in one transaction; return the number of new posts.

        A post already stored (same guid, or same canonical URL in this feed) is updated,
        keeping its first-seen time and any article already extracted.
        """
        return self.save_feed_rows(feed, result, title, link, post_rows(posts), now, warning)

    def save_feed_rows(
        self,
        feed: str,
        result: FetchResult,
        title: str,
        link: str,
        rows: Sequence[PostRow],
        now: datetime,
        warning: tuple[str, str] | None = None,
    ) -> int:
        """save_feed, with the posts already made rows (by post_rows, in a parse worker)."""
        feed = redact_url(feed)
        with self.transaction() as db:
            moved = result.moved_to and redact_url(result.moved_to)
            db.execute(
                """UPDATE feeds SET fetch_url = COALESCE(?, fetch_url), title = ?, link = ?,
                   etag = ?, last_modified = ?, last_status = ?, last_error = ?,
                   last_error_kind = ?, consecutive_failures = 0, last_attempt = ?,
                   last_success = ?, next_attempt = NULL, moved_to = COALESCE(?, moved_to)
                   WHERE url = ?""",
                (
                    moved,
                    title,
                    redact_url(link),
                    result.etag,
                    result.last_modified,
                    result.status,
                    redact_url(warning[0]) if warning else None,
                    warning[1] if warning else None,
                    _iso(now),
                    _iso(now),
                    moved,
                    feed,
                ),
            )
            return self._save_posts(db, feed, rows, now)

    def record_not_modified(self, results: Sequence[FetchResult], now: datetime) -> None:
        """Record 304 answers, in one transaction: each feed is healthy and unchanged.

        One transaction for all of them, not one per feed (#8): a 304 writes no
        posts, so a crash loses nothing a re-run's conditional GET won't redo.
        """
        when = _iso(now)
        rows = [
            (when, when, result.etag, result.last_modified, self.feed_key(result.url))
            for result in results
        ]
        with self.transaction() as db:
            db.executemany(
                """UPDATE feeds SET last_status = 304, last_error = NULL, last_error_kind = NULL,
                   consecutive_failures = 0, last_attempt = ?, last_success = ?,
                   next_attempt = NULL, etag = COALESCE(?, etag),
                   last_modified = COALESCE(?, last_modified) WHERE url = ?""",
                rows,
            )

    def _save_posts(
        self, db: sqlite3.Connection, feed: str, rows: Sequence[PostRow], now: datetime
    ) -> int:
        known: dict[str, int] = {}
        for row in db.execute("SELECT id, guid, url_key FROM posts WHERE feed_url = ?", (feed,)):
            known[f"g:{row['guid']}"] = row["id"]
            known[f"u:{row['url_key']}"] = row["id"]
        seen_at = _iso(now)
        new_rows: list[tuple[object, ...]] = []
        updates: list[tuple[object, ...]] = []
        seen: set[object] = set()
        for row in rows:
            guid, key = row[0], row[2]
            post_id = known.get(f"g:{guid}") or known.get(f"u:{key}")
            if post_id is not None:
                # title, author, published, updated, summary, content, comments, excerpt
                updates.append((*row[3:9], row[13], row[17], post_id))
                continue
            if guid in seen or key in seen:
                continue  # the same entry twice in one feed
            seen.update((guid, key))
            new_rows.append((feed, *row[:7], seen_at, *row[7:]))
        db.executemany(
            """UPDATE posts SET title = ?, author = ?, published = COALESCE(?, published),
               updated = ?, summary_html = ?, content_html = ?,
               comments = COALESCE(?, comments), excerpt = ? WHERE id = ?""",
            updates,
        )
        db.executemany(
            """INSERT INTO posts (feed_url, guid, url, url_key, title, author, published,
               updated, first_seen, summary_html, content_html, html, text, source,
               source_reason, comments, categories, word_count, first_published, excerpt)
               VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)""",
            new_rows,
        )
        return len(new_rows)

    # --- articles ---------------------------------------------------------------------

    def pending_posts(self, limit: int = 10_000, max_attempts: int = 3) -> list[Post]:
        """Return stored posts still waiting for their page to be extracted."""
        rows = self.db.execute(
            """SELECT * FROM posts WHERE source = 'pending' AND page_attempts < ?
               ORDER BY id LIMIT ?""",
            (max_attempts, limit),
        )
        return [self._post_record(r) for r in rows]

    @staticmethod
    def _post_record(r: sqlite3.Row) -> Post:
        return Post(
            feed_url=r["feed_url"],
            guid=r["guid"],
            url=r["url"],
            title=r["title"],
            author=r["author"],
            published=_dt(r["published"]),
            updated=_dt(r["updated"]),
            summary_html=r["summary_html"],
            content_html=r["content_html"],
            comments=r["comments"],
            categories=tuple(json.loads(r["categories"])),
            excerpt=r["excerpt"],
        )

    def save_article(self, post: Post, article: Article) -> None:
        """Store the extracted article of a post (one transaction)."""
        with self.transaction() as db:
            db.execute(
                """UPDATE posts SET html = ?, text = ?, source = ?, source_reason = ?,
                   page_comments = ?, image = ?, canonical = ?, language = ?, word_count = ?,
                   page_published = ?, author = CASE WHEN author = '' THEN ? ELSE author END,
                   page_description = ?, page_attempts = page_attempts + 1
                   WHERE feed_url = ? AND guid = ?""",
                (
                    article.html,
                    article.text,
                    article.source,
                    article.reason,
                    article.comment_count,
                    article.image,
                    article.canonical,
                    article.language,
                    article.word_count,
                    _iso(article.published),
                    article.author,
                    article.description,
                    post.feed_url,
                    post.guid,
                ),
            )

    def record_page_failure(self, post: Post, reason: str, final: bool) -> None:
        """Count a failed page fetch; after the last try fall back to the feed's text."""
        with self.transaction() as db:
            db.execute(
                """UPDATE posts SET page_attempts = page_attempts + 1, source_reason = ?,
                   source = CASE WHEN ? THEN 'failed' ELSE source END
                   WHERE feed_url = ? AND guid = ?""",
                (reason, final, post.feed_url, post.guid),
            )

    # --- the month's posts ------------------------------------------------------------

    def posts_between(
        self, start: datetime, end: datetime, feeds: Sequence[FeedSpec]
    ) -> list[StoredPost]:
        """Return posts dated in [start, end): feed date, else page date, else first seen."""
        specs = {redact_url(f.url): f for f in feeds}
        rows = self.db.execute(
            """SELECT p.*, f.title AS feed_title, v.views, v.source AS views_source
               FROM posts p JOIN feeds f ON f.url = p.feed_url
               LEFT JOIN page_views v ON v.url_key = p.url_key
                    AND v.month = substr(
                        COALESCE(p.published, p.page_published, p.first_seen), 1, 7)
               WHERE COALESCE(p.published, p.page_published, p.first_seen) >= ?
                 AND COALESCE(p.published, p.page_published, p.first_seen) < ?
               ORDER BY p.id""",
            (_iso(start), _iso(end)),
        )
        return [self._stored(r, specs.get(r["feed_url"])) for r in rows]

    @staticmethod
    def _stored(r: sqlite3.Row, spec: FeedSpec | None) -> StoredPost:
        comments = [c for c in (r["comments"], r["page_comments"]) if c is not None]
        text = r["text"] or ""
        html = r["html"] or r["content_html"] or r["summary_html"]
        if not text:
            from mash.sanitize import html_to_text  # lxml and nh3: not for every fetch

            text = html_to_text(html)
        return StoredPost(
            id=r["id"],
            feed_url=r["feed_url"],
            blog=(spec.name if spec and spec.name else None) or r["feed_title"] or r["feed_url"],
            guid=r["guid"],
            url=r["url"],
            title=r["title"],
            author=r["author"],
            published=_dt(r["published"]) or _dt(r["page_published"]),
            first_seen=_dt(r["first_seen"]) or datetime.now(UTC),
            summary_html=r["summary_html"],
            html=html,
            text=text,
            source=r["source"],
            comments=max(comments) if comments else None,
            page_views=r["views"],
            page_views_source=r["views_source"] or "",
            image=r["image"],
            canonical=r["canonical"],
            categories=tuple(json.loads(r["categories"])),
            house=bool(spec and spec.house),
            weight=spec.weight if spec else 1.0,
            feed_published=_dt(r["published"]),
            first_published=_dt(r["first_published"]),
            updated=_dt(r["updated"]),
            page_published=_dt(r["page_published"]),
            source_reason=r["source_reason"],
            excerpt=r["excerpt"],
            page_description=r["page_description"],
        )

    def count_posts(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM posts").fetchone()[0])

    def posts_per_month(self) -> list[tuple[str, int]]:
        """Return (YYYY-MM, posts) of every month with posts, by posts_between's dates."""
        rows = self.db.execute(
            """SELECT substr(COALESCE(published, page_published, first_seen), 1, 7) AS month,
                      count(*) AS posts
               FROM posts GROUP BY month ORDER BY month"""
        )
        return [(r["month"], r["posts"]) for r in rows]

    # --- issues -----------------------------------------------------------------------

    def volume_for(self, month: str, start: int) -> int:
        """Return the month's volume: kept once given; else one more than the latest before."""
        row = self.db.execute("SELECT volume FROM issues WHERE month = ?", (month,)).fetchone()
        if row:
            return int(row["volume"])
        row = self.db.execute("SELECT max(volume) FROM issues WHERE month < ?", (month,)).fetchone()
        later = self.db.execute(
            "SELECT month, volume FROM issues WHERE month > ? ORDER BY month LIMIT 1", (month,)
        ).fetchone()
        volume = int(row[0]) + 1 if row[0] is not None else start
        if later is not None and volume >= later["volume"]:
            # say what to do: an earlier month built for the first time after a later one
            hint = (
                f"; set newsletter.volume_start to {later['volume'] - 1} to number it "
                f"{later['volume'] - 1}"
                if row[0] is None and later["volume"] > 1
                else ""
            )
            raise StoreError(
                f"cannot number {month}: volume {volume} is already {later['month']}'s; "
                f"build the months in order{hint}"
            )
        return volume

    def save_issue(
        self, month: str, volume: int, title: str, picks: Sequence[str], now: datetime
    ) -> None:
        """Record a built issue: its volume and the posts it featured."""
        with self.transaction() as db:
            db.execute(
                """INSERT INTO issues(month, volume, title, built_at, picks) VALUES (?,?,?,?,?)
                   ON CONFLICT(month) DO UPDATE SET title = excluded.title,
                   built_at = excluded.built_at, picks = excluded.picks""",
                (month, volume, title, _iso(now), json.dumps(list(picks))),
            )

    def featured_before(self, month: str, issues: int = 1000) -> list[tuple[str, list[str]]]:
        """Return (month, featured URLs) of the issues before month, newest first."""
        rows = self.db.execute(
            "SELECT month, picks FROM issues WHERE month < ? ORDER BY month DESC LIMIT ?",
            (month, issues),
        )
        return [(r["month"], json.loads(r["picks"])) for r in rows]

    def built_months(self) -> list[str]:
        return [r["month"] for r in self.db.execute("SELECT month FROM issues ORDER BY month")]

    # --- page views -------------------------------------------------------------------

    def save_page_views(
        self, rows: Sequence[tuple[str, int]], month: str, source: str, house: Sequence[str]
    ) -> tuple[int, list[str]]:
        """Match (path or URL, views) rows to stored posts and keep them for month.

        A path matches a post whose URL has that path; when several blogs have it, the
        house blog's post wins. Returns the number matched and the pages not matched.
        """
        house_keys = {redact_url(url) for url in house}
        by_path: dict[str, list[tuple[bool, str]]] = {}
        for r in self.db.execute("SELECT url_key, feed_url FROM posts"):
            key = r["url_key"]
            path = "/" + key.split("/", 1)[1] if "/" in key else "/"
            by_path.setdefault(path.rstrip("/") or "/", []).append(
                (r["feed_url"] in house_keys, key)
            )
        matched, missing, values = 0, [], []
        for page, views in rows:
            if page.startswith(("http://", "https://")):
                keys = [url_key(page)]
                exists = self.db.execute(
                    "SELECT 1 FROM posts WHERE url_key = ?", (keys[0],)
                ).fetchone()
                keys = keys if exists else []
            else:
                path = url_key("http://x" + page.split("?")[0]).split("/", 1)
                found = sorted(by_path.get(("/" + path[1]).rstrip("/") or "/", []), reverse=True)
                keys = [found[0][1]] if found else []
            if not keys:
                missing.append(page)
                continue
            matched += 1
            values.append((keys[0], month, views, source))
        with self.transaction() as db:
            db.executemany(
                """INSERT INTO page_views(url_key, month, views, source) VALUES (?,?,?,?)
                   ON CONFLICT(url_key, month) DO UPDATE SET views = excluded.views,
                   source = excluded.source""",
                values,
            )
        return matched, missing
