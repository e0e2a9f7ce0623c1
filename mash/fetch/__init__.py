"""Fetch feeds and article pages over HTTP: async, bounded, polite, never raising per URL.

Every URL gets one FetchResult, in input order; a failure is in ``error`` and
``error_kind``, never an exception. This package does no parsing: the bytes go
to ``mash.parse``.

- ``fetch_feeds``: conditional GET from each FeedState, redirects (``moved_to``
  only when every hop was permanent), retries on transient failures.
- ``fetch_pages``: the same, plus robots.txt and Crawl-delay.

Every connection, of either, goes only to public addresses and those of
``fetch.allow_private`` (mash.fetch._guard, see #21).
- ``discover_feed_urls``: the feeds an HTML page links to.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING

from mash.fetch import _aiohttp  # noqa: F401 (first: aiohttp without its unused CA stores)
from mash.fetch._discover import discover_feed_urls
from mash.fetch._helper import Collected, Share, fetch_feeds_sync
from mash.fetch._http import (
    DEFAULT_TRANSPORT,
    FEED_ACCEPT,
    PAGE_ACCEPT,
    Http,
    Limits,
    Taken,
    fetch_url,
    url_problem,
)
from mash.fetch._pages import Pacer, Robots
from mash.records import FeedState, FetchResult, FetchSettings

if TYPE_CHECKING:
    import aiohttp.abc

__all__ = ["discover_feed_urls", "fetch_feeds", "fetch_feeds_sync", "fetch_pages"]


async def fetch_feeds(
    feeds: Sequence[FeedState],
    settings: FetchSettings,
    on_result: Callable[[FetchResult], None] | None = None,
) -> list[FetchResult]:
    """Fetch every feed concurrently; call ``on_result`` as each one completes.

    A 304 keeps the stored ETag / Last-Modified when the server does not repeat them.
    """
    return await fetch_feeds_with(feeds, settings, on_result, transport=DEFAULT_TRANSPORT)


async def fetch_feeds_with(
    feeds: Sequence[FeedState],
    settings: FetchSettings,
    on_result: Callable[[FetchResult], None] | None = None,
    *,
    transport: str,
) -> list[FetchResult]:
    """Do ``fetch_feeds`` on a chosen transport ("aiohttp" or "httpx"); for benchmarks."""
    results = Collected(len(feeds), on_result)
    await fetch_shared(feeds, range(len(feeds)), settings, results.deliver, transport=transport)
    return results.in_order()  # without a share, every feed delivers


async def fetch_shared(
    feeds: Sequence[FeedState],
    order: Sequence[int],
    settings: FetchSettings,
    deliver: Callable[[int, FetchResult], None],
    share: Share | None = None,
    *,
    transport: str = DEFAULT_TRANSPORT,
) -> None:
    """Fetch ``feeds[i]`` for each ``i`` of ``order``, in that order as slots free up, and
    ``deliver(i, result)`` as each completes.

    With ``share``, another process shares the list (see mash.fetch._helper). A feed is
    fetched only if ``share.take(i)`` says yes once its request holds its slots. Once
    every feed of ``order`` has been taken or found taken, this process goes on to those
    of ``share.steal`` that nobody has taken yet.
    """
    limits = Limits(settings)
    async with Http(settings, transport) as client:
        unstarted = len(order)
        stolen: list[asyncio.Task[None]] = []

        def take(i: int, own: bool) -> bool:
            nonlocal unstarted
            assert share is not None
            if own:
                unstarted -= 1
                if unstarted == 0:  # all ours are under way: help with the rest
                    stolen.extend(
                        asyncio.create_task(one(j, own=False))
                        for j in share.steal
                        if not share.taken(j)
                    )
            return share.take(i)

        async def one(i: int, own: bool = True) -> None:
            feed = feeds[i]
            claim = None if share is None else partial(take, i, own)
            try:
                result = await fetch_url(
                    client, feed.url, settings, limits, _feed_headers(feed), claim=claim
                )
            except Taken:
                return
            if result.status == 304:
                result = replace(
                    result,
                    etag=result.etag or feed.etag,
                    last_modified=result.last_modified or feed.last_modified,
                )
            deliver(i, result)

        await asyncio.gather(*(one(i) for i in order))
        await asyncio.gather(*stolen)


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
