"""Compare two versions of mash's fetch side by side: alternating runs on one farm.

This machine's speed drifts by a quarter within an hour, so two versions timed an
hour apart say little. Here each pair runs version A then version B back to back,
and the medians (and how often B won its pair) are what to read.

    .venv/bin/python bench/ab_fetch.py 99fe582 HEAD --pairs 10          # all-304 refresh
    .venv/bin/python bench/ab_fetch.py 99fe582 HEAD --pairs 4 --first   # first run too

Each version is a git revision, exported with `git archive` and byte-compiled in a
temporary folder; `mash fetch --feeds-only` runs there against a farm of 1000 feeds
(needs ../shared/bench/feedfarm.py, as fetch_bench.py does). Each version's all-304
runs reuse one database, primed by a first run of that version.
"""

from __future__ import annotations

import argparse
import compileall
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

import fetch_bench as fb


def export(revision: str, into: Path) -> Path:
    """Write the mash package of ``revision`` under ``into``; return that folder."""
    archive = subprocess.run(
        ["git", "archive", revision, "mash"], cwd=fb.ROOT, capture_output=True, check=True
    ).stdout
    tree = into / revision.replace("/", "_")
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(tree, filter="data")
    compileall.compile_dir(tree / "mash", quiet=1)  # as the installed package is
    return tree


def fetch_yaml(tree: Path) -> str:
    """The fetch: section for a version: it may connect to the farm's 127.0.0.1.

    Before #21, allow_private was true or false, and feeds on any address were fetched.
    """
    old = "allow_private: bool" in (tree / "mash" / "records.py").read_text(encoding="utf-8")
    return "fetch:\n  per_host: 32\n" + ("" if old else fb.FARM_ALLOW)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", help="git revision of version A (the baseline)")
    parser.add_argument("b", help="git revision of version B")
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--first", action="store_true", help="also time first runs")
    args = parser.parse_args()
    if not fb.FARM.exists():
        print(f"skipped: no feed farm at {fb.FARM} (../shared/bench is absent)", file=sys.stderr)
        return
    with tempfile.TemporaryDirectory() as tmp_name, fb.farm(args.feeds) as base:
        tmp = Path(tmp_name)
        trees = {name: export(rev, tmp) for name, rev in (("A", args.a), ("B", args.b))}
        farm_yaml = fb._get(base + "_farm/feeds.yaml").decode()
        feeds_yaml = {name: fetch_yaml(tree) + farm_yaml for name, tree in trees.items()}
        primed: dict[str, Path] = {}  # a database each: their schemas may differ
        for name, tree in trees.items():
            primed[name] = tmp / f"primed-{name}"
            primed[name].mkdir()
            (primed[name] / "feeds.yaml").write_text(feeds_yaml[name])
            fb.run_tree(fb._mash(primed[name], "fetch", "--feeds-only", "--quiet"), tree)
        kinds = ["first", "304"] if args.first else ["304"]
        walls: dict[tuple[str, str], list[float]] = {}
        cpus: dict[tuple[str, str], list[float]] = {}
        for pair in range(args.pairs):
            for name, tree in trees.items():
                for kind in kinds:
                    folder = primed[name]
                    if kind == "first":
                        folder = tmp / f"first-{name}-{pair}"
                        folder.mkdir()
                        (folder / "feeds.yaml").write_text(feeds_yaml[name])
                    got = fb.run_tree(fb._mash(folder, "fetch", "--feeds-only", "--quiet"), tree)
                    if kind == "304" and "not modified 1000" not in got["stderr"]:
                        raise SystemExit(f"version {name}: not an all-304 run: {got['stderr']}")
                    walls.setdefault((name, kind), []).append(got["wall"])
                    cpus.setdefault((name, kind), []).append(got["cpu"])
                    if kind == "first":
                        shutil.rmtree(folder)
        print(f"{args.pairs} alternating pairs, {args.feeds} feeds; A = {args.a}, B = {args.b}")
        for kind in kinds:
            a, b = walls[("A", kind)], walls[("B", kind)]
            won = sum(1 for x, y in zip(a, b, strict=True) if y < x)
            print(
                f"{kind:>5}: A median {statistics.median(a):.3f} s "
                f"(CPU {statistics.median(cpus[('A', kind)]):.2f} s), "
                f"B median {statistics.median(b):.3f} s "
                f"(CPU {statistics.median(cpus[('B', kind)]):.2f} s); B faster in {won} of "
                f"{len(a)} pairs"
            )


if __name__ == "__main__":
    sys.exit(main())
