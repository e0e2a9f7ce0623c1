"""The fetch flow: feeds due now, parse, extract, store; then truncated posts' pages."""

from __future__ import annotations

import asyncio
import os
import queue
import time
from collections.abc import Callable
from concurrent.futures import BrokenExecutor, Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from mash.errors import (
    ExtractError,
)
from mash.health import next_attempt_after
from mash.lifetime import start_worker
from mash.records import (
    Config,
    FeedState,
    FetchResult,
    Post,
)
from mash.store import FetchRun, Store, open_store
from mash.urls import redact_url

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

    from mash.parse import ParseJob


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


def _now() -> datetime:
    return datetime.now(UTC)


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
