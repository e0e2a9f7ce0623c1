"""The posts table: each feed's entries, their extracted articles, and the month's posts.

Writes are idempotent: a post already stored (same guid, or same canonical URL in its
feed) is updated, keeping its first-seen time and any article already extracted.
A post's date is its feed date, else its page date, else when it was first seen.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from mash.records import Article, FeedSpec, FetchResult, Post, StoredPost
from mash.store._base import Row, as_datetime, iso
from mash.store.feeds import FeedsMixin
from mash.urls import redact_url, url_key

# A post as its posts row, but for the feed and the first-seen time (which the store
# adds): guid, url, url_key, title, author, published, updated, summary_html,
# content_html, html, text, source, source_reason, comments, categories, word_count,
# first_published, excerpt. Plain tuples: cheap to send back from a parse worker (see #8).
# Dates are ISO text, which both engines read (PostgreSQL casts it to timestamptz).
PostRow = tuple[object, ...]

_DATE = "COALESCE(p.published, p.page_published, p.first_seen)"


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
    published = iso(post.published)
    return (
        post.guid,
        post.url,
        url_key(post.url),
        post.title,
        post.author,
        published,
        iso(post.updated) if post.updated != post.published else published,
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


def _post(r: Row) -> Post:
    return Post(
        feed_url=r["feed_url"],
        guid=r["guid"],
        url=r["url"],
        title=r["title"],
        author=r["author"],
        published=as_datetime(r["published"]),
        updated=as_datetime(r["updated"]),
        summary_html=r["summary_html"],
        content_html=r["content_html"],
        comments=r["comments"],
        categories=tuple(json.loads(r["categories"])),
        excerpt=r["excerpt"],
    )


def _stored(r: Row, spec: FeedSpec | None) -> StoredPost:
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
        published=as_datetime(r["published"]) or as_datetime(r["page_published"]),
        first_seen=as_datetime(r["first_seen"]) or datetime.now(UTC),
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
        feed_published=as_datetime(r["published"]),
        first_published=as_datetime(r["first_published"]),
        updated=as_datetime(r["updated"]),
        page_published=as_datetime(r["page_published"]),
        source_reason=r["source_reason"],
        excerpt=r["excerpt"],
        page_description=r["page_description"],
    )


class PostsMixin(FeedsMixin):
    # --- a fetched feed ---------------------------------------------------------------

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
        with self.engine.transaction():
            self.record_fetched(feed, result, title, link, now, warning)
            return self._save_posts(redact_url(feed), rows, now)

    def _save_posts(self, feed: str, rows: Sequence[PostRow], now: datetime) -> int:
        known: dict[str, int] = {}
        for r in self.engine.query(
            "SELECT id, guid, url_key FROM posts WHERE feed_url = ?", (feed,)
        ):
            known[f"g:{r['guid']}"] = r["id"]
            known[f"u:{r['url_key']}"] = r["id"]
        seen_at = iso(now)
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
        self.engine.executemany(
            """UPDATE posts SET title = ?, author = ?, published = COALESCE(?, published),
               updated = ?, summary_html = ?, content_html = ?,
               comments = COALESCE(?, comments), excerpt = ? WHERE id = ?""",
            updates,
        )
        # ON CONFLICT: a post another run stored meanwhile is kept, not an error (see #15).
        # executemany, not one INSERT of many rows: psycopg pipelines it, and parses a
        # statement of 400 parameters in Python each time (measured, see #15)
        self.engine.executemany(
            """INSERT INTO posts (feed_url, guid, url, url_key, title, author, published,
               updated, first_seen, summary_html, content_html, html, text, source,
               source_reason, comments, categories, word_count, first_published, excerpt)
               VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING""",
            new_rows,
        )
        return len(new_rows)

    # --- articles ---------------------------------------------------------------------

    def pending_posts(self, limit: int = 10_000, max_attempts: int = 3) -> list[Post]:
        """Return stored posts still waiting for their page to be extracted."""
        rows = self.engine.query(
            """SELECT * FROM posts WHERE source = 'pending' AND page_attempts < ?
               ORDER BY id LIMIT ?""",
            (max_attempts, limit),
        )
        return [_post(r) for r in rows]

    def posts_by_id(self, ids: Sequence[int]) -> list[tuple[int, Post]]:
        """Return stored posts by id (those claimed by claim_pages), in id order."""
        if not ids:
            return []
        marks = ", ".join("?" * len(ids))
        rows = self.engine.query(f"SELECT * FROM posts WHERE id IN ({marks}) ORDER BY id", ids)
        return [(int(r["id"]), _post(r)) for r in rows]

    def save_article(self, post: Post, article: Article) -> None:
        """Store the extracted article of a post (one transaction)."""
        with self.engine.transaction():
            self.engine.execute(
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
                    article.published,
                    article.author,
                    article.description,
                    post.feed_url,
                    post.guid,
                ),
            )

    def record_page_failure(self, post: Post, reason: str, final: bool) -> None:
        """Count a failed page fetch; after the last try fall back to the feed's text."""
        with self.engine.transaction():
            self.engine.execute(
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
        month = self.engine.month_sql.format(_DATE)
        rows = self.engine.query(
            f"""SELECT p.*, f.title AS feed_title, v.views, v.source AS views_source
               FROM posts p JOIN feeds f ON f.url = p.feed_url
               LEFT JOIN page_views v ON v.url_key = p.url_key AND v.month = {month}
               WHERE {_DATE} >= ? AND {_DATE} < ?
               ORDER BY p.id""",
            (start, end),
        )
        return [_stored(r, specs.get(r["feed_url"])) for r in rows]

    def count_posts(self) -> int:
        row = self.engine.one("SELECT count(*) AS n FROM posts")
        return int(row["n"]) if row else 0

    def posts_per_month(self) -> list[tuple[str, int]]:
        """Return (YYYY-MM, posts) of every month with posts, by posts_between's dates."""
        month = self.engine.month_sql.format(_DATE)
        rows = self.engine.query(
            f"SELECT {month} AS month, count(*) AS posts FROM posts p GROUP BY 1 ORDER BY 1"
        )
        return [(r["month"], int(r["posts"])) for r in rows]

    def post_stats(self, start: datetime, end: datetime) -> dict[str, tuple[int, datetime | None]]:
        """Return per feed: posts dated in [start, end) and the date of its latest post."""
        rows = self.engine.query(
            f"""SELECT p.feed_url, sum(CASE WHEN {_DATE} >= ? AND {_DATE} < ? THEN 1 ELSE 0 END)
                      AS posts, max({_DATE}) AS latest
               FROM posts p GROUP BY p.feed_url""",
            (start, end),
        )
        return {r["feed_url"]: (int(r["posts"] or 0), as_datetime(r["latest"])) for r in rows}
