"""Feed autodiscovery: the ``<link rel="alternate">`` feeds of an HTML page."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

FEED_TYPES = frozenset(
    {
        "application/rss+xml",
        "application/atom+xml",
        "application/rdf+xml",
        "application/feed+json",
        "application/json+feed",
    }
)


class _LinkCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.links: list[tuple[str, str]] = []  # (href, title)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name.lower(): (value or "").strip() for name, value in attrs}
        if tag == "base" and values.get("href") and self.base is None:
            self.base = values["href"]
        if tag not in ("link", "a"):
            return
        rels = values.get("rel", "").lower().split()
        kind = values.get("type", "").lower().split(";")[0].strip()
        if "alternate" in rels and kind in FEED_TYPES and values.get("href"):
            self.links.append((values["href"], values.get("title", "")))


def discover_feed_urls(html: bytes | str, base_url: str) -> list[str]:
    """Return the feed URLs an HTML page announces, main feeds before comment feeds.

    Only ``<link rel="alternate">`` with an RSS, Atom or JSON Feed type counts;
    no URL is guessed and nothing is fetched. URLs are absolute and http(s) only.
    """
    text = html.decode("utf-8", "replace") if isinstance(html, bytes) else html
    collector = _LinkCollector()
    collector.feed(text)
    collector.close()
    base = urljoin(base_url, collector.base) if collector.base else base_url
    found: list[tuple[bool, str]] = []
    for href, title in collector.links:
        url = urljoin(base, href)
        if urlsplit(url).scheme not in ("http", "https") or any(u == url for _, u in found):
            continue
        is_comments = "comment" in title.lower() or "/comments/" in url.lower()
        found.append((is_comments, url))
    return [url for _, url in sorted(found, key=lambda item: item[0])]
