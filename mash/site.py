"""Build the static web site of the issues: home, issue pages, archive, about, Atom, sitemap.

The site is plain files with relative links, so any static host serves it, from a
subfolder too. Every file is written through a temp file and ``os.replace``; nothing is
written outside ``out_dir``, and no path is written twice in one build. The Atom feed and
the sitemap are built with ElementTree, not templates, so they are well-formed whatever
the titles hold. This module renders only what it is given: it reads no issue.json.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import unescape
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit
from xml.etree import ElementTree as ET

import jinja2
import nh3
from markupsafe import Markup

from mash.errors import BuildError, RenderError
from mash.records import Issue, Listening, Newsletter, Pick, Section

__all__ = [
    "SiteReport",
    "build_site",
    "issue_from_json",
    "issue_to_json",
    "issue_url",
    "preview_server",
    "render_issue_page",
    "serve_site",
]

_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_ATOM = "http://www.w3.org/2005/Atom"
_SITEMAP = "http://www.sitemaps.org/schemas/sitemap/0.9"
_DESCRIPTION_CHARS = 200
_STYLESHEET = "web/style.css"
_FAVICON = "data:image/svg+xml," + quote(
    "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 32 32'>"
    "<rect width='32' height='32' rx='7' fill='#9a3412'/>"
    "<text x='16' y='23' font-family='Georgia,serif' font-size='20' font-weight='700' "
    "text-anchor='middle' fill='#fff'>M</text></svg>",
    safe="",
)


@dataclass(frozen=True)
class SiteReport:
    """What build_site wrote; paths are absolute, pages in build order."""

    out_dir: Path
    pages: tuple[Path, ...]
    feed: Path
    sitemap: Path
    other: tuple[Path, ...] = field(default=())  # robots.txt, style.css


# --- small pure helpers -----------------------------------------------------------------


def _split_month(month: str) -> tuple[str, str]:
    match = _MONTH_RE.match(month)
    if match is None:
        raise BuildError(f"issue month must be YYYY-MM, not {month!r}")
    return match.group(1), match.group(2)


def month_label(month: str) -> str:
    """Return "August 2013" for "2013-08", in English whatever the locale."""
    year, number = _split_month(month)
    return f"{_MONTHS[int(number) - 1]} {year}"


def _site_root(newsletter: Newsletter) -> str:
    url = newsletter.site_url.strip() or "https://example.org/"
    return url if url.endswith("/") else url + "/"


def issue_url(newsletter: Newsletter, month: str) -> str:
    """Return the absolute URL of an issue's page: ``<site_url>YYYY/MM/``."""
    year, number = _split_month(month)
    return urljoin(_site_root(newsletter), f"{year}/{number}/")


def _issue_dir(month: str) -> str:
    year, number = _split_month(month)
    return f"{year}/{number}/"


def _date_label(value: datetime | None) -> str:
    if value is None:
        return ""
    return f"{value.day} {_MONTHS[value.month - 1]} {value.year}"


def _date_iso(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).date().isoformat()


def _describe(issue: Issue) -> str:
    """Return the first sentences of the editorial, at most about 200 characters."""
    text = " ".join(issue.editorial_text.split()) or " ".join(issue.newsletter.welcome.split())
    out = ""
    for sentence in re.split(r"(?<=[.!?…])\s+", text):
        if out and len(out) + 1 + len(sentence) > _DESCRIPTION_CHARS:
            break
        out = f"{out} {sentence}".strip()
    if len(out) > _DESCRIPTION_CHARS:
        cut = out[: _DESCRIPTION_CHARS - 1].rsplit(" ", 1)[0]
        out = cut.rstrip(",;:") + "…"
    return out


def _image(issue: Issue) -> str:
    """Return the first pick's image when it is an absolute http(s) URL."""
    if not issue.picks:
        return ""
    image = issue.picks[0].image.strip()
    return image if urlsplit(image).scheme in ("http", "https") else ""


def _sections(issue: Issue) -> dict[str, Section]:
    sections = issue.sections or issue.newsletter.sections
    return {section.key: section for section in sections}


def _issue_date(issue: Issue) -> datetime:
    """Return when an issue was last touched: its newest post, else the month's first day.

    Derived from the issue alone, so the feed is the same on every rebuild.
    """
    year, number = _split_month(issue.month)
    dates = [pick.published for pick in issue.picks if pick.published is not None]
    if issue.listening is not None and issue.listening.published is not None:
        dates.append(issue.listening.published)
    start = datetime(int(year), int(number), 1, tzinfo=UTC)
    return max([start, *(d.astimezone(UTC) for d in dates)])


def _paragraphs(text: str) -> list[str]:
    return [" ".join(block.split()) for block in re.split(r"\n\s*\n", text) if block.strip()]


# --- rendering ------------------------------------------------------------------------


def _check_autoescape(env: jinja2.Environment, name: str) -> None:
    escape = env.autoescape(name) if callable(env.autoescape) else env.autoescape
    if not escape:
        raise RenderError(name, "the Jinja2 environment must autoescape web templates")


_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})
_HEADING_RE = re.compile(r"<(/?)h([1-6])\b", re.IGNORECASE)
_LEADING_HEADING_RE = re.compile(r"^\s*<h[1-6][^>]*>(.*?)</h[1-6]>\s*", re.IGNORECASE | re.DOTALL)


def _editorial(html: str, theme: str) -> Markup:
    """Return the editorial ready to embed under its h2.

    Cleaned again (issue.json is a file on disk), a leading heading that repeats the
    theme dropped (the section heading already names it), and headings shifted so the
    first level is h3, so the page keeps one h1 and its heading order.
    """
    clean = nh3.clean(html)
    lead = _LEADING_HEADING_RE.match(clean)
    if lead and _plain(lead.group(1)).casefold() == _plain(theme).casefold():
        clean = clean[lead.end() :]
    levels = [int(m.group(2)) for m in _HEADING_RE.finditer(clean)]
    shift = 3 - min(levels, default=3)
    demoted = _HEADING_RE.sub(lambda m: f"<{m.group(1)}h{min(6, int(m.group(2)) + shift)}", clean)
    return Markup(demoted)


def _plain(html: str) -> str:
    text = unescape(re.sub(r"<[^>]+>", " ", html)).translate(_QUOTES)
    return " ".join(text.split())


def _stylesheet_text(env: jinja2.Environment) -> str:
    """Return the CSS, looked up like a template so an editor can override it."""
    if env.loader is None:
        raise RenderError(_STYLESHEET, "the Jinja2 environment has no template loader")
    try:
        source, _, _ = env.loader.get_source(env, _STYLESHEET)
    except jinja2.TemplateNotFound as e:
        raise RenderError(_STYLESHEET, "stylesheet not found") from e
    return source


def _inline_css(css: str) -> Markup:
    if "</" in css:
        raise RenderError(_STYLESHEET, "the stylesheet must not contain '</'")
    return Markup(css)


@dataclass(frozen=True)
class _Page:
    """What base.html needs about the page being rendered."""

    title: str
    description: str
    canonical: str
    root: str
    current: str  # "home" | "issue" | "archive" | "about"
    og_type: str = "website"
    image: str = ""
    noindex: bool = False
    css: Markup | None = None  # embedded when the page stands alone
    favicon: str = _FAVICON  # inline, so no page asks for a missing /favicon.ico


def _render(env: jinja2.Environment, name: str, page: _Page, **context: Any) -> str:
    _check_autoescape(env, name)
    try:
        template = env.get_template(name)
        return template.render(page=page, root=page.root, **context)
    except jinja2.TemplateError as e:
        where = getattr(e, "name", None) or name
        line = getattr(e, "lineno", None)
        raise RenderError(f"{where}:{line}" if line else where, f"cannot render: {e}") from e


def _issue_context(issue: Issue, root: str, *, draft: bool = False) -> dict[str, Any]:
    """Return what web/_issue.html needs (the page and the feed share it)."""
    return {
        "issue": issue,
        "newsletter": issue.newsletter,
        "sections": _sections(issue),
        "editorial": _editorial(issue.editorial_html, issue.theme),
        "month_label": month_label(issue.month),
        "about": _paragraphs(issue.newsletter.about),
        "date_label": _date_label,
        "date_iso": _date_iso,
        "draft": draft,
        "root": root,
    }


def _issue_page(
    issue: Issue,
    env: jinja2.Environment,
    page: _Page,
    *,
    draft: bool = False,
    newer: Issue | None = None,
    older: Issue | None = None,
) -> str:
    context = _issue_context(issue, page.root, draft=draft)
    context.pop("root")
    neighbours = {"newer": newer, "older": older, "issue_dir": _issue_dir}
    return _render(env, "web/issue.html", page, **context, **neighbours)


def render_issue_page(
    issue: Issue, env: jinja2.Environment, *, root: str = "../", stylesheet: str | None = None
) -> str:
    """Return the web page of one issue.

    ``root`` prefixes every link to the rest of the site: a relative path such as
    ``"../../"``, or the absolute site URL for a page that stands alone. ``stylesheet``
    is the CSS file's URL; when None the CSS is embedded, so the page needs no other file.
    """
    css = None if stylesheet is not None else _inline_css(_stylesheet_text(env))
    page = _Page(
        title=issue.title,
        description=_describe(issue),
        canonical=issue.web_url or issue_url(issue.newsletter, issue.month),
        root=root,
        current="issue",
        og_type="article",
        image=_image(issue),
        css=css,
    )
    return _issue_page(issue, env, page)


def _render_feed_content(issue: Issue, env: jinja2.Environment) -> str:
    context = _issue_context(issue, _site_root(issue.newsletter))
    _check_autoescape(env, "web/_issue.html")
    return env.get_template("web/_issue.html").render(**context)


# --- writing ----------------------------------------------------------------------------


class _Writer:
    """Write files below one folder: temp file + os.replace, never outside, never twice."""

    def __init__(self, out_dir: Path) -> None:
        self.root = out_dir.resolve()
        self.written: list[Path] = []

    def target(self, relative: str) -> Path:
        path = (self.root / relative).resolve()
        if path == self.root or not path.is_relative_to(self.root):
            raise BuildError("refusing to write outside the site folder", str(path))
        if path in self.written:
            raise BuildError("refusing to write the same file twice in one build", str(path))
        return path

    def write(self, relative: str, text: str) -> Path:
        path = self.target(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.written.append(path)
        return path


# --- the site ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    """One issue as the site shows it."""

    issue: Issue
    draft: bool

    @property
    def path(self) -> str:
        return _issue_dir(self.issue.month)


def _entries(issues: Sequence[Issue], draft: Issue | None) -> list[_Entry]:
    """Return the issues newest first; the draft replaces a published issue of its month."""
    by_month: dict[str, Issue] = {}
    for issue in issues:
        _split_month(issue.month)
        if issue.month in by_month:
            raise BuildError("two issues for one month", issue.month)
        by_month[issue.month] = issue
    entries = [_Entry(issue, False) for issue in by_month.values()]
    if draft is not None:
        _split_month(draft.month)
        entries = [e for e in entries if e.issue.month != draft.month] + [_Entry(draft, True)]
    if not entries:
        raise BuildError("no issues to put on the site: build an issue first")
    return sorted(entries, key=lambda e: e.issue.month, reverse=True)


def _write_issue_pages(
    entries: Sequence[_Entry], env: jinja2.Environment, writer: _Writer, site: str
) -> None:
    for index, entry in enumerate(entries):
        issue = entry.issue
        page = _Page(
            title=f"Draft: {issue.title}" if entry.draft else issue.title,
            description=_describe(issue),
            canonical=urljoin(site, entry.path),
            root="../../",
            current="issue",
            og_type="article",
            image=_image(issue),
            noindex=entry.draft,
        )
        newer = entries[index - 1].issue if index > 0 else None
        older = entries[index + 1].issue if index + 1 < len(entries) else None
        html = _issue_page(issue, env, page, draft=entry.draft, newer=newer, older=older)
        writer.write(entry.path + "index.html", html)


def _write_home(home: _Entry, older: Issue | None, env: jinja2.Environment, w: _Writer) -> None:
    issue = home.issue
    page = _Page(
        title=f"Draft: {issue.title}" if home.draft else issue.title,
        description=_describe(issue),
        canonical=_site_root(issue.newsletter),
        root="./",
        current="home",
        image=_image(issue),
        noindex=home.draft,
    )
    w.write("index.html", _issue_page(issue, env, page, draft=home.draft, older=older))


def _archive_years(entries: Sequence[_Entry]) -> list[tuple[str, list[_Entry]]]:
    years: dict[str, list[_Entry]] = {}
    for entry in entries:
        years.setdefault(entry.issue.month[:4], []).append(entry)
    return list(years.items())


def _write_archive(
    entries: Sequence[_Entry], newsletter: Newsletter, env: jinja2.Environment, w: _Writer
) -> None:
    count = sum(1 for e in entries if not e.draft)
    page = _Page(
        title=f"Archive · {newsletter.name}",
        description=f"Every issue of the {newsletter.name} so far: {count} in all, newest first.",
        canonical=urljoin(_site_root(newsletter), "archive/"),
        root="../",
        current="archive",
    )
    context = {
        "newsletter": newsletter,
        "years": _archive_years(entries),
        "month_label": month_label,
        "count": count,
    }
    w.write("archive/index.html", _render(env, "web/archive.html", page, **context))


def _about_heading(newsletter: Newsletter) -> str:
    for section in newsletter.sections:
        if section.key == "about" and section.heading:
            return section.heading.replace("{name}", newsletter.name)
    return f"About the {newsletter.name}"


def _write_about(
    newsletter: Newsletter, latest: _Entry, env: jinja2.Environment, w: _Writer
) -> None:
    heading = _about_heading(newsletter)
    paragraphs = _paragraphs(newsletter.about)
    page = _Page(
        title=f"{heading} · {newsletter.name}" if newsletter.name not in heading else heading,
        description=paragraphs[0][:_DESCRIPTION_CHARS] if paragraphs else newsletter.welcome,
        canonical=urljoin(_site_root(newsletter), "about/"),
        root="../",
        current="about",
    )
    context = {
        "newsletter": newsletter,
        "heading": heading,
        "about": paragraphs,
        "latest": latest.issue,
        "latest_href": "../" + latest.path,
        "month_label": month_label,
    }
    w.write("about/index.html", _render(env, "web/about.html", page, **context))


def build_site(
    issues: Sequence[Issue],
    out_dir: Path,
    env: jinja2.Environment,
    newsletter: Newsletter,
    *,
    draft: Issue | None = None,
) -> SiteReport:
    """Write the whole static site into out_dir and return what was written.

    The home page is the newest issue (the draft, when given: marked as such, kept out
    of the feed and the sitemap, and not indexed). Files already in out_dir that this
    build does not write are left alone.
    """
    entries = _entries(issues, draft)
    writer = _Writer(out_dir)
    site = _site_root(newsletter)
    home = next((e for e in entries if e.draft), entries[0])
    older = next((e.issue for e in entries if e.issue.month < home.issue.month), None)
    _write_issue_pages(entries, env, writer, site)
    _write_home(home, older, env, writer)
    _write_archive(entries, newsletter, env, writer)
    _write_about(newsletter, home, env, writer)
    pages = tuple(writer.written)
    published = [e.issue for e in entries if not e.draft]
    feed = writer.write("feed.xml", _atom_feed(published, entries, newsletter, env))
    sitemap = writer.write("sitemap.xml", _sitemap(published, newsletter))
    robots = writer.write("robots.txt", f"User-agent: *\nAllow: /\n\nSitemap: {site}sitemap.xml\n")
    css = writer.write("style.css", _stylesheet_text(env))
    return SiteReport(writer.root, pages, feed, sitemap, (robots, css))


# --- Atom feed and sitemap ---------------------------------------------------------------


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
    _sub(entry, "published", _atom_time(_issue_date(issue)))
    _sub(entry, "updated", _atom_time(_issue_date(issue)))
    _sub(entry, "summary", _describe(issue))
    _sub(entry, "content", _render_feed_content(issue, env), type="html")


def _atom_feed(
    published: Sequence[Issue],
    entries: Sequence[_Entry],
    newsletter: Newsletter,
    env: jinja2.Environment,
) -> str:
    """Return an Atom 1.0 feed with one entry per published issue, full content."""
    site = _site_root(newsletter)
    feed = ET.Element("feed", {"xmlns": _ATOM, "xml:lang": newsletter.language or "en"})
    _sub(feed, "id", site)
    _sub(feed, "title", newsletter.name)
    _sub(feed, "subtitle", newsletter.welcome)
    _sub(feed, "link", rel="self", type="application/atom+xml", href=site + "feed.xml")
    _sub(feed, "link", rel="alternate", type="text/html", href=site)
    dates = [_issue_date(i) for i in published] or [_issue_date(e.issue) for e in entries]
    _sub(feed, "updated", _atom_time(max(dates)))
    author = _sub(feed, "author")
    _sub(author, "name", newsletter.editor)
    _sub(feed, "generator", "mash")
    for issue in published:
        _atom_entry(feed, issue, env)
    ET.indent(feed)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, "unicode") + "\n"


def _sitemap(published: Sequence[Issue], newsletter: Newsletter) -> str:
    """Return sitemap.xml listing the home, archive, about and every published issue."""
    site = _site_root(newsletter)
    latest = _date_iso(max(_issue_date(i) for i in published)) if published else ""
    urlset = ET.Element("urlset", {"xmlns": _SITEMAP})
    pages = [(site, latest), (site + "archive/", latest), (site + "about/", "")]
    pages += [(issue_url(newsletter, i.month), _date_iso(_issue_date(i))) for i in published]
    for loc, lastmod in pages:
        url = _sub(urlset, "url")
        _sub(url, "loc", loc)
        if lastmod:
            _sub(url, "lastmod", lastmod)
    ET.indent(urlset)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(urlset, "unicode") + "\n"


# --- issue.json -------------------------------------------------------------------------


def _time_to_json(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _time_from_json(value: Any, where: str) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError as e:
        raise BuildError(f"{where} is not an ISO 8601 date", str(value)) from e
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _pick_to_json(pick: Pick) -> dict[str, Any]:
    return {
        "url": pick.url,
        "title": pick.title,
        "blog": pick.blog,
        "author": pick.author,
        "published": _time_to_json(pick.published),
        "blurb": pick.blurb,
        "score": pick.score,
        "image": pick.image,
    }


def _listening_to_json(post: Listening | None) -> dict[str, Any] | None:
    if post is None:
        return None
    return {
        "url": post.url,
        "title": post.title,
        "blog": post.blog,
        "author": post.author,
        "published": _time_to_json(post.published),
        "blurb": post.blurb,
        "reason": post.reason,
    }


def issue_to_json(issue: Issue) -> dict[str, Any]:
    """Return the issue as issue.json holds it (without the newsletter settings)."""
    return {
        "month": issue.month,
        "volume": issue.volume,
        "title": issue.title,
        "theme": issue.theme,
        "editorial_html": issue.editorial_html,
        "editorial_text": issue.editorial_text,
        "web_url": issue.web_url,
        "picks": [_pick_to_json(pick) for pick in issue.picks],
        "listening": _listening_to_json(issue.listening),
        "sections": [
            {"key": s.key, "heading": s.heading, "tagline": s.tagline} for s in issue.sections
        ],
    }


class _Fields:
    """A JSON object being read, so each failure names the field that is wrong."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, Mapping):
            raise BuildError(f"{where} must be a JSON object")
        self.data = data
        self.where = where

    def get(self, key: str, kind: type[Any], default: Any = ...) -> Any:
        if key not in self.data:
            if default is ...:
                raise BuildError(f"{self.where} has no {key!r}")
            return default
        value = self.data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise BuildError(f"{self.where}.{key} must be {kind.__name__}", repr(value)[:80])
        return value

    def items(self, key: str) -> Iterator[_Fields]:
        for index, item in enumerate(self.get(key, list, [])):
            yield _Fields(item, f"{self.where}.{key}[{index}]")


def _pick_from_json(f: _Fields) -> Pick:
    return Pick(
        url=f.get("url", str),
        title=f.get("title", str),
        blog=f.get("blog", str, ""),
        author=f.get("author", str, ""),
        published=_time_from_json(f.data.get("published"), f"{f.where}.published"),
        blurb=f.get("blurb", str, ""),
        score=f.get("score", float, 0.0),
        image=f.get("image", str, ""),
    )


def _listening_from_json(data: Any, where: str) -> Listening | None:
    if data is None:
        return None
    f = _Fields(data, where)
    return Listening(
        url=f.get("url", str),
        title=f.get("title", str),
        blog=f.get("blog", str, ""),
        author=f.get("author", str, ""),
        published=_time_from_json(f.data.get("published"), f"{where}.published"),
        blurb=f.get("blurb", str, ""),
        reason=f.get("reason", str, ""),
    )


def issue_from_json(
    data: dict[str, Any], newsletter: Newsletter, *, source: str = "issue.json"
) -> Issue:
    """Rebuild an Issue from issue.json; a BuildError names the field (and ``source``)."""
    f = _Fields(data, source)
    month = f.get("month", str)
    _split_month(month)
    sections = tuple(
        Section(s.get("key", str), s.get("heading", str, ""), s.get("tagline", str, ""))
        for s in f.items("sections")
    )
    return Issue(
        newsletter=newsletter,
        month=month,
        volume=f.get("volume", int),
        title=f.get("title", str),
        theme=f.get("theme", str, ""),
        editorial_html=f.get("editorial_html", str, ""),
        editorial_text=f.get("editorial_text", str, ""),
        picks=tuple(_pick_from_json(p) for p in f.items("picks")),
        listening=_listening_from_json(f.data.get("listening"), f"{source}.listening"),
        sections=sections,
        web_url=f.get("web_url", str, ""),
    )


# --- preview server ---------------------------------------------------------------------


def preview_server(out_dir: Path, port: int = 8000) -> ThreadingHTTPServer:
    """Return an HTTP server for out_dir bound to 127.0.0.1 (port 0 picks a free one).

    Folders are served by their index.html, as static hosts do. The caller runs
    ``serve_forever`` and closes it.
    """
    handler = functools.partial(_QuietHandler, directory=str(out_dir.resolve()))
    return ThreadingHTTPServer(("127.0.0.1", port), handler)


class _QuietHandler(SimpleHTTPRequestHandler):
    """Serve files without logging every request to stderr."""

    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".xml": "application/xml"}

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_site(out_dir: Path, port: int = 8000) -> None:
    """Serve out_dir on http://127.0.0.1:port/ until interrupted (Ctrl-C)."""
    with preview_server(out_dir, port) as server:
        bound = server.server_address[1]
        print(f"Previewing {out_dir} at http://127.0.0.1:{bound}/ (Ctrl-C to stop)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
