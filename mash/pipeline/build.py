"""The build flow: rank the month, compose, render, write output/YYYY-MM/; the site and drafts."""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from mash.dates import month_bounds
from mash.errors import (
    BuildError,
    DraftError,
    ExtractError,
    MashError,
)
from mash.files import write_atomic
from mash.records import (
    Config,
    FetchResult,
    Issue,
    Problem,
    Ranking,
    Thumbnail,
)
from mash.store import Store, open_store

if TYPE_CHECKING:
    from mash.site import SiteReport


@dataclass(frozen=True)
class BuildResult:
    """The built issue, the files written and the editor's warnings."""

    issue: Issue
    ranking: Ranking
    folder: Path
    files: tuple[Path, ...]
    warnings: tuple[str, ...]


def _now() -> datetime:
    return datetime.now(UTC)


# --- build ------------------------------------------------------------------------------


def rank_month(config: Config, month: str, store: Store, now: datetime | None = None) -> Ranking:
    """Rank a month's stored posts with the editor's edition."""
    from mash.edition import read_edition
    from mash.rank import blog_key, rank_posts, syndicated_from

    start, end = month_bounds(month)
    posts = store.posts_between(start, end, config.feeds)
    # a syndicated copy's original may be a few weeks older, or newer: the neighbouring
    # weeks are read only when a post names the blog it first appeared on (see #5)
    named = {origin for p in posts if (origin := syndicated_from(p.text))}
    nearby = []
    if named:
        around = store.posts_between(start - _NEARBY, start, config.feeds)
        around += store.posts_between(end, end + _NEARBY, config.feeds)
        nearby = [p for p in around if blog_key(p.blog) in named]
    # what can be read: the callers check the edition in full, with the month's posts
    edition = read_edition(config.editions_dir, month, strict=False)
    history = store.featured_before(month)
    now = now or _now()
    return rank_posts(posts, config.newsletter, edition, history, start, end, now, nearby=nearby)


_NEARBY = timedelta(days=31)


def build_month(config: Config, month: str, now: datetime | None = None) -> BuildResult:
    """Build a month's issue and write output/YYYY-MM/; the issue is kept in the store."""
    from mash.compose import compose_issue
    from mash.edition import read_edition
    from mash.render import make_env, render_issue

    now = now or _now()
    with open_store(config) as store:
        # one snapshot for every read: a fetch storing meanwhile is in it whole or not at all
        with store.snapshot():
            ranking = rank_month(config, month, store, now)
            volume = store.volume_for(month, config.newsletter.volume_start)
            months = "" if ranking.picks or ranking.listening else months_with_posts(store)
        if not ranking.picks and ranking.listening is None:
            raise BuildError(
                f"no posts to build the issue of {month} from; run `mash fetch` first "
                f"(or check the month: {months})"
            )
        # every post the edition names must be one of the month's (see #20)
        edition = read_edition(
            config.editions_dir, month, urls=[c.post.url for c in ranking.candidates]
        )
        issue, warnings = compose_issue(ranking, edition, config.newsletter, volume)
        issue, missing = _with_thumbnails(config, issue)
        warnings += missing
        rendered = render_issue(issue, make_env(config.templates_dir), config.smtp, now)
        folder = config.output_dir / month
        files = (
            write_atomic(folder / "email.html", rendered.email_html.encode()),
            write_atomic(folder / "email.txt", rendered.email_text.encode()),
            write_atomic(folder / "issue.eml", rendered.eml),
            write_atomic(folder / "index.html", rendered.web_html.encode()),
            write_atomic(folder / "issue.json", _issue_json(issue, ranking)),
        )
        featured = [p.url for p in issue.picks] + ([issue.listening.url] if issue.listening else [])
        store.save_issue(month, volume, issue.title, featured, now)
    return BuildResult(issue, ranking, folder, files, tuple(warnings))


def _with_thumbnails(config: Config, issue: Issue) -> tuple[Issue, list[str]]:
    """Give each pick's lead image a thumbnail under output/site/images/; return warnings.

    Fetched here, at build, for the issue's picks only and once: a thumbnail already
    stored is reused without the network, so re-running `mash build` is offline and
    quick. With no http(s) site URL, no thumbnails (the email could not link them).
    A failed download or an unusable image leaves that pick without one (see #20).
    """
    if not config.newsletter.site_url.startswith(("http://", "https://")):
        return issue, []
    site = config.output_dir / "site"
    images = {p.image for p in issue.picks if p.image.startswith(("http://", "https://"))}
    found = {url: thumb for url in images if (thumb := stored_thumbnail(site, url))}
    missing = sorted(images - set(found))
    warnings = []
    if missing:
        from mash.fetch import fetch_pages

        # the destination guard applies as to every connection: a feed's host grants nothing
        results = asyncio.run(fetch_pages(missing, config.fetch))
        for url, result in zip(missing, results, strict=True):
            try:
                found[url] = _store_thumbnail(site, url, result)
            except ExtractError as e:
                warnings.append(f"no thumbnail for {url}: {e.message}")
    picks = tuple(replace(p, thumbnail=found.get(p.image)) for p in issue.picks)
    return replace(issue, picks=picks), warnings


def stored_thumbnail(site: Path, image_url: str) -> Thumbnail | None:
    from mash.images import EXTENSIONS, display_size, read_size, thumbnail_stem

    stem = thumbnail_stem(image_url)
    for extension in EXTENSIONS:
        path = site / f"{stem}{extension}"
        size = read_size(path.read_bytes()) if path.is_file() else None
        if size is not None:
            return Thumbnail(f"{stem}{extension}", *display_size(*size))
    return None


def _store_thumbnail(site: Path, image_url: str, result: FetchResult) -> Thumbnail:
    from mash.images import display_size, make_thumbnail, thumbnail_stem

    if not result.ok:
        raise ExtractError(image_url, result.error or "download failed")
    made = make_thumbnail(result.content, image_url)
    path = f"{thumbnail_stem(image_url)}{made.extension}"
    write_atomic(site / path, made.content)
    return Thumbnail(path, *display_size(made.width, made.height))


def _issue_json(issue: Issue, ranking: Ranking) -> bytes:
    from mash.site import issue_to_json

    data = issue_to_json(issue)
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()


def months_with_posts(store: Store) -> str:
    months = store.posts_per_month()
    if not months:
        return "no posts are stored yet; run `mash fetch` first"
    return "months with posts: " + ", ".join(f"{m} ({n})" for m, n in months)


def write_draft(config: Config, month: str) -> tuple[Path, list[Problem]]:
    """Write editions/YYYY-MM.md with a fresh shortlist; return it with the edition's problems.

    Only the shortlist changes in a file the editor has begun: every other byte stays.
    A month with no posts gets no draft (see #20).
    """
    from mash.edition import draft_edition, edition_problems, edition_text

    with open_store(config) as store, store.snapshot():
        ranking = rank_month(config, month, store)
        if not ranking.candidates:
            raise BuildError(
                f"no posts stored for {month}; {months_with_posts(store)}; use --month"
            )
    path = config.editions_dir / f"{month}.md"
    text = draft_edition(ranking, edition_text(path), path)
    urls = [c.post.url for c in ranking.candidates]
    problems = edition_problems(text, month, path, urls)
    write_atomic(path, text.encode())
    return path, problems


def built_issues(config: Config) -> list[Issue]:
    """Read every built issue back from output/YYYY-MM/issue.json, oldest first."""
    from mash.site import issue_from_json

    issues = []
    for path in sorted(config.output_dir.glob("[0-9][0-9][0-9][0-9]-[0-9][0-9]/issue.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            issues.append(issue_from_json(data, config.newsletter, source=str(path)))
        except (ValueError, KeyError, TypeError) as e:
            raise BuildError(f"cannot read the built issue {str(path)!r}: {e}") from e
    return issues


def built_issue(config: Config, month: str) -> Issue:
    """Read the built issue of month back from output/YYYY-MM/issue.json."""
    from mash.site import issue_from_json

    path = config.output_dir / month / "issue.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BuildError(f"{month} is not built; run `mash build --month {month}` first") from None
    except ValueError as e:
        raise BuildError(f"cannot read the built issue {str(path)!r}: {e}") from e
    return issue_from_json(data, config.newsletter, source=str(path))


def issue_to_send(config: Config, month: str, allow_draft: bool = False) -> Issue:
    """Return the built issue of month for `mash send`; a draft only with allow_draft.

    A draft is an issue whose edition still had `mash draft`'s placeholder theme or
    essay, or no essay, when it was built (see #20).
    """
    issue = built_issue(config, month)
    if not issue.draft or allow_draft:
        return issue
    from mash.edition import draft_reasons, read_edition

    path = config.editions_dir / f"{month}.md"
    try:  # what is still unwritten now, to say what to edit
        unwritten = draft_reasons(read_edition(config.editions_dir, month, strict=False))
    except MashError:
        unwritten = []
    if not path.exists():
        what = "there is no edition file: `mash draft` starts one; write its theme and essay"
    elif unwritten:
        what = f"{'; '.join(unwritten)}: write the theme and the essay there"
    else:
        what = "it was built before the theme and essay were written"
    raise DraftError(
        str(path),
        f"the built issue of {month} is a draft ({what}); then run "
        f"`mash build --month {month}` and send again (--force sends it as it is)",
    )


def build_site_from_output(
    config: Config, out_dir: Path | None = None, draft: Issue | None = None
) -> SiteReport:
    """Build the static site from every built issue."""
    from mash.render import make_env
    from mash.site import build_site

    built = built_issues(config)
    # an issue built from an unwritten edition is not published (see #20); `mash serve`
    # previews the month's draft on purpose, through `draft`
    issues = [i for i in built if not i.draft]
    held_back = tuple(i.month for i in built if i.draft)
    if not issues and draft is None:
        if held_back:
            raise BuildError(
                f"every built issue is a draft ({', '.join(held_back)}): write the theme and "
                f"essay in {config.editions_dir}/YYYY-MM.md, then `mash build` again"
            )
        raise BuildError("no issue has been built yet; run `mash build` first")
    site = config.output_dir / "site"
    if out_dir is not None and (site / "images").is_dir() and out_dir.resolve() != site.resolve():
        # the thumbnails `mash build` stored go wherever the site goes (see #20)
        shutil.copytree(site / "images", out_dir / "images", dirs_exist_ok=True)
    report = build_site(
        issues, out_dir or site, make_env(config.templates_dir), config.newsletter, draft=draft
    )
    return replace(report, held_back=held_back)


def draft_issue(config: Config, month: str) -> Issue:
    """Compose the month's issue without writing anything (for previews)."""
    from mash.compose import compose_issue
    from mash.edition import read_edition

    with open_store(config) as store, store.snapshot():
        ranking = rank_month(config, month, store)
        volume = store.volume_for(month, config.newsletter.volume_start)
    edition = read_edition(config.editions_dir, month, [c.post.url for c in ranking.candidates])
    issue, _ = compose_issue(ranking, edition, config.newsletter, volume)
    return issue


@dataclass(frozen=True)
class ViewsReport:
    """What an analytics import matched."""

    source: str
    matched: int
    unmatched: tuple[str, ...]
    skipped: tuple[str, ...]


def import_views(config: Config, text: str, filename: str, month: str) -> ViewsReport:
    """Read an analytics export and store its page views for month."""
    from mash.analytics import read_views

    parsed = read_views(text, filename)
    house = [f.url for f in config.feeds if f.house]
    with open_store(config) as store:
        matched, missing = store.save_page_views(
            [(r.page, r.views) for r in parsed.rows], month, parsed.source, house
        )
    return ViewsReport(parsed.source, matched, tuple(missing), parsed.skipped)
