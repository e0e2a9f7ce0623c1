"""Turn fetched feed bytes into Post records (pure: bytes in, records out).

feedparser does the parsing but never the HTTP: it gets bytes, not a URL. Every HTML
field goes through ``sanitize_html``; every stored URL is http(s).
"""

from __future__ import annotations

import calendar
import re
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from html import unescape
from typing import Any
from urllib.parse import urljoin

import fastfeedparser
import feedparser
from lxml import etree

from mash.errors import ParseError
from mash.extract import feed_article
from mash.records import FetchResult, ParsedFeed, Post
from mash.sanitize import html_to_text, sanitize_html
from mash.store.posts import PostRow, post_rows
from mash.urls import (
    canonical_url,
    is_plain_url,
    is_plain_with_query,
    is_web_url,
    strip_credentials,
)

# A DOCTYPE with an internal subset lets feedparser's fallback parser expand one entity
# without limit (billion laughs); feeds never need it (see #3).
_DOCTYPE_NAME = re.compile(rb"<!doctype", re.IGNORECASE)
_DOCTYPE = re.compile(rb"<!DOCTYPE[^>\[]*(\[.*?\])?\s*>", re.IGNORECASE | re.DOTALL)
# The C0 controls XML 1.0 forbids (all but tab, LF, CR): deleted with bytes.translate,
# a tenth of the cost of a regex over the feed (see #8).
_XML_ILLEGAL = bytes(range(0x09)) + b"\x0b\x0c" + bytes(range(0x0E, 0x20))
_SUMMARY_LIMIT = 20_000
_EXCERPT_LIMIT = 2_000
# a summary's opening is looked for in the content's (see _excerpt)
_OPENING_CHARS, _CONTENT_CHARS = 120, 600
_TAG = re.compile(r"<[^>]*>?")
_XML_ENCODING = re.compile(rb"<\?xml[^>]*encoding\s*=\s*[\"']([A-Za-z0-9._-]+)")
_STRICT = etree.XMLParser(resolve_entities=False, no_network=True, recover=False)
_RSS2 = re.compile(rb"<rss\b[^>]*\bversion\s*=\s*[\"']2\.0", re.IGNORECASE)


@dataclass(frozen=True)
class _Entry:
    """One feed entry in the parser-neutral form both parse paths produce."""

    title: str
    links: tuple[str, ...]
    guid: str
    author: str
    published: datetime | None
    updated: datetime | None
    summary: str
    content: str
    comments: int | None
    tags: tuple[str, ...]


def parse_feed(content: bytes, url: str, content_type: str = "") -> ParsedFeed:
    """Parse feed bytes fetched from url into a ParsedFeed.

    The fast path (fastfeedparser, lxml) handles well-formed RSS and Atom; anything it
    declines goes to feedparser. Raises ParseError (kind not-a-feed, malformed or
    encoding) only when no post can be had; a malformed feed with some valid entries
    keeps them and reports the error.
    """
    if not content.strip():
        raise ParseError(url, "the response is empty, not a feed", "not-a-feed")
    version, title, link, entries, error, kind = read_entries(content, url, content_type)
    feed_link = link if is_web_url(link) else url
    posts = tuple(p for p in (_post(e, url, feed_link) for e in entries) if p is not None)
    if error and not posts:
        raise ParseError(url, error, kind or "malformed")
    return ParsedFeed(
        url=url,
        title=_plain(title),
        link=link if is_web_url(link) else "",
        version=version,
        posts=posts,
        error=error,
        error_kind=kind,
    )


_Read = tuple[str, str, str, list[_Entry], str | None, str | None]


def read_entries(content: bytes, url: str, content_type: str = "") -> _Read:
    """Return (version, title, link, entries, error, kind) as the fast or slow path reads them.

    Every entry, before the rule that a post needs a title and a web link: what
    bench/feed_diff.py compares with feedparser. Raises ParseError as parse_feed does.
    """
    cleaned = _clean_xml(content)
    fast = _parse_fast(cleaned, content_type)
    if fast is not None:
        version, title, link, entries = fast
        if _C1_UTF8.search(cleaned) or (b"&#" in cleaned and _C1_REF.search(cleaned)):
            entries = [_windows_1252(e) for e in entries]
        return version, title, link, entries, None, None
    version, title, link, entries, error, kind = _parse_slow(cleaned, url, content_type)
    return version, title, link, [_windows_1252(e) for e in entries], error, kind


# C1 control characters in text are Windows-1252 read as Latin-1 ("don\x92t"): feedparser
# maps them to what Windows meant (its "demoronize"); the five it leaves undefined go.
_C1 = re.compile("[\x80-\x9f]")
_C1_UTF8 = re.compile(b"\xc2[\x80-\x9f]")  # literal prefixes: quick scans of the bytes
_C1_REF = re.compile(rb"&#(?:1[2-5][0-9]|[xX]0*[89][0-9a-fA-F]);")
_CP1252 = {i: bytes([i]).decode("cp1252", errors="ignore") or None for i in range(0x80, 0xA0)}


def _windows_1252(entry: _Entry) -> _Entry:
    """Return entry with the C1 controls of its text read as Windows-1252 (see #18)."""
    texts = (entry.title, entry.author, entry.summary, entry.content)
    if not any(map(_C1.search, texts)):
        return entry
    title, author, summary, content = (t.translate(_CP1252) for t in texts)
    return replace(entry, title=title, author=author, summary=summary, content=content)


def _clean_xml(content: bytes) -> bytes:
    """Return content without its DOCTYPE (and internal subset) and forbidden characters."""
    if _DOCTYPE_NAME.search(content):
        content = _DOCTYPE.sub(b"", content, count=1)
    return content.translate(None, _XML_ILLEGAL)


def parse_feed_slow(content: bytes, url: str, content_type: str = "") -> ParsedFeed:
    """Parse with feedparser only (the reference the fast path is tested against)."""
    cleaned = _clean_xml(content)
    version, title, link, entries, error, kind = _parse_slow(cleaned, url, content_type)
    feed_link = link if is_web_url(link) else url
    posts = tuple(p for p in (_post(e, url, feed_link) for e in entries) if p is not None)
    return ParsedFeed(
        url, _plain(title), link if is_web_url(link) else "", version, posts, error, kind
    )


_FeedParts = tuple[str, str, str, list[_Entry]]


def _parse_fast(content: bytes, content_type: str = "") -> _FeedParts | None:
    """Parse well-formed UTF-8 RSS 2.0 or Atom 1.0 with fastfeedparser; None declines.

    Declines (for feedparser) anything not well-formed, not UTF-8, or of another format,
    so that recovery and encoding guessing stay feedparser's.
    """
    head = content[:1024].lstrip()
    if not head.startswith(b"<") or not _is_utf8(content, head, content_type):
        return None
    try:
        tree = etree.fromstring(content, parser=_STRICT)
    except etree.XMLSyntaxError:
        return None
    if _RSS2.search(head):
        version = "rss20"
    elif b"<feed" in head and b"http://www.w3.org/2005/Atom" in head:
        version = "atom10"
    else:
        return None  # RSS 0.9x/1.0, RDF, Atom 0.3, JSON feed ...: feedparser knows them
    counts: dict[str, int] = {}
    if b"purl.org/syndication/thread" in content or b"purl.org/rss/1.0/modules/slash" in content:
        counts = _comment_counts(tree, version)
    try:
        parsed: Any = fastfeedparser.parse(content, include_media=False, include_enclosures=False)
        entries = [_fast_entry(e, counts, version) for e in parsed.entries]
    except Exception:  # noqa: BLE001 - any failure of the fast path means: ask feedparser
        return None
    incomplete = any(not (e.title and e.links and (e.summary or e.content)) for e in entries)
    if incomplete and _unread_markup(tree, version):
        return None  # an XHTML title, naked markup, an xhtml:body: feedparser reads them

    if version == "atom10":
        entries = _without_copied_summaries(tree, entries)
    if not entries and (b"<item" in content or b"<entry" in content):
        return None
    feed = parsed.feed
    return version, str(feed.get("title") or ""), str(feed.get("link") or ""), entries


def _fast_entry(entry: Any, comment_counts: dict[str, int], version: str) -> _Entry:
    content = ""
    for item in entry.get("content") or ():
        if len(item.get("value") or "") > len(content):
            content = item.get("value") or ""
    if version == "rss20" and content.strip() == str(entry.get("description") or "").strip():
        # fastfeedparser copies an RSS description into content; feedparser doesn't. (In
        # Atom a plain-text content equals the text it makes the description of: kept, #18)
        content = ""
    links = [entry.get("link") or ""]
    links += [
        ln.get("href") or ""
        for ln in entry.get("links") or ()
        if ln.get("rel") in (None, "alternate")
    ]
    guid = str(entry.get("id") or "")
    return _Entry(
        title=str(entry.get("title") or ""),
        links=tuple(str(x) for x in links if x),
        guid=guid,
        author=str(entry.get("author") or ""),
        published=_iso_date(entry.get("published")),
        updated=_iso_date(entry.get("updated")),
        summary=str(entry.get("description") or ""),
        content=content,
        # fastfeedparser drops thr:total and slash:comments, and reads an RSS <comments>
        # (the comments page's URL) as a count: the counts are read from the tree
        comments=comment_counts.get(guid),
        tags=tuple(str(t.get("term")) for t in entry.get("tags") or () if t.get("term")),
    )


_ATOM = "{http://www.w3.org/2005/Atom}"
_THR = "{http://purl.org/syndication/thread/1.0}"
_SLASH = "{http://purl.org/rss/1.0/modules/slash/}"


# RSS extensions with an entry's text that fastfeedparser does not read
_UNREAD = frozenset({"body", "fullitem"})


def _unread_markup(root: Any, version: str) -> bool:
    """Return whether an entry holds a title or text fastfeedparser reads as empty.

    That is a title or summary (RSS: description) with child elements (Atom's XHTML
    title, RSS's unescaped markup), an xhtml:body or fullitem, or an RSS <link href>
    written the Atom way. Asked only when an entry came out without a title, a link
    or a text, so it costs nothing on usual feeds (see #18).
    """
    if version == "atom10":
        items, texts = root.iter(f"{_ATOM}entry"), {f"{_ATOM}title", f"{_ATOM}summary"}
    else:
        items, texts = root.iter("item"), {"title", "description"}
    for item in items:
        for child in item:
            if not isinstance(child.tag, str):
                continue  # a comment or processing instruction
            if (child.tag in texts and len(child)) or etree.QName(child).localname in _UNREAD:
                return True
            if child.tag == "link" and child.get("href") and not (child.text or "").strip():
                return True
    return False


def _without_copied_summaries(root: Any, entries: list[_Entry]) -> list[_Entry]:
    """Give Atom entries without <summary> an empty summary, as the feedparser path does.

    (fastfeedparser fills it with the content's text.)
    """
    bare = {
        (node.findtext(f"{_ATOM}id") or "").strip()
        for node in root.iter(f"{_ATOM}entry")
        if node.find(f"{_ATOM}summary") is None
    }
    return [replace(e, summary="") if e.guid in bare else e for e in entries]


def _is_utf8(content: bytes, head: bytes, content_type: str) -> bool:
    declared = _XML_ENCODING.search(head)
    encoding = declared.group(1).decode("ascii").lower() if declared else "utf-8"
    header = content_type.lower().partition("charset=")[2].strip(" \"'")
    if encoding not in ("utf-8", "utf8") or header not in ("", "utf-8", "utf8"):
        return False
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _comment_counts(root: Any, version: str) -> dict[str, int]:
    """Return the comment counts fastfeedparser drops, by entry id: Atom thr:total or
    thr:count, RSS slash:comments. (For RSS it reads ``<comments>``, the comments page's
    URL, not a count.)
    """
    counts: dict[str, int] = {}
    if version == "atom10":
        for node in root.iter(f"{_ATOM}entry"):
            total = node.findtext(f"{_THR}total")
            for link in node.iter(f"{_ATOM}link"):
                if total is None and link.get("rel") == "replies":
                    total = link.get(f"{_THR}count")
            key = (node.findtext(f"{_ATOM}id") or "").strip()
            if total and total.strip().isdigit():
                counts[key] = int(total.strip())
    else:
        for node in root.iter("item"):
            total = node.findtext(f"{_SLASH}comments")
            key = (node.findtext("guid") or node.findtext("link") or "").strip()
            if total and total.strip().isdigit():
                counts[key] = int(total.strip())
    return counts


def _iso_date(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _parse_slow(
    content: bytes, url: str, content_type: str
) -> tuple[str, str, str, list[_Entry], str | None, str | None]:
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    parsed: Any = feedparser.parse(
        content, response_headers=headers, sanitize_html=False, resolve_relative_uris=False
    )
    version = parsed.get("version", "")
    if not version:
        if _looks_like_html(content):
            raise ParseError(url, "the URL serves a web page, not a feed", "not-a-feed")
        raise ParseError(url, "not a feed (no RSS or Atom found)", "not-a-feed")
    error, kind = _bozo(parsed)
    entries = [_slow_entry(e) for e in parsed.entries]
    if version.startswith("atom"):  # feedparser copies content into a missing summary
        entries = [replace(e, summary="") if e.summary == e.content else e for e in entries]
    return (
        version,
        str(parsed.feed.get("title", "")),
        str(parsed.feed.get("link", "")),
        entries,
        error,
        kind,
    )


def _slow_entry(entry: Any) -> _Entry:
    content = ""
    for item in entry.get("content", ()) or ():
        if len(item.get("value", "")) > len(content):
            content = item.get("value", "")
    links = [entry.get("link", "")]
    links += [ln.get("href", "") for ln in entry.get("links", ()) if ln.get("rel") == "alternate"]
    if entry.get("guidislink") or str(entry.get("id", "")).startswith("http"):
        links.append(entry.get("id", ""))
    return _Entry(
        title=str(entry.get("title", "")),
        links=tuple(str(x) for x in links if x),
        guid=str(entry.get("id") or ""),
        author=str(entry.get("author", "")),
        # feedparser maps a missing updated_parsed to published_parsed with a warning, and
        # puts RSS 1.0's dc:date in updated_parsed only
        published=_date(entry.get("published_parsed"))
        or _date(entry.get("created_parsed"))
        or _date(dict.get(entry, "updated_parsed")),
        updated=_date(dict.get(entry, "updated_parsed")),
        summary=str(entry.get("summary", "") or ""),
        content=content,
        comments=_comments(entry),
        tags=tuple(str(t.get("term")) for t in entry.get("tags", ()) or () if t.get("term")),
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


def _post(entry: _Entry, feed_url: str, feed_link: str) -> Post | None:
    link = _entry_link(entry, feed_link)
    title = _plain(entry.title)
    if not link or not title:
        return None  # entries without a link or title are not posts (see #3)
    content = sanitize_html(entry.content.strip(), link) if entry.content.strip() else ""
    # The summary serves only where there is no content (then it is the text), so it is
    # not kept beside content: half the sanitising, a tenth less to store (see #8).
    summary = "" if content else sanitize_html(entry.summary.strip()[:_SUMMARY_LIMIT], link)
    excerpt = _excerpt(entry.summary, content, link) if content and entry.summary else ""
    return Post(
        feed_url=feed_url,
        guid=(entry.guid or link)[:2000],
        url=canonical_url(link),
        title=title[:500],
        author=_author_name(_plain(entry.author))[:200],
        published=entry.published,
        updated=entry.updated or entry.published,
        summary_html=summary,
        content_html=content,
        comments=entry.comments,
        categories=tuple(_plain(t)[:80] for t in entry.tags),
        excerpt=excerpt,
    )


# RSS's "me@x.example (Name)", and "Name (me@x.example)", "Name <me@x.example>", "me@x.example"
_ADDRESS = r"[^\s@()<>]+@[^\s()<>]+"
_AUTHOR_ADDRESS = re.compile(
    rf"{_ADDRESS}\s*\((?P<a>[^()]+)\)|(?P<b>[^()<>]+?)\s*[(<]{_ADDRESS}[)>]|{_ADDRESS}"
)


def _author_name(author: str) -> str:
    """Return an author's name without an e-mail address: a newsletter shows no addresses
    (both parse paths alike; feedparser's author keeps it, see #18)."""
    if "@" not in author:
        return author
    found = _AUTHOR_ADDRESS.fullmatch(author)
    return (found["a"] or found["b"] or "").strip() if found else author


def _excerpt(summary: str, content: str, link: str) -> str:
    """Return the plain text of a summary given beside content, unless it is content's opening.

    WordPress puts a hand-written excerpt there, else the post's first 55 words: only
    the former is kept (see #20). Only the summary's first words are looked for, in
    content's first part, with tags cut out roughly: it runs for every entry, so it
    must cost little (see #8); blurb.author_summary checks the whole text later.
    """
    opening = " ".join(_rough_text(summary[:_OPENING_CHARS]).split())
    head = opening[:80].rpartition(" ")[0]  # whole words: an automatic one may cut the last
    if not head or head in " ".join(_rough_text(content[:_CONTENT_CHARS]).split()):
        return ""
    return " ".join(html_to_text(sanitize_html(summary[:_EXCERPT_LIMIT], link)).split())


def _rough_text(html: str) -> str:
    return unescape(_TAG.sub(" ", html)) if "<" in html or "&" in html else html


def _entry_link(entry: _Entry, feed_link: str) -> str:
    candidates = list(entry.links)
    if entry.guid.startswith(("http://", "https://")):
        candidates.append(entry.guid)
    for raw in candidates:
        raw = raw.strip()
        if is_plain_url(raw) or is_plain_with_query(raw):
            return raw
        try:
            absolute = urljoin(feed_link, raw)
        except ValueError:  # "http://[::1/x": this link is no URL; the next may be (#21)
            continue
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


# feedparser's test whether a title is HTML (a closing tag or an entity reference),
# and a tag with attributes or a self-closing one: an <img src=...> is markup
_LOOKS_LIKE_HTML = re.compile(r"</\w+>|&#?\w+;|<\w+(?:\s+[\w:-]+\s*=|[^<>]*/>)")


def _plain(text: str) -> str:
    """Return text with any markup removed and whitespace collapsed.

    Text is read as HTML only when it looks like it (as feedparser judges): a title
    "Why <script> blocks" keeps its words, "<b>Bold</b> &amp; safe" gives "Bold & safe",
    and a script's code is dropped with the script (#18).
    """
    if ("<" in text or "&" in text) and _LOOKS_LIKE_HTML.search(text):
        text = html_to_text(sanitize_html(text))
    return " ".join(str(text).split())


ParseJob = tuple[ParsedFeed | None, list[PostRow], tuple[str, str] | None]


def parse_job(result: FetchResult) -> ParseJob:
    """Parse a fetched feed and take the full text of complete posts (in a worker).

    Returns (feed without its posts, the posts as rows for the store, (error, kind));
    errors are returned, not raised, so that they cross the process boundary intact.
    Rows, not records, because the worker has the spare CPU: they are what the store
    writes, and plain tuples cross the pipe faster. Lives here, not in the pipeline, so
    that a worker imports only parsing and extraction (see #8).
    """
    try:
        base = strip_credentials(result.final_url or result.url)  # links are published (#21)
        feed = parse_feed(result.content, base, result.content_type)
        rows = post_rows([(p, feed_article(p)) for p in feed.posts])
    except ParseError as e:
        return None, [], (e.message, e.kind)
    except Exception as e:  # noqa: BLE001 (a surprise in one feed fails that feed, not the run)
        message = f"parsing failed unexpectedly ({type(e).__name__}: {e}); please report it"
        return None, [], (message, "unexpected")
    return replace(feed, posts=()), rows, None
