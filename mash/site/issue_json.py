"""issue.json: the whole issue, machine readable, and back (without the newsletter settings).

``issue_from_json(issue_to_json(issue), issue.newsletter) == issue`` for every issue
whose datetimes are UTC.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from mash.blurb import BLURB_SOURCES, EDITOR
from mash.errors import BuildError
from mash.records import Issue, Listening, Newsletter, Pick, Section, Thumbnail
from mash.site.common import split_month


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
        "blurb_source": pick.blurb_source,
        "score": pick.score,
        "image": pick.image,
        "thumbnail": _thumbnail_to_json(pick.thumbnail),
    }


def _thumbnail_to_json(thumbnail: Thumbnail | None) -> dict[str, Any] | None:
    if thumbnail is None:
        return None
    return {"path": thumbnail.path, "width": thumbnail.width, "height": thumbnail.height}


def _thumbnail_from_json(data: Any, where: str) -> Thumbnail | None:
    if data is None:
        return None
    f = _Fields(data, where)
    return Thumbnail(f.get("path", str), f.get("width", int), f.get("height", int))


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
        "blurb_source": post.blurb_source,
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
        "draft": issue.draft,
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
        thumbnail=_thumbnail_from_json(f.data.get("thumbnail"), f"{f.where}.thumbnail"),
        blurb_source=_blurb_source(f),
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
        blurb_source=_blurb_source(f),
    )


def _blurb_source(f: _Fields) -> str:
    """Return a blurb's source; a file from before #20 has none: its blurbs show plain."""
    source = f.get("blurb_source", str, EDITOR)
    if source not in BLURB_SOURCES:
        allowed = ", ".join(BLURB_SOURCES)
        raise BuildError(f"{f.where}.blurb_source must be one of {allowed}", repr(source)[:80])
    return str(source)


def issue_from_json(
    data: dict[str, Any], newsletter: Newsletter, *, source: str = "issue.json"
) -> Issue:
    """Rebuild an Issue from issue.json; a BuildError names the field (and ``source``)."""
    f = _Fields(data, source)
    month = f.get("month", str)
    split_month(month)
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
        draft=f.get("draft", bool, False),
    )
