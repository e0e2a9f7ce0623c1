"""Read an article page's metadata: dates, author, image, canonical link, language, comments,
description."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import lxml.html

from mash.urls import is_web_url


@dataclass(frozen=True)
class PageMeta:
    """What a page says about its article; every field empty when the page is silent."""

    title: str = ""
    author: str = ""
    published: datetime | None = None
    updated: datetime | None = None
    image: str = ""
    canonical: str = ""
    language: str = ""
    comment_count: int | None = None
    description: str = ""  # plain text, whitespace collapsed


_COMMENT_PATTERNS = (
    (re.compile(r"^(?:no|zero)\s+(?:comments?|replies|responses|thoughts)\b", re.I), 0),
    (re.compile(r"^there are no (?:comments|replies|responses)\b", re.I), 0),
    (re.compile(r"^be the first to (?:comment|reply|respond)\b", re.I), 0),
    (re.compile(r"^(?:one|1)\s+(?:comment|reply|response|thought)\b", re.I), 1),
    (re.compile(r"^(\d[\d,.]*)\s+(?:comments?|replies|responses|thoughts)\b", re.I), None),
    (re.compile(r"^(?:comments?|replies|responses)\s*\((\d[\d,]*)\)", re.I), None),
)
# A label this short is a count wherever it stands ("4 replies", "Comments (2)").
_BARE_LABEL = re.compile(
    r"^(?:\d[\d,]*|no|one) (?:comments?|replies|responses)|(?:comments?|replies) \(\d+\)$", re.I
)
_COMMENT_WORDS = re.compile(r"comment|repl|respon|thought", re.I)
_DESCRIPTION_LIMIT = 2_000


def page_metadata(tree: lxml.html.HtmlElement, url: str | None) -> PageMeta:
    """Return the metadata of the page tree; URLs are made absolute against url."""
    metas = _meta_values(tree)
    ld = _json_ld_article(tree)
    return PageMeta(
        title=_first(metas.get("og:title"), _ld_str(ld, "headline"), _title_text(tree)),
        author=_author(metas, ld, tree),
        published=_first_date(
            metas.get("article:published_time"),
            metas.get("datepublished"),
            _ld_str(ld, "datePublished"),
            _time_datetime(tree),
        ),
        updated=_first_date(
            metas.get("article:modified_time"),
            metas.get("og:updated_time"),
            metas.get("datemodified"),
            _ld_str(ld, "dateModified"),
        ),
        image=_absolute(
            _first(metas.get("og:image"), metas.get("twitter:image"), _ld_image(ld)), url
        ),
        canonical=_absolute(_canonical(tree), url),
        language=_language(tree, metas),
        comment_count=comment_count(tree),
        description=_first(
            metas.get("description"),
            metas.get("og:description"),
            metas.get("twitter:description"),
            _ld_str(ld, "description"),
        )[:_DESCRIPTION_LIMIT],
    )


def comment_count(tree: lxml.html.HtmlElement) -> int | None:
    """Return the comment count the page shows ("4 replies", "No comments"), None if none.

    Reads headings, labels inside comment sections and bare count labels, in page
    order, skipping sidebars and widgets (their lists count other posts' comments).
    """
    for element in tree.iter("h1", "h2", "h3", "h4", "h5", "span", "a", "div", "p", "b", "strong"):
        text = element.text_content()
        if len(text) > 120 or not _COMMENT_WORDS.search(text):
            continue
        text = " ".join(text.split())
        count = _parse_comment_count(text)
        if count is None or _in_sidebar(element):
            continue
        heading = isinstance(element.tag, str) and element.tag.startswith("h")
        if heading or _BARE_LABEL.fullmatch(text) or _in_comment_area(element):
            return count
    return None


# Not "widget" alone: Blogger wraps the post itself in class="widget Blog".
_SIDEBAR_WORDS = ("sidebar", "widget_", "widget-area", "recent-comments", "recentcomments")


def _in_sidebar(element: lxml.html.HtmlElement) -> bool:
    for node in element.iterancestors():
        marks = f"{node.get('class', '')} {node.get('id', '')}".lower()
        if node.tag == "aside" or any(word in marks for word in _SIDEBAR_WORDS):
            return True
    return False


def _parse_comment_count(text: str) -> int | None:
    for pattern, fixed in _COMMENT_PATTERNS:
        match = pattern.match(text)
        if match:
            if fixed is not None:
                return fixed
            return int(re.sub(r"\D", "", match.group(1)))
    return None


def _in_comment_area(element: lxml.html.HtmlElement) -> bool:
    for node in (element, *element.iterancestors()):
        marks = f"{node.get('class', '')} {node.get('id', '')}".lower()
        if "comment" in marks or "repl" in marks or "respon" in marks:
            return True
    return False


def _meta_values(tree: lxml.html.HtmlElement) -> dict[str, str]:
    """Map lower-cased meta property/name/itemprop to the first non-empty content."""
    values: dict[str, str] = {}
    for meta in tree.iter("meta"):
        content = (meta.get("content") or "").strip()
        if not content:
            continue
        for key in ("property", "name", "itemprop", "http-equiv"):
            for name in (meta.get(key) or "").lower().split():
                values.setdefault(name, content)
    return values


def _json_ld_article(tree: lxml.html.HtmlElement) -> dict[str, Any]:
    """Return the first JSON-LD object typed as an article or posting ({} when none)."""
    for script in tree.iter("script"):
        if (script.get("type") or "").lower() != "application/ld+json" or not script.text:
            continue
        try:
            data = json.loads(script.text)
        except ValueError:
            continue
        for item in _ld_items(data):
            kind = item.get("@type")
            kinds = kind if isinstance(kind, list) else [kind]
            if any(isinstance(k, str) and ("Article" in k or "Posting" in k) for k in kinds):
                return item
    return {}


def _ld_items(data: object) -> list[dict[str, Any]]:
    if isinstance(data, list):
        return [item for value in data for item in _ld_items(value)]
    if isinstance(data, dict):
        graph = data.get("@graph")
        return [data, *_ld_items(graph)] if graph is not None else [data]
    return []


def _ld_str(ld: dict[str, Any], key: str) -> str:
    value = ld.get(key)
    return value.strip() if isinstance(value, str) else ""


def _ld_image(ld: dict[str, Any]) -> str:
    image = ld.get("image")
    if isinstance(image, list) and image:
        image = image[0]
    if isinstance(image, dict):
        image = image.get("url")
    return image.strip() if isinstance(image, str) else ""


def _ld_author(ld: dict[str, Any]) -> str:
    author = ld.get("author")
    if isinstance(author, list) and author:
        author = author[0]
    if isinstance(author, dict):
        author = author.get("name")
    return author.strip() if isinstance(author, str) else ""


def _author(metas: dict[str, str], ld: dict[str, Any], tree: lxml.html.HtmlElement) -> str:
    article_author = metas.get("article:author", "")
    if is_web_url(article_author):
        article_author = ""
    rel_author = ""
    for link in tree.iter("a"):
        if "author" in (link.get("rel") or "").lower().split():
            rel_author = " ".join(link.text_content().split())
            break
    return _first(_ld_author(ld), metas.get("author"), article_author, rel_author)


def _title_text(tree: lxml.html.HtmlElement) -> str:
    for element in tree.iter("h1", "title"):
        text = " ".join(element.text_content().split())
        if text:
            return text
    return ""


def _time_datetime(tree: lxml.html.HtmlElement) -> str:
    for element in tree.iter("time"):
        value = (element.get("datetime") or "").strip()
        if value:
            return value
    return ""


def _canonical(tree: lxml.html.HtmlElement) -> str:
    for link in tree.iter("link"):
        if "canonical" in (link.get("rel") or "").lower().split():
            return (link.get("href") or "").strip()
    return ""


def _language(tree: lxml.html.HtmlElement, metas: dict[str, str]) -> str:
    root = tree.getroottree().getroot()
    value = _first(root.get("lang"), metas.get("og:locale"), metas.get("content-language"))
    primary = re.split(r"[-_]", value.strip(), maxsplit=1)[0].lower()
    return primary if re.fullmatch(r"[a-z]{2,3}", primary) else ""


def _absolute(value: str, base: str | None) -> str:
    if not value:
        return ""
    try:
        absolute = urljoin(base, value) if base else value
    except ValueError:  # an unclosed IPv6 bracket: no URL (see #21)
        return ""
    return absolute if is_web_url(absolute) else ""


def _first(*values: str | None) -> str:
    for value in values:
        if value and value.strip():
            return " ".join(value.split())
    return ""


def _first_date(*values: str | None) -> datetime | None:
    for value in values:
        parsed = parse_date(value or "")
        if parsed is not None:
            return parsed
    return None


def parse_date(value: str) -> datetime | None:
    """Return the ISO 8601 date value as a UTC datetime (naive ones taken as UTC), or None."""
    value = value.strip()
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
