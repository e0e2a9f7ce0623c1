"""Feeds an editor can trust: health report, add/import/export, locks, crash safety (#3)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mash.cli import main as mash
from mash.config import load_config
from mash.demo import DEMO, serve_folder
from mash.opml import read_opml
from mash.store import open_store
from tests.conftest import REPO, feed_farm, fetch_section

FETCH_DATA = Path(__file__).parent / "data" / "fetch"


def run(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = mash(list(args))
    return status, out.getvalue()


@pytest.fixture(scope="module")
def faulty_farm() -> Iterator[str]:
    """A farm of 8 blogs, each with one fault: 301, 410, a web page, 404 (twice each)."""
    kinds = "redirect-301,http-410,html-not-feed,http-404"
    with feed_farm(
        feeds=8, entries=5, seed=3, now="2026-10-31", faults=100, fault_kinds=kinds
    ) as base:
        yield base


def farm_json(base: str, name: str) -> Any:
    with urllib.request.urlopen(f"{base}_farm/{name}") as response:
        return json.loads(response.read())


def test_health_report_names_each_problem_and_its_fix(faulty_farm: str, tmp_path: Path) -> None:
    faults = {f["url"]: f for f in farm_json(faulty_farm, "faults.json")}
    with urllib.request.urlopen(f"{faulty_farm}_farm/feeds.yaml") as response:
        (tmp_path / "feeds.yaml").write_text(fetch_section() + response.read().decode())
    config = str(tmp_path / "feeds.yaml")
    assert run("--config", config, "fetch", "--quiet")[0] == 0
    status, out = run("--config", config, "feeds", "check", "--json")
    assert status == 1  # some feeds are failing or retired (see #20)
    report = {row["url"]: row for row in json.loads(out)}
    assert set(report) == set(faults)
    for url, fault in faults.items():
        row = report[url]
        if fault["kind"] == "redirect-301":
            assert row["status"] == "moved" and "feed-moved.xml" in row["fix"]
        elif fault["kind"] == "http-410":
            assert row["status"] == "retired" and row["error"] == "http-410"
        elif fault["kind"] == "html-not-feed":
            assert row["status"] == "failing" and row["error"] == "not-a-feed"
            assert "syndication.xml" in row["fix"]
        else:
            assert row["status"] == "failing" and row["error"] == "http-404"
    # the 301 is persisted: the next run fetches the new URL; the 410 is not fetched again
    assert run("--config", config, "fetch", "--quiet")[0] == 0
    db = sqlite3.connect(tmp_path / "data" / "mash.db")
    moved = [u for u, f in faults.items() if f["kind"] == "redirect-301"]
    for url in moved:
        (fetch_url, last) = db.execute(
            "SELECT fetch_url, last_status FROM feeds WHERE url = ?", (url,)
        ).fetchone()
        assert fetch_url.endswith("feed-moved.xml") and last == 304
    table = run("--config", config, "feeds", "check")[1]
    assert "retired" in table and "moved" in table


def test_feeds_add_finds_the_feed_of_a_site_and_keeps_comments(tmp_path: Path) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text(
        "# my feeds\nfeeds:\n  # the first\n  - url: https://a.example/feed\n"
        "\nfetch:\n  deadline: 5\n  allow_private: [127.0.0.1]\n"
    )
    with serve_folder(DEMO / "site") as base:
        status, out = run("--config", str(config), "feeds", "add", f"{base}/happy-returns/")
        again = run("--config", str(config), "feeds", "add", f"{base}/happy-returns/feed.xml")
    assert status == 0 and out.strip() == f"{base}/happy-returns/feed.xml"
    assert again == (0, "")
    text = config.read_text()
    assert "# my feeds" in text and "# the first" in text
    feeds = load_config(config).feeds
    assert [f.url for f in feeds] == ["https://a.example/feed", f"{base}/happy-returns/feed.xml"]
    assert feeds[1].name == "Happy Returns"


@pytest.mark.parametrize(
    "export", ["feedly.opml", "inoreader.opml", "netnewswire.opml", "freshrss.opml"]
)
def test_opml_import_then_export_round_trip(tmp_path: Path, export: str) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text("feeds:\n  - url: https://a.example/feed\n")
    status, _ = run("--config", str(config), "feeds", "import", str(FETCH_DATA / export))
    assert status == 0
    imported = read_opml(FETCH_DATA / export)
    assert imported
    status, out = run("--config", str(config), "feeds", "export")
    exported = read_opml(out.encode())
    assert [f.url for f in exported] == ["https://a.example/feed"] + [f.url for f in imported]
    assert run("--config", str(config), "feeds", "import", str(FETCH_DATA / export))[0] == 0
    assert len(load_config(config).feeds) == len(exported)  # nothing added twice


def test_a_second_fetch_refuses_while_one_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text("feeds:\n  - url: http://127.0.0.1:9/feed\n")
    with open_store(tmp_path / "data" / "mash.db") as store, store.lock("fetch"):
        assert mash(["--config", str(config), "fetch", "--quiet"]) == 1
    assert "another `mash fetch` is running" in capsys.readouterr().err


def test_sigkill_then_rerun_stores_every_post_once(farm: str, tmp_path: Path) -> None:
    """Kill `mash fetch` at random moments; the next run completes and nothing is lost."""
    manifest = farm_json(farm, "manifest.json")
    with urllib.request.urlopen(f"{farm}_farm/feeds.yaml") as response:
        (tmp_path / "feeds.yaml").write_text(fetch_section(per_host=16) + response.read().decode())
    command = [
        sys.executable,
        "-m",
        "mash.cli",
        "--config",
        str(tmp_path / "feeds.yaml"),
        "fetch",
        "--quiet",
    ]
    rng = random.Random(4)
    for _ in range(4):
        proc = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        time.sleep(rng.uniform(0.8, 3.0))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert subprocess.run(command, capture_output=True, timeout=600).returncode == 0
    db = sqlite3.connect(tmp_path / "data" / "mash.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("SELECT count(*) FROM posts").fetchone()[0] == len(manifest)
    assert db.execute("SELECT count(DISTINCT url_key) FROM posts").fetchone()[0] == len(manifest)
    pending = db.execute("SELECT count(*) FROM posts WHERE source = 'pending'").fetchone()[0]
    robots = sum(1 for m in manifest if m["robots_disallowed"])
    assert pending == 0 or pending <= robots
    assert yaml.safe_load((tmp_path / "feeds.yaml").read_text())["feeds"]


def _session_processes(session: int) -> list[int]:
    """Return the live processes of a session (a run started with start_new_session)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        state, _, _, sid = stat.rsplit(")", 1)[1].split()[:4]
        if int(sid) == session and state != "Z":
            found.append(int(name))
    return found


def _kill_after(
    proc: subprocess.Popen[str], results: int, delay: float
) -> tuple[list[str], list[str]]:
    """Read the run's progress; SIGKILL the run itself (not its group) ``delay`` s after
    its ``results``-th feed result (0: after its first line); return the lines read and
    the command lines of the run's other processes just before the kill."""
    assert proc.stderr is not None
    lines: list[str] = []
    for line in proc.stderr:
        lines.append(line)
        if "another `mash fetch` is running" in line:
            break
        if (results == 0 or line.startswith(f"[{results}/")) or line.startswith("fetched "):
            break
    time.sleep(delay)
    others = []
    for pid in _session_processes(proc.pid):
        with contextlib.suppress(OSError):
            if pid != proc.pid:
                others.append(Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"))
    proc.kill()
    proc.wait()
    proc.stderr.close()
    return lines, others


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="walks /proc (Linux)")
def test_sigkill_of_the_run_alone_ends_its_processes_and_frees_the_lock(tmp_path: Path) -> None:
    """`kill -9` of `mash fetch` (not of its group) at 10 seeded moments: its forkserver
    and parse workers end within 2 s, the next run starts at once, and at the end every
    post is stored once (see #21: they lived on for good; a forked fetch helper, since
    removed, lived on holding the lock)."""
    with feed_farm(feeds=200, entries=10, seed=11, now="2026-10-31", latency_ms=10) as base:
        manifest = farm_json(base, "manifest.json")
        with urllib.request.urlopen(f"{base}_farm/feeds.yaml") as response:
            feeds = response.read().decode()
        (tmp_path / "feeds.yaml").write_text(fetch_section(per_host=16) + feeds)
        command = [sys.executable, "-m", "mash.cli", "--config", str(tmp_path / "feeds.yaml")]
        command += ["fetch", "--feeds-only"]
        rng = random.Random(21)
        seen: set[str] = set()
        outlived: list[float] = []
        sessions: list[int] = []
        try:
            for cycle in range(11):
                proc = subprocess.Popen(
                    command,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                    start_new_session=True,
                    cwd=REPO,
                )
                sessions.append(proc.pid)
                if cycle == 5:  # one whole run between: the kills after it hit refreshes
                    proc.communicate(timeout=300)
                    assert proc.returncode == 0
                    continue
                at = rng.choice([0, *range(1, 200)])
                lines, others = _kill_after(proc, at, rng.uniform(0, 0.05))
                killed = time.monotonic()
                assert not any("another `mash fetch`" in line for line in lines), lines[-3:]
                seen.update(others)
                print(f"cycle {cycle}: killed after result {at}; {len(others)} other processes")
                left = _session_processes(proc.pid)
                while left and time.monotonic() - killed < 10:
                    time.sleep(0.05)
                    left = _session_processes(proc.pid)
                outlived.append(time.monotonic() - killed)
                assert not left, f"cycle {cycle}: {len(left)} processes outlived the run by 10 s"
        finally:  # on a failure, what outlived its run must not outlive the test
            for session in sessions:
                for pid in _session_processes(session):
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
        print(f"processes outlived their run by at most {max(outlived):.2f} s")
        assert max(outlived) < 2
        assert any("forkserver" in c for c in seen)  # workers were killed, not just runs
        final = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)
        assert final.returncode == 0, final.stderr[-500:]
    db = sqlite3.connect(tmp_path / "data" / "mash.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("SELECT count(*) FROM posts").fetchone()[0] == len(manifest)
    assert db.execute("SELECT count(DISTINCT url_key) FROM posts").fetchone()[0] == len(manifest)
    db.close()


def test_feeds_add_keeps_the_good_urls_when_one_fails(
    tmp_path: Path, demo_base: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """One URL that is not a blog does not lose the others given with it (see #20)."""
    config = tmp_path / "feeds.yaml"
    config.write_text("feeds: []\n" + fetch_section(retries=0))
    good = f"{demo_base}/happy-returns/feed.xml"
    bad = f"{demo_base}/no-such-blog/"
    assert mash(["--config", str(config), "feeds", "add", good, bad]) == 1
    err = capsys.readouterr().err
    assert "not added: " in err and bad in err and "1 of 2 URLs were not added" in err
    assert [f.url for f in load_config(config).feeds] == [good]
