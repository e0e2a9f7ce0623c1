"""The store on both engines (the `store` and `database` fixtures: SQLite and PostgreSQL),
and what only SQLite has: files written by earlier versions of mash, `database is locked`."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mash.config import load_config
from mash.errors import ConfigError, StoreBusy, StoreError
from mash.records import Article, FeedSpec, FetchResult, Post
from mash.store import (
    ENV_URL,
    SENDING,
    SENT,
    Store,
    database_of,
    is_database_url,
    open_store,
)
from mash.store._sqlite import SqliteEngine
from mash.store.schema import MIGRATIONS

DATA = Path(__file__).parent / "data"
FEED = "https://a.example/feed"
WHEN = datetime(2026, 10, 5, 8, 30, tzinfo=UTC)


def _feed_with_posts(store: Store, *posts: Post) -> int:
    store.sync_feeds([FeedSpec(FEED)])
    ok = FetchResult(url=FEED, status=200, etag='"e1"')
    return store.save_feed(
        FEED, ok, "A blog", "https://a.example/", [(p, None) for p in posts], WHEN
    )


def _post(guid: str, path: str, published: datetime | None = WHEN) -> Post:
    return Post(FEED, guid, f"https://a.example/{path}", f"Title {guid}", published=published)


# --- feeds and posts ----------------------------------------------------------------------


def test_304_answers_are_recorded_together_and_keep_what_they_do_not_resend(
    store: Store,
) -> None:
    """One call records every 304: the feed is healthy again, its validators kept or renewed."""
    now = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
    moved, plain = "https://old.example/feed", "https://plain.example/rss"
    store.sync_feeds([FeedSpec(moved), FeedSpec(plain)])
    store.engine.execute(
        "UPDATE feeds SET fetch_url = 'https://new.example/feed', etag = '\"v1\"',"
        " consecutive_failures = 2, last_error = 'HTTP 503', next_attempt = ?"
        " WHERE url = ?",
        (now + timedelta(days=1), moved),
    )
    store.record_not_modified(
        [
            FetchResult(url="https://new.example/feed", status=304, last_modified="Sun"),
            FetchResult(url=plain, status=304, etag='"p2"'),
        ],
        now,
    )
    rows = {r.url: r for r in store.feed_rows()}
    assert rows[moved].etag == '"v1"' and rows[moved].last_modified == "Sun"
    assert rows[plain].etag == '"p2"' and rows[plain].last_modified is None
    for row in rows.values():
        assert row.last_status == 304 and row.consecutive_failures == 0
        assert row.last_error is None and row.next_attempt is None
        assert row.last_success == row.last_attempt == now


def test_the_authors_summaries_are_stored_and_read_back(store: Store) -> None:
    """The feed's excerpt and the page's description reach rank (migration 5, see #20)."""
    full = replace(_post("g1", "full"), content_html="<p>Body.</p>", excerpt="For the feed.")
    teaser = replace(_post("g2", "teaser"), summary_html="<p>Body …</p>")
    page = Article(html="<p>Body.</p>", text="Body.", source="page", reason="r")
    _feed_with_posts(store, full, teaser)
    store.save_article(teaser, replace(page, description="Written for the page."))
    # a later fetch whose excerpt changed updates it
    _feed_with_posts(store, replace(full, excerpt="Rewritten."))
    (pending,) = store.pending_posts()
    posts = store.posts_between(WHEN - timedelta(days=5), WHEN + timedelta(days=5), [])
    got = {p.url: (p.excerpt, p.page_description) for p in posts}
    assert got == {
        "https://a.example/full": ("Rewritten.", ""),
        "https://a.example/teaser": ("", "Written for the page."),
    }
    assert pending.url == "https://a.example/full" and pending.excerpt == "Rewritten."


def test_a_post_is_stored_once_and_dates_come_back_aware_utc(store: Store) -> None:
    """Same guid or same canonical URL: one row; every datetime out is UTC-aware."""
    local = datetime(2026, 10, 5, 10, 30, tzinfo=UTC).astimezone()  # any zone in, UTC out
    first = _post("g1", "one", local)
    assert _feed_with_posts(store, first, _post("g2", "two", None)) == 2
    again = replace(_post("g1-renamed", "one", local), title="Retitled")  # same URL
    assert _feed_with_posts(store, again) == 0
    assert store.count_posts() == 2
    posts = store.posts_between(WHEN - timedelta(days=1), WHEN + timedelta(days=1), [])
    by_url = {p.url: p for p in posts}
    assert by_url["https://a.example/one"].title == "Retitled"
    for post in posts:
        assert post.first_seen == WHEN and post.first_seen.tzinfo == UTC
    assert by_url["https://a.example/one"].published == datetime(2026, 10, 5, 10, 30, tzinfo=UTC)
    assert by_url["https://a.example/two"].published is None  # dated by first_seen
    assert store.posts_per_month() == [("2026-10", 2)]
    assert store.post_stats(WHEN - timedelta(days=30), WHEN + timedelta(days=1)) == {
        FEED: (2, datetime(2026, 10, 5, 10, 30, tzinfo=UTC))
    }
    (row,) = store.feed_rows()
    assert row.last_success == WHEN and row.title == "A blog" and row.etag == '"e1"'


def test_a_failure_backs_off_and_410_retires(store: Store) -> None:
    later = WHEN + timedelta(hours=6)
    store.sync_feeds([FeedSpec(FEED)])
    gone = FetchResult(url=FEED, status=410)
    store.record_failure(
        FEED, gone, "HTTP 410 from https://u:pw@a.example/", "http-410", WHEN, later
    )
    (row,) = store.feed_rows()
    assert row.retired and row.next_attempt == later and row.consecutive_failures == 1
    assert row.last_error == "HTTP 410 from https://u:***@a.example/"  # never a password
    assert store.feed_states([FeedSpec(FEED)], WHEN) == []
    assert store.consecutive_failures(FEED) == 1


def test_page_views_join_the_posts_of_their_month(store: Store) -> None:
    _feed_with_posts(store, _post("g1", "2026/10/first/"))
    matched, missing = store.save_page_views(
        [("/2026/10/first/", 120), ("/nowhere/", 3)], "2026-10", "Plausible", []
    )
    assert (matched, missing) == (1, ["/nowhere/"])
    (post,) = store.posts_between(WHEN - timedelta(days=1), WHEN + timedelta(days=1), [])
    assert (post.page_views, post.page_views_source) == (120, "Plausible")


# --- issues ---------------------------------------------------------------------------------


def test_an_earlier_month_built_after_a_later_one_says_how_to_number_it(store: Store) -> None:
    """Backfilling September after October is volume 22 names the fix (volume_start)."""
    when = datetime(2026, 11, 2, tzinfo=UTC)
    store.save_issue("2026-10", store.volume_for("2026-10", 22), "October", [], when)
    with pytest.raises(StoreError) as caught:
        store.volume_for("2026-09", 22)
    message = str(caught.value)
    assert "volume 22 is already 2026-10's" in message
    assert "set newsletter.volume_start to 21" in message
    assert store.volume_for("2026-09", 21) == 21  # as the hint says
    assert store.volume_for("2026-10", 21) == 22  # a given volume is kept
    store.save_issue("2026-11", store.volume_for("2026-11", 1), "November", ["u1", "u2"], when)
    assert store.featured_before("2026-12") == [("2026-11", ["u1", "u2"]), ("2026-10", [])]
    assert store.built_months() == ["2026-10", "2026-11"]


# --- the send ledger and opt-outs ---------------------------------------------------------


def test_a_recipient_is_claimed_once_until_deferred(store: Store) -> None:
    """The claim commits `sending` only where nobody has it (see #6, #15)."""
    month, ann = "2026-10", "ann@example.org"
    assert store.claim(month, ann, "<m1>")
    assert not store.claim(month, ann, "<m2>")  # another run has it (or it is in doubt)
    store.mark_deferred(month, ann, "<m1>", "451 try later")
    assert store.claim(month, ann, "<m3>")  # deferred: surely not taken, claimable
    entry = store.ledger_entries(month)[ann]
    assert (entry.state, entry.message_id, entry.attempts) == (SENDING, "<m3>", 2)
    assert entry.updated.tzinfo == UTC
    assert not store.claim(month, ann, "<m4>", retake="<m1>")  # not the one in doubt
    assert store.claim(month, ann, "<m4>", retake="<m3>")  # --resend-in-doubt
    store.mark_sent(month, ann, "<m4>")
    assert not store.claim(month, ann, "<m5>", retake="<m4>")  # sent is final
    assert store.ledger_entries(month)[ann].state == SENT
    store.note_in_doubt(month, ann, "timeout after DATA")
    assert store.ledger_entries(month)[ann].error == "timeout after DATA"
    assert store.ledger_entries("2026-11") == {}


def test_of_many_runs_claiming_one_recipient_at_once_exactly_one_wins(
    database: str | Path,
) -> None:
    """Eight connections claim the same recipient together: one `sending`, seven refusals."""
    with open_store(database):
        pass  # made once, so the race is the claim's, not the migration's
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def claim(number: int) -> None:
        with open_store(database) as store:
            barrier.wait()
            results.append(store.claim("2026-10", "ann@example.org", f"<m{number}>"))

    _run_threads(claim, 8)
    assert sorted(results) == [False] * 7 + [True]


def test_opt_outs_are_kept_once(store: Store) -> None:
    assert store.add_opt_out("ann@example.org", "list", "one-click")
    assert not store.add_opt_out("ann@example.org", "list", "confirm-page")
    assert store.opted_out() == {"ann@example.org"}
    assert store.remove_opt_out("ann@example.org") and not store.remove_opt_out("x@example.org")
    assert store.opted_out() == frozenset()


# --- schema, locks, choosing the engine -----------------------------------------------------


def test_many_processes_opening_a_new_store_at_once_migrate_it_once(
    database: str | Path,
) -> None:
    """Opening is safe in parallel: each migration runs once (PostgreSQL: advisory lock)."""
    barrier = threading.Barrier(4)
    versions: list[int] = []

    def open_it(_: int) -> None:
        barrier.wait()
        with open_store(database) as store:
            versions.append(store.engine.version())

    _run_threads(open_it, 4)
    assert versions == [len(MIGRATIONS)] * 4


def test_a_store_newer_than_this_mash_is_refused_and_left_alone(database: str | Path) -> None:
    with open_store(database) as store:
        store.sync_feeds([FeedSpec(FEED)])
        store.engine.set_version(len(MIGRATIONS) + 3)
    if is_database_url(database):  # the message masks a password given in the URL
        database = str(database).replace("postgres@", "postgres:hunter2@")
    with pytest.raises(StoreError) as caught:
        open_store(database)
    message = str(caught.value)
    assert f"is schema version {len(MIGRATIONS) + 3}, newer than this mash" in message
    assert f"it knows version {len(MIGRATIONS)}); upgrade mash" in message
    assert "hunter2" not in message
    if is_database_url(database):
        assert "postgres:***@127.0.0.1" in message
    else:
        assert str(database) in message
    assert _feed_urls_and_version(database) == ([FEED], len(MIGRATIONS) + 3)  # untouched


def test_a_lock_is_held_by_one_run_and_refused_to_another(database: str | Path) -> None:
    with open_store(database) as first, open_store(database) as second:
        with first.lock("fetch"):
            with pytest.raises(StoreBusy, match="another `mash fetch` is running") as caught:
                second.lock("fetch").__enter__()
            assert "pid" in str(caught.value)  # names the holder
            with second.lock("send"):  # another name: another lock
                pass
        with second.lock("fetch"):  # released with the block
            pass


def test_mash_database_url_wins_over_the_file(tmp_path: Path, postgres_url: str) -> None:
    config_path = tmp_path / "feeds.yaml"
    config_path.write_text("feeds: []\npaths:\n  database: state/mash.db\n")
    config = load_config(config_path)
    assert database_of(config, {}) == tmp_path / "state" / "mash.db"
    assert database_of(config, {ENV_URL: postgres_url}) == postgres_url
    with open_store(config, {ENV_URL: postgres_url}) as store:
        assert store.engine.kind == "postgresql"
        store.sync_feeds([FeedSpec(FEED)])
    assert not (tmp_path / "state").exists()  # the file was never made
    with open_store(postgres_url) as store:
        assert [r.url for r in store.feed_rows()] == [FEED]


def test_a_database_url_in_feeds_yaml_is_read_and_a_password_there_refused(
    tmp_path: Path,
) -> None:
    config_path = tmp_path / "feeds.yaml"
    config_path.write_text("feeds: []\npaths:\n  database: postgresql://mash@db.example/mash\n")
    config = load_config(config_path)
    assert database_of(config, {}) == "postgresql://mash@db.example/mash"
    for url in (
        "postgresql://mash:hunter2@db.example/mash",
        "postgres://db.example/mash?password=hunter2",
    ):
        config_path.write_text(f"feeds: []\npaths:\n  database: {url}\n")
        with pytest.raises(ConfigError) as caught:
            load_config(config_path)
        assert "hunter2" not in str(caught.value)
        assert f"{config_path}:3: paths.database holds a password" in str(caught.value)
        assert "MASH_DATABASE_URL" in str(caught.value)


def test_an_unreachable_server_is_a_store_error_naming_it_without_the_password() -> None:
    url = "postgresql://mash:hunter2@127.0.0.1:9/mash?connect_timeout=2"
    with pytest.raises(StoreError) as caught:
        open_store(url)
    assert "cannot connect to the store" in str(caught.value)
    assert "mash:***@127.0.0.1:9" in str(caught.value) and "hunter2" not in str(caught.value)


# --- SQLite: files of earlier versions, a busy store ------------------------------------------


def test_a_version_1_database_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "mash.db"
    engine = SqliteEngine(path)
    MIGRATIONS[0](engine)
    engine.execute("INSERT INTO feeds (url, fetch_url) VALUES ('https://a.example/feed', NULL)")
    engine.execute("PRAGMA user_version = 1")
    engine.close()
    with open_store(path) as store:
        db = store.engine
        indexes = {r["name"] for r in db.query("PRAGMA index_list(feeds)")}
        post_indexes = {r["name"] for r in db.query("PRAGMA index_list(posts)")}
        columns = {r["name"] for r in db.query("PRAGMA table_info(posts)")}
        assert db.version() == len(MIGRATIONS) == 10
        tables = {r["name"] for r in db.query("SELECT name FROM sqlite_master")}
        assert {"subscribers", "subscriber_history", "subscriber_imports", "mails_read"} <= tables
        assert "signups" in tables  # #16, migration 10
        assert store.subscribers() == () and not store.subscribers_adopted()  # #15, migration 7
        assert {"fetch_runs", "leases"} <= tables  # fetch runs share the feeds (8, #15)
        ledger_columns = {r["name"] for r in db.query("PRAGMA table_info(send_ledger)")}
        assert "claimed_by" in ledger_columns  # the run of each claim (9, #15)
        assert "feeds_fetch_url" in indexes
        assert "posts_published" not in post_indexes  # no query could use it (migration 3)
        assert {"excerpt", "page_description"} <= columns  # the author's summary (5, #20)
        assert store.feed_key("https://a.example/feed") == "https://a.example/feed"
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_version_5_store_with_its_send_ledger_opens_and_keeps_its_data(tmp_path: Path) -> None:
    """tests/data/store-v5.sql: a store and ledger written by mash before #15."""
    path = tmp_path / "mash.db"
    old = sqlite3.connect(path)
    old.executescript((DATA / "store-v5.sql").read_text(encoding="utf-8"))
    old.execute("PRAGMA journal_mode = WAL")
    old.close()
    with open_store(path) as store:
        assert store.engine.version() == len(MIGRATIONS)
        rows = {r.url: r for r in store.feed_rows()}
        posts = store.posts_between(WHEN - timedelta(days=10), WHEN + timedelta(days=10), [])
        entries = store.ledger_entries("2026-09")
        opted_out = store.opted_out()
        volume = store.volume_for("2026-10", 1)
    assert rows["https://blog.example/feed"].last_success == WHEN
    assert rows["https://gone.example/rss"].retired
    by_title = {p.title: p for p in posts}
    assert by_title["First post"].published == WHEN
    assert by_title["First post"].page_views == 120 and by_title["First post"].excerpt
    assert by_title["Second post"].page_published == datetime(2026, 10, 7, tzinfo=UTC)
    assert by_title["Second post"].text == "The whole second post."
    assert {k: e.state for k, e in entries.items()} == {
        "ann@example.org": SENT,
        "bob@example.org": SENDING,  # in doubt, as it was
    }
    assert opted_out == {"cy@example.org"}
    assert volume == 8  # after the stored 2026-09, volume 7
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_store_another_run_writes_to_is_busy_not_locked(tmp_path: Path) -> None:
    """`database is locked` after the busy timeout reads as what it is and what to do."""
    path = tmp_path / "mash.db"
    with open_store(path):
        pass
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another run's write transaction
    try:
        with Store(SqliteEngine(path, timeout=0.1)) as store:
            with pytest.raises(StoreBusy) as caught:
                store.sync_feeds([FeedSpec(FEED)])
            assert store.ledger_entries("2026-10") == {}  # reading still works (WAL)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert str(caught.value).startswith(
        f"another mash run holds the store {path}; try again when it finishes"
    )


# --- helpers --------------------------------------------------------------------------------


def _feed_urls_and_version(database: str | Path) -> tuple[list[str], int]:
    """Read a store without mash: its feeds and schema version."""
    if is_database_url(database):
        import psycopg

        with psycopg.connect(str(database).replace(":hunter2", "")) as db:
            urls = [r[0] for r in db.execute("SELECT url FROM feeds")]
            row = db.execute("SELECT version FROM mash_schema").fetchone()
            return urls, row[0] if row else 0
    file = sqlite3.connect(database)
    try:
        urls = [r[0] for r in file.execute("SELECT url FROM feeds")]
        return urls, file.execute("PRAGMA user_version").fetchone()[0]
    finally:
        file.close()


def _run_threads(target: Callable[[int], None], count: int) -> None:
    errors: list[BaseException] = []

    def run(number: int) -> None:
        try:
            target(number)
        except BaseException as e:  # noqa: BLE001 (re-raised in the test's thread)
            errors.append(e)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]
