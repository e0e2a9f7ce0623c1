"""Curation rules on real stored posts: dates, page views, caps, memory, explanations."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mash.cli import main as mash
from mash.urls import url_key
from tests.test_pipeline import build, posts_json, set_edition

DATA = Path(__file__).parent / "data" / "analytics"


def demo_db(config: Path) -> sqlite3.Connection:
    return sqlite3.connect(config.parent / "data" / "mash.db", isolation_level=None)


def row_of(rows: list[dict[str, Any]], url: str) -> dict[str, Any]:
    return next(r for r in rows if url_key(r["url"]) == url_key(url))


def good_posts(truth: list[dict[str, Any]], month: str) -> list[dict[str, Any]]:
    return [
        t
        for t in truth
        if t["month"] == month
        and t["on_topic"]
        and not t["house"]
        and not t["duplicate_of"]
        and not t["short"]
    ]


def test_flagged_dates_are_surfaced_not_placed(
    workspace: Path, truth: list[dict[str, Any]]
) -> None:
    future, redated, disagree = good_posts(truth, "2026-10")[:3]
    db = demo_db(workspace)
    db.execute(
        "UPDATE posts SET published = '2026-10-20T10:00:00+00:00', "
        "first_seen = '2026-10-02T10:00:00+00:00' WHERE url_key = ?",
        (url_key(future["url"]),),
    )
    db.execute(
        "UPDATE posts SET first_published = '2026-08-01T10:00:00+00:00' WHERE url_key = ?",
        (url_key(redated["url"]),),
    )
    db.execute(
        "UPDATE posts SET page_published = '2026-10-28T10:00:00+00:00', "
        "published = '2026-10-02T10:00:00+00:00' WHERE url_key = ?",
        (url_key(disagree["url"]),),
    )
    rows = posts_json(workspace, "2026-10")
    assert "future-dated" in row_of(rows, future["url"])["reason"]
    assert "re-dated" in row_of(rows, redated["url"])["reason"]
    assert "dates disagree" in row_of(rows, disagree["url"])["reason"]
    for post in (future, redated, disagree):
        assert row_of(rows, post["url"])["status"] == "out"
    # pinning a flagged post puts it in
    set_edition(workspace, "2026-10", {"theme": "x", "pins": [future["url"]]})
    issue = build(workspace, "2026-10")
    assert url_key(future["url"]) in {url_key(p["url"]) for p in issue["picks"]}


def test_post_without_feed_date_is_placed_by_its_page(
    workspace: Path, truth: list[dict[str, Any]]
) -> None:
    (undated,) = [t for t in truth if not t["feed_has_date"]]
    published = (
        demo_db(workspace)
        .execute(
            "SELECT published, page_published FROM posts WHERE url_key = ?",
            (url_key(undated["url"]),),
        )
        .fetchone()
    )
    assert published[0] is None and published[1].startswith(undated["published"][:7])
    rows = posts_json(workspace, undated["month"])
    assert "flagged" not in row_of(rows, undated["url"])["reason"]


def test_listening_prefers_page_views_then_comments(
    workspace: Path, truth: list[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    house = sorted(
        (t for t in truth if t["house"] and t["month"] == "2026-10"), key=lambda t: t["comments"]
    )
    least = house[0]
    path = "/" + least["url"].split("/", 3)[3]
    export = tmp_path / "plausible.csv"
    export.write_text(f"name,visitors,pageviews\n{path},900,1234\n/unknown/,1,2\n")
    assert (
        mash(["--config", str(workspace), "analytics", "import", str(export), "--month", "2026-10"])
        == 0
    )
    assert "Plausible export: 1 pages matched" in capsys.readouterr().err
    issue = build(workspace, "2026-10")
    assert url_key(issue["listening"]["url"]) == url_key(least["url"])
    assert issue["listening"]["reason"] == "most page views: 1,234, Plausible"


def test_cap_per_blog(workspace: Path) -> None:
    config = yaml.safe_load(workspace.read_text())
    config["newsletter"]["per_blog_cap"] = 1
    workspace.write_text(yaml.safe_dump(config))
    set_edition(workspace, "2026-10", {"theme": "x"})
    issue = build(workspace, "2026-10")
    blogs = [p["blog"] for p in issue["picks"]]
    assert len(blogs) == len(set(blogs))
    rows = posts_json(workspace, "2026-10")
    assert any(r["reason"].startswith("cap per blog (1) reached") for r in rows)


def test_a_post_is_never_featured_twice(workspace: Path) -> None:
    september = build(workspace, "2026-09")
    moved = september["picks"][0]["url"]
    db = demo_db(workspace)  # the post reappears in October (re-dated by its feed)
    db.execute(
        "UPDATE posts SET published = '2026-10-15T10:00:00+00:00', "
        "first_published = '2026-10-15T10:00:00+00:00' WHERE url_key = ?",
        (url_key(moved),),
    )
    rows = posts_json(workspace, "2026-10")
    assert row_of(rows, moved)["reason"] == "already featured in 2026-09"
    assert url_key(moved) not in {url_key(p["url"]) for p in build(workspace, "2026-10")["picks"]}


def test_explanation_matches_decision(workspace: Path) -> None:
    issue = build(workspace, "2026-10")
    rows = posts_json(workspace, "2026-10")
    picked = {url_key(r["url"]) for r in rows if r["status"] == "picked"}
    assert picked == {url_key(p["url"]) for p in issue["picks"]}
    for r in rows:
        assert r["reason"]
        assert set(r["parts"]) == {"relevance", "popularity", "quality", "recency", "weight"}
        if r["status"] == "picked":
            assert not r["reason"].startswith(("off-topic", "promotional", "duplicate"))


def test_same_inputs_give_the_same_issue(workspace: Path) -> None:
    first = build(workspace, "2026-10")
    second = build(workspace, "2026-10")
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)


def _in_process(seed: str, *args: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_fingerprints_are_the_same_in_every_process() -> None:
    # hash() of a str is salted per process: similarities, and so duplicates near the
    # threshold, would change from run to run
    code = (
        "from mash.rank import fingerprint\n"
        "words = ('our agents answered every caller within a minute and the queue '\n"
        "         'never grew past ten people even on the busiest monday of the year ' * 4)\n"
        "print(list(fingerprint(words, sample=2)))"
    )
    first = _in_process("1", "-c", code)
    assert first.strip() != "[]"
    assert _in_process("2", "-c", code) == _in_process("3", "-c", code) == first


def test_same_inputs_give_the_same_ranking_in_every_process(workspace: Path) -> None:
    command = ["-m", "mash.cli", "--config", str(workspace), "posts", "--month", "2026-10"]
    first = _in_process("1", *command, "--json")
    assert json.loads(first) and _in_process("2", *command, "--json") == first


def test_rebuild_after_new_posts_keeps_editor_choices(workspace: Path, demo_base: str) -> None:
    issue = build(workspace, "2026-10")
    edition = yaml.safe_load(
        (workspace.parent / "editions" / "2026-10.md").read_text().split("---")[1]
    )
    db = demo_db(workspace)  # a late post arrives: a copy of an October post, new URL
    db.execute(
        """INSERT INTO posts (feed_url, guid, url, url_key, title, author, published,
               first_seen, text, html, source) SELECT feed_url, 'late', url || 'late/',
               url_key || 'late', 'A late post about customer empathy', author,
               '2026-10-31T10:00:00+00:00', first_seen, text || ' More.', html, source
               FROM posts WHERE url_key = ?""",
        (url_key(issue["picks"][0]["url"]),),
    )
    again = build(workspace, "2026-10")
    picked = {url_key(p["url"]) for p in again["picks"]}
    assert {url_key(u) for u in edition["pins"]} <= picked
    assert not {url_key(u) for u in edition["drops"]} & picked


# --- syndicated copies: the one the copy names, the opening, another month (see #5) ------


def _text_of(db: sqlite3.Connection, url: str) -> tuple[str, str]:
    row = db.execute("SELECT title, text FROM posts WHERE url_key = ?", (url_key(url),)).fetchone()
    return str(row[0]), str(row[1])


def _make_copy(
    workspace: Path, original: dict[str, Any], copy: dict[str, Any], text: str, published: str
) -> None:
    """Give the stored post copy the original's title, the given text and date."""
    db = demo_db(workspace)
    title, _ = _text_of(db, original["url"])
    db.execute(
        "UPDATE posts SET title = ?, text = ?, published = ?, first_published = ? "
        "WHERE url_key = ?",
        (title, text, published, published, url_key(copy["url"])),
    )


def _attributed(workspace: Path, post: dict[str, Any], month: str, says: str) -> str:
    """Return post's text followed by the line a syndicated copy ends with."""
    _, text = _text_of(demo_db(workspace), post["url"])
    blog = row_of(posts_json(workspace, month), post["url"])["blog"]
    return f"{text}\nThis post {says} {blog}."


def test_a_copy_naming_its_original_is_the_copy_whatever_its_date(
    workspace: Path, truth: list[dict[str, Any]]
) -> None:
    original, copy = good_posts(truth, "2026-10")[:2]
    # the copy is dated before the original, and says where it first appeared
    copied = _attributed(workspace, original, "2026-10", "originally appeared on")
    _make_copy(workspace, original, copy, copied, "2026-10-01T08:00:00+00:00")
    rows = posts_json(workspace, "2026-10")
    assert url_key(row_of(rows, copy["url"])["duplicate_of"]) == url_key(original["url"])
    assert row_of(rows, original["url"])["duplicate_of"] is None


def test_a_copy_with_the_same_title_and_opening_is_a_copy(
    workspace: Path, truth: list[dict[str, Any]]
) -> None:
    original, copy = good_posts(truth, "2026-10")[:2]
    db = demo_db(workspace)
    _, text = _text_of(db, original["url"])
    _, other = _text_of(db, copy["url"])
    # edited below its opening: the shingles differ, the title and first 25 words don't
    edited = " ".join(text.split()[:40]) + "\n" + other
    _make_copy(workspace, original, copy, edited, "2026-10-30T08:00:00+00:00")
    row = row_of(posts_json(workspace, "2026-10"), copy["url"])
    assert url_key(row["duplicate_of"]) == url_key(original["url"])
    assert "same title and first 25 words" in row["reason"]


def test_a_copy_of_last_months_post_is_found_in_last_month(
    workspace: Path, truth: list[dict[str, Any]]
) -> None:
    original = good_posts(truth, "2026-09")[0]
    copy = good_posts(truth, "2026-10")[0]
    copied = _attributed(workspace, original, "2026-09", "first appeared on")
    _make_copy(workspace, original, copy, copied, "2026-10-03T08:00:00+00:00")
    row = row_of(posts_json(workspace, "2026-10"), copy["url"])
    assert row["status"] == "out"
    assert url_key(row["duplicate_of"]) == url_key(original["url"])
    assert "original of 2026-09" in row["reason"]
    # the original stays a candidate of its own month
    assert row_of(posts_json(workspace, "2026-09"), original["url"])["duplicate_of"] is None
