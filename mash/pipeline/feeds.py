"""The feed list: health (`mash feeds check`), finding and adding feeds."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from mash.config import add_feeds_to_file
from mash.dates import month_bounds
from mash.errors import (
    FetchError,
    ParseError,
)
from mash.health import FeedHealth, FeedHealthInput, feed_health
from mash.records import (
    Config,
    FeedSpec,
    FeedState,
    FetchSettings,
    ParsedFeed,
)
from mash.store import open_store
from mash.urls import redact_url, url_key

# --- feeds ------------------------------------------------------------------------------


def feeds_health(config: Config, now: datetime | None = None) -> list[FeedHealth]:
    """Return the health of every feed of the config, from what the store recorded."""
    now = now or datetime.now(UTC)
    start, end = month_bounds(f"{now.year:04d}-{now.month:02d}")
    with open_store(config) as store:
        store.sync_feeds(config.feeds)
        rows = {r.url: r for r in store.feed_rows()}
        stats = store.post_stats(start, end)
    inputs = []
    for spec in config.feeds:
        key = redact_url(spec.url)  # the store's key, and all that is ever shown (see #21)
        row = rows[key]
        count, last_post = stats.get(key, (0, None))
        inputs.append(
            FeedHealthInput(
                url=key,
                name=spec.name,
                last_status=row.last_status,
                last_error=row.last_error,
                last_error_kind=row.last_error_kind,
                consecutive_failures=row.consecutive_failures,
                last_success=row.last_success,
                last_attempt=row.last_attempt,
                next_attempt=row.next_attempt,
                retired=row.retired,
                moved_to=row.moved_to,
                posts_this_month=count,
                last_post=last_post,
                discovered_url=row.discovered_url,
            )
        )
    return feed_health(inputs, now)


def find_feed(url: str, settings: FetchSettings) -> tuple[str, ParsedFeed]:
    """Fetch url; when it is a web page, follow its autodiscovery link to the feed."""
    from mash.fetch import discover_feed_urls, fetch_feeds
    from mash.parse import parse_feed

    for _ in range(2):
        (result,) = asyncio.run(fetch_feeds([FeedState(url)], settings))
        if not result.ok:
            raise FetchError(url, result.error or f"HTTP {result.status}", result.error_kind or "")
        try:
            return result.final_url or url, parse_feed(
                result.content, result.final_url or url, result.content_type
            )
        except ParseError as e:
            links = discover_feed_urls(result.content, result.final_url or url)
            if e.kind != "not-a-feed" or not links:
                raise
            url = links[0]
    raise ParseError(url, "the page's feed link leads to another page, not a feed", "not-a-feed")


def add_feeds(config: Config, feeds: Sequence[FeedSpec]) -> tuple[list[FeedSpec], list[str]]:
    """Add feeds not yet in the config file; return those added and those skipped."""
    known = {url_key(f.url) for f in config.feeds}
    added, skipped = [], []
    for feed in feeds:
        if url_key(feed.url) in known:
            skipped.append(feed.url)
            continue
        known.add(url_key(feed.url))
        added.append(feed)
    if added:
        add_feeds_to_file(config.path, added)
    return added, skipped
