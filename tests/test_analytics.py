"""Page views from Plausible, GA4 and Matomo exports, matched to stored posts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from mash.analytics import read_views
from mash.errors import ConfigError
from mash.records import FeedSpec, FetchResult, Post
from mash.store import open_store

DATA = Path(__file__).parent / "data" / "analytics"
HOUSE = "https://customer-side.example/feed/"
OTHER = "https://other.example/feed/"


@pytest.mark.parametrize(
    ("name", "source", "views"),
    [
        ("plausible-pages.csv", "Plausible", 1234),
        ("ga4-pages.csv", "GA4", 1100),
        ("matomo-pages.csv", "Matomo", 950),
    ],
)
def test_formats_are_detected(name: str, source: str, views: int) -> None:
    parsed = read_views((DATA / name).read_text(encoding="utf-8"), name)
    assert parsed.source == source
    refund = [r for r in parsed.rows if "the-refund-that-saved" in r.page]
    assert [r.views for r in refund] == [views]


def test_ga4_repeated_paths_are_summed_and_junk_skipped() -> None:
    parsed = read_views((DATA / "ga4-pages.csv").read_text(encoding="utf-8"), "ga4.csv")
    second = [r.views for r in parsed.rows if r.page == "/2026/10/second-post/"]
    assert second == [500]
    assert any("(not set)" in s and "ga4.csv:13" in s for s in parsed.skipped)


def test_unknown_export_names_file_and_line() -> None:
    with pytest.raises(ConfigError, match=r"unknown.csv:1: unknown analytics export"):
        read_views((DATA / "unknown.csv").read_text(encoding="utf-8"), "unknown.csv")


def _post(feed: str, url: str) -> Post:
    return Post(
        feed_url=feed,
        guid=url,
        url=url,
        title="A post",
        published=datetime(2026, 10, 5, tzinfo=UTC),
    )


@pytest.mark.parametrize("name", ["plausible-pages.csv", "ga4-pages.csv", "matomo-pages.csv"])
def test_views_are_matched_to_posts_preferring_the_house_blog(tmp_path: Path, name: str) -> None:
    now = datetime(2026, 11, 2, tzinfo=UTC)
    feeds = [FeedSpec(HOUSE, "The Customer Side", house=True), FeedSpec(OTHER, "Other")]
    with open_store(tmp_path / "mash.db") as store:
        store.sync_feeds(feeds)
        ok = FetchResult(url=HOUSE, status=200)
        store.save_feed(
            HOUSE,
            ok,
            "House",
            "",
            [
                (
                    _post(HOUSE, "https://customer-side.example/2026/10/the-refund-that-saved/"),
                    None,
                ),
                (_post(HOUSE, "https://customer-side.example/2026/10/second-post/"), None),
            ],
            now,
        )
        store.save_feed(
            OTHER,
            ok,
            "Other",
            "",
            [(_post(OTHER, "https://other.example/2026/10/the-refund-that-saved/"), None)],
            now,
        )
        parsed = read_views((DATA / name).read_text(encoding="utf-8"), name)
        matched, missing = store.save_page_views(
            [(r.page, r.views) for r in parsed.rows], "2026-10", parsed.source, [HOUSE]
        )
        assert matched == 2
        posts = store.posts_between(
            datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC), feeds
        )
    views = {p.url: (p.page_views, p.page_views_source) for p in posts}
    refund = views["https://customer-side.example/2026/10/the-refund-that-saved/"]
    assert refund[0] and refund[0] > 900 and refund[1] == parsed.source
    assert views["https://other.example/2026/10/the-refund-that-saved/"] == (None, "")
