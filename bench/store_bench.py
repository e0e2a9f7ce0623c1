"""Benchmark the store's two engines side by side: SQLite and PostgreSQL (#15).

Usage (from the repo root):
    .venv/bin/python bench/store_bench.py [--feeds 1000] [--repeat 3]

In one run it starts ../shared/bench/feedfarm.py (1000 blogs x 20 entries) and a
throwaway PostgreSQL cluster (tests/pg.py: Debian's server binaries, a temporary folder,
durability off as in the tests; SQLite runs at its usual synchronous NORMAL), then, for
each engine in turn, ``--repeat`` times (medians), on a fresh store each time:

- the real command ``mash fetch --feeds-only``, first run (every feed new) and the all-304
  refresh, wall time of the whole process tree (fetch_bench.run_tree);
- ranking the 20,000 stored posts: ``posts_between`` over all of them (the store's read,
  in one snapshot as `mash build` reads) and ``rank_posts`` over what it read.

Targets: PostgreSQL within 1.5x of SQLite for each. Prints a Markdown report on stdout
(bench/RESULTS.md keeps the figures).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from fetch_bench import FARM, FARM_ALLOW, _get, _mash, farm, run_tree  # noqa: E402

from tests.pg import Cluster, Unavailable  # noqa: E402

TARGET = 1.5  # PostgreSQL / SQLite, at most
START, END = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)


def _workspace(folder: Path, feeds_yaml: str, database: str) -> Path:
    folder.mkdir(parents=True)
    paths = f"paths:\n  database: {database}\n" if database else ""
    (folder / "feeds.yaml").write_text(paths + feeds_yaml)
    return folder


def _fetch(folder: Path) -> float:
    got = run_tree(_mash(folder, "fetch", "--feeds-only", "--quiet"), ROOT)
    return float(got["wall"])


def _rank(folder: Path) -> tuple[float, float, int]:
    """Return (read seconds, rank seconds, posts) for every post of the store."""
    from mash.config import load_config
    from mash.edition import read_edition
    from mash.rank import rank_posts
    from mash.store import open_store

    config = load_config(folder / "feeds.yaml")
    with open_store(config) as store:
        start = time.perf_counter()
        with store.snapshot():
            posts = store.posts_between(START, END, config.feeds)
            history = store.featured_before("2100-01")
        read = time.perf_counter() - start
    edition = read_edition(config.editions_dir, "2026-10", strict=False)
    start = time.perf_counter()
    rank_posts(posts, config.newsletter, edition, history, START, END, END)
    return read, time.perf_counter() - start, len(posts)


def bench(feeds: int, repeat: int) -> list[str]:
    cluster = Cluster()
    try:
        cluster.start()
    except Unavailable as e:
        cluster.stop()
        # `make bench` goes on without it, as the tests skip (`make postgres` installs it)
        print(f"store bench skipped: PostgreSQL cannot be had here: {e}", file=sys.stderr)
        raise SystemExit(0) from None
    figures: dict[str, dict[str, list[float]]] = {
        engine: {"first": [], "second": [], "read": [], "rank": []}
        for engine in ("sqlite", "postgresql")
    }
    posts = {}
    try:
        with farm(feeds) as base, tempfile.TemporaryDirectory() as tmp:
            feeds_yaml = (
                "fetch:\n  per_host: 32\n" + FARM_ALLOW + _get(base + "_farm/feeds.yaml").decode()
            )
            for i in range(repeat):
                # alternate the engines: each sees the machine's faster and slower minutes
                for engine in ("sqlite", "postgresql"):
                    database = cluster.create_database() if engine == "postgresql" else ""
                    folder = _workspace(Path(tmp) / f"{engine}-{i}", feeds_yaml, database)
                    got = figures[engine]
                    got["first"].append(_fetch(folder))
                    got["second"].append(_fetch(folder))
                    read, rank, posts[engine] = _rank(folder)
                    got["read"].append(read)
                    got["rank"].append(read + rank)
                    if database:
                        cluster.drop_database(database)
    finally:
        cluster.stop()
    return _report(feeds, repeat, figures, posts)


def _report(
    feeds: int, repeat: int, figures: dict[str, dict[str, list[float]]], posts: dict[str, int]
) -> list[str]:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"## The store on SQLite and PostgreSQL ({when})",
        "",
        f"`.venv/bin/python bench/store_bench.py --feeds {feeds} --repeat {repeat}`: feed farm "
        f"{feeds} blogs x 20 entries; medians of {repeat}, engines alternating, a fresh "
        f"store each time; {posts.get('sqlite', 0)} / {posts.get('postgresql', 0)} posts "
        "stored (SQLite / PostgreSQL).",
        "",
        "| what | SQLite | PostgreSQL | PostgreSQL / SQLite | target |",
        "|---|---:|---:|---:|---|",
    ]
    rows = (
        ("first", "`mash fetch --feeds-only`, first run"),
        ("second", "`mash fetch --feeds-only`, all-304 refresh"),
        ("read", "reading every post (`posts_between`, one snapshot)"),
        ("rank", "ranking them (read + `rank_posts`)"),
    )
    for key, what in rows:
        lite = statistics.median(figures["sqlite"][key])
        pg = statistics.median(figures["postgresql"][key])
        ratio = pg / lite if lite else float("inf")
        verdict = "met" if ratio <= TARGET else "MISSED"
        target = "" if key == "read" else f"{TARGET}x: {verdict}"
        lines.append(f"| {what} | {lite:.2f} s | {pg:.2f} s | {ratio:.2f}x | {target} |")
    lines += ["", "Every run, SQLite; PostgreSQL (seconds):", ""]
    for key, what in rows:
        runs = "; ".join(" ".join(f"{w:.2f}" for w in figures[engine][key]) for engine in figures)
        lines.append(f"- {what}: {runs}")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    if not FARM.exists():
        raise SystemExit(f"{FARM} is absent: the store bench needs ../shared/bench/")
    print("\n".join(bench(args.feeds, args.repeat)))


if __name__ == "__main__":
    main()
