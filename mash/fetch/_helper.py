"""A refresh of many feeds, shared between this process and a helper forked on a second core.

A refresh, where most feeds have validators and most answers are 304, spends its CPU
in the requests themselves: about 0.5 ms of Python for each, on one core (#8). With
two cores, a helper forked once everything is imported shares the list, with half of
each politeness bound (per host, overall), so that the two together never hold more
requests to a host than one process would.

The list is shared, not split. This process starts with the even feeds and the helper
with the odd ones. A feed goes to whichever process first holds slots for it, marked by
a byte per feed in shared memory. Once all of its own are under way, each process goes
on to the other's that nobody has taken yet, from the far end. So when one side is held
up (feeds that stall, a busier core) the other takes more, and both finish together.
Marking is not atomic across processes: if both mark one feed at the same instant,
both fetch it and the first result counts. Neither can skip a feed the other has not
marked.

The helper writes nothing: it sends its results back and the pipeline stores them, as
its own. A helper that dies loses nothing either: a feed without a result is fetched
here afterwards.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection

from mash.lifetime import die_with_parent
from mash.records import FeedState, FetchResult, FetchSettings

# Fewer feeds than this are not worth a second process: an all-304 refresh of 100 feeds
# took 64 ms with a helper against 71 without, of 200 113 against 130, of 400 197 against
# 263 (in one process, median of 8, farm on 127.0.0.1).
MIN_FEEDS = 200
HELPER_EXIT = 10.0  # seconds the helper gets to exit once its pipe is closed

OnResult = Callable[[FetchResult], None]
Deliver = Callable[[int, FetchResult], None]


@dataclass(frozen=True)
class Share:
    """One process's view of a feed list it shares with another.

    ``marks`` is a byte per feed in shared memory, 1 once either process has the feed;
    ``steal`` is the other's part of the list, far end first.
    """

    marks: ctypes.Array[ctypes.c_ubyte]
    steal: Sequence[int]

    def take(self, i: int) -> bool:
        """Take feed ``i`` unless the other process has: False if it has."""
        if self.marks[i]:
            return False
        self.marks[i] = 1
        return True

    def taken(self, i: int) -> bool:
        return bool(self.marks[i])


class Collected:
    """The results of a feed list by position: the first for each feed counts, and
    ``on_result`` is called once per feed, as it arrives."""

    def __init__(self, count: int, on_result: OnResult | None) -> None:
        self._results: list[FetchResult | None] = [None] * count
        self._on_result = on_result

    def deliver(self, i: int, result: FetchResult) -> None:
        if self._results[i] is None:  # of two results for one feed, the first counts
            self._results[i] = result
            if self._on_result is not None:
                self._on_result(result)

    def missing(self) -> list[int]:
        return [i for i, result in enumerate(self._results) if result is None]

    def in_order(self) -> list[FetchResult]:
        done = [result for result in self._results if result is not None]
        assert len(done) == len(self._results)  # every feed has delivered
        return done


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
    from mash.fetch import fetch_feeds, fetch_shared

    shares = _shares(feeds, settings) if helper else None
    if shares is None:
        return asyncio.run(fetch_feeds(feeds, settings, on_result))
    mine, helper_settings = shares
    evens, odds = range(0, len(feeds), 2), range(1, len(feeds), 2)
    context = multiprocessing.get_context("fork")
    marks = context.RawArray(ctypes.c_ubyte, len(feeds))
    reader, writer = context.Pipe(duplex=False)
    theirs = Share(marks, steal=evens[::-1])
    process = context.Process(
        target=_help,
        args=(os.getpid(), feeds, odds, helper_settings, theirs, writer),
        name="mash-fetch-helper",
    )
    process.daemon = True  # ends with this process, when it exits; when it is killed, see _help
    # What is alive now stays out of the garbage collector's walks in both processes: the
    # helper then copies none of the pages it inherits (a collection writes to every
    # object it walks), and neither walks the ~40,000 objects the imports left at each
    # full collection: about 0.1 s of an all-304 refresh of 1000 feeds, side by side
    # (#8). Not undone here: what is alive now (modules, config, the feed list) lives
    # to the end of the command anyway.
    gc.freeze()
    process.start()
    writer.close()
    if progress is not None:
        progress(f"a helper process (pid {process.pid}) shares the {len(feeds)} feeds")
    results = Collected(len(feeds), on_result)
    ours = Share(marks, steal=odds[::-1])
    try:
        helped = asyncio.run(_beside(feeds, evens, mine, ours, reader, results.deliver))
    except BaseException:
        process.terminate()  # interrupted: the helper's results would have nowhere to go
        raise
    finally:
        reader.close()
        process.join(HELPER_EXIT)
        if process.is_alive():  # it sent all it had, or died mid-way: only its exit hangs
            process.terminate()
            process.join()
    if progress is not None:
        progress(f"the helper fetched {helped} of the {len(feeds)} feeds")
    # a helper that died may have marked feeds it never sent: they are fetched here
    if missing := results.missing():
        asyncio.run(fetch_shared(feeds, missing, settings, results.deliver))
    return results.in_order()


async def _beside(
    feeds: Sequence[FeedState],
    order: Sequence[int],
    settings: FetchSettings,
    share: Share,
    reader: Connection,
    deliver: Deliver,
) -> int:
    """Fetch our part of the list while the helper's results arrive; return how many
    results the helper sent.

    The helper's results are read as they come, between our own requests: their
    parsing starts at once, and none piles up in a pipe or in memory.
    """
    from mash.fetch import fetch_shared

    loop = asyncio.get_running_loop()
    ended: asyncio.Future[None] = loop.create_future()
    helped = 0

    def readable() -> None:
        nonlocal helped
        try:
            while reader.poll():
                i, result = reader.recv()
                helped += 1
                deliver(i, result)
        except (EOFError, OSError):  # the helper is done, or died
            loop.remove_reader(reader.fileno())
            ended.set_result(None)
        except BaseException as e:  # on_result failed (the store): as if it were ours
            loop.remove_reader(reader.fileno())
            ended.set_exception(e)

    loop.add_reader(reader.fileno(), readable)
    try:
        await fetch_shared(feeds, order, settings, deliver, share)
        await ended
    finally:
        if not ended.done():
            loop.remove_reader(reader.fileno())
    return helped


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


def _help(
    parent: int,
    feeds: Sequence[FeedState],
    order: Sequence[int],
    settings: FetchSettings,
    share: Share,
    writer: Connection,
) -> None:
    """In the helper: fetch, sending each result to the parent as it completes.

    The helper dies with the run, even by SIGKILL: left alone it went on fetching, and
    held the run's lock, for minutes (#21). It shares no lock: forking closed its copy.
    """
    from mash.fetch import fetch_shared

    die_with_parent(parent)

    def send(i: int, result: FetchResult) -> None:
        writer.send((i, result))

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the parent, which stops us
    asyncio.run(fetch_shared(feeds, order, settings, send, share))
    writer.close()
