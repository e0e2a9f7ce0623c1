"""A refresh of many feeds, fetched by this process and a helper forked on a second core.

A refresh, where most feeds have validators and most answers are 304, spends its CPU
in the requests themselves: about 0.5 ms of Python for each, on one core (#8). With
two cores, a helper forked once everything is imported fetches every other feed, with
half of each politeness bound (per host, overall), so that the two together never
hold more requests to a host than one process would. The helper writes nothing: it
sends its results back and the pipeline stores them, as its own. A helper that dies
loses nothing either: whatever it did not send is fetched here afterwards.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from multiprocessing.connection import Connection

from mash.records import FeedState, FetchResult, FetchSettings

MIN_FEEDS = 200  # below this a helper saves less than it costs to fork

OnResult = Callable[[FetchResult], None]


def fetch_feeds_sync(
    feeds: Sequence[FeedState],
    settings: FetchSettings,
    on_result: OnResult | None = None,
    *,
    helper: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[FetchResult]:
    """Fetch every feed, from synchronous code; results are in the order of ``feeds``.

    ``helper`` asks for a helper process, for a refresh: it is forked only where that is
    safe and pays (enough feeds, two cores, Linux, no other thread: a fork copies one).
    """
    from mash.fetch import fetch_feeds

    shares = _shares(feeds, settings) if helper else None
    if shares is None:
        return asyncio.run(fetch_feeds(feeds, settings, on_result))
    mine, helper_settings = shares
    theirs = list(feeds[1::2])
    context = multiprocessing.get_context("fork")
    reader, writer = context.Pipe(duplex=False)
    process = context.Process(
        target=_help, args=(theirs, helper_settings, writer), name="mash-fetch-helper"
    )
    process.daemon = True  # ends with this process
    process.start()
    writer.close()
    if progress is not None:
        progress(f"a helper process (pid {process.pid}) fetches {len(theirs)} of the feeds")
    try:
        got = asyncio.run(fetch_feeds(list(feeds[0::2]), mine, on_result))
        sent = _receive(reader)
    except BaseException:
        process.terminate()  # interrupted: the helper's results would have nowhere to go
        raise
    finally:
        reader.close()
        process.join()
    if len(sent) == len(theirs):
        for result in sent:
            if on_result is not None:
                on_result(result)
    else:  # the helper died before it sent anything: its feeds are fetched here
        sent = asyncio.run(fetch_feeds(theirs, settings, on_result))
    return [sent[i // 2] if i % 2 else got[i // 2] for i in range(len(feeds))]


def _shares(
    feeds: Sequence[FeedState], settings: FetchSettings
) -> tuple[FetchSettings, FetchSettings] | None:
    """Return (this process's settings, the helper's), or None when a helper won't pay."""
    if (
        len(feeds) < MIN_FEEDS
        or settings.per_host < 2
        or settings.concurrency < 2
        or (os.cpu_count() or 1) < 2
        or not _fork_is_safe()
    ):
        return None
    helper = replace(
        settings, per_host=settings.per_host // 2, concurrency=settings.concurrency // 2
    )
    mine = replace(
        settings,
        per_host=settings.per_host - helper.per_host,
        concurrency=settings.concurrency - helper.concurrency,
    )
    return mine, helper


def _fork_is_safe() -> bool:
    """Tell whether forking is safe: on Linux, with no other thread (a fork copies one
    thread; a lock another one held would stay held in the helper forever)."""
    return sys.platform == "linux" and threading.active_count() == 1


def _help(feeds: list[FeedState], settings: FetchSettings, writer: Connection) -> None:
    """In the helper: fetch, then send every result at once (few, small: a refresh)."""
    from mash.fetch import fetch_feeds

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the parent, which stops us
    writer.send(asyncio.run(fetch_feeds(feeds, settings)))
    writer.close()


def _receive(reader: Connection) -> list[FetchResult]:
    """Return the helper's results, or none if it died first (its deadlines bound its wait)."""
    try:
        results: list[FetchResult] = reader.recv()
    except (EOFError, OSError):
        return []
    return results
