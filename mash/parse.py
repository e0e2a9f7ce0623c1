"""Turn fetched feed bytes into Post records (pure: bytes in, records out).

feedparser does the parsing but never the HTTP: it gets bytes, not a URL. Every HTML
field goes through ``sanitize_html``; every stored URL is http(s).
"""

from __future__ import annotations

import calendar
import re
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import feedparser

from mash.errors import ParseError
from mash.records import ParsedFeed, Post
from mash.sanitize import html_to_text, sanitize_html
from mash.urls import canonical_url, is_web_url

# A DOCTYPE with an internal subset lets feedparser's fallback parser expand one entity
# without limit (billion laughs); feeds never need it (see #3).
_DOCTYPE = re.compile(rb"<!DOCTYPE[^>\[]*(\[.*?\])?\s*>", re.IGNORECASE | re.DOTALL)
# Characters XML 1.0 forbids (C0 controls except tab, newline, carriage return).
_XML_ILLEGAL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_SUMMARY_LIMIT = 20_000


def parse_feed(content: bytes, url: str, content_type: str = "") -> ParsedFeed:
    """Parse feed bytes fetched from url into a ParsedFeed.

    Raises ParseError (kind not-a-feed or malformed) only when no post can be had;
    a malformed feed with some valid entries keeps them and reports the error.
    """
    if not content.strip():
        raise ParseError(url, "the response is empty, not a feed", "not-a-feed")
    cleaned = _XML_ILLEGAL.sub(b"", _DOCTYPE.sub(b"", content, count=1))
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    parsed: Any = feedparser.parse(
        cleaned, response_headers=headers, sanitize_html=False, resolve_relative_uris=False
    )
    version = parsed.get("version", "")
    if not version:
        if _looks_like_html(cleaned):
            raise ParseError(url, "the URL serves a web page, not a feed", "not-a-feed")
        raise ParseError(url, "not a feed (no RSS or Atom found)", "not-a-feed")
    feed_link = str(parsed.feed.get("link", "")) or url
    posts = tuple(p for p in (_post(e, url, feed_link) for e in parsed.entries) if p is not None)
    error, kind = _bozo(parsed)
    if error and not posts:
        raise ParseError(url, error, kind or "malformed")
    return ParsedFeed(
        url=url,
        title=_plain(parsed.feed.get("title", "")),
        link=feed_link if is_web_url(feed_link) else "",
        version=version,
        posts=posts,
        error=error,
        error_kind=kind,
    )


def _bozo(parsed: Any) -> tuple[str | None, str | None]:
    if not parsed.get("bozo"):
        return None, None
    exc = parsed.get("bozo_exception")
    name = type(exc).__name__
    if name == "CharacterEncodingOverride":
        return None, None  # feedparser recovered by re-decoding; the posts are fine
    if "Encoding" in name:
        return f"wrong or missing character encoding: {exc}", "encoding"
    return f"malformed XML: {exc}", "malformed"


def _looks_like_html(content: bytes) -> bool:
    head = content[:2048].lower()
    return b"<html" in head or b"<!doctype html" in head


def _post(entry: Any, feed_url: str, feed_link: str) -> Post | None:
    link = _entry_link(entry, feed_link)
    title = _plain(entry.get("title", ""))
    if not link or not title:
        return None  # entries without a link or title are not posts (see #3)
    base = link
    content = ""
    for item in entry.get("content", ()) or ():
        if len(item.get("value", "")) > len(content):
            content = item.get("value", "")
    summary = entry.get("summary", "") or ""
    return Post(
        feed_url=feed_url,
        guid=str(entry.get("id") or link)[:2000],
        url=canonical_url(link),
        title=title[:500],
        author=_plain(entry.get("author", ""))[:200],
        published=_date(entry.get("published_parsed")) or _date(entry.get("created_parsed")),
        updated=_date(entry.get("updated_parsed")),
        summary_html=sanitize_html(summary[:_SUMMARY_LIMIT], base),
        content_html=sanitize_html(content, base) if content else "",
        comments=_comments(entry),
        categories=tuple(
            _plain(t.get("term", ""))[:80] for t in entry.get("tags", ()) or () if t.get("term")
        ),
    )


def _entry_link(entry: Any, feed_link: str) -> str:
    candidates = [entry.get("link", "")]
    candidates += [
        ln.get("href", "") for ln in entry.get("links", ()) if ln.get("rel") == "alternate"
    ]
    if entry.get("guidislink") or str(entry.get("id", "")).startswith("http"):
        candidates.append(entry.get("id", ""))
    for raw in candidates:
        if raw:
            absolute = urljoin(feed_link, str(raw).strip())
            if is_web_url(absolute):
                return absolute
    return ""


def _comments(entry: Any) -> int | None:
    values = [entry.get("slash_comments"), entry.get("thr_total")]
    values += [ln.get("thr:count") for ln in entry.get("links", ()) if ln.get("rel") == "replies"]
    for value in values:
        if value is not None and str(value).strip().isdigit():
            return int(str(value).strip())
    return None


def _date(value: time.struct_time | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _plain(text: str) -> str:
    """Return text with any markup removed and whitespace collapsed."""
    if "<" in text or "&" in text:
        text = html_to_text(text)
    return " ".join(str(text).split())
