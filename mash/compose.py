"""Compose an issue: the ranking plus the editor's edition becomes an Issue (pure).

The edition file itself is read, checked and drafted by ``mash.edition``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import markdown

from mash.blurb import EDITOR, QUOTE
from mash.dates import month_name
from mash.edition import draft_reasons
from mash.plaintext import essay_text
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
from mash.sanitize import sanitize_html
from mash.urls import url_key


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
    """Build the Issue; return it with a warning when the edition is still a draft.

    The edition's entries are checked against the month's posts before this
    (``edition.read_edition`` with the month's URLs).
    """
    warnings: list[str] = []
    unwritten = draft_reasons(edition)
    if unwritten:
        where = edition.path or f"editions/{edition.month}.md (none yet: `mash draft` starts one)"
        warnings.append(
            f"this issue is a draft: {where}: {'; '.join(unwritten)}. "
            "`mash send` refuses it until you write them and build again"
        )
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
        draft=bool(unwritten),
    )
    return issue, warnings


def _paragraph_text(html: str) -> str:
    """Return the essay's words: one line per paragraph or list item, a blank line apart.

    No emphasis marks or URLs (previews and summaries read it); the text part makes its
    own from the HTML (mash.plaintext). Hard-wrapped source lines are joined (see #20).
    """
    return essay_text(html, marks=False)


def _web_url(site_url: str, month: str) -> str:
    year, number = month.split("-")
    return f"{site_url.rstrip('/')}/{year}/{number}/"


def _ordered(picks: Sequence[ScoredPost], order: Sequence[str]) -> list[ScoredPost]:
    """Return the picks with the editor's order first, the rest as rank listed them."""
    rank = {url_key(u): i for i, u in enumerate(order)}
    return sorted(picks, key=lambda p: rank.get(url_key(p.post.url), len(rank)))


def _theme_from(md: str) -> str:
    for line in md.splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
    return ""
