"""Feed health: status, error, the feeds.yaml fix, table and JSON, and the backoff rule."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mash.health import (
    FeedHealth,
    FeedHealthInput,
    feed_health,
    health_json,
    next_attempt_after,
    render_health_table,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
OLD = "https://blog.example/feed"
NEW = "https://blog.example/feed.xml"


def failing(kind: str, status: int | None = None, **kwargs: object) -> FeedHealthInput:
    return FeedHealthInput(
        url=OLD,
        last_status=status,
        last_error=f"it broke: {kind}",
        last_error_kind=kind,
        consecutive_failures=3,
        last_success=NOW - timedelta(days=4),
        **kwargs,  # type: ignore[arg-type]
    )


def judge(row: FeedHealthInput) -> FeedHealth:
    return feed_health([row], NOW)[0]


def test_healthy_feed() -> None:
    row = FeedHealthInput(
        url=OLD,
        last_status=200,
        last_success=NOW,
        posts_this_month=7,
        last_post=NOW - timedelta(days=2, hours=3),
    )
    health = judge(row)
    assert (health.status, health.error, health.fix) == ("ok", None, None)
    assert (health.posts, health.http_status, health.days_since_last_post) == (7, 200, 2)


def test_abandoned_blog_is_pointed_out_but_still_ok() -> None:
    row = FeedHealthInput(url=OLD, last_status=304, last_post=NOW - timedelta(days=400))
    health = judge(row)
    assert (health.status, health.error, health.days_since_last_post) == ("ok", None, 400)
    assert health.fix == f"no new post for 400 days: if the blog is abandoned, remove url: {OLD}"
    assert judge(FeedHealthInput(url=OLD, last_post=NOW - timedelta(days=179))).fix is None


def test_moved_feed_says_which_url_to_write() -> None:
    health = judge(FeedHealthInput(url=OLD, last_status=200, moved_to=NEW))
    assert health.status == "moved" and health.error is None
    assert health.fix == f"replace url: {OLD} with url: {NEW}"


def test_gone_feed_is_retired() -> None:
    health = judge(failing("http-410", 410))
    assert (health.status, health.error) == ("retired", "http-410")
    assert health.fix == f"remove the feed with url: {OLD} (410 Gone) or set retired: true"
    assert judge(FeedHealthInput(url=OLD, retired=True)).status == "retired"


def test_html_page_proposes_the_discovered_feed() -> None:
    health = judge(failing("not-a-feed", 200, discovered_url=NEW))
    assert (health.status, health.error) == ("failing", "not-a-feed")
    assert health.fix == (
        f"the URL serves a web page; its feed is {NEW}: replace url: {OLD} with url: {NEW}"
    )


@pytest.mark.parametrize(
    ("kind", "status", "words"),
    [
        ("not-a-feed", 200, "find the blog's RSS or Atom link"),
        ("http-404", 404, "not found (404)"),
        ("http-500", 500, "server error (http-500)"),
        ("http-503", 503, "server error (http-503)"),
        ("http-403-blocked", 403, "bot protection"),
        ("timeout", None, "fetch.deadline"),
        ("too-large", 200, "fetch.max_bytes"),
        ("redirect-loop", None, "redirects in a loop"),
        ("too-many-redirects", None, "more than 10 times"),
        ("connection", None, "check the host name"),
        ("malformed", 200, "XML is broken"),
        ("encoding", 200, "encoding"),
        ("something-new", None, "check url:"),
    ],
)
def test_every_failure_has_a_fix_naming_the_url(kind: str, status: int | None, words: str) -> None:
    health = judge(failing(kind, status))
    assert (health.status, health.error, health.consecutive_failures) == ("failing", kind, 3)
    assert health.fix is not None and words in health.fix
    assert OLD in health.fix or "mash retries later" in health.fix


@pytest.mark.parametrize("kind", ["malformed", "encoding"])
def test_a_feed_read_with_a_warning_is_ok_and_names_the_error(kind: str) -> None:
    row = replace(failing(kind, 200), consecutive_failures=0, last_success=NOW)
    health = judge(row)
    assert (health.status, health.error) == ("ok", kind)  # scripts see it; posts were kept
    assert health.fix is not None and "nothing to change in feeds.yaml" in health.fix


def test_failing_beats_moved() -> None:
    row = failing("http-404", 404, moved_to=NEW)
    assert judge(row).status == "failing"


def test_table_lists_problems_first_with_their_fixes() -> None:
    rows = feed_health(
        [
            FeedHealthInput(url="https://fine.example/feed", last_status=200, posts_this_month=3),
            failing("http-404", 404, name="Blog Example", next_attempt=NOW + timedelta(hours=4)),
        ],
        NOW,
    )
    table = render_health_table(rows)
    lines = table.splitlines()
    header = "status error posts http fails last ok next try last post feed"
    assert lines[0].split() == header.split()
    assert lines[1].startswith("failing  http-404")
    assert "Blog Example <https://blog.example/feed>" in lines[1]
    assert "2026-11-25 16:00" in lines[1]  # when mash tries the failing feed again
    assert lines[2].startswith("ok ")
    assert "To fix, edit feeds.yaml:" in table
    assert f"- {OLD}\n  the feed is not found (404)" in table
    assert lines[-1] == "1 failing, 0 retired, 0 moved, 1 ok"


def test_json_is_a_list_with_the_agreed_keys() -> None:
    rows = feed_health([failing("timeout"), FeedHealthInput(url=NEW, posts_this_month=2)], NOW)
    data = json.loads(health_json(rows))
    assert [{k: d[k] for k in ("url", "status", "error", "posts")} for d in data] == [
        {"url": OLD, "status": "failing", "error": "timeout", "posts": 0},
        {"url": NEW, "status": "ok", "error": None, "posts": 0 + 2},
    ]
    assert data[0]["last_success"] == "2026-11-21T12:00:00+00:00"


def test_backoff_doubles_from_an_hour_to_a_week() -> None:
    hours = [(next_attempt_after(n, NOW) - NOW) / timedelta(hours=1) for n in range(10)]
    assert hours == [0, 1, 2, 4, 8, 16, 32, 64, 128, 168]


@given(st.integers(min_value=-5, max_value=10_000))
def test_backoff_is_bounded_and_never_forever(failures: int) -> None:
    wait = next_attempt_after(failures, NOW) - NOW
    assert timedelta(0) <= wait <= timedelta(days=7)
    assert next_attempt_after(failures + 1, NOW) >= next_attempt_after(failures, NOW)
