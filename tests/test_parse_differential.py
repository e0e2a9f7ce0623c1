"""parse_feed against feedparser on a sample of feedparser's own test feeds (#18).

The rules are tests/feeddiff.py's (also bench/feed_diff.py's, on all ~2100 feeds): no
crash; no entry lost that feedparser keeps with a title and a web link; the same
published and updated dates (UTC); the same titles modulo whitespace and entities; no
mojibake feedparser has not. Every entry is compared, not only those with a link. The
second half holds each defect the comparison found, one test each.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from mash.parse import parse_feed, parse_feed_slow
from mash.records import ParsedFeed
from tests.feeddiff import compare

SAMPLE = Path(__file__).parent / "data" / "feeds" / "feedparser"
FEEDS = sorted(SAMPLE.glob("*.xml"))


def test_the_sample_is_shipped_with_feedparser_licence() -> None:
    assert len(FEEDS) >= 30
    assert "Kurt McKee" in (SAMPLE / "LICENSE").read_text()


@pytest.mark.parametrize("path", FEEDS, ids=[p.stem for p in FEEDS])
def test_mash_reads_what_feedparser_reads(path: Path) -> None:
    diff = compare(path.name, path.read_bytes())
    assert diff.defects == []


def test_the_sample_compares_posts_not_only_entries() -> None:
    diffs = [compare(p.name, p.read_bytes()) for p in FEEDS]
    assert sum(d.matched for d in diffs) >= 6  # posts with a link, matched by URL
    assert sum(d.all_entries for d in diffs) >= 25


# --- the defects the comparison found, each with a feed that has a link ----------------

_ATOM = (
    '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
    "<title>B</title><id>b</id>{}</feed>"
)
_RSS = (
    '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>B</title>'
    "{}</channel></rss>"
)
URL = "https://b.example/feed"


def both(document: str) -> list[ParsedFeed]:
    data = document.encode()
    return [parse_feed(data, URL), parse_feed_slow(data, URL)]


def test_atom_plain_text_content_is_kept() -> None:
    fast, slow = both(
        _ATOM.format(
            '<entry><id>https://b.example/1</id><title>T</title><link href="https://b.example/1"/>'
            '<content type="text">Plain text body</content></entry>'
        )
    )
    assert fast.version == "atom10"
    assert fast.posts[0].content_html == slow.posts[0].content_html == "Plain text body"


def test_an_xhtml_title_keeps_its_post() -> None:
    for feed in both(
        _ATOM.format(
            '<entry><id>i</id><link href="https://b.example/1"/><title type="xhtml">'
            '<div xmlns="http://www.w3.org/1999/xhtml">Example <b>Atom</b></div></title>'
            "<summary>s</summary></entry>"
        )
    ):
        assert [p.title for p in feed.posts] == ["Example Atom"]


def test_naked_markup_and_atom_style_links_in_rss_are_read() -> None:
    for feed in both(
        _RSS.format(
            '<item><title>T</title><link href="https://b.example/1"/>'
            "<description><p>Naked <b>markup</b></p></description></item>"
        )
    ):
        (post,) = feed.posts
        assert post.url == "https://b.example/1"
        assert "Naked" in post.summary_html and "markup" in post.summary_html


@pytest.mark.parametrize(
    ("escaped", "title"),
    [
        (
            "Why &lt;script&gt; blocks &amp; the &lt;div&gt; tag",
            "Why <script> blocks & the <div> tag",
        ),
        ("&lt;b&gt;Bold&lt;/b&gt; &amp;amp; safe", "Bold & safe"),
        ("safe&lt;script&gt;location.href='x'&lt;/script&gt; title", "safe title"),
        ('&lt;img src="x.png" onclick="evil()"&gt; Pictures', "Pictures"),
    ],
)
def test_titles_are_read_as_html_only_when_they_look_like_it(escaped: str, title: str) -> None:
    item = f"<item><title>{escaped}</title><link>https://b.example/1</link><description>d</description></item>"
    for feed in both(_RSS.format(item)):
        assert [p.title for p in feed.posts] == [title]


def test_windows_1252_controls_are_read_as_windows_meant() -> None:
    for text in ("don\u0092t", "don&#146;t"):
        item = f"<item><title>I don\u0092t</title><link>https://b.example/1</link><description>{text}</description></item>"
        for feed in both(_RSS.format(item)):
            assert feed.posts[0].title == "I don\u2019t"
            assert feed.posts[0].summary_html == "don\u2019t"
    latin1 = _RSS.format(
        "<item><title>I don\x92t</title><link>https://b.example/1</link></item>"
    ).replace("utf-8", "iso-8859-1")
    assert parse_feed(latin1.encode("latin-1"), URL).posts[0].title == "I don\u2019t"


@pytest.mark.parametrize(
    "author",
    ["me@b.example (Ann Lee)", "Ann Lee (me@b.example)", "Ann Lee &lt;me@b.example&gt;"],
)
def test_an_author_is_named_without_an_address(author: str) -> None:
    item = f"<item><title>T</title><link>https://b.example/1</link><author>{author}</author></item>"
    for feed in both(_RSS.format(item)):
        assert feed.posts[0].author == "Ann Lee"


def test_atom_author_with_email_is_the_name_on_both_paths() -> None:
    for feed in both(
        _ATOM.format(
            '<entry><id>i</id><title>T</title><link href="https://b.example/1"/>'
            "<updated>2026-10-01T12:00:00.5Z</updated>"
            "<author><name>Ann Lee</name><email>me@b.example</email></author></entry>"
        )
    ):
        assert feed.posts[0].author == "Ann Lee"
        # to the second: feedparser (the slow path) drops the fraction the fast path keeps
        assert feed.posts[0].published
        assert feed.posts[0].published.replace(microsecond=0) == datetime(
            2026, 10, 1, 12, tzinfo=UTC
        )
