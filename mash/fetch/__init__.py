"""Fetch feeds and article pages over HTTP: async, bounded, polite, never raising per URL.

Every URL gets one FetchResult, in input order; a failure is in ``error`` and
``error_kind``, never an exception. This package does no parsing: the bytes go
to ``mash.parse``.

- ``fetch_feeds``: conditional GET from each FeedState, redirects (``moved_to``
  only when every hop was permanent); a retry in the run only for a flaky connection
  or a short Retry-After (mash.fetch._http), the rest is the next run's (#18).
- ``fetch_pages``: the same, plus robots.txt and Crawl-delay.
- ``check_links``: HEAD (GET where HEAD is refused) each link of an issue, a few at a
  time, paced per host, minding robots.txt (`mash check`, see #17).

Every connection, of either, goes only to public addresses and those of
``fetch.allow_private`` (mash.fetch._guard, see #21).
- ``discover_feed_urls``: the feeds an HTML page links to.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from mash.fetch import _aiohttp  # noqa: F401 (first: aiohttp without its unused CA stores)
from mash.fetch._discover import discover_feed_urls
from mash.fetch._http import (
    DEFAULT_TRANSPORT,
    FEED_ACCEPT,
    PAGE_ACCEPT,
    Http,
    Limits,
    fetch_url,
    url_problem,
)
from mash.fetch._pages import Pacer, Robots
from mash.records import FeedState, FetchResult, FetchSettings

if TYPE_CHECKING:
    import aiohttp.abc

__all__ = [
    "check_links",
    "discover_feed_urls",
    "fetch_claimed_sync",
    "fetch_document",
    "fetch_feeds",
    "fetch_feeds_sync",
    "fetch_pages",
]


async def fetch_feeds(
    feeds: Sequence[FeedState],
    settings: FetchSettings,
    on_result: Callable[[FetchResult], None] | None = None,
) -> list[FetchResult]:
    """Fetch every feed concurrently; call ``on_result`` as each one completes.

    A 304 keeps the stored ETag / Last-Modified when the server does not repeat them.
    """
    return await fetch_feeds_with(feeds, settings, on_result, transport=DEFAULT_TRANSPORT)


def fetch_feeds_sync(
    feeds: Sequence[FeedState],
    settings: FetchSettings,
    on_result: Callable[[FetchResult], None] | None = None,
) -> list[FetchResult]:
    """Do ``fetch_feeds`` from synchronous code, for a whole run's feeds.

    What is alive now (modules, config, the feed list) lives to the end of the command:
    it is frozen out of the garbage collector's walks, which otherwise walk the ~40,000
    objects the imports leave at each full collection (see #8). One process: a helper
    forked to share a refresh gained 40-60 ms of ~0.7 s, side by side (see #21).
    """
    gc.freeze()
    return asyncio.run(fetch_feeds(feeds, settings, on_result))


async def fetch_feeds_with(
    feeds: Sequence[FeedState],
    settings: FetchSettings,
    on_result: Callable[[FetchResult], None] | None = None,
    *,
    transport: str,
) -> list[FetchResult]:
    """Do ``fetch_feeds`` on a chosen transport ("aiohttp" or "httpx"); for benchmarks."""
    limits = Limits(settings)
    async with Http(settings, transport) as client:
        jobs = (_fetch_one(client, feed, settings, limits, on_result) for feed in feeds)
        return list(await asyncio.gather(*jobs))


# Asked for more feeds and found none, while another run holds some: ask again this late.
CLAIM_POLL = 1.0  # seconds
CLAIM_WIDTHS = 4  # claim up to this many times fetch.concurrency feeds in flight


def fetch_claimed_sync(
    claim: Callable[[int], Sequence[FeedState] | None],
    settings: FetchSettings,
    on_result: Callable[[FetchResult], None] | None = None,
) -> list[FetchResult]:
    """Fetch the feeds ``claim(n)`` hands out, asking for more as they finish (see #15).

    ``claim(n)`` returns up to n feeds to fetch now; [] when none is free yet (asked
    again as a fetch ends, or after CLAIM_POLL); None when no more will come. More are
    claimed when fewer than ``settings.concurrency`` are left in hand, up to
    CLAIM_WIDTHS times that; results in completion order.
    """
    gc.freeze()
    return asyncio.run(fetch_claimed_with(claim, settings, on_result, transport=DEFAULT_TRANSPORT))


async def fetch_claimed_with(
    claim: Callable[[int], Sequence[FeedState] | None],
    settings: FetchSettings,
    on_result: Callable[[FetchResult], None] | None = None,
    *,
    transport: str,
) -> list[FetchResult]:
    """Do ``fetch_claimed_sync`` on a chosen transport; for benchmarks."""
    limits = Limits(settings)
    width = max(settings.concurrency, 1)
    results: list[FetchResult] = []
    async with Http(settings, transport) as client:
        running: set[asyncio.Task[FetchResult]] = set()
        exhausted = False
        while True:
            if not exhausted and len(running) < width:
                # a few widths at once: each claim is a transaction on the store
                batch = claim(CLAIM_WIDTHS * width - len(running))
                exhausted = batch is None
                for feed in batch or ():
                    one = _fetch_one(client, feed, settings, limits, on_result)
                    running.add(asyncio.ensure_future(one))
            if not running:
                if exhausted:
                    break
                await asyncio.sleep(CLAIM_POLL)
                continue
            done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            results.extend(task.result() for task in done)
    return results


def _fetch_one(
    client: Http,
    feed: FeedState,
    settings: FetchSettings,
    limits: Limits,
    on_result: Callable[[FetchResult], None] | None,
) -> Awaitable[FetchResult]:
    async def one() -> FetchResult:
        result = await fetch_url(client, feed.url, settings, limits, _feed_headers(feed))
        if result.status == 304:
            result = replace(
                result,
                etag=result.etag or feed.etag,
                last_modified=result.last_modified or feed.last_modified,
            )
        if on_result is not None:
            on_result(result)
        return result

    return one()


def _feed_headers(feed: FeedState) -> dict[str, str]:
    headers = {"Accept": FEED_ACCEPT}
    if feed.etag:
        headers["If-None-Match"] = feed.etag
    if feed.last_modified:
        headers["If-Modified-Since"] = feed.last_modified
    return headers


async def fetch_pages(urls: Sequence[str], settings: FetchSettings) -> list[FetchResult]:
    """Fetch article pages, obeying robots.txt and Crawl-delay.

    No conditional GET: pages are fetched once. A page on a feed's own host is
    judged like any other (see #21).
    """
    return await fetch_pages_with(urls, settings, transport=DEFAULT_TRANSPORT)


async def fetch_pages_with(
    urls: Sequence[str],
    settings: FetchSettings,
    *,
    transport: str,
    resolver: aiohttp.abc.AbstractResolver | None = None,
) -> list[FetchResult]:
    """Do ``fetch_pages`` on a chosen transport (and resolver); for benchmarks and tests."""
    limits = Limits(settings)
    pacer = Pacer()
    async with Http(settings, transport, resolver) as client:
        robots = Robots(client, settings, limits)

        async def one(url: str) -> FetchResult:
            if (problem := url_problem(url)) is not None:
                return FetchResult(url=url, error=problem, error_kind="bad-url")
            refusal = await robots.check(url)
            if refusal is not None:
                return FetchResult(url=url, error=refusal[1], error_kind=refusal[0])
            await pacer.wait(url, await robots.crawl_delay(url))
            headers = {"Accept": PAGE_ACCEPT}
            return await fetch_url(client, url, settings, limits, headers)

        return list(await asyncio.gather(*(one(url) for url in urls)))


def fetch_document(url: str, settings: FetchSettings) -> FetchResult:
    """Fetch one document (an SNS signing certificate, see #16) through the guard, no
    robots.txt: a machine endpoint, asked once and cached by the caller."""

    async def one() -> FetchResult:
        async with Http(settings, DEFAULT_TRANSPORT) as client:
            return await fetch_url(client, url, settings, Limits(settings), {"Accept": "*/*"})

    return asyncio.run(one())


# `mash check` asks about a handful of links, once, while the editor waits (see #17).
LINK_CONCURRENCY = 4  # links in flight at once
LINK_PER_HOST = 2
LINK_PACE = 0.5  # seconds between two requests to one host, or its Crawl-delay if longer
LINK_DEADLINE = 15.0  # seconds for one request, redirects included
LINK_BODY = 64 * 1024  # a GET reads no more: the link answered, its page is not wanted


async def check_links(
    urls: Sequence[str], settings: FetchSettings, *, pace: float = LINK_PACE
) -> list[FetchResult]:
    """Ask whether each link answers: HEAD, then GET where HEAD gets an error status.

    Many servers refuse HEAD (405, 501) or mishandle it (a 404 or 403 that GET does not
    get), so only the GET's answer condemns a link. A link robots.txt disallows is not
    requested (``error_kind`` "robots"); one whose robots.txt cannot be fetched is
    (one request, as a reader's click). A GET that passes ``LINK_BODY`` is cut off and
    reported as kind "too-large", which means the link answered 2xx.
    """
    return await check_links_with(urls, settings, pace=pace, transport=DEFAULT_TRANSPORT)


async def check_links_with(
    urls: Sequence[str],
    settings: FetchSettings,
    *,
    pace: float = LINK_PACE,
    transport: str,
    resolver: aiohttp.abc.AbstractResolver | None = None,
) -> list[FetchResult]:
    """Do ``check_links`` on a chosen transport (and resolver); for tests."""
    settings = replace(
        settings,
        concurrency=min(settings.concurrency, LINK_CONCURRENCY),
        per_host=min(settings.per_host, LINK_PER_HOST),
        deadline=min(settings.deadline, LINK_DEADLINE),
        max_bytes=min(settings.max_bytes, LINK_BODY),
    )
    limits = Limits(settings)
    pacer = Pacer()
    headers = {"Accept": PAGE_ACCEPT}
    async with Http(settings, transport, resolver) as client:
        robots = Robots(client, settings, limits)

        async def ask(url: str, method: str) -> FetchResult:
            await pacer.wait(url, max(pace, await robots.crawl_delay(url)))
            return await fetch_url(client, url, settings, limits, headers, method)

        async def one(url: str) -> FetchResult:
            if (problem := url_problem(url)) is not None:
                return FetchResult(url=url, error=problem, error_kind="bad-url")
            if await robots.allows(url) is False:
                return FetchResult(url=url, error="robots.txt disallows it", error_kind="robots")
            head = await ask(url, "HEAD")
            if head.status is None or head.status < 400:
                return head  # answered, or no answer at all (DNS, refused, timeout)
            return await ask(url, "GET")

        return list(await asyncio.gather(*(one(url) for url in urls)))
