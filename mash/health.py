"""Feed health: what is wrong with each feed and the feeds.yaml change that fixes it.

Pure functions of rows the store gives and a ``now`` you pass in; no I/O here.
Status is one of ok, failing, moved, retired (see #3).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

BACKOFF_FIRST = timedelta(hours=1)
BACKOFF_MAX = timedelta(days=7)
STALE_DAYS = 180  # a feed this long without a post is probably an abandoned blog


@dataclass(frozen=True)
class FeedHealthInput:
    """What the store knows of one feed; made by the pipeline from store rows."""

    url: str
    name: str | None = None
    last_status: int | None = None
    last_error: str | None = None
    last_error_kind: str | None = None
    consecutive_failures: int = 0
    last_success: datetime | None = None
    last_attempt: datetime | None = None
    next_attempt: datetime | None = None
    retired: bool = False
    moved_to: str | None = None
    posts_this_month: int = 0
    last_post: datetime | None = None
    discovered_url: str | None = None  # the feed an HTML answer links to (autodiscovery)


@dataclass(frozen=True)
class FeedHealth:
    """One line of `mash feeds check`; made by feed_health, printed by the cli."""

    url: str
    status: str  # ok | failing | moved | retired
    error: str | None
    posts: int
    last_success: datetime | None
    last_error: str | None
    consecutive_failures: int
    http_status: int | None
    days_since_last_post: int | None
    fix: str | None
    next_attempt: datetime | None = None
    name: str | None = None


def next_attempt_after(consecutive_failures: int, now: datetime) -> datetime:
    """Return when a feed that failed ``consecutive_failures`` times in a row is tried next.

    One hour after the first failure, doubling each time, at most seven days:
    a failing feed is backed off, never dropped.
    """
    if consecutive_failures <= 0:
        return now
    step = BACKOFF_FIRST * (1 << min(consecutive_failures - 1, 20))
    return now + min(step, BACKOFF_MAX)


def feed_health(rows: Sequence[FeedHealthInput], now: datetime) -> list[FeedHealth]:
    """Judge every feed, in the order given."""
    return [_judge(row, now) for row in rows]


def _status(row: FeedHealthInput) -> str:
    if row.retired or row.last_error_kind == "http-410":
        return "retired"
    if row.consecutive_failures > 0:
        return "failing"
    if row.moved_to and row.moved_to != row.url:
        return "moved"
    return "ok"


def _judge(row: FeedHealthInput, now: datetime) -> FeedHealth:
    status = _status(row)
    days = None if row.last_post is None else max(0, (now - row.last_post).days)
    return FeedHealth(
        url=row.url,
        status=status,
        # an ok feed with an error was read with a warning (malformed XML, wrong encoding):
        # its posts are stored, and the error is still the publisher's to fix
        error=row.last_error_kind if status in ("failing", "retired") or row.last_error else None,
        posts=row.posts_this_month,
        last_success=row.last_success,
        last_error=row.last_error,
        consecutive_failures=row.consecutive_failures,
        http_status=row.last_status,
        days_since_last_post=days,
        fix=_fix(row, status) or _stale(row.url, days),
        next_attempt=row.next_attempt if status == "failing" else None,
        name=row.name,
    )


def _stale(url: str, days: int | None) -> str | None:
    if days is None or days < STALE_DAYS:
        return None
    return f"no new post for {days} days: if the blog is abandoned, remove url: {url}"


def _fix(row: FeedHealthInput, status: str) -> str | None:
    """Return the exact feeds.yaml change that fixes the feed, or None when it is fine."""
    old = row.url
    if status == "retired":
        return f"remove the feed with url: {old} (410 Gone) or set retired: true"
    if status == "moved":
        return f"replace url: {old} with url: {row.moved_to}"
    if status == "ok" and row.last_error:
        return (
            f"nothing to change in feeds.yaml: the posts mash could read were kept, but the "
            f"feed is broken ({row.last_error_kind}); tell the blog's owner"
        )
    if status != "failing":
        return None
    kind = row.last_error_kind or "error"
    if kind == "not-a-feed" and row.discovered_url:
        new = row.discovered_url
        return f"the URL serves a web page; its feed is {new}: replace url: {old} with url: {new}"
    key = "http-5xx" if kind.startswith("http-5") else kind
    return _FIXES.get(key, _FIX_OTHER).format(old=old, kind=kind, error=row.last_error)


_FIX_OTHER = "check url: {old} in a browser; mash retries it later ({kind})"
_FIXES = {
    "not-a-feed": (
        "the URL serves no feed and its page links to none: find the blog's RSS or Atom "
        "link and replace url: {old} with it, or remove the feed"
    ),
    "http-404": (
        "the feed is not found (404): open the blog's home page, find its feed, and replace "
        "url: {old} with it, or remove the feed"
    ),
    "http-410": "remove the feed with url: {old} (410 Gone) or set retired: true",
    "http-401": (
        "the feed needs a login (401): give it in the url, https://USER:PASSWORD@host/..., "
        "(shown everywhere as ***), or remove url: {old}"
    ),
    "http-403": "the site refuses mash (403): ask its owner to allow mash, or remove url: {old}",
    "http-403-blocked": (
        "the site blocks feed readers (bot protection): ask its owner to allow mash's "
        "User-Agent, or remove url: {old}"
    ),
    "http-429": "the site rate-limits mash (429): nothing to change; mash retries later",
    "http-5xx": (
        "the site has a server error ({kind}): nothing to change yet; mash retries later; "
        "remove url: {old} if it persists"
    ),
    "timeout": (
        "the site is too slow: raise fetch.deadline in feeds.yaml, or remove url: {old} "
        "if it persists"
    ),
    "too-large": (
        "the feed is over fetch.max_bytes: raise fetch.max_bytes in feeds.yaml, or remove "
        "url: {old}"
    ),
    "redirect-loop": (
        "the URL redirects in a loop: open it in a browser, find the feed's real address "
        "and replace url: {old} with it"
    ),
    "too-many-redirects": (
        "the URL redirects more than 10 times: find the feed's final address and replace "
        "url: {old} with it"
    ),
    "connection": (
        "cannot connect: check the host name in url: {old}; remove the feed if the site is gone"
    ),
    "private-address": "{error}, if that server is yours; else remove url: {old}",
    "malformed": (
        "the feed's XML is broken: nothing to change in feeds.yaml; tell the owner of {old}; "
        "mash keeps the entries it can read"
    ),
    "encoding": (
        "the feed's text encoding is wrong: nothing to change in feeds.yaml; tell the owner "
        "of {old}"
    ),
}


_COLUMNS = ("status", "error", "posts", "http", "fails", "last ok", "next try", "last post", "feed")


def render_health_table(rows: Sequence[FeedHealth]) -> str:
    """Render a plain-text table, problems first, then one "fix" line per problem."""
    ordered = sorted(rows, key=lambda r: (_ORDER[r.status], r.url))
    cells = [_COLUMNS, *(_cells(r) for r in ordered)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(_COLUMNS) - 1)]
    lines = [
        "  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[-1]]).rstrip()
        for row in cells
    ]
    fixes = [f"- {r.url}\n  {r.fix}" for r in ordered if r.fix]
    if fixes:
        lines += ["", "To fix, edit feeds.yaml:", *fixes]
    counts = {s: sum(1 for r in rows if r.status == s) for s in _ORDER}
    lines += ["", ", ".join(f"{n} {s}" for s, n in counts.items())]
    return "\n".join(lines) + "\n"


_ORDER = {"failing": 0, "retired": 1, "moved": 2, "ok": 3}


def _cells(r: FeedHealth) -> tuple[str, ...]:
    return (
        r.status,
        r.error or "-",
        str(r.posts),
        str(r.http_status) if r.http_status is not None else "-",
        str(r.consecutive_failures),
        r.last_success.strftime("%Y-%m-%d") if r.last_success else "never",
        _next_try(r),
        f"{r.days_since_last_post}d ago" if r.days_since_last_post is not None else "-",
        r.name and f"{r.name} <{r.url}>" or r.url,
    )


def _next_try(r: FeedHealth) -> str:
    """When a failing feed is tried again: a time once it is backed off, else the next run."""
    if r.next_attempt is not None:
        return r.next_attempt.strftime("%Y-%m-%d %H:%M")
    return "next run" if r.status == "failing" else "-"


def health_json(rows: Sequence[FeedHealth]) -> str:
    """Return a JSON list, one object per feed; datetimes in ISO 8601."""
    return json.dumps([_jsonable(asdict(r)) for r in rows], indent=2, ensure_ascii=False)


def _jsonable(record: dict[str, object]) -> dict[str, object]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in record.items()}
