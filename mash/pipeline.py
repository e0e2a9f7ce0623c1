"""Wire the stages; the only module that calls them.

fetch:  config -> store.feed_states -> fetch.fetch_feeds -> parse.parse_feed
        -> extract (feeds with full text) -> store.save_feed (one transaction per feed)
        -> fetch.fetch_pages (truncated feeds) -> extract.extract_many -> store.save_article
build:  store.posts_between -> rank.rank_posts (+ edition) -> compose.compose_issue
        -> render.render_issue -> output/YYYY-MM/ (atomic writes) -> store.save_issue
site:   output/*/issue.json -> site.build_site -> output/site/
check:  the build's path in memory (nothing written) -> checks.check_issue
        + fetch.check_links -> CheckReport (`mash check`, the desk; see #17)

Reads everything, then writes: an issue is fully built before any file is written.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import BrokenExecutor, Future
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from mash.config import add_feeds_to_file
from mash.errors import (
    BuildError,
    ConfigError,
    DraftError,
    ExtractError,
    FetchError,
    MashError,
    ParseError,
)
from mash.files import write_atomic
from mash.health import FeedHealth, FeedHealthInput, feed_health, next_attempt_after
from mash.lifetime import start_worker
from mash.records import (
    CheckProblem,
    CheckReport,
    Config,
    Edition,
    FeedSpec,
    FeedState,
    FetchResult,
    FetchSettings,
    Issue,
    ParsedFeed,
    Post,
    Problem,
    Ranking,
    RenderedIssue,
    Thumbnail,
)
from mash.store import FetchRun, Store, open_store
from mash.urls import redact_url, url_key

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

    from mash.edition import Change
    from mash.parse import ParseJob
    from mash.send import SendReport
    from mash.site import SiteReport

# The build side (Markdown, Jinja2, Beautiful Soup: 0.3 s to import) is imported in the
# functions that use it, so that `mash fetch` and its parse workers start fast; so are
# parsing and extraction (0.2 s), which a fetch where every feed answers 304 never
# needs (see #8).

Progress = Callable[[str], None]


@dataclass
class FetchSummary:
    """What a fetch run did; printed by the cli at the end of every run."""

    feeds: int = 0
    fetched: int = 0
    not_modified: int = 0
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # url, kind, reason
    warnings: list[tuple[str, str]] = field(default_factory=list)  # url, problem
    new_posts: int = 0
    pages: int = 0
    page_failures: list[tuple[str, str]] = field(default_factory=list)
    refused_pages: list[tuple[str, str]] = field(default_factory=list)  # url, reason (#21)
    moved: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0


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


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """Return the UTC start of month and of the month after."""
    year, number = (int(x) for x in month.split("-"))
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return start, end


def last_complete_month(now: datetime) -> str:
    """Return YYYY-MM of the month before now's."""
    year, number = (now.year, now.month - 1) if now.month > 1 else (now.year - 1, 12)
    return f"{year:04d}-{number:02d}"


# --- fetch ------------------------------------------------------------------------------


def run_fetch(
    config: Config,
    progress: Progress | None = None,
    now: datetime | None = None,
    feeds_only: bool = False,
) -> FetchSummary:
    """Fetch every due feed, store new posts, then fetch and extract truncated posts.

    The feeds are claimed a few dozen at a time (Store.claim_feeds): runs at once against
    one PostgreSQL share them, each feed fetched by one of them in a round (see #15).
    """
    started = time.monotonic()
    now = now or _now()
    summary = FetchSummary()
    say = progress or (lambda _: None)
    with open_store(config) as store, store.fetch_run() as run:
        store.sync_feeds(config.feeds)
        due = store.due_feeds(config.feeds, now)
        key_of = {state.url: key for key, state in due.items()}
        done = 0
        finished: list[str] = []  # feeds stored since the last claim: their leases end

        def tell(state: str, url: str) -> None:
            nonlocal done
            done += 1
            say(f"[{done}/{len(due)}] {state} {redact_url(url)}")

        def claim(limit: int) -> list[FeedState] | None:
            while True:
                keys = store.claim_feeds(run.id, run.round_start, limit, now, finished)
                finished.clear()
                if keys is None:
                    return None
                if not keys:
                    return []
                states = [due[k] for k in keys if k in due]
                finished.extend(k for k in keys if k not in due)  # not this config's
                if states:
                    summary.feeds += len(states)
                    return states

        def on_result(result: FetchResult) -> None:
            # a download is told once parsed and stored: only then is it known to be a
            # feed, so the line agrees with the summary (see #20)
            if result.error:
                tell(f"failed ({result.error_kind})", result.url)
            elif result.not_modified:
                tell("304", result.url)
                finished.append(key_of[result.url])

        def store_one(result: FetchResult, parsed: ParseJob | None) -> None:
            outcome = _store_result(store, key_of[result.url], result, parsed, summary, now)
            finished.append(key_of[result.url])
            if not result.error:
                tell(outcome, result.url)

        # feeds never fetched will answer 200: start the workers while the first
        # downloads run, not when their bodies arrive (see #8). A refresh, where most
        # feeds answer 304, needs few workers and late.
        new_feeds = sum(1 for s in due.values() if not (s.etag or s.last_modified))
        refresh = new_feeds <= len(due) * _REFRESH_NEW_SHARE
        with _parser_pool(len(due), start=new_feeds >= _POOL_MIN_FEEDS and not refresh) as pool:
            waiting: dict[str, tuple[FetchResult, Future[ParseJob]]] = {}
            parsed: queue.SimpleQueue[str] = queue.SimpleQueue()
            stored: set[str] = set()

            def store_done() -> None:
                # store what the workers have finished, as the downloads go on: the
                # parsed posts don't pile up in memory (see #8)
                while not parsed.empty():
                    url = parsed.get()
                    result, job = waiting.pop(url)
                    stored.add(url)
                    store_one(result, _parsed(job))

            def on_result_parse(result: FetchResult) -> None:
                on_result(result)
                if result.ok:  # parse on the other cores while the rest download (see #8)
                    job = pool.submit(_parse_job(), result)
                    waiting[result.url] = (result, job)
                    job.add_done_callback(partial(_put, parsed, result.url))
                store_done()

            # httpx and aiohttp (0.3 s) load here: the parse server, started above, loads
            # its own modules on the other core meanwhile (see #8)
            from mash.fetch import fetch_claimed_sync

            results = fetch_claimed_sync(claim, config.fetch, on_result_parse)
            unchanged = [r for r in results if r.not_modified]
            summary.not_modified += len(unchanged)
            store.record_not_modified(unchanged, now, key_of)
            for result in results:
                if result.url in stored or result.not_modified:
                    continue
                entry = waiting.pop(result.url, None)
                done_job = (
                    _parsed(entry[1]) if entry else _parse_job()(result) if result.ok else None
                )
                store_one(result, done_job)
            store.finish_feeds(run.id, finished)
        if not feeds_only and config.fetch.fetch_pages:
            _fetch_articles(config, store, run, summary, say)
    summary.seconds = round(time.monotonic() - started, 2)
    return summary


def _parse_job() -> Callable[[FetchResult], ParseJob]:
    """Return mash.parse.parse_job, imported at first use: a fetch where every feed
    answers 304 never needs parsing (0.2 s to import, see #8)."""
    from mash.parse import parse_job

    return parse_job


def _parsed(job: Future[ParseJob]) -> ParseJob:
    """Return a parse job's result; a worker that died fails its feeds, not the run.

    The feed's validators are not stored, so the next fetch gets it whole again.
    """
    try:
        return job.result()
    except Exception as e:  # noqa: BLE001 (BrokenProcessPool, a result that would not pickle)
        return None, [], (f"the parse worker failed ({type(e).__name__}: {e})", "unexpected")


def _put(finished: queue.SimpleQueue[str], url: str, _: object) -> None:
    finished.put(url)  # from the pool's thread: the fetch loop stores it next time round


class _InlinePool:
    """Run jobs at once in this process: small runs don't pay for starting workers."""

    def submit(self, fn: Callable[[FetchResult], ParseJob], arg: FetchResult) -> Future[ParseJob]:
        future: Future[ParseJob] = Future()
        future.set_result(fn(arg))
        return future

    def __enter__(self) -> _InlinePool:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class _LazyPool:
    """A process pool started by the first job: a run where every feed answers 304 (or
    fails) starts no worker, no forkserver and no resource tracker (see #8)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool: ProcessPoolExecutor | None = None

    def start(self) -> ProcessPoolExecutor:
        if self.pool is None:
            # multiprocessing loads here, not at import: a 304 run never needs it
            from concurrent.futures import ProcessPoolExecutor
            from multiprocessing import get_context

            context = get_context("forkserver")
            # the server imports parsing once, and each worker forks with it loaded: not
            # the whole pipeline (aiohttp, httpx: 0.5 s of CPU per worker, see #8);
            # server and workers die with the run (see mash._forkserver, #21)
            context.set_forkserver_preload(["mash._forkserver", "mash.parse"])
            self.pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=context, initializer=start_worker
            )
            for _ in range(self.workers):
                self.pool.submit(_warm)  # each job starts a worker, until there are enough
        return self.pool

    def submit(self, fn: Callable[[FetchResult], ParseJob], arg: FetchResult) -> Future[ParseJob]:
        try:
            return self.start().submit(fn, arg)
        except BrokenExecutor:  # a worker died: its feeds fail (see _parsed), new ones parse
            if self.pool is not None:
                self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None
            return self.start().submit(fn, arg)

    def __enter__(self) -> _LazyPool:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown()


def _warm() -> None:
    """Do nothing, in a worker: submitted to start the workers early."""


# Fewer feeds than this are parsed in the fetching process: starting workers costs more.
_POOL_MIN_FEEDS = 50
# A run is a refresh when at most this share of its feeds was never fetched.
_REFRESH_NEW_SHARE = 0.1


def _parser_pool(feeds: int, start: bool = False) -> _InlinePool | _LazyPool:
    workers = min(os.cpu_count() or 1, 4)
    if feeds < _POOL_MIN_FEEDS or workers < 2:
        return _InlinePool()
    pool = _LazyPool(workers)
    if start:
        pool.start()
    return pool


def _store_result(
    store: Store,
    feed: str,
    result: FetchResult,
    parsed: ParseJob | None,
    summary: FetchSummary,
    now: datetime,
) -> str:
    """Store one feed's result (``feed``: its key); return its outcome for the progress line."""
    if result.error or parsed is None:
        error = result.error or f"unexpected HTTP status {result.status}"
        kind = result.error_kind or "error"
        _fail(store, feed, result, error, kind, summary, now)
        return f"failed ({kind})"
    feed_record, rows, problem = parsed
    if feed_record is None:
        message, kind = problem or ("not a feed", "not-a-feed")
        found = None
        if kind == "not-a-feed":  # a web page: its <link rel=alternate> names the feed (#3)
            from mash.fetch import discover_feed_urls

            links = discover_feed_urls(result.content, result.final_url or result.url)
            found = links[0] if links else None
            if found:
                message = f"{message}; it links to the feed {found}"
        _fail(store, feed, result, message, kind, summary, now, found)
        return f"failed ({kind})"
    summary.fetched += 1
    if result.moved_to:
        summary.moved.append((feed, redact_url(result.moved_to)))
    warning = (
        (feed_record.error, feed_record.error_kind or "malformed") if feed_record.error else None
    )
    if warning:
        summary.warnings.append((feed, feed_record.error or ""))
    summary.new_posts += store.save_feed_rows(
        feed, result, feed_record.title, feed_record.link, rows, now, warning
    )
    return "ok"


def _fail(
    store: Store,
    feed: str,
    result: FetchResult,
    error: str,
    kind: str,
    summary: FetchSummary,
    now: datetime,
    discovered: str | None = None,
) -> None:
    summary.failed.append((feed, kind, redact_url(error)))
    failures = store.consecutive_failures(feed) + 1
    retry = None if failures < 2 else next_attempt_after(failures, now)
    store.record_failure(feed, result, error, kind, now, retry, discovered)


def _fetch_articles(
    config: Config, store: Store, run: FetchRun, summary: FetchSummary, say: Progress
) -> None:
    """Fetch and extract the pages of posts waiting for them, a claimed batch at a time.

    A batch is claimed for this run (Store.claim_pages): another run at once takes
    other posts. Posts another run holds are left to it (or, if it dies, to the next run).
    """
    fetched = 0
    while fetched < PAGE_LIMIT:
        limit = min(PAGE_BATCH, PAGE_LIMIT - fetched)
        ids = store.claim_pages(run.id, run.round_start, limit, PAGE_ATTEMPTS)
        if not ids:
            break
        batch = [post for _, post in store.posts_by_id(ids)]
        if fetched == 0:
            say("fetching article pages for truncated feeds")
        say(f"pages {fetched + 1}-{fetched + len(batch)}")
        _fetch_article_batch(config, store, batch, summary)
        store.finish_pages(run.id, ids)
        fetched += len(batch)
    store.forget_pages(run.id)


PAGE_BATCH = 500  # pages held in memory at once (12,000 pages in one go: 444 MB, see #3)
PAGE_LIMIT = 10_000  # pages one run fetches at most
PAGE_ATTEMPTS = 3  # a page that failed this often is given up: the feed's text is used


def _fetch_article_batch(
    config: Config,
    store: Store,
    pending: list[Post],
    summary: FetchSummary,
) -> None:
    from mash.extract import extract_article, extract_many
    from mash.fetch import fetch_pages

    pages = asyncio.run(fetch_pages([p.url for p in pending], config.fetch))
    jobs: list[tuple[Post, str | None, str | None]] = []
    for post, page in zip(pending, pages, strict=True):
        if page.ok:
            jobs.append((post, _decode(page), page.final_url or page.url))
        else:
            summary.page_failures.append((post.url, page.error or "failed"))
            if page.error_kind == "private-address":
                summary.refused_pages.append((post.url, page.error or "refused"))
            # robots and private addresses will not change: use the feed's text at once
            final = page.error_kind in ("robots", "private-address", "http-404", "http-410")
            store.record_page_failure(post, page.error or "page failed", final)
            if final:
                store.save_article(post, extract_article(post, None, None))
    for (post, _, _), article in zip(jobs, extract_many(jobs), strict=True):
        if isinstance(article, ExtractError):
            summary.page_failures.append((post.url, article.message))
            store.save_article(post, extract_article(post, None, None))
        else:
            summary.pages += 1
            store.save_article(post, article)


def _decode(page: FetchResult) -> str:
    from bs4.dammit import UnicodeDammit

    guess = UnicodeDammit(page.content, is_html=True)
    return guess.unicode_markup or page.content.decode("utf-8", "replace")


# --- feeds ------------------------------------------------------------------------------


def feeds_health(config: Config, now: datetime | None = None) -> list[FeedHealth]:
    """Return the health of every feed of the config, from what the store recorded."""
    now = now or _now()
    start, end = month_bounds(f"{now.year:04d}-{now.month:02d}")
    with open_store(config) as store:
        store.sync_feeds(config.feeds)
        rows = {r.url: r for r in store.feed_rows()}
        stats = store.post_stats(start, end)
    inputs = []
    for spec in config.feeds:
        key = redact_url(spec.url)  # the store's key, and all that is ever shown (see #21)
        row = rows[key]
        count, last_post = stats.get(key, (0, None))
        inputs.append(
            FeedHealthInput(
                url=key,
                name=spec.name,
                last_status=row.last_status,
                last_error=row.last_error,
                last_error_kind=row.last_error_kind,
                consecutive_failures=row.consecutive_failures,
                last_success=row.last_success,
                last_attempt=row.last_attempt,
                next_attempt=row.next_attempt,
                retired=row.retired,
                moved_to=row.moved_to,
                posts_this_month=count,
                last_post=last_post,
                discovered_url=row.discovered_url,
            )
        )
    return feed_health(inputs, now)


def find_feed(url: str, settings: FetchSettings) -> tuple[str, ParsedFeed]:
    """Fetch url; when it is a web page, follow its autodiscovery link to the feed."""
    from mash.fetch import discover_feed_urls, fetch_feeds
    from mash.parse import parse_feed

    for _ in range(2):
        (result,) = asyncio.run(fetch_feeds([FeedState(url)], settings))
        if not result.ok:
            raise FetchError(url, result.error or f"HTTP {result.status}", result.error_kind or "")
        try:
            return result.final_url or url, parse_feed(
                result.content, result.final_url or url, result.content_type
            )
        except ParseError as e:
            links = discover_feed_urls(result.content, result.final_url or url)
            if e.kind != "not-a-feed" or not links:
                raise
            url = links[0]
    raise ParseError(url, "the page's feed link leads to another page, not a feed", "not-a-feed")


def add_feeds(config: Config, feeds: Sequence[FeedSpec]) -> tuple[list[FeedSpec], list[str]]:
    """Add feeds not yet in the config file; return those added and those skipped."""
    known = {url_key(f.url) for f in config.feeds}
    added, skipped = [], []
    for feed in feeds:
        if url_key(feed.url) in known:
            skipped.append(feed.url)
            continue
        known.add(url_key(feed.url))
        added.append(feed)
    if added:
        add_feeds_to_file(config.path, added)
    return added, skipped


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
            months = "" if ranking.picks or ranking.listening else _months_with_posts(store)
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
    found = {url: thumb for url in images if (thumb := _stored_thumbnail(site, url))}
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


def _stored_thumbnail(site: Path, image_url: str) -> Thumbnail | None:
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


def _months_with_posts(store: Store) -> str:
    months = store.posts_per_month()
    if not months:
        return "no posts are stored yet; run `mash fetch` first"
    return "months with posts: " + ", ".join(f"{m} ({n})" for m, n in months)


def write_draft(config: Config, month: str) -> tuple[Path, list[Problem]]:
    """Write editions/YYYY-MM.md with a fresh shortlist; return it with the edition's problems.

    Only the shortlist changes in a file the editor has begun: every other byte stays.
    A month with no posts gets no draft (see #20).
    """
    from mash.edition import draft_edition, edition_problems

    with open_store(config) as store, store.snapshot():
        ranking = rank_month(config, month, store)
        if not ranking.candidates:
            raise BuildError(
                f"no posts stored for {month}; {_months_with_posts(store)}; use --month"
            )
    path = config.editions_dir / f"{month}.md"
    try:
        existing: str | None = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        existing = None
    except UnicodeDecodeError as e:
        raise ConfigError(f"edition is not UTF-8 text ({e.reason})", str(path)) from None
    text = draft_edition(ranking, existing, path)
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


# --- check (see #17) --------------------------------------------------------------------


def run_checks(config: Config, month: str, *, links: bool = True) -> CheckReport:
    """Run the pre-send checks on the month's issue as `mash build` would make it now.

    The issue is built in memory from the store and the edition, as `mash build` does,
    and nothing is written: not output/, not a thumbnail (those already stored are
    used). So a month never built is checked as it would be built, and a month built
    before the edition changed is checked as it will be rebuilt (a warning says so).
    With ``links``, every link of the email is asked politely (mash.fetch.check_links).
    Prints nothing: `mash check` and the desk show the report.
    """
    from mash import checks
    from mash.edition import draft_reasons, edition_problems, read_edition
    from mash.render import make_env, render_issue

    issue, text, urls = _issue_in_memory(config, month)
    path = config.editions_dir / f"{month}.md"
    rendered = render_issue(issue, make_env(config.templates_dir), config.smtp, _now())
    html_bytes, encoded_bytes = _html_part_sizes(rendered.eml)
    found: list[CheckProblem] = []
    if text is not None:
        found += checks.check_edition(edition_problems(text, month, path, urls))
    reasons = draft_reasons(read_edition(config.editions_dir, month, strict=False))
    found += checks.check_draft(issue, reasons, str(path))
    found += checks.check_email_size(html_bytes, encoded_bytes)
    found += checks.check_issue(
        issue,
        rendered.email_html,
        rendered.email_text,
        blurb_chars=config.newsletter.blurb_chars,
        per_blog_cap=config.newsletter.per_blog_cap,
    )
    found += _stale_build(config, issue)
    checked = 0
    if links:
        places = checks.issue_links(issue, rendered.email_html)
        link_found, checked = _check_links(config, places, month)
        found += link_found
    return CheckReport(month, tuple(found), links_checked=checked, email_bytes=html_bytes)


def _issue_in_memory(config: Config, month: str) -> tuple[Issue, str | None, list[str]]:
    """Compose the month's issue as `mash build` does, writing nothing.

    Return it with the edition file's text (None without one) and the month's post
    URLs. The edition is read as far as it can be: its problems are the checks' to
    report, not a reason to stop.
    """
    from mash.compose import compose_issue
    from mash.edition import read_edition

    with open_store(config) as store, store.snapshot():
        ranking = rank_month(config, month, store)
        if not ranking.picks and ranking.listening is None:
            raise BuildError(
                f"no posts to check the issue of {month} with; run `mash fetch` first "
                f"(or check the month: {_months_with_posts(store)})"
            )
        volume = store.volume_for(month, config.newsletter.volume_start)
    edition = read_edition(config.editions_dir, month, strict=False)
    issue, _ = compose_issue(ranking, edition, config.newsletter, volume)
    site = config.output_dir / "site"
    if config.newsletter.site_url.startswith(("http://", "https://")):
        picks = tuple(
            replace(p, thumbnail=_stored_thumbnail(site, p.image) if p.image else None)
            for p in issue.picks
        )
        issue = replace(issue, picks=picks)
    path = config.editions_dir / f"{month}.md"
    try:
        text: str | None = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = None
    except UnicodeDecodeError as e:
        raise ConfigError(f"edition is not UTF-8 text ({e.reason})", str(path)) from None
    return issue, text, [c.post.url for c in ranking.candidates]


def _html_part_sizes(eml: bytes) -> tuple[int, int]:
    """Return the HTML part's bytes decoded and as sent, from a message mash.mail built."""
    from email import message_from_bytes, policy

    message = message_from_bytes(eml, policy=policy.default)
    for part in message.walk():
        if part.get_content_type() == "text/html":
            decoded = part.get_payload(decode=True)
            encoded = part.get_payload()
            assert isinstance(decoded, bytes) and isinstance(encoded, str)
            return len(decoded), len(encoded.encode("ascii", "replace"))
    return 0, 0


def _stale_build(config: Config, issue: Issue) -> list[CheckProblem]:
    """Warn when output/YYYY-MM/issue.json is not the issue checked: `mash send` sends
    the built one."""
    from mash.site import issue_to_json

    path = config.output_dir / issue.month / "issue.json"
    try:
        built = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        message = "not built yet: the checks ran on the issue as `mash build` would make it"
    except ValueError:
        message = "it cannot be read: the checks ran on the issue as `mash build` makes it"
    else:
        if built == json.loads(json.dumps(issue_to_json(issue))):
            return []
        message = "the built issue differs from the store and edition now: it is out of date"
    fix = f"run `mash build --month {issue.month}` before `mash send`"
    try:  # as the editor knows it: output/YYYY-MM/issue.json beside feeds.yaml
        shown = str(path.resolve().relative_to(config.path.parent.resolve()))
    except ValueError:
        shown = str(path)
    return [CheckProblem("stale-build", shown, message, fix, "warning")]


def _check_links(
    config: Config, places: dict[str, str], month: str
) -> tuple[list[CheckProblem], int]:
    """Ask every link; a placeholder (example.org) fails without a request."""
    from mash import checks
    from mash.fetch import check_links

    found: list[CheckProblem] = []
    asked = []
    for url, place in places.items():
        placeholder = checks.check_placeholder(url, place, month)
        if placeholder is not None:
            found.append(placeholder)
        else:
            asked.append(url)
    results = asyncio.run(check_links(asked, config.fetch)) if asked else []
    return found + checks.link_problems(results, places, month), len(places)


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


def explain(config: Config, month: str) -> Ranking:
    """Return the month's ranking for `mash posts`."""
    with open_store(config) as store, store.snapshot():
        return rank_month(config, month, store)


# --- the desk (see #17) -----------------------------------------------------------------


@dataclass(frozen=True)
class EditionFile:
    """An edition file as read at one moment; ``version`` is its mtime and hash."""

    path: Path
    text: str
    version: str


@dataclass(frozen=True)
class Edited:
    """What became of one desk change: the file after it, and why it was refused if it was."""

    file: EditionFile
    refused: str = ""
    merged: bool = False  # made on a text that changed on disk after the page read it


@dataclass(frozen=True)
class DeskView:
    """The month as the desk shows it: the file, the ranking and the issue it makes."""

    file: EditionFile
    edition: Edition
    ranking: Ranking
    problems: tuple[Problem, ...]
    rendered: RenderedIssue


def read_edition_file(config: Config, month: str) -> EditionFile:
    """Read editions/YYYY-MM.md with its version; write the draft first when it is missing."""
    path = config.editions_dir / f"{month}.md"
    if not path.exists():
        write_draft(config, month)
    return _edition_file(path)


def _edition_file(path: Path) -> EditionFile:
    import hashlib

    try:
        data = path.read_bytes()
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        raise ConfigError("the edition file is gone; run `mash draft`", str(path)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"edition is not UTF-8 text ({e.reason})", str(path)) from None
    return EditionFile(path, text, f"{mtime}-{hashlib.sha256(data).hexdigest()[:20]}")


def change_edition(
    config: Config, month: str, change: Change, seen: str, seen_text: str | None = None
) -> Edited:
    """Make one change to the edition file at once, atomically; never lose a newer text.

    ``seen`` is the version the editor's page was made from (``seen_text`` its text, when
    known). If the file changed since, the change is made to the newer text when it only
    adds or removes a URL, or when what it replaces did not change; otherwise it is
    refused and the newer file is returned for the page to show. The file is compared
    again just before the replace, so a write that lands meanwhile is not overwritten.
    """
    from mash.edition import MERGEABLE, apply_change, field_values, parse_edition_leniently

    for _ in range(5):
        current = read_edition_file(config, month)
        merged = current.version != seen
        if merged and change.action not in MERGEABLE:
            now = parse_edition_leniently(current.text, month)
            if seen_text is None or field_values(
                parse_edition_leniently(seen_text, month), change
            ) != field_values(now, change):
                return Edited(current, refused=_refusal(current.path, change))
        text = apply_change(current.text, month, change, current.path)
        try:
            write_atomic(current.path, text.encode(), check=partial(_unchanged, current))
        except _ChangedMeanwhile:
            continue
        return Edited(_edition_file(current.path), merged=merged)
    raise BuildError(f"{config.editions_dir / f'{month}.md'} keeps changing; try again")


class _ChangedMeanwhile(Exception):
    """The edition file changed between reading it and replacing it."""


def _unchanged(read: EditionFile, _tmp: Path) -> None:
    if _edition_file(read.path).version != read.version:
        raise _ChangedMeanwhile(str(read.path))


def _refusal(path: Path, change: Change) -> str:
    what = "essay" if change.action == "essay" else change.action.replace("_", " ")
    return (
        f"{path} changed on disk after this page was loaded, and its {what} changed too: "
        "the desk shows the newer file now and did not save your change"
    )


def desk_view(config: Config, month: str, now: datetime | None = None) -> DeskView:
    """Rank the month with its edition file and compose and render the issue it makes.

    Nothing is written but a missing draft. The edition is read leniently, so a file the
    editor is halfway through editing still previews; its problems are returned. Uses
    only the thumbnails `mash build` stored: no network.
    """
    from mash.compose import compose_issue
    from mash.edition import edition_problems, parse_edition_leniently
    from mash.render import make_env, render_issue

    file = read_edition_file(config, month)
    now = now or _now()
    with open_store(config) as store:
        ranking = rank_month(config, month, store, now)
        volume = store.volume_for(month, config.newsletter.volume_start)
    urls = [c.post.url for c in ranking.candidates]
    problems = edition_problems(file.text, month, file.path, urls)
    edition = parse_edition_leniently(file.text, month, file.path)
    issue, _ = compose_issue(ranking, edition, config.newsletter, volume)
    site = config.output_dir / "site"
    picks = tuple(replace(p, thumbnail=_stored_thumbnail(site, p.image)) for p in issue.picks)
    issue = replace(issue, picks=picks)
    rendered = render_issue(issue, make_env(config.templates_dir), config.smtp, now)
    return DeskView(file, edition, ranking, tuple(problems), rendered)


def send_proof(config: Config, month: str, address: str) -> tuple[BuildResult, SendReport]:
    """Build the month, then mail one [PROOF] copy to address: `mash build` and
    `mash send --proof` in one step, so the proof is what the desk shows."""
    from mash.send import load_email, send_issue

    built = build_month(config, month)
    html, text = load_email(config.output_dir, month)
    return built, send_issue(config, built.issue, html, text, proof=address)
