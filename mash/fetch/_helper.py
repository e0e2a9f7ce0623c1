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
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from multiprocessing.connection import Connection

from mash.records import FeedState, FetchResult, FetchSettings

# Fewer feeds than this are not worth a second process: an all-304 refresh of 100 feeds
# took 64 ms with a helper against 71 without, of 200 113 against 130, of 400 197 against
# 263 (in one process, median of 8, farm on 127.0.0.1).
MIN_FEEDS = 200
HELPER_EXIT = 10.0  # seconds the helper gets to exit once its pipe is closed

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
    ``on_result`` runs in this process for every feed, the helper's included, as each
    result arrives.
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
        got, sent = asyncio.run(_beside(list(feeds[0::2]), mine, theirs, reader, on_result))
    except BaseException:
        process.terminate()  # interrupted: the helper's results would have nowhere to go
        raise
    finally:
        reader.close()
        process.join(HELPER_EXIT)
        if process.is_alive():  # it sent all it had, or died mid-way: only its exit hangs
            process.terminate()
            process.join()
    # a helper that died sent only some: the rest are fetched here
    missing = [theirs[i] for i, result in enumerate(sent) if result is None]
    again = iter(asyncio.run(fetch_feeds(missing, settings, on_result)) if missing else [])
    helped = [result if result is not None else next(again) for result in sent]
    return [helped[i // 2] if i % 2 else got[i // 2] for i in range(len(feeds))]


async def _beside(
    mine: list[FeedState],
    settings: FetchSettings,
    theirs: list[FeedState],
    reader: Connection,
    on_result: OnResult | None,
) -> tuple[list[FetchResult], list[FetchResult | None]]:
    """Fetch our share while the helper's results arrive; return both, in order.

    The helper's results are read as they come, between our own requests: their
    parsing starts at once, and none piles up in a pipe or in memory.
    """
    from mash.fetch import fetch_feeds

    loop = asyncio.get_running_loop()
    ended: asyncio.Future[None] = loop.create_future()
    sent: list[FetchResult | None] = [None] * len(theirs)
    where: dict[str, deque[int]] = defaultdict(deque)
    for i, feed in enumerate(theirs):
        where[feed.url].append(i)

    def readable() -> None:
        try:
            while reader.poll():
                result: FetchResult = reader.recv()
                sent[where[result.url].popleft()] = result
                if on_result is not None:
                    on_result(result)
        except (EOFError, OSError):  # the helper is done, or died
            loop.remove_reader(reader.fileno())
            ended.set_result(None)
        except BaseException as e:  # on_result failed (the store): as if it were ours
            loop.remove_reader(reader.fileno())
            ended.set_exception(e)

    loop.add_reader(reader.fileno(), readable)
    try:
        got = await fetch_feeds(mine, settings, on_result)
        await ended
    finally:
        if not ended.done():
            loop.remove_reader(reader.fileno())
    return got, sent


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
    """In the helper: fetch, sending each result to the parent as it completes."""
    from mash.fetch import fetch_feeds

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the parent, which stops us
    asyncio.run(fetch_feeds(feeds, settings, writer.send))
    writer.close()
