"""Read page views from analytics CSV exports: Plausible, GA4 and Matomo (pure).

The format is detected from the columns. Rows are (path or URL, views); matching them
to posts is the store's job (after normalising with ``mash.urls``).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from mash.errors import ConfigError

# (source, page column candidates, views column candidates), tried in order.
_FORMATS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "GA4",
        ("page path and screen class", "page path + query string", "page path", "page location"),
        ("views", "screenpageviews"),
    ),
    ("Plausible", ("name", "page"), ("pageviews", "visitors")),
    ("Matomo", ("url", "label"), ("nb_hits", "pageviews", "nb_pageviews", "unique pageviews")),
)


@dataclass(frozen=True)
class PageViews:
    """Views of one page from an analytics export; made here, stored by store."""

    page: str  # a path (/2026/10/slug/) or an absolute URL
    views: int
    line: int


@dataclass(frozen=True)
class ViewsImport:
    """A parsed export: its detected source and rows, plus rows skipped with reasons."""

    source: str
    rows: tuple[PageViews, ...]
    skipped: tuple[str, ...]


def _data_lines(text: str) -> tuple[list[str], int]:
    """Drop GA4's '#' comment header; return the CSV lines and the first line's number."""
    lines = text.lstrip("\ufeff").splitlines()
    start = 0
    while start < len(lines) and (lines[start].startswith("#") or not lines[start].strip()):
        start += 1
    return lines[start:], start + 1


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    lowered = [h.strip().lower() for h in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    return None


def _number(value: str) -> int | None:
    cleaned = value.strip().replace(",", "").replace("\u00a0", "")
    try:
        return int(float(cleaned))
    except ValueError:
        return None


def _detect(header: list[str]) -> tuple[str, int, int] | None:
    for source, pages, views in _FORMATS:
        page_col, views_col = _column(header, pages), _column(header, views)
        if page_col is not None and views_col is not None:
            return source, page_col, views_col
    return None


def read_views(text: str, filename: str = "views.csv") -> ViewsImport:
    """Parse an analytics CSV export; raise ConfigError when its format is unknown."""
    lines, first = _data_lines(text)
    reader = csv.reader(io.StringIO("\n".join(lines)))
    header = next(reader, [])
    detected = _detect(header)
    if detected is None:
        raise ConfigError(
            f"unknown analytics export (columns: {', '.join(header) or 'none'}); expected a "
            "Plausible, GA4 or Matomo pages export",
            filename,
            first,
        )
    source, page_col, views_col = detected
    rows, skipped = [], []
    totals: dict[str, int] = {}
    for offset, record in enumerate(reader, start=1):
        line = first + offset
        if len(record) <= max(page_col, views_col):
            if any(cell.strip() for cell in record):
                skipped.append(f"{filename}:{line}: too few columns")
            continue
        page, count = record[page_col].strip(), _number(record[views_col])
        if not page.startswith(("/", "http://", "https://")) or count is None:
            skipped.append(f"{filename}:{line}: not a page and a number: {record[page_col]!r}")
            continue
        totals[page] = totals.get(page, 0) + count
        rows.append(PageViews(page, totals[page], line))
    merged = {r.page: r for r in rows}  # GA4 repeats a path per screen class: summed above
    return ViewsImport(source, tuple(merged.values()), tuple(skipped))
