"""The feeds table: which feeds the store knows, and how each one's last fetch went.

A feed's key is its feeds.yaml URL with any password masked (redact_url): the store
never holds a password, and the fetch takes the real URL from the config (see #21).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from mash.records import FeedSpec, FeedState, FetchResult
from mash.store._base import Engine, Row, as_datetime
from mash.urls import redact_url, restore_credentials

_UPDATE_ROWS = 500  # feeds per UPDATE of record_not_modified


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
    last_attempt: datetime | None
    last_success: datetime | None
    next_attempt: datetime | None
    retired: bool
    moved_to: str | None
    discovered_url: str | None = None


def _feed_row(r: Row) -> FeedRow:
    return FeedRow(
        url=r["url"],
        fetch_url=r["fetch_url"] or r["url"],
        title=r["title"],
        etag=r["etag"],
        last_modified=r["last_modified"],
        last_status=r["last_status"],
        last_error=r["last_error"],
        last_error_kind=r["last_error_kind"],
        consecutive_failures=r["consecutive_failures"],
        last_attempt=as_datetime(r["last_attempt"]),
        last_success=as_datetime(r["last_success"]),
        next_attempt=as_datetime(r["next_attempt"]),
        retired=bool(r["retired"]),
        moved_to=r["moved_to"],
        discovered_url=r["discovered_url"],
    )


class FeedsMixin:
    engine: Engine

    def sync_feeds(self, feeds: Sequence[FeedSpec]) -> None:
        """Add the feeds of the config that the store does not know yet."""
        known = {r["url"] for r in self.engine.query("SELECT url FROM feeds")}
        new = [key for key in {redact_url(f.url): None for f in feeds} if key not in known]
        if not new:
            return  # every run but the first: no statement per feed (see #15)
        with self.engine.transaction():
            self.engine.executemany(
                "INSERT INTO feeds(url, fetch_url) VALUES (?, ?) ON CONFLICT(url) DO NOTHING",
                [(key, key) for key in new],
            )

    def feed_states(self, feeds: Sequence[FeedSpec], now: datetime) -> list[FeedState]:
        """Return what fetch needs for each feed due now (not retired, not backed off)."""
        return list(self.due_feeds(feeds, now).values())

    def due_feeds(self, feeds: Sequence[FeedSpec], now: datetime) -> dict[str, FeedState]:
        """Return feed_states by each feed's key (its feeds.url, as claim_feeds names it)."""
        rows = {r.url: r for r in self.feed_rows()}
        states = {}
        for feed in feeds:
            key = redact_url(feed.url)
            row = rows.get(key)
            if row is None:
                states[key] = FeedState(feed.url)
                continue
            if row.retired or (row.next_attempt and row.next_attempt > now):
                continue
            moved = row.fetch_url if row.fetch_url != row.url else None
            url = restore_credentials(moved, feed.url) if moved else feed.url
            states[key] = FeedState(url, row.etag, row.last_modified)
        return states

    def feed_key(self, fetch_url: str) -> str:
        """Return the key (feeds.yaml URL, masked) of a feed fetched at fetch_url."""
        fetch_url = redact_url(fetch_url)
        row = self.engine.one(
            "SELECT url FROM feeds WHERE fetch_url = ? OR url = ? LIMIT 1", (fetch_url, fetch_url)
        )
        return str(row["url"]) if row else fetch_url

    def feed_rows(self) -> list[FeedRow]:
        """Return every feed's stored state."""
        return [_feed_row(r) for r in self.engine.query("SELECT * FROM feeds ORDER BY url")]

    def consecutive_failures(self, feed: str) -> int:
        """Return how many fetches of feed failed in a row."""
        row = self.engine.one(
            "SELECT consecutive_failures FROM feeds WHERE url = ?", (redact_url(feed),)
        )
        return int(row["consecutive_failures"]) if row else 0

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
        with self.engine.transaction():
            self.engine.execute(
                """UPDATE feeds SET last_status = ?, last_error = ?, last_error_kind = ?,
                   consecutive_failures = consecutive_failures + 1, last_attempt = ?,
                   next_attempt = ?, retired = retired OR ?, discovered_url = ?
                   WHERE url = ?""",
                (
                    result.status,
                    redact_url(error),
                    kind,
                    now,
                    next_attempt,
                    result.status == 410,
                    discovered and redact_url(discovered),
                    redact_url(feed),
                ),
            )

    def record_fetched(
        self,
        feed: str,
        result: FetchResult,
        title: str,
        link: str,
        now: datetime,
        warning: tuple[str, str] | None = None,
    ) -> None:
        """Record a fetch that gave a usable feed (inside the caller's transaction)."""
        moved = result.moved_to and redact_url(result.moved_to)
        self.engine.execute(
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
                now,
                now,
                moved,
                redact_url(feed),
            ),
        )

    def record_not_modified(
        self,
        results: Sequence[FetchResult],
        now: datetime,
        keys: Mapping[str, str] | None = None,
    ) -> None:
        """Record 304 answers, in one transaction: each feed is healthy and unchanged.

        One transaction for all of them, not one per feed (#8): a 304 writes no
        posts, so a crash loses nothing a re-run's conditional GET won't redo.
        ``keys``: each fetched URL's feed key, where the caller knows it (else it is
        looked up, a query per feed: on PostgreSQL a round trip each, see #15).
        """
        keys = keys or {}
        rows = [(keys.get(r.url) or self.feed_key(r.url), r.etag, r.last_modified) for r in results]
        # one statement per 500 feeds, not one per feed: PostgreSQL runs each (see #15)
        with self.engine.transaction():
            for start in range(0, len(rows), _UPDATE_ROWS):
                chunk = rows[start : start + _UPDATE_ROWS]
                values = ", ".join(["(?, ?, ?)"] * len(chunk))
                self.engine.execute(
                    f"""UPDATE feeds SET last_status = 304, last_error = NULL,
                       last_error_kind = NULL, consecutive_failures = 0, last_attempt = ?,
                       last_success = ?, next_attempt = NULL,
                       etag = COALESCE(v.column2, feeds.etag),
                       last_modified = COALESCE(v.column3, feeds.last_modified)
                       FROM (VALUES {values}) AS v WHERE feeds.url = v.column1""",
                    (now, now, *(value for row in chunk for value in row)),
                )
