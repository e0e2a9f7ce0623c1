"""Fetch runs sharing one store (#15): leases of feeds and pages, rounds, a killed run, the
consistent read of a build. The store's part runs on both engines; the real processes (two
`mash fetch` at once, `kill -9`) against one PostgreSQL and the demo blogs, served here
with an access log and a delay on each feed, so the runs overlap."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from mash.demo import DEMO, _Handler, write_demo_config
from mash.records import FeedSpec, FetchResult, Post
from mash.store import ENV_URL, Store, open_store
from mash.store.leases import LEASE_SECONDS

NOW = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
FEEDS = [f"https://blog{i}.example/feed" for i in range(4)]


def _age(store: Store, run: int, seconds: float) -> None:
    """Make a run's last heartbeat ``seconds`` old, as if it had died that long ago."""
    store.engine.execute(
        "UPDATE fetch_runs SET heartbeat = heartbeat - ? WHERE id = ?", (seconds, run)
    )


# --- the store: claims, rounds, a dead run (both engines) ---------------------------------


def test_two_runs_share_the_feeds_and_none_is_claimed_twice_in_a_round(
    database: str | Path,
) -> None:
    with open_store(database) as first, open_store(database) as second:
        first.sync_feeds([FeedSpec(url) for url in FEEDS])
        a, a_round = first.start_fetch_run()
        b, b_round = second.start_fetch_run()
        assert b > a and a_round == a and b_round == a  # b joins a's round

        mine = first.claim_feeds(a, a_round, 2, NOW)
        theirs = second.claim_feeds(b, b_round, 10, NOW)
        assert mine == FEEDS[:2] and theirs == FEEDS[2:]
        # none free, but the other run is alive with unfinished feeds: ask again later
        assert first.claim_feeds(a, a_round, 10, NOW, done=mine) == []
        assert second.claim_feeds(b, b_round, 10, NOW, done=theirs) is None
        assert first.claim_feeds(a, a_round, 10, NOW) is None  # all done in this round

        first.end_fetch_run(a)
        second.end_fetch_run(b)
        c, c_round = first.start_fetch_run()
        assert c_round == c  # nobody alive: a new round, every feed due again
        assert first.claim_feeds(c, c_round, 10, NOW) == FEEDS


def test_a_killed_runs_unfinished_feeds_are_taken_once_its_lease_expires(
    database: str | Path,
) -> None:
    with open_store(database) as first, open_store(database) as second:
        first.sync_feeds([FeedSpec(url) for url in FEEDS])
        a, a_round = first.start_fetch_run()
        b, b_round = second.start_fetch_run()
        fetched = first.claim_feeds(a, a_round, 1, NOW)
        held = first.claim_feeds(a, a_round, 1, NOW, done=fetched or [])  # then a is killed
        assert fetched == FEEDS[:1] and held == FEEDS[1:2]
        assert held is not None
        assert second.claim_feeds(b, b_round, 10, NOW) == FEEDS[2:]
        assert second.claim_feeds(b, b_round, 10, NOW) == []  # a may still be alive
        _age(first, a, LEASE_SECONDS + 1)
        # a's heartbeat is too old: its unfinished feed is b's; its finished one stays done
        assert second.claim_feeds(b, b_round, 10, NOW) == held
        assert second.claim_feeds(b, b_round, 10, NOW, done=FEEDS[1:]) is None


def test_a_run_that_stays_alive_keeps_its_feeds_however_long_it_works(
    database: str | Path,
) -> None:
    with open_store(database) as first, open_store(database) as second:
        first.sync_feeds([FeedSpec(url) for url in FEEDS[:1]])
        a, a_round = first.start_fetch_run()
        b, b_round = second.start_fetch_run()
        assert first.claim_feeds(a, a_round, 10, NOW) == FEEDS[:1]
        _age(first, a, LEASE_SECONDS + 1)
        first.heartbeat(a)  # what the run's heartbeat thread does every few seconds
        assert second.claim_feeds(b, b_round, 10, NOW) == []


def test_backed_off_and_retired_feeds_are_not_claimed(store: Store) -> None:
    store.sync_feeds([FeedSpec(url) for url in FEEDS[:3]])
    failed = FetchResult(url=FEEDS[0], status=503, error="HTTP 503")
    store.record_failure(FEEDS[0], failed, "HTTP 503", "http-503", NOW, NOW.replace(day=2))
    gone = FetchResult(url=FEEDS[1], status=410, error="HTTP 410")
    store.record_failure(FEEDS[1], gone, "HTTP 410", "http-410", NOW, None)
    run, round_start = store.start_fetch_run()
    assert store.claim_feeds(run, round_start, 10, NOW) == FEEDS[2:3]


def test_pages_are_claimed_in_batches_one_run_each(database: str | Path) -> None:
    with open_store(database) as first, open_store(database) as second:
        feed = FEEDS[0]
        first.sync_feeds([FeedSpec(feed)])
        posts = [Post(feed, f"g{i}", f"https://blog0.example/{i}", f"Post {i}") for i in range(5)]
        ok = FetchResult(url=feed, status=200)
        first.save_feed(feed, ok, "Blog", "https://blog0.example/", [(p, None) for p in posts], NOW)
        a, a_round = first.start_fetch_run()
        b, b_round = second.start_fetch_run()
        mine = first.claim_pages(a, a_round, 3, max_attempts=3)
        theirs = second.claim_pages(b, b_round, 3, max_attempts=3)
        assert mine is not None and theirs is not None
        assert len(mine) == 3 and len(theirs) == 2 and not set(mine) & set(theirs)
        assert [p.guid for _, p in first.posts_by_id(mine)] == ["g0", "g1", "g2"]
        first.finish_pages(a, mine)  # tried (and failed): not again in this round
        assert first.claim_pages(a, a_round, 3, max_attempts=3) == []  # theirs: held by b
        second.finish_pages(b, theirs)
        assert first.claim_pages(a, a_round, 3, max_attempts=3) is None


def test_a_second_sqlite_fetch_run_is_refused_and_a_dead_ones_leases_are_freed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "mash.db"
    with open_store(path) as store, open_store(path) as other:
        store.sync_feeds([FeedSpec(url) for url in FEEDS[:2]])
        dead, dead_round = store.start_fetch_run()  # a run killed with a feed claimed
        assert store.claim_feeds(dead, dead_round, 1, NOW) == FEEDS[:1]
        with store.fetch_run() as run:
            assert run.round_start == run.id  # the lock proves the other run dead
            assert store.claim_feeds(run.id, run.round_start, 10, NOW) == FEEDS[:2]
            with pytest.raises(Exception, match="another `mash fetch` is running"):
                other.fetch_run().__enter__()


def test_a_snapshot_does_not_see_what_another_run_commits_meanwhile(
    database: str | Path,
) -> None:
    feed = FEEDS[0]
    start, end = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    when = datetime(2026, 10, 5, tzinfo=UTC)

    def post(i: int) -> Post:
        return Post(feed, f"g{i}", f"https://blog0.example/{i}", f"P{i}", published=when)

    with open_store(database) as build, open_store(database) as fetch:
        fetch.sync_feeds([FeedSpec(feed)])
        ok = FetchResult(url=feed, status=200)
        fetch.save_feed(feed, ok, "Blog", "https://blog0.example/", [(post(1), None)], NOW)
        with build.snapshot():
            assert len(build.posts_between(start, end, [])) == 1
            fetch.save_feed(feed, ok, "Blog", "https://blog0.example/", [(post(2), None)], NOW)
            assert len(build.posts_between(start, end, [])) == 1  # the same month throughout
            assert build.posts_per_month() == [("2026-10", 1)]
        assert len(build.posts_between(start, end, [])) == 2


# --- real processes: two `mash fetch` against one PostgreSQL ------------------------------


FEED_DELAY = 2.0  # seconds each feed takes to answer: the two runs overlap


@contextmanager
def _slow_demo() -> Iterator[tuple[str, list[str]]]:
    """Serve the demo blogs with a delay on each feed; yield the base URL and the log of
    requested paths."""
    log: list[str] = []
    lock = threading.Lock()

    class Handler(_Handler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(DEMO / "site"), **kwargs)

        def send_head(self) -> Any:
            with lock:
                log.append(urlsplit(self.path).path)
            if self.path.endswith((".xml", "/feed")):
                time.sleep(FEED_DELAY)
            return super().send_head()

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # the killed run's connections break: expected here

    server = Server(("127.0.0.1", 0), Handler)
    Handler.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Handler.base, log
    finally:
        server.shutdown()
        server.server_close()


def _fetch(config: Path, url: str) -> subprocess.Popen[str]:
    env = {**os.environ, ENV_URL: url}
    return subprocess.Popen(
        [sys.executable, "-m", "mash.cli", "--config", str(config), "fetch", "--quiet"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _config(tmp_path: Path, base: str) -> Path:
    config = write_demo_config(tmp_path, base)
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    # one feed in flight per run, a few claimed at once (fetch.CLAIM_WIDTHS): the first
    # run cannot claim every feed before the second starts
    data["fetch"]["concurrency"] = 1
    config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return config


def _feed_paths(base: str, config: Path) -> list[str]:
    from mash.config import load_config

    return sorted(urlsplit(f.url).path for f in load_config(config).feeds)


def _stored_posts(url: str) -> tuple[int, int]:
    """Return (posts, distinct (feed, guid)) in the store."""
    with open_store(url) as store:
        row = store.engine.one(
            "SELECT count(*) AS n, count(DISTINCT feed_url || ' ' || guid) AS d FROM posts"
        )
        assert row is not None
        return int(row["n"]), int(row["d"])


def test_two_fetch_processes_share_the_feeds_each_fetched_once(
    postgres_url: str, tmp_path: Path, fetched_demo: Path
) -> None:
    with _slow_demo() as (base, log):
        config = _config(tmp_path, base)
        feeds = _feed_paths(base, config)
        runs = [_fetch(config, postgres_url) for _ in range(2)]
        outputs = [run.communicate(timeout=300)[0] for run in runs]
        assert [run.returncode for run in runs] == [0, 0], outputs
        requested = sorted(path for path in log if path in feeds)
        assert requested == feeds  # each feed once in the round, by one run or the other
    with open_store(postgres_url) as store:
        by_run = store.engine.query(
            "SELECT run_id, count(*) AS n FROM leases WHERE kind = 'feed' GROUP BY run_id"
        )
    assert len(by_run) == 2, by_run  # both runs fetched feeds
    with open_store(fetched_demo / "data" / "mash.db") as alone:
        expected = alone.count_posts()
    assert _stored_posts(postgres_url) == (expected, expected)


def test_a_fetch_killed_mid_run_leaves_its_feeds_to_the_other_and_posts_stored_once(
    postgres_url: str, tmp_path: Path, fetched_demo: Path
) -> None:
    with _slow_demo() as (base, log):
        config = _config(tmp_path, base)
        feeds = _feed_paths(base, config)
        victim, other = _fetch(config, postgres_url), _fetch(config, postgres_url)
        _wait_for_claims(postgres_url, victim.pid)
        os.killpg(victim.pid, signal.SIGKILL)
        victim.communicate(timeout=30)
        output = other.communicate(timeout=300)[0]
        assert other.returncode == 0, output
        # every feed was fetched by the end of the survivor's run: the killed run's
        # unfinished ones again, once its lease expired
        assert set(feeds) <= set(log)
        rerun = _fetch(config, postgres_url)
        output = rerun.communicate(timeout=300)[0]
        assert rerun.returncode == 0, output
    with open_store(fetched_demo / "data" / "mash.db") as alone:
        expected = alone.count_posts()
    assert _stored_posts(postgres_url) == (expected, expected)


def _wait_for_claims(url: str, pid: int, timeout: float = 60.0) -> None:
    """Wait until the fetch process ``pid`` holds unfinished feeds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open_store(url) as store:
            row = store.engine.one(
                """SELECT count(*) AS n FROM leases l JOIN fetch_runs r ON r.id = l.run_id
                   WHERE r.who LIKE ? AND l.kind = 'feed' AND l.done = ?""",
                (f"pid {pid} on %", False),
            )
        if row and row["n"]:
            return
        time.sleep(0.2)
    raise AssertionError(f"fetch pid {pid} claimed no feed in {timeout} s")
