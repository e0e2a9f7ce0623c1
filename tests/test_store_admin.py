"""`mash db copy` and `mash db check` on real engines: the fetched demo store copied
SQLite -> PostgreSQL -> SQLite row for row, refusals, all-or-nothing, integrity (see #15)."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from mash.cli import main as mash
from mash.records import Bounce, FeedSpec, FetchResult, Post
from mash.store import ENV_URL, is_database_url, open_engine, open_store
from mash.store._base import BOOKKEEPING, Engine
from mash.store.admin import count_rows
from mash.store.schema import MIGRATIONS
from mash.subscribers import Subscriber
from tests.pg import Cluster

VERSION = len(MIGRATIONS)

WHEN = datetime(2026, 10, 20, 9, 0, tzinfo=UTC)
NEW_FEED = "https://new.example/feed"


@pytest.fixture
def demo(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fetched demo workspace (SQLite) with a row in every table; returns its feeds.yaml."""
    monkeypatch.delenv(ENV_URL, raising=False)
    with open_store(_sqlite_of(workspace)) as store:
        store.save_issue("2026-09", 1, "September", ["https://a.example/x"], WHEN)
        url_key = store.engine.query("SELECT url_key FROM posts ORDER BY id LIMIT 1")[0]
        store.engine.execute(
            "INSERT INTO page_views(url_key, month, views, source) VALUES (?, ?, ?, ?)",
            (url_key["url_key"], "2026-10", 42, "Plausible"),
        )
        assert store.claim("2026-09", "ann@example.org", "<m1@mash>")
        store.mark_sent("2026-09", "ann@example.org", "<m1@mash>")
        assert store.claim("2026-09", "bob@example.org", "<m2@mash>")  # in doubt
        store.add_opt_out("cy@example.org", "list", "one-click")
        # the list (#15): a subscriber with history, an import logged, a mail read and a
        # soft bounce remembered, so that every table of the schema has rows to copy
        store.import_subscribers([Subscriber("ann@example.org", "Ann")], "list.csv", now=WHEN)
        store.subscribe(Subscriber("dee@example.org", consent_source="cli"), "added", now=WHEN)
        store.mark_mail_read("<bounce-1@mx.example>")
        soft = Bounce("ann@example.org", "4.2.2", False, "mailbox full")
        store.apply_bounce(soft, 3, now=WHEN)
        store.request_signup(  # an open double opt-in request (#16)
            "eve@example.org", "Eve", origin="a form", now=WHEN, resend_after=timedelta(0)
        )
        store.engine.execute(
            "UPDATE feeds SET retired = 1 WHERE url = (SELECT min(url) FROM feeds)"
        )
    return workspace


def _sqlite_of(config: Path) -> Path:
    return config.parent / "data" / "mash.db"


def _rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table of a SQLite file, in a stable order."""
    db = sqlite3.connect(path)
    try:
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {
            name: sorted(db.execute(f'SELECT * FROM "{name}"').fetchall(), key=repr)
            for name in names
            if not name.startswith("sqlite_") and name not in BOOKKEEPING
        }
    finally:
        db.close()


def _pg_rows(url: str) -> dict[str, int]:
    with open_store(url) as store:
        return _counts(store.engine)


def _copy(config: Path, target: str | Path, *extra: str) -> int:
    return mash(["--config", str(config), "db", "copy", "--to", str(target), *extra])


def _with_password(url: str) -> str:
    return url.replace("postgres@", "postgres:s3cret-pw@", 1)


# --- copy ----------------------------------------------------------------------------------


def test_sqlite_to_postgresql_and_back_keeps_every_row(
    demo: Path,
    postgres_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    original = _sqlite_of(demo)
    before = _rows(original)
    assert all(before.values()), before.keys()  # every table has rows to copy

    assert _copy(demo, _with_password(postgres_url)) == 0
    out, err = capsys.readouterr()
    assert f"posts\t{len(before['posts'])}" in out.splitlines()
    assert "s3cret-pw" not in out + err and "postgres:***@" in err
    assert _pg_rows(postgres_url) == {t: len(r) for t, r in before.items()}

    monkeypatch.setenv(ENV_URL, postgres_url)  # now the configured store is PostgreSQL
    back = tmp_path / "back" / "mash.db"
    assert _copy(demo, back) == 0
    assert _rows(back) == before  # every table, row for row, timestamps and booleans too
    capsys.readouterr()

    # a new post on PostgreSQL gets an id after the copied ones (the identity was moved on)
    with open_store(postgres_url) as store:
        store.sync_feeds([FeedSpec(NEW_FEED)])
        post = Post(NEW_FEED, "g1", "https://new.example/1", "New", published=WHEN)
        store.save_feed(
            NEW_FEED, FetchResult(url=NEW_FEED, status=200), "", "", [(post, None)], WHEN
        )
        ids = [r["id"] for r in store.engine.query("SELECT id FROM posts ORDER BY id")]
    assert ids[-1] == max(int(str(r[0])) for r in before["posts"]) + 1


def test_postgresql_to_postgresql(
    demo: Path, pg_cluster: Cluster, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    second = pg_cluster.create_database()
    try:
        assert _copy(demo, postgres_url) == 0
        monkeypatch.setenv(ENV_URL, postgres_url)
        assert _copy(demo, second) == 0
        assert _pg_rows(second) == _pg_rows(postgres_url)
    finally:
        pg_cluster.drop_database(second)


def test_a_target_with_data_is_refused_and_replace_empties_it(
    demo: Path, database: str | Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _copy(demo, database) == 0
    target = open_store(database)
    try:
        before = target.engine.query("SELECT url FROM feeds ORDER BY url")
        capsys.readouterr()
        assert _copy(demo, database) == 1  # refused: it holds the first copy
        err = capsys.readouterr().err
        assert "already holds data" in err and "--replace" in err and "nothing copied" in err
        assert target.engine.query("SELECT url FROM feeds ORDER BY url") == before

        with open_store(_sqlite_of(demo)) as source:  # the source changes; copy again
            source.engine.execute("DELETE FROM posts WHERE id % 2 = 0")
            left = source.count_posts()
        assert _copy(demo, database, "--replace") == 0
        assert "replacing its" in capsys.readouterr().err
        assert target.count_posts() == left
    finally:
        target.close()


def test_a_failure_mid_copy_leaves_the_target_as_it_was(
    demo: Path, database: str | Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _copy(demo, database) == 0
    with open_store(database) as target:
        snapshot = _counts(target.engine)
        # the target's disk "fills up" at the fourth post, after feeds were copied
        if target.engine.kind == "sqlite":
            target.engine.execute(
                "CREATE TRIGGER boom BEFORE INSERT ON posts WHEN NEW.id > 3"
                " BEGIN SELECT RAISE(ABORT, 'disk full (test)'); END"
            )
        else:
            target.engine.execute(
                "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                " IF NEW.id > 3 THEN RAISE EXCEPTION 'disk full (test)'; END IF;"
                " RETURN NEW; END $$"
            )
            target.engine.execute(
                "CREATE TRIGGER boom BEFORE INSERT ON posts FOR EACH ROW EXECUTE FUNCTION boom()"
            )
    capsys.readouterr()
    assert _copy(demo, database, "--replace") == 1
    assert "disk full (test)" in capsys.readouterr().err
    with open_store(database) as target:
        assert _counts(target.engine) == snapshot
        assert snapshot["posts"] > 3


def test_a_target_newer_than_mash_is_refused_untouched(
    demo: Path, database: str | Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_store(database) as target:
        target.engine.set_version(VERSION + 1)
    assert _copy(demo, database) == 1
    err = capsys.readouterr().err
    assert f"schema version {VERSION + 1}, newer than this mash" in err
    engine = open_engine(database)  # as it is: no migration
    try:
        assert engine.version() == VERSION + 1
        assert _counts(engine)["posts"] == 0
    finally:
        engine.close()


def test_the_store_itself_is_refused_as_target(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _copy(demo, _sqlite_of(demo), "--replace") == 1
    assert "one store; nothing copied" in capsys.readouterr().err
    assert all(_rows(_sqlite_of(demo)).values())


def _counts(engine: Engine) -> dict[str, int]:
    return {t: count_rows(engine, t) for t in engine.tables()}


# --- check ---------------------------------------------------------------------------------


def test_check_prints_engine_version_and_rows_on_both_engines(
    demo: Path,
    database: str | Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert (
        _copy(demo, _with_password(str(database)) if is_database_url(database) else database) == 0
    )
    posts = len(_rows(_sqlite_of(demo))["posts"])
    capsys.readouterr()
    if is_database_url(database):
        monkeypatch.setenv(ENV_URL, _with_password(str(database)))
        kind = "postgresql"
    else:
        demo = _relocated(demo, Path(database))
        kind = "sqlite"
    assert mash(["--config", str(demo), "db", "check"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert f"engine\t{kind}" in lines and f"posts\t{posts}" in lines
    assert f"schema version\t{VERSION} (this mash: {VERSION})" in lines
    assert "problem" not in out and "no problems" in err
    assert "s3cret-pw" not in out + err


def _relocated(config: Path, database: Path) -> Path:
    """A copy of a feeds.yaml whose store is another SQLite file."""
    settings = yaml.safe_load(config.read_text())
    settings["paths"]["database"] = str(database)
    moved = config.with_name("other.yaml")
    moved.write_text(yaml.safe_dump(settings))
    return moved


def test_check_finds_a_broken_invariant_and_a_dangling_post(
    demo: Path,
    database: str | Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _copy(demo, database) == 0
    with open_store(database) as store:
        store.engine.execute("UPDATE posts SET source = 'bogus' WHERE id = 1")
        if store.engine.kind == "sqlite":  # foreign keys are only checked when turned on
            store.engine.execute("PRAGMA foreign_keys = OFF")
        else:  # as a restore with triggers off would leave it
            store.engine.execute("SET session_replication_role = replica")
        store.engine.execute("UPDATE posts SET feed_url = 'https://gone.example/feed' WHERE id = 2")
    capsys.readouterr()
    config = demo
    if is_database_url(database):
        monkeypatch.setenv(ENV_URL, str(database))
    else:
        config = _relocated(demo, Path(database))
    assert mash(["--config", str(config), "db", "check"]) == 1
    out = capsys.readouterr().out
    problems = [line for line in out.splitlines() if line.startswith("problem: ")]
    assert len(problems) == 2, out
    assert any("unknown text source" in p and "bogus" in p for p in problems)
    assert any("posts" in p and "feeds" in p for p in problems)  # the dangling feed_url


def test_check_names_a_corrupted_sqlite_file(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _sqlite_of(demo)
    pages = path.stat().st_size // 4096
    assert pages > 8
    with path.open("r+b") as f:  # garbage over the second half, the header intact
        f.seek(4096 * (pages // 2))
        f.write(b"\xa5" * 4096 * 4)
    assert mash(["--config", str(demo), "db", "check"]) == 1
    out, err = capsys.readouterr()
    assert str(path) in out + err
    assert "problem: " in out and "integrity" in out


def test_check_of_a_file_that_is_no_database(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _sqlite_of(demo)
    path.write_bytes(b"not a database at all" * 300)
    assert mash(["--config", str(demo), "db", "check"]) == 1
    assert str(path) in capsys.readouterr().err


def test_check_of_an_older_store_says_so_and_changes_nothing(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _sqlite_of(demo)
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {VERSION - 1}")
    db.close()
    assert mash(["--config", str(demo), "db", "check"]) == 1
    out = capsys.readouterr().out
    assert f"schema version {VERSION - 1}, this mash knows {VERSION}" in out
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == VERSION - 1
    db.close()


def test_check_of_a_missing_store_creates_nothing(
    workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_URL, raising=False)
    shutil.rmtree(workspace.parent / "data")
    assert mash(["--config", str(workspace), "db", "check"]) == 1
    assert "no store here" in capsys.readouterr().err
    assert not (workspace.parent / "data").exists()
