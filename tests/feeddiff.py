"""The rules by which mash's parse is compared with feedparser's on real test feeds (#18).

Shared by tests/test_parse_differential.py (on the sample in tests/data/feeds/feedparser/)
and bench/feed_diff.py (on all of feedparser's own test feeds). One feed gives one
``FeedDiff``: what mash did wrong (crash, lost entries, wrong dates, mojibake, other
title) and what it did differently by choice (an entry without a title, a text that
differs after sanitising). feedparser is run as a user runs it, with the same bytes and
the same HTTP headers; an entry counts as kept by feedparser when one of its links is
an http(s) URL, as mash requires.
"""

from __future__ import annotations

import calendar
import re
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import unescape
from typing import Any
from urllib.parse import urljoin

import feedparser

from mash.errors import ParseError
from mash.parse import _author_name, _plain, parse_feed, read_entries
from mash.records import Post
from mash.sanitize import html_to_text, sanitize_html
from mash.urls import canonical_url, is_web_url

# the URL each test feed is said to come from (feedparser's own suite serves them so)
BASE = "http://127.0.0.1:8097/"
_HEADER = re.compile(r"^Header:\s+([^:]+):(.*)$", re.MULTILINE)
_TAG = re.compile(r"<[^>]*>")
# what UTF-8 read as Latin-1/cp1252 looks like, C1 controls (cp1252 read as Latin-1) and
# the replacement character
_MOJIBAKE = re.compile("[\u00c2\u00c3][\u0080-\u00bf]|\u00e2[\u20ac\u0080]|[\u0080-\u009f\ufffd]")


@dataclass
class FeedDiff:
    """What comparing one feed found; every list holds one line per finding."""

    name: str
    fp_entries: int = 0  # entries feedparser keeps with a title and a web link
    matched: int = 0
    crash: str = ""
    rejected: str = ""  # mash's ParseError where feedparser keeps entries
    lost: list[str] = field(default_factory=list)
    dates: list[str] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    authors: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    mojibake: list[str] = field(default_factory=list)
    untitled: int = 0  # feedparser entries with a web link but no title: mash's choice (#3)
    # every entry, before mash's title-and-link rule (most test feeds have no links)
    all_entries: int = 0
    entry_count: str = ""  # mash reads another number of entries than feedparser
    entry_fields: list[str] = field(default_factory=list)  # dates, titles, mojibake
    entry_other: list[str] = field(default_factory=list)  # authors, texts

    @property
    def defects(self) -> list[str]:
        """The findings that are mash's faults (dates, titles, losses, crashes, mojibake)."""
        found = [f"crash: {self.crash}"] if self.crash else []
        found += [f"rejected: {self.rejected}"] if self.rejected else []
        found += [f"entries: {self.entry_count}"] if self.entry_count else []
        return found + self.lost + self.dates + self.titles + self.mojibake + self.entry_fields


def http_headers(data: bytes) -> dict[str, str]:
    """Return the HTTP headers a test feed's comment asks to be served with, lower-cased."""
    text = data.decode("utf-8", errors="ignore") if b"Header:" in data else ""
    headers = {k.strip().lower(): v.strip() for k, v in _HEADER.findall(text)}
    headers.setdefault("content-type", "text/xml")
    return headers


def words(html: str) -> list[str]:
    """Return the words of an HTML fragment's text (tags out, entities decoded)."""
    return unescape(_TAG.sub(" ", html)).split()


def compare(name: str, data: bytes) -> FeedDiff:
    """Parse data with mash and with feedparser and compare entry by entry."""
    diff = FeedDiff(name)
    headers = http_headers(data)
    url = urljoin(BASE, name)
    headers.setdefault("content-location", url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # feedparser's deprecation notes are not ours
        reference: Any = feedparser.parse(data, response_headers=dict(headers))
        kept = [e for e in reference.entries if _fp_link(e, reference, url)]
    diff.untitled = sum(1 for e in kept if not " ".join(words(e.get("title", ""))))
    kept = [e for e in kept if " ".join(words(e.get("title", "")))]
    diff.fp_entries = len(kept)
    try:
        posts = parse_feed(data, url, headers["content-type"]).posts
    except ParseError as e:
        if kept:
            diff.rejected = f"{e.kind}: {e.message} (feedparser keeps {len(kept)})"
        return diff
    except Exception as e:  # noqa: BLE001 - a crash is what this looks for
        diff.crash = f"{type(e).__name__}: {e}"
        return diff
    by_url: dict[str, list[Post]] = defaultdict(list)
    for post in posts:
        by_url[post.url].append(post)
    for entry in kept:
        link = canonical_url(_fp_link(entry, reference, url))
        if not by_url.get(link):
            diff.lost.append(f"lost: {link} {entry.get('title', '')!r}")
            continue
        diff.matched += 1
        _compare_entry(diff, entry, by_url[link].pop(0))
    _compare_all_entries(diff, data, url, headers["content-type"], reference)
    return diff


def _compare_all_entries(
    diff: FeedDiff, data: bytes, url: str, content_type: str, reference: Any
) -> None:
    """Compare every entry as mash reads it (fields as parse._post makes them) by position."""
    entries = read_entries(data, url, content_type)[3]
    diff.all_entries = len(reference.entries)
    if len(entries) != len(reference.entries):
        diff.entry_count = f"mash reads {len(entries)}, feedparser {len(reference.entries)}"
        return
    for i, (mine, entry) in enumerate(zip(entries, reference.entries, strict=True)):
        post = Post(
            feed_url=url,
            guid=mine.guid,
            url=f"{url}#{i}",
            title=_plain(mine.title)[:500],
            author=_author_name(_plain(mine.author))[:200],
            published=mine.published,
            updated=mine.updated or mine.published,
            summary_html="" if mine.content.strip() else sanitize_html(mine.summary.strip()),
            content_html=sanitize_html(mine.content.strip()) if mine.content.strip() else "",
        )
        sub = FeedDiff(diff.name)
        _compare_entry(sub, entry, post)
        diff.entry_fields += sub.dates + sub.mojibake
        if post.title or words(entry.get("title", "")):
            diff.entry_fields += sub.titles
        diff.entry_other += sub.authors + sub.texts


def _fp_link(entry: Any, parsed: Any, url: str) -> str:
    """Return feedparser's first web link of an entry (as mash looks for it), or ''."""
    candidates = [entry.get("link", "")]
    candidates += [
        ln.get("href", "") for ln in entry.get("links", ()) if ln.get("rel") == "alternate"
    ]
    if entry.get("guidislink") or str(entry.get("id", "")).startswith("http"):
        candidates.append(entry.get("id", ""))
    base = parsed.feed.get("link", "") if is_web_url(parsed.feed.get("link", "")) else url
    for raw in candidates:
        if not str(raw).strip():
            continue
        try:
            absolute = urljoin(base, str(raw).strip())
        except ValueError:
            continue
        if is_web_url(absolute):
            return absolute
    return ""


def _utc(value: time.struct_time | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _compare_entry(diff: FeedDiff, entry: Any, post: Post) -> None:
    where = f"{post.url}"
    # mash's published falls back to created, then updated (its choice, see parse._slow_entry)
    updated = _utc(dict.get(entry, "updated_parsed"))
    published = _utc(entry.get("published_parsed")) or _utc(entry.get("created_parsed")) or updated
    # to the second: feedparser drops fractions that mash keeps
    if _second(post.published) != _second(published):
        diff.dates.append(f"published {where}: mash {post.published} feedparser {published}")
    if _second(post.updated) != _second(updated or published):
        diff.dates.append(f"updated {where}: mash {post.updated} feedparser {updated}")
    fp_title = _fp_plain(entry, "title")
    if " ".join(post.title.split()) != fp_title[:500]:
        diff.titles.append(f"title {where}: mash {post.title!r} feedparser {fp_title!r}")
    fp_author = _fp_plain(entry, "author")
    if " ".join(post.author.split()) != fp_author[:200]:
        diff.authors.append(f"author {where}: mash {post.author!r} feedparser {fp_author!r}")
    fp_text = _fp_text(entry)
    mash_text = html_to_text(post.content_html or post.summary_html).split()
    if mash_text != fp_text:
        diff.texts.append(
            f"text {where}: mash {' '.join(mash_text)[:80]!r} feedparser {' '.join(fp_text)[:80]!r}"
        )
    mash_all = post.title + " " + " ".join(mash_text) + " " + post.author
    fp_all = fp_title + " " + " ".join(fp_text) + " " + fp_author
    if len(_MOJIBAKE.findall(mash_all)) > len(_MOJIBAKE.findall(fp_all)):
        diff.mojibake.append(f"mojibake {where}: mash {mash_all[:80]!r} feedparser {fp_all[:80]!r}")


def _second(value: datetime | None) -> datetime | None:
    return value.replace(microsecond=0) if value else None


def _fp_plain(entry: Any, key: str) -> str:
    """Return feedparser's title or author as plain text: literal when it says text/plain."""
    value = str(entry.get(key, "") or "")
    detail = entry.get(f"{key}_detail") or {}
    if key == "author" and detail.get("name"):
        value = str(detail["name"])  # mash publishes the name, never the e-mail address
    if detail.get("type") == "text/plain" or key == "author":
        return " ".join(value.split())
    return " ".join(words(value))


def _fp_text(entry: Any) -> list[str]:
    content = ""
    for item in entry.get("content", ()) or ():
        if len(item.get("value", "")) > len(content):
            content = item.get("value", "")
    return words(content.strip() or str(entry.get("summary", "") or ""))
