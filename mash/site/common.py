"""Pure helpers of the site: months, URLs, dates, descriptions; no I/O."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

from mash.errors import BuildError
from mash.records import Issue, Newsletter, Section

_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
DESCRIPTION_CHARS = 160  # what search engines show of a description
DESCRIPTION_SENTENCES = 3


def split_month(month: str) -> tuple[str, str]:
    match = _MONTH_RE.match(month)
    if match is None:
        raise BuildError(f"issue month must be YYYY-MM, not {month!r}")
    return match.group(1), match.group(2)


def month_label(month: str) -> str:
    """Return "August 2013" for "2013-08", in English whatever the locale."""
    year, number = split_month(month)
    return f"{_MONTHS[int(number) - 1]} {year}"


def site_root(newsletter: Newsletter) -> str:
    """Return the site's absolute URL ending in "/"; BuildError unless it is http(s)."""
    url = newsletter.site_url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BuildError(
            "newsletter site_url in feeds.yaml must be the site's absolute address, "
            "like https://example.org/mash/",
            url,
        )
    return url if url.endswith("/") else url + "/"


def issue_url(newsletter: Newsletter, month: str) -> str:
    """Return the absolute URL of an issue's page: ``<site_url>YYYY/MM/``."""
    year, number = split_month(month)
    return urljoin(site_root(newsletter), f"{year}/{number}/")


def issue_dir(month: str) -> str:
    year, number = split_month(month)
    return f"{year}/{number}/"


def date_label(value: datetime | None) -> str:
    if value is None:
        return ""
    return f"{value.day} {_MONTHS[value.month - 1]} {value.year}"


def date_iso(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).date().isoformat()


def describe(issue: Issue) -> str:
    """Return the page description: the editorial's first sentences, else the welcome."""
    return summarise(issue.editorial_text) or summarise(issue.newsletter.welcome)


def summarise(text: str) -> str:
    """Return at most three first sentences of text, cut to about 160 characters."""
    out = ""
    sentences = re.split(r"(?<=[.!?…])\s+", " ".join(text.split()))
    for sentence in sentences[:DESCRIPTION_SENTENCES]:
        if out and len(out) + 1 + len(sentence) > DESCRIPTION_CHARS:
            break
        out = f"{out} {sentence}".strip()
    if len(out) > DESCRIPTION_CHARS:
        cut = out[: DESCRIPTION_CHARS - 1].rsplit(" ", 1)[0]
        out = cut.rstrip(",;:") + "…"
    return out


def headline(issue: Issue) -> str:
    """Return the issue's theme as a headline ("The Customer's Rules"), else its title."""
    theme = issue.theme.strip()
    return theme[:1].upper() + theme[1:] if theme else issue.title


def first_image(issue: Issue) -> str:
    """Return the URL of the first pick's thumbnail on the site, or "".

    Never the source blog's own image: it may be an SVG, and it breaks when the blog
    moves (see #20).
    """
    thumbnail = issue.picks[0].thumbnail if issue.picks else None
    site = issue.newsletter.site_url.strip()
    if thumbnail is None or urlsplit(site).scheme not in ("http", "https"):
        return ""
    return f"{site.rstrip('/')}/{thumbnail.path}"


def sections_of(issue: Issue) -> dict[str, Section]:
    sections = issue.sections or issue.newsletter.sections
    return {section.key: section for section in sections}


def issue_date(issue: Issue) -> datetime:
    """Return when an issue was last touched: its newest post, else the month's first day.

    Derived from the issue alone, so the feed is the same on every rebuild.
    """
    year, number = split_month(issue.month)
    dates = [pick.published for pick in issue.picks if pick.published is not None]
    if issue.listening is not None and issue.listening.published is not None:
        dates.append(issue.listening.published)
    start = datetime(int(year), int(number), 1, tzinfo=UTC)
    return max([start, *(d.astimezone(UTC) for d in dates)])


def paragraphs(text: str) -> list[str]:
    return [" ".join(block.split()) for block in re.split(r"\n\s*\n", text) if block.strip()]
