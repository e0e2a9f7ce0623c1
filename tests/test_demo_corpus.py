"""The bundled demo corpus: demo/build.py is deterministic and its output is consistent."""

from __future__ import annotations

import collections
import filecmp
import html
import importlib.util
import json
import re
import sys
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import feedparser
import pytest
import yaml

DEMO = Path(__file__).resolve().parents[1] / "demo"
BASE = "{{BASE}}"


def _load_build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo_build", DEMO / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("demo_build", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the demo once into a temporary directory; return that directory."""
    out = tmp_path_factory.mktemp("demo")
    rc = _load_build().main(["--out", str(out / "site"), "--truth", str(out / "truth.json")])
    assert rc == 0
    return out


@pytest.fixture(scope="module")
def truth(built: Path) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = json.loads((built / "truth.json").read_text("utf-8"))
    return records


@pytest.fixture(scope="module")
def feeds(built: Path) -> dict[str, Any]:
    """Parse every blog's feed with feedparser; map blog slug to the parsed feed."""
    blogs = yaml.safe_load((DEMO / "blogs.yaml").read_text("utf-8"))["blogs"]
    parsed = {}
    for blog in blogs:
        name = "feed.xml" if blog["feed"] == "rss" else "atom.xml"
        parsed[blog["slug"]] = feedparser.parse((built / "site" / blog["slug"] / name).read_bytes())
    return parsed


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _assert_same_tree(a: Path, b: Path) -> None:
    files = _tree(a)
    assert files == _tree(b)
    _, mismatch, errors = filecmp.cmpfiles(a, b, files, shallow=False)
    assert mismatch == [] and errors == []


def _local_path(url: str) -> str:
    """Map a {{BASE}} URL (tracking query dropped) to its file under the site."""
    assert url.startswith(BASE + "/"), url
    parts = urlsplit(url.removeprefix(BASE))
    path = urlunsplit(("", "", parts.path, "", ""))
    return path.lstrip("/") + ("index.html" if path.endswith("/") else "")


def _page_url(link: str) -> str:
    """Return a feed link without its tracking query."""
    return BASE + urlsplit(link.removeprefix(BASE)).path


def test_build_is_deterministic(built: Path, tmp_path: Path) -> None:
    _load_build().main(["--out", str(tmp_path / "site"), "--truth", str(tmp_path / "truth.json")])
    _assert_same_tree(built / "site", tmp_path / "site")
    assert (built / "truth.json").read_bytes() == (tmp_path / "truth.json").read_bytes()


def test_committed_output_is_up_to_date(built: Path) -> None:
    _assert_same_tree(built / "site", DEMO / "site")
    assert (built / "truth.json").read_bytes() == (DEMO / "truth.json").read_bytes()


def test_every_feed_parses_without_bozo(feeds: dict[str, Any]) -> None:
    for slug, parsed in feeds.items():
        assert not parsed.bozo, f"{slug}: {parsed.get('bozo_exception')}"
        assert parsed.version in ("rss20", "atom10"), slug
        assert parsed.entries, slug


def test_every_linked_article_page_exists(built: Path, feeds: dict[str, Any]) -> None:
    for slug, parsed in feeds.items():
        for entry in parsed.entries:
            page = built / "site" / _local_path(entry.link)
            assert page.is_file(), f"{slug}: {entry.link}"
            assert entry.title in html.unescape(page.read_text("utf-8")), entry.link


def test_feeds_list_newest_first(feeds: dict[str, Any], truth: list[dict[str, Any]]) -> None:
    published = {r["url"]: r["published"] for r in truth}
    for slug, parsed in feeds.items():
        urls = [_page_url(e.link) for e in parsed.entries]
        dates = [datetime.fromisoformat(published[u]) for u in urls]
        assert dates == sorted(dates, reverse=True), slug


def test_truth_covers_every_post(truth: list[dict[str, Any]], feeds: dict[str, Any]) -> None:
    sources = {(p.parent.name, p.stem) for p in (DEMO / "posts").glob("*/*.md")}
    assert {(r["blog"], r["slug"]) for r in truth} == sources
    assert len({r["url"] for r in truth}) == len(truth)
    in_feeds = {_page_url(e.link) for f in feeds.values() for e in f.entries}
    assert in_feeds == {r["url"] for r in truth}


def test_written_summaries_are_where_the_labels_say(
    built: Path, truth: list[dict[str, Any]], feeds: dict[str, Any]
) -> None:
    """A hand-written summary is in the page's description (and the feed's, for an excerpt);
    every other description is the body's first words, cut (see #20)."""
    summaries = {_page_url(e.link): e.get("summary", "") for f in feeds.values() for e in f.entries}
    written = [r for r in truth if r["author_summary"]]
    assert len(written) == 3 and {r["month"] for r in written} == {"2026-10"}
    for record in truth:
        page = (built / "site" / _local_path(record["url"])).read_text("utf-8")
        match = re.search(r'<meta name="description" content="([^"]*)">', page)
        assert match, record["url"]
        description = html.unescape(match.group(1))
        if record["author_summary"]:
            assert description == record["author_summary"]
            assert not record["expected_text"].startswith(description[:40])
        else:
            assert description.endswith("…") and record["expected_text"].startswith(
                description[:40]
            )
    excerpts = [r for r in written if summaries[r["url"]] == r["author_summary"]]
    assert [r["feed_has_full_content"] for r in excerpts] == [True, True]


def test_exactly_one_house_blog(truth: list[dict[str, Any]]) -> None:
    blogs = yaml.safe_load((DEMO / "blogs.yaml").read_text("utf-8"))["blogs"]
    assert sum(bool(b.get("house")) for b in blogs) == 1
    assert len({r["blog"] for r in truth if r["house"]}) == 1


def test_house_posts_have_one_clear_winner_per_month(truth: list[dict[str, Any]]) -> None:
    by_month: dict[str, list[int]] = collections.defaultdict(list)
    for r in truth:
        if r["house"]:
            by_month[r["month"]].append(r["comments"])
    assert sorted(by_month) == ["2026-09", "2026-10"]
    for month, counts in by_month.items():
        assert len(counts) >= 3, month
        assert len(set(counts)) == len(counts), month
        top, second = sorted(counts, reverse=True)[:2]
        assert top >= 2 * second, month


def test_comment_counts_match_feed(truth: list[dict[str, Any]], feeds: dict[str, Any]) -> None:
    comments = {r["url"]: r["comments"] for r in truth}
    for parsed in feeds.values():
        for e in parsed.entries:
            url = _page_url(e.link)
            shown = e.get("slash_comments", e.get("thr_total"))
            assert int(shown) == comments[url], url


def test_special_posts_are_labelled(truth: list[dict[str, Any]]) -> None:
    kinds = collections.Counter(r["kind"] for r in truth)
    for kind in ("off_topic", "promo", "hiring", "event", "syndicated"):
        assert kinds[kind] == 1, kind
    special = [r for r in truth if r["kind"] in ("off_topic", "promo", "hiring", "event")]
    assert len({r["blog"] for r in special}) == 4
    assert not any(r["house"] or r["on_topic"] for r in special)
    assert {r["kind"] for r in truth if r["promotional"]} == {"promo", "event"}
    copy = next(r for r in truth if r["kind"] == "syndicated")
    original = next(r for r in truth if r["url"] == copy["duplicate_of"])
    assert copy["blog"] != original["blog"]
    assert copy["expected_text"].startswith(original["expected_text"])
    assert sum(not r["feed_has_date"] for r in truth) == 1
    assert any("utm_source=" in r["feed_link"] for r in truth)


def test_enough_good_posts_per_month(truth: list[dict[str, Any]]) -> None:
    for month in ("2026-09", "2026-10"):
        good = [
            r
            for r in truth
            if r["month"] == month and r["on_topic"] and not r["duplicate_of"] and not r["short"]
        ]
        assert len(good) >= 12, month
        assert len({r["blog"] for r in good}) >= 5, month


def _edition(month: str) -> tuple[dict[str, Any], str]:
    text = (DEMO / "editions" / f"{month}.md").read_text("utf-8")
    _, head, body = text.split("---\n", 2)
    meta: dict[str, Any] = yaml.safe_load(head)
    return meta, body


def test_september_edition_has_a_theme_only() -> None:
    meta, body = _edition("2026-09")
    assert meta == {"theme": "the Customer's Invisible Rules"}
    assert 250 <= len(body.split()) <= 400


def test_october_edition_points_at_good_posts(truth: list[dict[str, Any]]) -> None:
    meta, body = _edition("2026-10")
    assert set(meta) == {"theme", "pins", "drops", "blurbs"}
    assert 250 <= len(body.split()) <= 400
    good = {r["url"] for r in truth if r["month"] == "2026-10" and r["on_topic"] and not r["short"]}
    urls = [*meta["pins"], *meta["drops"], *meta["blurbs"]]
    assert len(urls) == len(set(urls)) == 3
    assert set(urls) <= good
