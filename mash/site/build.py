"""Write the whole site into one folder: pages, archive, about, feed, sitemap, robots, CSS.

Every page is rendered before the first file is written; each file goes through a temp
file and ``os.replace``; nothing is written outside the folder and no path twice.
Nothing here reads issue.json or the clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

import jinja2

from mash.errors import BuildError
from mash.files import write_atomic
from mash.records import Issue, Newsletter
from mash.site.common import (
    describe,
    headline,
    issue_dir,
    month_label,
    paragraphs,
    site_root,
    split_month,
    summarise,
)
from mash.site.feed import atom_feed, sitemap_xml
from mash.site.pages import Page, issue_page, page_for_issue, render_template, stylesheet_text


@dataclass(frozen=True)
class SiteReport:
    """What build_site wrote; paths are absolute, pages in build order."""

    out_dir: Path
    pages: tuple[Path, ...]
    feed: Path
    sitemap: Path
    other: tuple[Path, ...] = field(default=())  # robots.txt, style.css
    held_back: tuple[str, ...] = ()  # months built as drafts: not published (see #20)


# --- writing ----------------------------------------------------------------------------


_HOME_EARLIER = 4  # issues listed under the latest one on the home page


class _Writer:
    """Collect a build's files, then write them all: never outside the folder, never twice.

    Nothing touches the disk until ``flush``, so a page that fails to render leaves
    the site as it was. Each file goes through a temp file and ``os.replace``.
    """

    def __init__(self, out_dir: Path) -> None:
        self.root = out_dir.resolve()
        self.staged: dict[Path, str] = {}

    def add(self, relative: str, text: str) -> Path:
        path = (self.root / relative).resolve()
        if path == self.root or not path.is_relative_to(self.root):
            raise BuildError("refusing to write outside the site folder", str(path))
        if path in self.staged:
            raise BuildError("refusing to write the same file twice in one build", str(path))
        self.staged[path] = text
        return path

    def flush(self) -> None:
        for path, text in self.staged.items():
            write_atomic(path, text)


# --- the site ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    """One issue as the site shows it."""

    issue: Issue
    draft: bool

    @property
    def path(self) -> str:
        return issue_dir(self.issue.month)


def _entries(issues: Sequence[Issue], draft: Issue | None) -> list[_Entry]:
    """Return the issues newest first; the draft replaces a published issue of its month."""
    by_month: dict[str, Issue] = {}
    for issue in issues:
        split_month(issue.month)
        if issue.month in by_month:
            raise BuildError("two issues for one month", issue.month)
        by_month[issue.month] = issue
    entries = [_Entry(issue, False) for issue in by_month.values()]
    if draft is not None:
        split_month(draft.month)
        entries = [e for e in entries if e.issue.month != draft.month] + [_Entry(draft, True)]
    if not entries:
        raise BuildError("no issues to put on the site: build an issue first")
    return sorted(entries, key=lambda e: e.issue.month, reverse=True)


def _write_issue_pages(
    entries: Sequence[_Entry], env: jinja2.Environment, writer: _Writer, site: str
) -> None:
    for index, entry in enumerate(entries):
        issue = entry.issue
        canonical = urljoin(site, entry.path)
        page = page_for_issue(
            issue, canonical=canonical, root="../../", current="issue", draft=entry.draft
        )
        newer = entries[index - 1].issue if index > 0 else None
        older = entries[index + 1].issue if index + 1 < len(entries) else None
        html = issue_page(issue, env, page, draft=entry.draft, newer=newer, older=older)
        writer.add(entry.path + "index.html", html)


def _write_home(
    home: _Entry, earlier: Sequence[Issue], env: jinja2.Environment, w: _Writer
) -> None:
    issue = home.issue
    canonical = site_root(issue.newsletter)
    page = page_for_issue(issue, canonical=canonical, root="./", current="home", draft=home.draft)
    html = issue_page(issue, env, page, draft=home.draft, earlier=earlier[:_HOME_EARLIER])
    w.add("index.html", html)


def _archive_years(entries: Sequence[_Entry]) -> list[tuple[str, list[_Entry]]]:
    years: dict[str, list[_Entry]] = {}
    for entry in entries:
        years.setdefault(entry.issue.month[:4], []).append(entry)
    return list(years.items())


def _write_archive(
    entries: Sequence[_Entry], newsletter: Newsletter, env: jinja2.Environment, w: _Writer
) -> None:
    count = sum(1 for e in entries if not e.draft)
    page = Page(
        title=f"Archive · {newsletter.name}",
        description=f"Every issue of the {newsletter.name} so far: {count} in all, newest first.",
        canonical=urljoin(site_root(newsletter), "archive/"),
        root="../",
        current="archive",
    )
    context = {
        "newsletter": newsletter,
        "years": _archive_years(entries),
        "month_label": month_label,
        "headline": headline,
        "describe": describe,
        "count": count,
    }
    w.add("archive/index.html", render_template(env, "web/archive.html", page, **context))


def _about_heading(newsletter: Newsletter) -> str:
    for section in newsletter.sections:
        if section.key == "about" and section.heading:
            return section.heading.replace("{name}", newsletter.name)
    return f"About the {newsletter.name}"


def _write_about(
    newsletter: Newsletter, latest: _Entry, env: jinja2.Environment, w: _Writer
) -> None:
    heading = _about_heading(newsletter)
    about = paragraphs(newsletter.about)
    page = Page(
        title=f"{heading} · {newsletter.name}" if newsletter.name not in heading else heading,
        description=summarise(newsletter.about) or summarise(newsletter.welcome),
        canonical=urljoin(site_root(newsletter), "about/"),
        root="../",
        current="about",
    )
    context = {
        "newsletter": newsletter,
        "heading": heading,
        "about": about,
        "latest": latest.issue,
        "latest_href": "../" + latest.path,
        "month_label": month_label,
    }
    w.add("about/index.html", render_template(env, "web/about.html", page, **context))


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
    site = site_root(newsletter)
    entries = _entries(issues, draft)
    writer = _Writer(out_dir)
    home = next((e for e in entries if e.draft), entries[0])
    earlier = [e.issue for e in entries if e.issue.month < home.issue.month]
    _write_issue_pages(entries, env, writer, site)
    _write_home(home, earlier, env, writer)
    _write_archive(entries, newsletter, env, writer)
    _write_about(newsletter, home, env, writer)
    pages = tuple(writer.staged)
    published = [e.issue for e in entries if not e.draft]
    everything = [e.issue for e in entries]
    feed = writer.add("feed.xml", atom_feed(published, everything, newsletter, env))
    sitemap = writer.add("sitemap.xml", sitemap_xml(published, newsletter))
    robots = writer.add("robots.txt", f"User-agent: *\nAllow: /\n\nSitemap: {site}sitemap.xml\n")
    css = writer.add("style.css", stylesheet_text(env))
    writer.flush()
    return SiteReport(writer.root, pages, feed, sitemap, (robots, css))
