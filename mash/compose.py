"""Compose an issue: the ranking plus the editor's edition becomes an Issue (pure).

Also reads and writes ``editions/YYYY-MM.md``: YAML front matter (theme, pins, drops,
order, blurbs, listening pick, shortlist) then the editorial in Markdown.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import markdown
import yaml

from mash.blurb import EDITOR, QUOTE
from mash.errors import ConfigError
from mash.records import (
    Edition,
    Issue,
    Listening,
    Newsletter,
    Pick,
    Ranking,
    ScoredPost,
    Section,
)
from mash.sanitize import html_to_text, sanitize_html
from mash.urls import url_key

_FRONT = re.compile(r"\A---\s*\n(.*?)\n---\s*(?:\n|\Z)", re.DOTALL)
_EDITION_KEYS = {
    "theme",
    "pins",
    "drops",
    "order",
    "blurbs",
    "listening",
    "listening_blurb",
    "shortlist",
    "title",
}


def month_name(month: str) -> str:
    """Return "October 2026" for "2026-10"."""
    year, number = month.split("-")
    return f"{calendar.month_name[int(number)]} {year}"


def parse_edition(text: str, month: str, path: Path | None = None) -> Edition:
    """Parse an edition file's text; raise ConfigError naming file and line."""
    where = str(path) if path else f"edition {month}"
    meta: dict[str, Any] = {}
    body = text
    found = _FRONT.match(text)
    if found:
        try:
            loaded = yaml.safe_load(found.group(1)) or {}
        except yaml.MarkedYAMLError as e:
            line = e.problem_mark.line + 2 if e.problem_mark else None
            raise ConfigError(f"front matter is not valid YAML: {e.problem}", where, line) from None
        if not isinstance(loaded, dict):
            raise ConfigError("front matter must be key: value lines", where, 2)
        meta, body = loaded, text[found.end() :]
    unknown = set(meta) - _EDITION_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(f"unknown front-matter key {key!r}", where, _line_of(text, key))
    return Edition(
        month=month,
        theme=str(meta.get("theme") or "").strip(),
        editorial_md=body.strip(),
        pins=_urls(meta, "pins", where, text),
        drops=_urls(meta, "drops", where, text),
        order=_urls(meta, "order", where, text),
        blurbs=_blurbs(meta, where, text),
        listening=str(meta["listening"]).strip() if meta.get("listening") else None,
        listening_blurb=str(meta.get("listening_blurb") or "").strip(),
        path=path,
    )


def _line_of(text: str, key: str) -> int | None:
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith(f"{key}:"):
            return number
    return None


def _urls(meta: dict[str, Any], key: str, where: str, text: str) -> tuple[str, ...]:
    value = meta.get(key) or []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ConfigError(f"{key} must be a list of post URLs", where, _line_of(text, key))
    out = []
    for item in value:
        url = item.get("url") if isinstance(item, dict) else item
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigError(f"{key}: {item!r} is not a post URL", where, _line_of(text, key))
        out.append(url.strip())
    return tuple(out)


def _blurbs(meta: dict[str, Any], where: str, text: str) -> tuple[tuple[str, str], ...]:
    value = meta.get("blurbs") or {}
    if not isinstance(value, dict):
        raise ConfigError("blurbs must map post URL: blurb", where, _line_of(text, "blurbs"))
    return tuple((str(k).strip(), " ".join(str(v).split())) for k, v in value.items())


def read_edition(editions_dir: Path, month: str) -> Edition:
    """Read editions/YYYY-MM.md, or an empty edition when the editor wrote none."""
    path = editions_dir / f"{month}.md"
    try:
        return parse_edition(path.read_text(encoding="utf-8"), month, path)
    except FileNotFoundError:
        return Edition(month=month)
    except UnicodeDecodeError as e:
        raise ConfigError(f"edition is not UTF-8 text ({e.reason})", str(path)) from None


def render_editorial(md: str) -> str:
    """Return the editor's Markdown as sanitised HTML."""
    html = markdown.markdown(md, extensions=["extra", "sane_lists", "smarty"], output_format="html")
    return sanitize_html(html)


def _sections(newsletter: Newsletter, theme: str, volume: int, month: str) -> tuple[Section, ...]:
    values = {
        "theme": theme,
        "Theme": theme[:1].upper() + theme[1:],
        "volume": volume,
        "month_name": month_name(month),
        "month": month,
        "name": newsletter.name,
    }
    out = []
    for section in newsletter.sections:
        out.append(
            Section(section.key, _fill(section.heading, values), _fill(section.tagline, values))
        )
    return tuple(out)


def _fill(template: str, values: dict[str, Any]) -> str:
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError):
        return template


def _blurb(item: ScoredPost, editor: str) -> tuple[str, str]:
    """Return the blurb and its source: the editor's, else the one rank chose (see #20)."""
    if editor:
        return editor, EDITOR
    return item.blurb, item.blurb_source or QUOTE


def _pick(item: ScoredPost, editor: str) -> Pick:
    post = item.post
    blurb, source = _blurb(item, editor)
    return Pick(
        url=post.url,
        title=post.title,
        blog=post.blog,
        author=post.author,
        published=post.published,
        blurb=blurb,
        score=item.score,
        image=post.image,
        blurb_source=source,
    )


def compose_issue(
    ranking: Ranking, edition: Edition, newsletter: Newsletter, volume: int
) -> tuple[Issue, list[str]]:
    """Build the Issue; return it with warnings about front-matter entries not matched."""
    warnings: list[str] = []
    known = {url_key(c.post.url): c for c in ranking.candidates}
    for key, urls in (
        ("pins", edition.pins),
        ("drops", edition.drops),
        ("order", edition.order),
        ("blurbs", tuple(u for u, _ in edition.blurbs)),
    ):
        for url in urls:
            if url_key(url) not in known:
                warnings.append(f"{key}: {url} matches no post of {edition.month}")
    if edition.listening and url_key(edition.listening) not in known:
        warnings.append(f"listening: {edition.listening} matches no post of {edition.month}")
    blurbs = {url_key(u): b for u, b in edition.blurbs}
    picks = _ordered(ranking.picks, edition.order)
    theme = edition.theme or _theme_from(edition.editorial_md) or "the Customer"
    editorial_html = render_editorial(edition.editorial_md) if edition.editorial_md else ""
    sections = _sections(newsletter, theme, volume, edition.month)
    listening = None
    if ranking.listening is not None:
        post = ranking.listening.post
        blurb, source = _blurb(
            ranking.listening, edition.listening_blurb or blurbs.get(url_key(post.url), "")
        )
        listening = Listening(
            url=post.url,
            title=post.title,
            blog=post.blog,
            author=post.author,
            published=post.published,
            blurb=blurb,
            reason=ranking.listening_reason,
            blurb_source=source,
        )
    issue = Issue(
        newsletter=newsletter,
        month=edition.month,
        volume=volume,
        title=sections[0].heading if sections else f"{newsletter.name} and {theme}",
        theme=theme,
        editorial_html=editorial_html,
        editorial_text=_paragraph_text(editorial_html),
        picks=tuple(_pick(p, blurbs.get(url_key(p.post.url), "")) for p in picks),
        listening=listening,
        sections=sections,
        web_url=_web_url(newsletter.site_url, edition.month),
    )
    return issue, warnings


def _paragraph_text(html: str) -> str:
    """Return the plain text of html with a blank line between blocks."""
    return "\n\n".join(line.strip() for line in html_to_text(html).splitlines() if line.strip())


def _web_url(site_url: str, month: str) -> str:
    year, number = month.split("-")
    return f"{site_url.rstrip('/')}/{year}/{number}/"


def _ordered(picks: Sequence[ScoredPost], order: Sequence[str]) -> list[ScoredPost]:
    rank = {url_key(u): i for i, u in enumerate(order)}
    return sorted(picks, key=lambda p: (rank.get(url_key(p.post.url), len(rank)), -p.score))


def _theme_from(md: str) -> str:
    for line in md.splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
    return ""


def draft_edition(ranking: Ranking, existing: Edition, shortlist_size: int = 20) -> str:
    """Return the text of editions/YYYY-MM.md with the ranked shortlist in its front matter.

    Keeps everything the editor already wrote (theme, pins, drops, order, blurbs,
    listening, editorial); only the shortlist is refreshed.
    """
    shortlist = [
        shortlist_entry(c)
        for c in ranking.candidates
        if c.status in ("picked", "listening", "out")
        and not c.reason.startswith(("duplicate", "promotional", "off-topic"))
    ][:shortlist_size]
    meta: dict[str, Any] = {
        "theme": existing.theme or "the Customer's Invisible Rules",
        "pins": list(existing.pins),
        "drops": list(existing.drops),
        "order": list(existing.order),
        "blurbs": dict(existing.blurbs),
        "listening": existing.listening
        or (ranking.listening.post.url if ranking.listening else None),
    }
    if existing.listening_blurb:
        meta["listening_blurb"] = existing.listening_blurb
    meta["shortlist"] = shortlist
    editorial = existing.editorial_md or _STARTER.format(month=month_name(ranking.month))
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=100)
    return f"---\n{front}---\n\n{editorial.strip()}\n"


def shortlist_entry(item: ScoredPost) -> dict[str, Any]:
    """Return one post of the draft's shortlist, with the blurb the issue would show."""
    return {
        "url": item.post.url,
        "title": item.post.title,
        "blog": item.post.blog,
        "score": item.score,
        "status": item.status,
        "blurb": item.blurb,
        "blurb_source": item.blurb_source,
    }


_STARTER = """\
Write this month's essay here, in Markdown. A few paragraphs on one idea about the
customer that the {month} posts made you think about.

The shortlist above is the ranking: reorder it with `order:`, keep a post with `pins:`,
remove one with `drops:`, and write your own blurb under `blurbs:` (URL: text).
"""
