"""The Atom 1.0 feed of the issues and the sitemap, built with ElementTree.

Not templates: ElementTree escapes every title, so both files are well-formed whatever
the issues hold. Dates come from the issues, so a rebuild gives the same files.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from xml.etree import ElementTree as ET

import jinja2

from mash.records import Issue, Newsletter
from mash.site.common import date_iso, describe, issue_date, issue_url, site_root
from mash.site.pages import render_feed_content

_ATOM = "http://www.w3.org/2005/Atom"
_SITEMAP = "http://www.sitemaps.org/schemas/sitemap/0.9"


def _atom_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def _atom_entry(feed: ET.Element, issue: Issue, env: jinja2.Environment) -> None:
    url = issue_url(issue.newsletter, issue.month)
    entry = _sub(feed, "entry")
    _sub(entry, "id", url)  # stable: the issue's permanent address
    _sub(entry, "title", issue.title)
    _sub(entry, "link", rel="alternate", type="text/html", href=url)
    _sub(entry, "published", _atom_time(issue_date(issue)))
    _sub(entry, "updated", _atom_time(issue_date(issue)))
    _sub(entry, "summary", describe(issue))
    _sub(entry, "content", render_feed_content(issue, env), type="html")


def atom_feed(
    published: Sequence[Issue],
    everything: Sequence[Issue],
    newsletter: Newsletter,
    env: jinja2.Environment,
) -> str:
    """Return an Atom 1.0 feed with one entry per published issue, full content.

    ``everything`` (drafts included) dates the feed only when nothing is published.
    """
    site = site_root(newsletter)
    feed = ET.Element("feed", {"xmlns": _ATOM, "xml:lang": newsletter.language or "en"})
    _sub(feed, "id", site)
    _sub(feed, "title", newsletter.name)
    _sub(feed, "subtitle", newsletter.welcome)
    _sub(feed, "link", rel="self", type="application/atom+xml", href=site + "feed.xml")
    _sub(feed, "link", rel="alternate", type="text/html", href=site)
    dates = [issue_date(i) for i in published] or [issue_date(i) for i in everything]
    _sub(feed, "updated", _atom_time(max(dates)))
    author = _sub(feed, "author")
    _sub(author, "name", newsletter.editor)
    _sub(feed, "generator", "mash")
    for issue in published:
        _atom_entry(feed, issue, env)
    ET.indent(feed)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, "unicode") + "\n"


def sitemap_xml(published: Sequence[Issue], newsletter: Newsletter) -> str:
    """Return sitemap.xml listing the home, archive, about and every published issue."""
    site = site_root(newsletter)
    latest = date_iso(max(issue_date(i) for i in published)) if published else ""
    urlset = ET.Element("urlset", {"xmlns": _SITEMAP})
    pages = [(site, latest), (site + "archive/", latest), (site + "about/", "")]
    pages += [(issue_url(newsletter, i.month), date_iso(issue_date(i))) for i in published]
    for loc, lastmod in pages:
        url = _sub(urlset, "url")
        _sub(url, "loc", loc)
        if lastmod:
            _sub(url, "lastmod", lastmod)
    ET.indent(urlset)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(urlset, "unicode") + "\n"
