"""Render one page of the site with the Jinja2 templates of ``web/``.

The templates are looked up through the caller's environment (the editor's templates
first), and so is ``web/style.css``. Autoescape must be on; the editorial is the only
HTML inserted as is, and it is cleaned with nh3 first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import unescape
from typing import Any
from urllib.parse import quote

import jinja2
import nh3
from markupsafe import Markup

from mash.errors import RenderError
from mash.records import Issue
from mash.site.common import (
    date_iso,
    date_label,
    describe,
    first_image,
    headline,
    issue_date,
    issue_dir,
    issue_url,
    month_label,
    paragraphs,
    sections_of,
    site_root,
)

_STYLESHEET = "web/style.css"
_FAVICON = "data:image/svg+xml," + quote(
    "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 32 32'>"
    "<rect width='32' height='32' rx='7' fill='#9a3412'/>"
    "<text x='16' y='23' font-family='Georgia,serif' font-size='20' font-weight='700' "
    "text-anchor='middle' fill='#fff'>M</text></svg>",
    safe="",
)


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


def stylesheet_text(env: jinja2.Environment) -> str:
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
class Page:
    """What base.html needs about the page being rendered."""

    title: str
    description: str
    canonical: str
    root: str
    current: str  # "home" | "issue" | "archive" | "about"
    og_type: str = "website"
    image: str = ""
    image_alt: str = ""
    published: str = ""  # article:published_time, ISO 8601
    noindex: bool = False
    css: Markup | None = None  # embedded when the page stands alone
    stylesheet: str = ""  # the CSS file's URL; empty means <root>style.css
    favicon: str = _FAVICON  # inline, so no page asks for a missing /favicon.ico


def page_for_issue(
    issue: Issue, *, canonical: str, root: str, current: str, draft: bool = False, **more: Any
) -> Page:
    """Return the Page of an issue shown at ``canonical`` (its own page or the home page)."""
    image = first_image(issue)
    article = current == "issue"
    return Page(
        title=f"Draft: {issue.title}" if draft else issue.title,
        description=describe(issue),
        canonical=canonical,
        root=root,
        current=current,
        og_type="article" if article else "website",
        image=image,
        image_alt=issue.picks[0].title if image else "",
        published=issue_date(issue).isoformat() if article and not draft else "",
        noindex=draft,
        **more,
    )


def render_template(env: jinja2.Environment, name: str, page: Page, **context: Any) -> str:
    """Render a page template; a template error becomes a RenderError naming file and line."""
    return _render(env, name, page=page, root=page.root, **context)


def _render(env: jinja2.Environment, name: str, **context: Any) -> str:
    _check_autoescape(env, name)
    try:
        return env.get_template(name).render(**context)
    except jinja2.TemplateError as e:
        raise RenderError(_template_line(e, name), f"cannot render: {e}") from e


def _template_line(error: jinja2.TemplateError, fallback: str) -> str:
    """Return "file:line" of the template that failed, from the error or its traceback."""
    name = getattr(error, "filename", None) or getattr(error, "name", None)
    if name is not None:  # a syntax error knows where it is
        line = getattr(error, "lineno", None)
        return f"{name}:{line}" if line else str(name)
    where, traceback = fallback, error.__traceback__
    while traceback is not None:
        # Jinja2 rewrites tracebacks so template frames carry the template's file name;
        # the innermost one is the template that failed.
        filename = traceback.tb_frame.f_code.co_filename
        if filename.endswith((".html", ".xml", ".css", ".txt")):
            where = f"{filename}:{traceback.tb_lineno}"
        traceback = traceback.tb_next
    return where


def _issue_context(issue: Issue, root: str, *, draft: bool = False) -> dict[str, Any]:
    """Return what web/_issue.html needs (the page and the feed share it)."""
    return {
        "issue": issue,
        "newsletter": issue.newsletter,
        "sections": sections_of(issue),
        "editorial": _editorial(issue.editorial_html, issue.theme),
        "month_name": month_label(issue.month),
        "about": paragraphs(issue.newsletter.about),
        "date_label": date_label,
        "date_iso": date_iso,
        "draft": draft,
        "root": root,
    }


def issue_page(
    issue: Issue,
    env: jinja2.Environment,
    page: Page,
    *,
    draft: bool = False,
    newer: Issue | None = None,
    older: Issue | None = None,
    earlier: Sequence[Issue] = (),
) -> str:
    """Render web/issue.html: the issue, then links to its neighbours or earlier issues."""
    context = _issue_context(issue, page.root, draft=draft)
    context.pop("root")
    neighbours = {
        "newer": newer,
        "older": older,
        "earlier": earlier,
        "issue_dir": issue_dir,
        "headline": headline,
        "month_label": month_label,
    }
    return render_template(env, "web/issue.html", page, **context, **neighbours)


def render_issue_page(
    issue: Issue, env: jinja2.Environment, *, root: str = "../", stylesheet: str | None = None
) -> str:
    """Return the web page of one issue.

    ``root`` prefixes every link to the rest of the site: a relative path such as
    ``"../../"``, or the absolute site URL for a page that stands alone. ``stylesheet``
    is the CSS file's URL; when None the CSS is embedded, so the page needs no other file.
    """
    css = None if stylesheet is not None else _inline_css(stylesheet_text(env))
    canonical = issue.web_url or issue_url(issue.newsletter, issue.month)
    page = page_for_issue(
        issue, canonical=canonical, root=root, current="issue", css=css, stylesheet=stylesheet or ""
    )
    return issue_page(issue, env, page)


def render_feed_content(issue: Issue, env: jinja2.Environment) -> str:
    """Return the issue's HTML for the Atom feed: web/_issue.html with absolute links."""
    return _render(env, "web/_issue.html", **_issue_context(issue, site_root(issue.newsletter)))
