"""Read and write OPML subscription lists (the export format of every feed reader).

``read_opml`` takes the exports of Feedly, Inoreader, NetNewsWire, FreshRSS and
the like: nested category outlines, ``xmlUrl`` in any letter case, names in
``title`` or ``text``. ``write_opml`` writes OPML 2.0 that keeps mash's weight
and house flag in the ``mash:`` namespace, so a round trip loses nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit
from xml.sax.saxutils import quoteattr

from lxml import etree

from mash.errors import ConfigError
from mash.records import FeedSpec
from mash.urls import redact_url

MASH_NS = "https://github.com/monthly-mash/mash/opml"


def read_opml(path_or_bytes: str | Path | bytes) -> list[FeedSpec]:
    """Return the feeds of an OPML file or document, in document order, each URL once.

    Outlines without a feed URL (categories, plain links) are walked, not kept;
    ``feed://`` URLs become ``http://``; URLs that are not http(s) are skipped.
    Raises ConfigError naming the file when it is not OPML.
    """
    name = "<opml>" if isinstance(path_or_bytes, bytes) else str(path_or_bytes)
    root = _parse(path_or_bytes, name)
    body = root.find("body")
    if root.tag != "opml" or body is None:
        raise ConfigError("not an OPML file (no <opml><body>)", name)
    feeds: dict[str, FeedSpec] = {}
    for outline in body.iter("outline"):
        spec = _spec(outline)
        if spec is not None and spec.url not in feeds:
            feeds[spec.url] = spec
    return list(feeds.values())


# OPML has no use for a DTD; dropping it (and its entities) stops entity expansion bombs.
_DOCTYPE = re.compile(rb"<!DOCTYPE[^\[>]*(\[.*?\]\s*)?>", re.DOTALL | re.IGNORECASE)


def _parse(source: str | Path | bytes, name: str) -> etree._Element:
    # No entities, no network, no DTD: an OPML file from elsewhere is untrusted input.
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, recover=True, huge_tree=False
    )
    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read OPML file: {e.strerror}", name) from e
    try:
        root = etree.fromstring(_DOCTYPE.sub(b"", data, count=1), parser)
    except etree.XMLSyntaxError as e:
        raise ConfigError(f"not an OPML file: {e}", name) from e
    if root is None:
        raise ConfigError("not an OPML file (empty or not XML)", name)
    return root


def _attr(outline: etree._Element, *names: str) -> str:
    """Return the first non-empty attribute among ``names``, matched ignoring case."""
    attrs = {str(k).lower(): str(v).strip() for k, v in outline.attrib.items()}
    for key in names:
        if attrs.get(key.lower()):
            return attrs[key.lower()]
    return ""


def _spec(outline: etree._Element) -> FeedSpec | None:
    url = _attr(outline, "xmlUrl")
    if not url and _attr(outline, "type").lower() in _FEED_TYPES:
        url = _attr(outline, "url")  # some old exporters put the feed in url=
    if url.startswith("feed://"):
        url = "http://" + url[len("feed://") :]
    elif url.startswith("feed:"):
        url = url[len("feed:") :]
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        return None
    name = _attr(outline, "title", "text") or None
    return FeedSpec(url=url, name=name, weight=_weight(outline), house=_house(outline))


_FEED_TYPES = frozenset({"rss", "atom", "feed"})


def _weight(outline: etree._Element) -> float:
    value = outline.get(f"{{{MASH_NS}}}weight", "")
    try:
        return float(value) if value else 1.0
    except ValueError:
        return 1.0


def _house(outline: etree._Element) -> bool:
    return outline.get(f"{{{MASH_NS}}}house", "").lower() in ("true", "1", "yes")


def write_opml(feeds: Sequence[FeedSpec], title: str) -> str:
    """Return an OPML 2.0 document listing ``feeds``; no dates, so output is reproducible.

    A password in a feed's URL is written as ``***`` (see #21): an export is shared,
    feeds.yaml is not. The caller warns that the export is not a complete copy.
    """
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<opml version="2.0" xmlns:mash="{MASH_NS}">',
        "  <head>",
        f"    <title>{_text(title)}</title>",
        "  </head>",
        "  <body>",
        *(f"    {_outline(feed)}" for feed in feeds),
        "  </body>",
        "</opml>",
    ]
    return "\n".join(lines) + "\n"


def _outline(feed: FeedSpec) -> str:
    url = redact_url(feed.url)
    name = feed.name or url
    attrs = [
        ("type", "rss"),
        ("text", name),
        ("title", name),
        ("xmlUrl", url),
    ]
    if feed.weight != 1.0:
        attrs.append(("mash:weight", repr(feed.weight)))
    if feed.house:
        attrs.append(("mash:house", "true"))
    return "<outline " + " ".join(f"{k}={quoteattr(_clean(v))}" for k, v in attrs) + "/>"


def _text(value: str) -> str:
    return _clean(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(value: str) -> str:
    """Drop the characters XML 1.0 forbids, which some feed titles carry."""
    return _XML_FORBIDDEN.sub("", value)
