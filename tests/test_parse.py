"""parse: bytes in, sanitised Post records out; the fast path agrees with feedparser."""

from __future__ import annotations

import dataclasses
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mash.demo import DEMO
from mash.errors import ParseError
from mash.parse import parse_feed, parse_feed_slow
from mash.records import ParsedFeed

DATA = Path(__file__).parent / "data" / "feeds"


def parse(name: str) -> ParsedFeed:
    return parse_feed((DATA / name).read_bytes(), f"https://feeds.example/{name}")


def test_rss_full_content_is_sanitised_and_canonical() -> None:
    feed = parse("rss2-full.xml")
    assert feed.title == "Queue & Cue" and feed.version == "rss20"
    (post,) = feed.posts  # no link, no title and javascript: link are not posts
    assert post.url == "https://queue.example/2026/10/hold-music/"
    assert post.guid == "https://queue.example/?p=812"
    assert post.author == "Gerald O'Hara"
    assert post.published == datetime(2026, 10, 12, 8, 30, tzinfo=UTC)
    assert post.comments == 12
    assert post.categories == ("Contact centre",)
    for bad in ("<script", "onerror", "javascript:"):
        assert bad not in post.content_html
    assert 'src="https://queue.example/img/x.png"' in post.content_html
    assert post.summary_html == ""  # the content is the text: the summary is not kept


def test_atom_with_thread_counts_and_relative_links() -> None:
    feed = parse("atom-thread.xml")
    first, second = feed.posts
    assert first.title == "Escalations without blame"
    assert first.comments == 5 and second.comments == 3
    assert second.url == "https://frontline.example/second/"
    assert first.published == datetime(2026, 10, 19, 12, 0, tzinfo=UTC)
    assert "<iframe" not in first.content_html and "<h2>A question</h2>" in first.content_html
    assert second.content_html == ""


def test_rss1_goes_through_feedparser() -> None:
    feed = parse("rss1-rdf.xml")
    assert feed.version == "rss10"
    assert [p.title for p in feed.posts] == ["Service recovery in an old CMS"]
    assert feed.posts[0].published == datetime(2026, 10, 3, 10, 0, tzinfo=UTC)


def test_wrong_charset_is_recovered() -> None:
    feed = parse("charset-mismatch.xml")
    assert feed.posts[0].title == "Crème brûlée and complaints"


def test_xml_illegal_characters_are_stripped() -> None:
    feed = parse("illegal-chars.xml")
    assert feed.posts[0].title == "Bell and tab"


def test_malformed_feed_keeps_valid_entries_and_reports() -> None:
    feed = parse("malformed-some-entries.xml")
    assert feed.posts and feed.posts[0].title == "The first post survives"
    assert feed.error and feed.error_kind == "malformed"


def test_doctype_entities_are_not_expanded() -> None:
    feed = parse("billion-laughs.xml")
    assert all(len(p.title) < 1000 for p in feed.posts)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        ((DATA / "not-a-feed.html").read_bytes(), "web page"),
        (b"just some text", "not a feed"),
    ],
)
def test_not_a_feed(body: bytes, words: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_feed(body, "https://x.example/feed")
    assert caught.value.kind == "not-a-feed" and words in str(caught.value)
    assert "https://x.example/feed" in str(caught.value)


# --- the differential test: fast path against feedparser (see #8) ----------------------


def _same(fast: ParsedFeed, slow: ParsedFeed) -> list[str]:
    problems = []
    if len(fast.posts) != len(slow.posts):
        return [f"{fast.url}: {len(fast.posts)} posts against {len(slow.posts)}"]
    for a, b in zip(fast.posts, slow.posts, strict=True):
        for field in dataclasses.fields(a):
            if getattr(a, field.name) != getattr(b, field.name):
                problems.append(f"{a.url}: {field.name} differs")
    return problems


def _demo_feeds() -> Iterator[tuple[str, bytes]]:
    for path in sorted((DEMO / "site").glob("*/*.xml")):
        yield str(path), path.read_bytes().replace(b"{{BASE}}", b"http://127.0.0.1:8000")


def test_fast_path_agrees_with_feedparser_on_samples_and_demo() -> None:
    feeds = [(str(p), p.read_bytes()) for p in sorted(DATA.glob("*.xml"))]
    feeds += list(_demo_feeds())
    assert len(feeds) >= 7
    problems = []
    for name, body in feeds:
        problems += _same(parse_feed(body, name), parse_feed_slow(body, name))
    assert problems == []


def test_fast_path_agrees_with_feedparser_on_the_feed_farm(farm: str) -> None:
    with urllib.request.urlopen(f"{farm}_farm/feeds.txt") as response:
        urls = response.read().decode().split()
    assert len(urls) == 60
    problems = []
    for url in urls:
        with urllib.request.urlopen(url) as response:
            body = response.read()
        problems += _same(parse_feed(body, url), parse_feed_slow(body, url))
    assert problems == []


# --- the author's hand-written excerpt beside the full content (see #20) -----------------

_BODY = "<p>Every support conversation has a first answer. It is the policy answer.</p>" * 8
_RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>
<title>B</title><link>https://b.example/</link>
<item><title>Written</title><link>https://b.example/written</link><guid>w</guid>
<description><![CDATA[Great agents add a <b>second</b> answer.<script>alert(1)</script>
What it sounds like.]]></description>
<content:encoded><![CDATA[{body}]]></content:encoded></item>
<item><title>Automatic</title><link>https://b.example/auto</link><guid>a</guid>
<description><![CDATA[Every support conversation has a first answer. It is the [&#8230;]]]>
</description>
<content:encoded><![CDATA[{body}]]></content:encoded></item>
<item><title>Summary only</title><link>https://b.example/summary</link><guid>s</guid>
<description><![CDATA[A hand-written summary with no content beside it.]]></description></item>
</channel></rss>
"""
_ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>B</title><id>b</id><updated>2026-10-01T00:00:00Z</updated>
<entry><id>w</id><title>Written</title><link href="https://b.example/written"/>
<updated>2026-10-01T00:00:00Z</updated>
<summary type="text">Great agents add a second answer. What it sounds like.</summary>
<content type="html">{body}</content></entry>
</feed>
"""


@pytest.mark.parametrize("parser", [parse_feed, parse_feed_slow])
def test_a_written_excerpt_beside_the_content_is_kept_as_plain_text(parser: Any) -> None:
    rss = _RSS.replace("{body}", _BODY).encode()
    written, automatic, summary_only = parser(rss, "https://b.example/feed").posts
    assert written.excerpt == "Great agents add a second answer. What it sounds like."
    assert automatic.excerpt == ""  # the body's first words, cut: WordPress's automatic one
    assert summary_only.excerpt == "" and "hand-written summary" in summary_only.summary_html
    atom = _ATOM.replace("{body}", _BODY.replace("<", "&lt;")).encode()
    (entry,) = parser(atom, "https://b.example/atom").posts
    assert entry.excerpt == "Great agents add a second answer. What it sounds like."


def test_items_with_ipv6_links_are_kept_or_skipped_one_by_one() -> None:
    """A bracketed IPv6 link is a link like any other; a broken one skips its item only
    (before #21 either failed the whole feed as "unexpected")."""
    links = [
        "http://[::1]/x",
        "http://[2001:db8::1]:8080/p",
        "http://[::1/broken",
        "http://[::1]:99999/bad-port",
        "http://[v1.x]/future",
        "https://blog.example/ok",
    ]
    items = "".join(
        f"<item><title>Post {i}</title><link>{link}</link><description>d</description></item>"
        for i, link in enumerate(links)
    )
    body = (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{items}</channel></rss>'
    )
    feed = parse_feed(body.encode(), "https://blog.example/feed", "application/rss+xml")
    assert [p.url for p in feed.posts] == [
        "http://[::1]/x",
        "http://[2001:db8::1]:8080/p",
        "https://blog.example/ok",
    ]
