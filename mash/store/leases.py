"""Fetch runs and their leases: several `mash fetch` runs share one store's feeds (#15).

A run registers in ``fetch_runs`` and keeps a heartbeat there; it is alive while the
heartbeat is younger than ``LEASE_SECONDS`` and it has not ended. Its *round* starts at
the earliest run alive when it registered (run ids only grow): a feed (or a post's page)
whose lease a run of this round holds or has finished is not this run's to fetch. A
lease is a row of ``leases`` (kind "feed" keyed by the feed, kind "page" by the post id)
naming the run that claimed it, and whether it is done; a lease not done lasts as long
as its run's heartbeat, so a killed run's unfinished work is taken by another run once
the heartbeat is ``LEASE_SECONDS`` old. On PostgreSQL a claim locks the rows it takes
with ``FOR UPDATE SKIP LOCKED``: two runs claiming at once never take the same one. On
SQLite one fetch runs at a time (``Store.lock("fetch")``): the same SQL, uncontended.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from mash.errors import StoreBusy, StoreError
from mash.store._base import Engine

T = TypeVar("T")

LEASE_SECONDS = 15.0  # a run not heard from for this long is dead; its leases go
HEARTBEAT_SECONDS = LEASE_SECONDS / 5  # how often a live run says so
_CHUNK = 500  # items per statement

# The store's clock, in seconds since the epoch: one clock for every machine (the server's)
_CLOCK = {
    "postgresql": "extract(epoch FROM clock_timestamp())::float8",
    "sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
}
_ALIVE = "SELECT id FROM fetch_runs WHERE ended IS NULL AND heartbeat > {clock} - ?"
# a lease another run may take: of an earlier round, or unfinished by a run now dead
_FREE = "(l.run_id < ? OR (l.done = ? AND l.run_id <> ? AND l.run_id NOT IN ({alive})))"


def _again(work: Callable[[], T], tries: int = 5) -> T:
    """Run a claim, again if PostgreSQL chose it as a deadlock's victim: it is idempotent."""
    for attempt in range(tries):
        try:
            return work()
        except StoreBusy:
            if attempt == tries - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class FetchRun:
    """A registered fetch run: its id and the first run of its round."""

    id: int
    round_start: int


class _Heartbeat:
    """A thread that keeps a run alive on its own connection, while the run works."""

    def __init__(self, engine: Engine, run: int) -> None:
        self.engine = engine
        self.run = run
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"heartbeat {run}", daemon=True)
        self.thread.start()

    def _beat(self) -> None:
        sql = f"UPDATE fetch_runs SET heartbeat = {_CLOCK[self.engine.kind]} WHERE id = ?"
        while not self.stopped.wait(HEARTBEAT_SECONDS):
            # a lost beat: at worst another run takes this run's feeds again
            with suppress(StoreError):
                self.engine.execute(sql, (self.run,))

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()
        self.engine.close()


class LeasesMixin:
    engine: Engine

    @contextmanager
    def fetch_run(self) -> Iterator[FetchRun]:
        """Register a fetch run for the block; its heartbeat goes on until the block ends.

        On SQLite the block holds the "fetch" lock (one fetch at a time, StoreBusy for a
        second); on PostgreSQL runs share the feeds through leases instead.
        """
        alone = self.engine.kind == "sqlite"
        with self.engine.lock("fetch") if alone else nullcontext():
            run, round_start = self.start_fetch_run(alone=alone)
            beat = None if alone else _Heartbeat(self.engine.clone(), run)
            try:
                yield FetchRun(run, round_start)
            finally:
                if beat is not None:
                    beat.stop()
                with suppress(StoreError):  # the store is gone: the heartbeat stopped anyway
                    self.end_fetch_run(run)

    def _clock(self) -> str:
        return _CLOCK[self.engine.kind]

    def _alive(self) -> str:
        return _ALIVE.format(clock=self._clock())

    def _skip_locked(self) -> str:
        return " FOR UPDATE OF l SKIP LOCKED" if self.engine.kind == "postgresql" else ""

    def start_fetch_run(self, *, alone: bool = False) -> tuple[int, int]:
        """Register a fetch run; return (its id, the first run of its round).

        ``alone``: the caller holds the only fetch lock (SQLite), so every other run
        registered is dead: they are ended, and the round is this run's.
        """
        clock = self._clock()
        who = f"pid {os.getpid()} on {socket.gethostname()}"[:200]
        with self.engine.transaction():
            if alone:
                self.engine.execute(f"UPDATE fetch_runs SET ended = {clock} WHERE ended IS NULL")
            row = self.engine.one(
                f"""INSERT INTO fetch_runs (who, started, heartbeat)
                    VALUES (?, {clock}, {clock}) RETURNING id""",
                (who,),
            )
            assert row is not None
            run = int(row["id"])
            first = self.engine.one(
                f"SELECT min(id) AS first FROM ({self._alive()}) AS alive", (LEASE_SECONDS,)
            )
            round_start = min(run, int(first["first"])) if first and first["first"] else run
            # runs ended a day ago are history; the newest row stays, so ids never repeat
            self.engine.execute(
                f"""DELETE FROM fetch_runs WHERE ended < {clock} - 86400
                    AND id < (SELECT max(id) FROM fetch_runs)"""
            )
        return run, round_start

    def heartbeat(self, run: int) -> None:
        """Say the run is alive: its unfinished leases last another LEASE_SECONDS."""
        self.engine.execute(
            f"UPDATE fetch_runs SET heartbeat = {self._clock()} WHERE id = ?", (run,)
        )

    def end_fetch_run(self, run: int) -> None:
        """End a run: whatever it left unfinished is free at once."""
        self.engine.execute(f"UPDATE fetch_runs SET ended = {self._clock()} WHERE id = ?", (run,))

    def claim_feeds(
        self,
        run: int,
        round_start: int,
        limit: int,
        now: datetime,
        done: Iterable[str] = (),
    ) -> list[str] | None:
        """Mark ``done`` feeds done, then claim up to ``limit`` due feeds for the run.

        Return the claimed feeds' keys (feeds.url); [] when none is free now but
        another live run holds some unfinished (ask again later: it may die); None
        when the round has nothing left for this run.
        """
        done = list(done)
        return _again(lambda: self._claim_feeds(run, round_start, limit, now, done))

    def _claim_feeds(
        self, run: int, round_start: int, limit: int, now: datetime, done: list[str]
    ) -> list[str] | None:
        skip = self._skip_locked()
        with self.engine.transaction():
            self._finish("feed", run, done)
            # in key order: two runs adding the same rows wait on each other, never deadlock
            self.engine.execute(
                """INSERT INTO leases (kind, item, run_id, done)
                   SELECT 'feed', url, 0, ? FROM feeds
                   WHERE url NOT IN (SELECT item FROM leases WHERE kind = 'feed')
                   ORDER BY url ON CONFLICT DO NOTHING""",
                (True,),
            )
            rows = self.engine.query(
                f"""UPDATE leases SET run_id = ?, done = ? WHERE kind = 'feed' AND item IN (
                      SELECT l.item FROM leases l JOIN feeds f ON f.url = l.item
                      WHERE l.kind = 'feed' AND f.retired = ?
                        AND (f.next_attempt IS NULL OR f.next_attempt <= ?)
                        AND {_FREE.format(alive=self._alive())}
                      ORDER BY l.item LIMIT ?{skip})
                   RETURNING item""",
                (run, False, False, now, round_start, False, run, LEASE_SECONDS, limit),
            )
            if rows:
                return sorted(str(r["item"]) for r in rows)
            return [] if self._others_working("feed", run) else None

    def finish_feeds(self, run: int, done: Iterable[str]) -> None:
        """Mark feeds the run has stored done (for this round)."""
        with self.engine.transaction():
            self._finish("feed", run, done)

    def claim_pages(
        self, run: int, round_start: int, limit: int, max_attempts: int
    ) -> list[int] | None:
        """Claim up to ``limit`` posts waiting for their page (see pending_posts).

        Return their ids; [] when another live run holds the rest; None when none is left.
        """
        return _again(lambda: self._claim_pages(run, round_start, limit, max_attempts))

    def _claim_pages(
        self, run: int, round_start: int, limit: int, max_attempts: int
    ) -> list[int] | None:
        skip = self._skip_locked()
        with self.engine.transaction():
            self.engine.execute(
                """INSERT INTO leases (kind, item, run_id, done)
                   SELECT 'page', CAST(id AS TEXT), 0, ? FROM posts
                   WHERE source = 'pending' AND page_attempts < ?
                     AND CAST(id AS TEXT) NOT IN (SELECT item FROM leases WHERE kind = 'page')
                   ORDER BY id ON CONFLICT DO NOTHING""",
                (True, max_attempts),
            )
            rows = self.engine.query(
                f"""UPDATE leases SET run_id = ?, done = ? WHERE kind = 'page' AND item IN (
                      SELECT l.item FROM leases l JOIN posts p ON CAST(p.id AS TEXT) = l.item
                      WHERE l.kind = 'page' AND p.source = 'pending' AND p.page_attempts < ?
                        AND {_FREE.format(alive=self._alive())}
                      ORDER BY p.id LIMIT ?{skip})
                   RETURNING item""",
                (run, False, max_attempts, round_start, False, run, LEASE_SECONDS, limit),
            )
            if rows:
                return sorted(int(r["item"]) for r in rows)
            return [] if self._others_working("page", run) else None

    def finish_pages(self, run: int, done: Sequence[int]) -> None:
        """Mark posts whose page the run has tried done (for this round)."""
        with self.engine.transaction():
            self._finish("page", run, (str(i) for i in done))

    def forget_pages(self, run: int) -> None:
        """Drop the run's page leases of posts no longer waiting: they need none."""
        with self.engine.transaction():
            self.engine.execute(
                """DELETE FROM leases WHERE kind = 'page' AND run_id = ? AND item NOT IN
                   (SELECT CAST(id AS TEXT) FROM posts WHERE source = 'pending')""",
                (run,),
            )

    def _finish(self, kind: str, run: int, done: Iterable[str]) -> None:
        items = list(done)
        for start in range(0, len(items), _CHUNK):  # one statement per 500, not per item
            chunk = items[start : start + _CHUNK]
            marks = ", ".join("?" * len(chunk))
            self.engine.execute(
                f"""UPDATE leases SET done = ? WHERE kind = ? AND run_id = ?
                    AND item IN ({marks})""",
                (True, kind, run, *chunk),
            )

    def _others_working(self, kind: str, run: int) -> bool:
        row = self.engine.one(
            f"""SELECT count(*) AS n FROM leases l WHERE l.kind = ? AND l.done = ?
                AND l.run_id <> ? AND l.run_id IN ({self._alive()})""",
            (kind, False, run, LEASE_SECONDS),
        )
        return bool(row and row["n"])
