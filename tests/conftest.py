"""Shared fixtures: the demo blogs and the feed farm served on 127.0.0.1, a fetched workspace."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mash.cli import main as mash
from mash.demo import DEMO, serve_folder, write_demo_config
from mash.store import ENV_URL, Store, is_database_url, open_store
from tests.browser import Browser, chromium_binary
from tests.pg import Cluster, Unavailable

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FEEDFARM = SHARED / "bench" / "feedfarm.py"


# Tests serve everything from 127.0.0.1: their configs allow that address and no other (#21).
LOOPBACK = ["127.0.0.1"]


def fetch_section(**settings: object) -> str:
    """Return a feeds.yaml ``fetch:`` section with ``settings``, allowing 127.0.0.1 only."""
    lines = "".join(f"  {key}: {value}\n" for key, value in settings.items())
    return f"fetch:\n  allow_private: [{LOOPBACK[0]}]\n{lines}"


@pytest.fixture(scope="session")
def demo_base() -> Iterator[str]:
    """The demo blogs served on 127.0.0.1 for the whole session."""
    with serve_folder(DEMO / "site") as base:
        yield base


@pytest.fixture(scope="session")
def fetched_demo(tmp_path_factory: pytest.TempPathFactory, demo_base: str) -> Path:
    """A demo workspace (config, editions, SQLite) after one `mash fetch`."""
    folder = tmp_path_factory.mktemp("demo-fetched")
    config = write_demo_config(folder, demo_base)
    assert mash(["--config", str(config), "fetch", "--quiet"]) == 0
    return folder


@pytest.fixture
def workspace(fetched_demo: Path, tmp_path: Path) -> Path:
    """A private copy of the fetched demo workspace; returns its feeds.yaml."""
    folder = tmp_path / "ws"
    shutil.copytree(fetched_demo, folder)
    return folder / "feeds.yaml"


@pytest.fixture(scope="session")
def truth(demo_base: str) -> list[dict[str, Any]]:
    """The demo corpus's labels, with {{BASE}} replaced by the served address."""
    text = (DEMO / "truth.json").read_text(encoding="utf-8").replace("{{BASE}}", demo_base)
    data: list[dict[str, Any]] = json.loads(text)
    return data


@contextlib.contextmanager
def feed_farm(**options: str | int) -> Iterator[str]:
    """Serve ../shared/bench/feedfarm.py on a free port; yield its base URL, which ends in "/".

    Each option is a farm flag: `feeds=8` is `--feeds 8`, `fault_kinds="http-404"` is
    `--fault-kinds http-404`. Skips the test where ../shared is absent, as in a user's clone.
    The farm's stderr (notes on the faults it injects) is shown only if it fails to start.
    """
    if not FEEDFARM.exists():
        pytest.skip("../shared/bench/feedfarm.py is absent (a user's clone has no ../shared)")
    command = [sys.executable, str(FEEDFARM), "serve", "--port", "0", "--quiet"]
    for name, value in options.items():
        command += [f"--{name.replace('_', '-')}", str(value)]
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)
        assert proc.stdout is not None
        try:
            line = proc.stdout.readline()
            if not line.startswith("feedfarm ready"):
                log.seek(0)
                raise RuntimeError(f"feedfarm did not start: {line!r}\n{log.read()[-2000:]}")
            yield line.split()[2]
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            proc.stdout.close()


@pytest.fixture(scope="session")
def farm() -> Iterator[str]:
    """A healthy farm of 60 blogs x 20 entries for the whole session; yields its base URL."""
    with feed_farm(feeds=60, entries=20, seed=7, now="2026-10-31") as base:
        yield base


@pytest.fixture
def shared() -> Path:
    """../shared beside the repo; tests that need it skip where it is absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared is absent (a user's clone has no shared benchmarks)")
    return SHARED


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """A headless Chromium for the module; skips where there is no chromium on PATH."""
    binary = chromium_binary()
    if binary is None:
        pytest.skip("no chromium binary on PATH (Debian: apt-get install -y chromium)")
    chromium = Browser(binary, tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """The folder browser tests save screenshots in: tmp_path, or $MASH_SCREENSHOTS if set.

    $MASH_SCREENSHOTS is relative to the repo; `make screenshots` sets it to docs, so only
    that target rewrites the tracked docs/*.png.
    """
    folder = os.environ.get("MASH_SCREENSHOTS")
    return REPO / folder if folder else tmp_path


# --- PostgreSQL ------------------------------------------------------------------------------
# One throwaway cluster per session (tests/pg.py), started on first use. Where PostgreSQL
# cannot be had the tests that need it skip with the reason, except where
# MASH_REQUIRE_POSTGRES=1 (CI: .ci/run), where that is a failure.


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    cluster = Cluster()
    try:
        cluster.start()
    except Unavailable as e:
        cluster.stop()
        if os.environ.get("MASH_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required here (MASH_REQUIRE_POSTGRES=1): {e}")
        pytest.skip(str(e))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def postgres_url(pg_cluster: Cluster) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped after the test."""
    url = pg_cluster.create_database()
    try:
        yield url
    finally:
        pg_cluster.drop_database(url)


# --- the store on both engines (see #15) ----------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """A new, empty store on each engine: a SQLite file (tmp_path/data/mash.db, where a
    config in tmp_path keeps it), or the URL of a new PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "data" / "mash.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def store(database: str | Path) -> Iterator[Store]:
    """An open store on each engine (the `database` fixture's)."""
    with open_store(database) as opened:
        yield opened


@pytest.fixture
def database_env(database: str | Path, monkeypatch: pytest.MonkeyPatch) -> str | Path:
    """`database`, made the store of every mash command in the test: for PostgreSQL by
    MASH_DATABASE_URL (which wins over paths.database), for SQLite by being where the
    config in tmp_path keeps it."""
    monkeypatch.delenv(ENV_URL, raising=False)
    if is_database_url(database):
        monkeypatch.setenv(ENV_URL, str(database))
    return database
