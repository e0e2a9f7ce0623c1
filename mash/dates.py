"""Which month a post belongs to, and which dates the editor should look at (pure).

The rule (see #5): a post belongs to the month of its feed's published date; without
one, the date shown on its page; without either, the time mash first saw it. All in
UTC. Posts whose dates cannot be trusted are flagged, never silently placed:

- ``no date``: neither the feed nor the page gives one (first-seen time used);
- ``future-dated``: dated after now, or more than two days after mash first saw it;
- ``re-dated``: the feed's date moved by more than three days since first seen;
- ``dates disagree``: the feed's and the page's dates differ by more than three days.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta

from mash.records import StoredPost

TOLERANCE = timedelta(days=3)


def post_date(post: StoredPost) -> datetime:
    """Return the date that places the post in a month (the rule above)."""
    return post.feed_published or post.page_published or post.first_seen


def month_of(post: StoredPost) -> str:
    """Return YYYY-MM of the post's date."""
    return post_date(post).strftime("%Y-%m")


def date_flags(post: StoredPost, now: datetime) -> tuple[str, ...]:
    """Return the date problems of a post, worded for the editor."""
    flags = []
    feed, page = post.feed_published, post.page_published
    if feed is None and page is None:
        flags.append("no date (placed by first-seen time)")
    when = post_date(post)
    if when > now + timedelta(days=1) or when > post.first_seen + timedelta(days=2):
        flags.append(f"future-dated ({when:%Y-%m-%d}, first seen {post.first_seen:%Y-%m-%d})")
    first = post.first_published
    if feed is not None and first is not None and abs(feed - first) > TOLERANCE:
        flags.append(f"re-dated (was {first:%Y-%m-%d}, now {feed:%Y-%m-%d})")
    if feed is not None and page is not None and abs(feed - page) > TOLERANCE:
        flags.append(f"dates disagree (feed {feed:%Y-%m-%d}, page {page:%Y-%m-%d})")
    return tuple(flags)


def month_name(month: str) -> str:
    """Return "October 2026" for "2026-10"."""
    year, number = month.split("-")
    return f"{calendar.month_name[int(number)]} {year}"


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """Return the UTC start of month and of the month after."""
    year, number = (int(x) for x in month.split("-"))
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return start, end


def last_complete_month(now: datetime) -> str:
    """Return YYYY-MM of the month before now's."""
    year, number = (now.year, now.month - 1) if now.month > 1 else (now.year - 1, 12)
    return f"{year:04d}-{number:02d}"
