"""Benchmark the fetch stage against the local feed farm (issues #3 and #8).

Usage (from the repo root):
    .venv/bin/python bench/fetch_bench.py [--feeds 1000] [--sample 200] [--no-faults]

In one run it starts ../shared/bench/feedfarm.py and measures, each in its own
child process (wall, CPU, peak RSS = the child's ru_maxrss):

- sequential ``feedparser.parse(url)`` over a sample of the URLs, scaled to all;
- ``fetch_feeds`` first run (all 200) and second run (all 304, with the first
  run's validators), on the aiohttp transport (the default) and on httpx's own;
- fetch then ``mash.parse.parse_feed`` of every body, when mash.parse exists;
- a ``--faults 10`` farm: the run must end by itself in under 60 s, and every
  faulty feed must get the error_kind its fault calls for.

Prints a Markdown report on stdout (bench/FETCH.md keeps the last one).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FARM = ROOT.parent / "shared" / "bench" / "feedfarm.py"
FARM_ARGS = ["--entries", "20", "--seed", "1", "--now", "2026-10-31", "--port", "0", "--quiet"]
# What fetch must say for each fault kind; None = fetched fine (the parser judges the body).
EXPECTED_KIND: dict[str, str | None] = {
    "http-500": "http-500",
    "http-404": "http-404",
    "http-410": "http-410",
    "redirect-301": None,
    "redirect-loop": "redirect-loop",
    "slow": "timeout",
    "trickle": "timeout",
    "malformed-xml": None,
    "html-not-feed": None,
    "charset-mismatch": None,
    "charset-missing": None,
    "huge": "too-large",
    "gzip-bomb": "too-large",
    "empty": None,
    "flaky-503": None,
    "conn-reset": "connection",
}
# The settings of the fault run: a 15 s deadline cuts the farm's 30 s trickle. All 1000 blogs
# share one host (127.0.0.1:PORT), so the 12 stalled feeds hold per-host slots for
# 6 x 10 s + 6 x 15 s = 150 slot-seconds: per_host 8 makes that ~19 s, the default 4 ~38 s.
FAULT_SETTINGS = {"read_timeout": 10.0, "deadline": 15.0, "per_host": 8}


# --- children: one measurement each ------------------------------------------------------


def _usage() -> dict[str, float]:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {"process_cpu": ru.ru_utime + ru.ru_stime, "rss_mb": ru.ru_maxrss / 1024}


def child_feedparser(urls: list[str]) -> dict[str, Any]:
    import feedparser  # type: ignore[import-untyped]

    start, cpu = time.perf_counter(), time.process_time()
    entries = sum(len(feedparser.parse(url).entries) for url in urls)
    wall = time.perf_counter() - start
    return {"wall": wall, "cpu": time.process_time() - cpu, "feeds": len(urls), "entries": entries}


def child_fetch(
    urls: list[str],
    transport: str,
    state: Path,
    parse: bool,
    settings: dict[str, float],
    save: Path | None = None,
) -> dict[str, Any]:
    from mash.fetch import fetch_feeds_with
    from mash.records import FeedState, FetchSettings

    known = json.loads(state.read_text()) if state.exists() else {}  # validators: a 304 run
    feeds = [FeedState(u, *known.get(u, (None, None))) for u in urls]
    start, cpu = time.perf_counter(), time.process_time()
    results = asyncio.run(fetch_feeds_with(feeds, FetchSettings(**settings), transport=transport))
    fetched = time.perf_counter() - start
    out: dict[str, Any] = {"wall": fetched, "fetch_wall": fetched, **_tally(results)}
    if parse:
        out.update(_parse_all(results))
        out["wall"] = time.perf_counter() - start
    out["cpu"] = time.process_time() - cpu
    if save is not None:
        save.write_text(json.dumps({r.url: (r.etag, r.last_modified) for r in results}))
    out["results"] = {r.url: _summary(r) for r in results}
    return out


def _summary(r: Any) -> list[Any]:
    head = r.content[:8192].decode("utf-8", "replace") if "html" in r.content_type else ""
    return [r.status, r.error_kind, r.moved_to, len(r.content), head, r.elapsed]


def _tally(results: list[Any]) -> dict[str, Any]:
    statuses: dict[str, int] = {}
    for r in results:
        key = str(r.status) if r.error_kind is None else r.error_kind
        statuses[key] = statuses.get(key, 0) + 1
    return {
        "feeds": len(results),
        "bytes": sum(len(r.content) for r in results),
        "outcomes": dict(sorted(statuses.items())),
    }


def _parse_all(results: list[Any]) -> dict[str, Any]:
    from mash.errors import ParseError
    from mash.parse import parse_feed

    start = time.perf_counter()
    posts = 0
    kinds: dict[str, str | None] = {}
    for r in results:
        if not r.ok:
            continue
        try:
            parsed = parse_feed(r.content, r.final_url or r.url, r.content_type)
        except ParseError as e:
            kinds[r.url] = e.kind
        else:
            posts += len(parsed.posts)
            kinds[r.url] = parsed.error_kind
    took = time.perf_counter() - start
    errors = sum(1 for kind in kinds.values() if kind)
    return {"parse_wall": took, "posts": posts, "parse_errors": errors, "parse_kinds": kinds}


def child_pages(urls: list[str]) -> dict[str, Any]:
    from mash.fetch import fetch_pages
    from mash.records import FetchSettings

    start, cpu = time.perf_counter(), time.process_time()
    results = asyncio.run(fetch_pages(urls, FetchSettings(), frozenset({"127.0.0.1"})))
    wall = time.perf_counter() - start
    return {"wall": wall, "cpu": time.process_time() - cpu, **_tally(results)}


def run_child(argv: list[str]) -> None:
    spec = json.loads(argv[0])
    urls = Path(spec["urls"]).read_text().split()
    if spec["mode"] == "feedparser":
        out = child_feedparser(urls)
    elif spec["mode"] == "pages":
        out = child_pages(urls)
    else:
        out = child_fetch(
            urls,
            spec["transport"],
            Path(spec["state"]),
            spec["parse"],
            spec["settings"],
            Path(spec["save"]) if spec.get("save") else None,
        )
    out.update(_usage())
    print(json.dumps(out))


# --- parent: farm, measurements, report --------------------------------------------------


@contextmanager
def farm(feeds: int, *extra: str) -> Iterator[str]:
    """Start a feed farm; yield its base URL; stop it by its PID."""
    args = [sys.executable, str(FARM), "serve", "--feeds", str(feeds), *FARM_ARGS, *extra]
    # The farm logs every connection we cut (trickle, huge, bomb) on stderr: silence it.
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("feedfarm ready"):
            raise SystemExit(f"feed farm did not start: {line!r}")
        yield line.split()[2]
    finally:
        proc.terminate()
        proc.wait(10)


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement in a fresh child process and return its JSON figures."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if done.returncode != 0:
        raise SystemExit(f"measurement {spec['mode']} failed:\n{done.stderr}")
    out: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    out["process_wall"] = time.perf_counter() - start
    return out


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        data: bytes = response.read()
        return data


def bench_clean(feeds: int, sample: int, tmp: Path, repeat: int) -> list[str]:
    lines = [f"## {feeds} feeds x 20 entries, no faults", ""]
    with farm(feeds) as base:
        urls = _get(base + "_farm/feeds.txt").decode().split()
        (tmp / "all.txt").write_text("\n".join(urls))
        (tmp / "sample.txt").write_text("\n".join(urls[:sample]))
        rows = []
        fp = measure({"mode": "feedparser", "urls": str(tmp / "sample.txt")})
        scale = len(urls) / sample
        rows.append(
            (
                "sequential feedparser.parse(url)",
                fp["wall"] * scale,
                fp["cpu"] * scale,
                fp["rss_mb"],
                f"{sample} sampled, x{scale:g}",
            )
        )
        figures: dict[str, dict[str, Any]] = {}
        for transport in ("aiohttp", "httpx"):
            figures.update(_first_and_second(tmp, transport, repeat))
            for run in ("first", "second"):
                got = figures[f"{transport}-{run}"]
                notes = f"median of {repeat}: {_walls(got)}; {_outcomes(got)}"
                rows.append(
                    (
                        f"fetch_feeds {run} run, {transport} transport",
                        got["wall"],
                        got["cpu"],
                        got["rss_mb"],
                        notes,
                    )
                )
        parsed = _bench_parse(tmp)
        if parsed is not None:
            rows.append(
                (
                    "fetch_feeds + parse_feed, first run (aiohttp)",
                    parsed["wall"],
                    parsed["cpu"],
                    parsed["rss_mb"],
                    f"parse {parsed['parse_wall']:.2f} s, "
                    f"{parsed['parse_wall'] / feeds * 1000:.2f} ms/feed, {parsed['posts']} posts",
                )
            )
        rows += _bench_mash(base, tmp)
        rows.append(_bench_pages(base, tmp))
    lines += _table(rows)
    first, second = figures["aiohttp-first"], figures["aiohttp-second"]
    lines += [
        "",
        f"- body bytes fetched in the first run: {first['bytes'] / 1e6:.1f} MB",
        f"- first run vs sequential feedparser: {rows[0][1] / first['wall']:.1f}x faster",
        f"- 304 run / first run (fetch only): {second['wall'] / first['wall']:.0%}",
    ]
    return lines


def _bench_mash(base: str, tmp: Path) -> list[tuple[str, float, float, float, str]]:
    """Time the real command, `mash fetch --feeds-only`, first run then the all-304 run.

    Fetch, parse (in worker processes), full text of complete posts and the SQLite
    store, as an editor runs it; CPU and peak RSS include the parse workers.
    """
    import resource
    import subprocess

    folder = tmp / "mash-cli"
    folder.mkdir()
    (folder / "feeds.yaml").write_text(
        "fetch:\n  per_host: 32\n" + _get(base + "_farm/feeds.yaml").decode()
    )
    command = [
        sys.executable,
        "-m",
        "mash.cli",
        "--config",
        str(folder / "feeds.yaml"),
        "fetch",
        "--feeds-only",
        "--quiet",
    ]
    rows = []
    for run in ("first run", "second run (all 304)"):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        wall = time.perf_counter() - wall
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        summary = done.stderr.strip().splitlines()[-1]
        rows.append(
            (
                f"`mash fetch --feeds-only`, {run}",
                wall,
                cpu,
                after.ru_maxrss / 1024,
                summary.split(";")[0] + "; " + summary.split(";")[1].strip(),
            )
        )
    return rows


def _first_and_second(tmp: Path, transport: str, repeat: int) -> dict[str, dict[str, Any]]:
    """Measure first runs (all 200) and 304 runs alternately, ``repeat`` times; keep medians."""
    state = tmp / f"state-{transport}.json"
    base = {
        "mode": "fetch",
        "urls": str(tmp / "all.txt"),
        "transport": transport,
        "parse": False,
        "settings": {},
    }
    firsts, seconds = [], []
    for i in range(repeat):
        save = str(state) if i == 0 else ""
        firsts.append(measure({**base, "state": str(tmp / "none.json"), "save": save}))
        seconds.append(measure({**base, "state": str(state)}))
    return {f"{transport}-first": _median(firsts), f"{transport}-second": _median(seconds)}


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(runs, key=lambda r: float(r["wall"]))
    return {**ordered[len(ordered) // 2], "walls": [r["wall"] for r in runs]}


def _walls(got: dict[str, Any]) -> str:
    return " ".join(f"{w:.2f}" for w in got["walls"])


def _bench_pages(base: str, tmp: Path) -> tuple[str, float, float, float, str]:
    """Fetch the article pages of every summary-only post; check robots.txt was obeyed."""
    manifest = json.loads(_get(base + "_farm/manifest.json"))
    entries = manifest["entries"] if isinstance(manifest, dict) else manifest
    pages = [e for e in entries if not e["full_content"]]
    (tmp / "pages.txt").write_text("\n".join(e["url"] for e in pages))
    _get(base + "_farm/reset")
    got = measure({"mode": "pages", "urls": str(tmp / "pages.txt")})
    stats = json.loads(_get(base + "_farm/stats"))
    disallowed = sum(1 for e in pages if e["robots_disallowed"])
    notes = (
        f"{len(pages)} pages, {got['bytes'] / 1e6:.0f} MB; {_outcomes(got)}; "
        f"{disallowed} under /members/ in the manifest; farm saw "
        f"{stats['robots_violations']} robots violations"
    )
    return (
        "fetch_pages, article pages of truncated feeds",
        got["wall"],
        got["cpu"],
        got["rss_mb"],
        notes,
    )


def _has_parse() -> bool:
    try:
        import mash.parse  # noqa: F401
    except ImportError:
        return False
    return True


def _bench_parse(tmp: Path) -> dict[str, Any] | None:
    if not _has_parse():
        return None
    spec = {
        "mode": "fetch",
        "urls": str(tmp / "all.txt"),
        "transport": "aiohttp",
        "state": str(tmp / "state-parse.json"),
        "parse": True,
        "settings": {},
    }
    return measure(spec)


def _outcomes(got: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in got["outcomes"].items())


def _table(rows: list[tuple[str, float, float, float, str]]) -> list[str]:
    lines = ["| what | wall s | CPU s | peak RSS MB | notes |", "|---|---:|---:|---:|---|"]
    for what, wall, cpu, rss, notes in rows:
        lines.append(f"| {what} | {wall:.2f} | {cpu:.2f} | {rss:.0f} | {notes} |")
    return lines


def bench_faults(feeds: int, tmp: Path) -> list[str]:
    lines = ["", "## The same farm with --faults 10", ""]
    with farm(feeds, "--faults", "10") as base:
        urls = _get(base + "_farm/feeds.txt").decode().split()
        faults = json.loads(_get(base + "_farm/faults.json"))
        faults = faults["faults"] if isinstance(faults, dict) else faults
        (tmp / "faulty.txt").write_text("\n".join(urls))
        spec = {
            "mode": "fetch",
            "urls": str(tmp / "faulty.txt"),
            "transport": "aiohttp",
            "state": str(tmp / "state-faults.json"),
            "parse": _has_parse(),
            "settings": FAULT_SETTINGS,
        }
        got = measure(spec)
    what = "fetch_feeds + parse_feed" if spec["parse"] else "fetch_feeds"
    notes = f"fetch {got['fetch_wall']:.1f} s; {_outcomes(got)}"
    lines += _table([(f"{what}, faulty farm", got["wall"], got["cpu"], got["rss_mb"], notes)])
    lines += [
        "",
        f"settings: {FAULT_SETTINGS} (others default); the child process ended by itself in "
        f"{got['process_wall']:.1f} s (limit 60 s)",
        "",
        "| fault | feeds | fetch must say | fetch said | parser said | ok | slowest s |",
        "|---|---:|---|---|---|---|---:|",
    ]
    wrong = _check_faults(faults, got["results"], got.get("parse_kinds", {}), lines)
    lines += ["", f"**{len(faults) - wrong} of {len(faults)} faulty feeds reported as expected.**"]
    return lines


_NOTES = {
    "redirect-301": " (moved_to = feed-moved.xml)",
    "html-not-feed": " (autodiscovery finds syndication.xml)",
    "flaky-503": " (after retries)",
}


def _check_faults(
    faults: list[dict[str, Any]],
    results: dict[str, list[Any]],
    parse_kinds: dict[str, str | None],
    lines: list[str],
) -> int:
    by_kind: dict[str, list[tuple[bool, str, str]]] = {}
    for fault in faults:
        ok, said = _fault_ok(fault, results[fault["url"]])
        parsed = str(parse_kinds.get(fault["url"], "-"))
        by_kind.setdefault(fault["kind"], []).append((ok, said, parsed))
    wrong = 0
    for kind, seen in sorted(by_kind.items()):
        bad = sum(1 for ok, _, _ in seen if not ok)
        wrong += bad
        said = ", ".join(sorted({s for _, s, _ in seen}))
        parsed = ", ".join(sorted({p for _, _, p in seen}))
        want = f"{EXPECTED_KIND[kind] or 'fetched'}{_NOTES.get(kind, '')}"
        verdict = "yes" if not bad else f"NO ({bad})"
        slowest = max(results[f["url"]][5] for f in faults if f["kind"] == kind)
        lines.append(
            f"| {kind} | {len(seen)} | {want} | {said} | {parsed} | {verdict} | {slowest:.1f} |"
        )
    return wrong


def _fault_ok(fault: dict[str, Any], result: list[Any]) -> tuple[bool, str]:
    from mash.fetch import discover_feed_urls

    status, kind, moved, _, head, _ = result
    ok = kind == EXPECTED_KIND[fault["kind"]]
    if fault["kind"] == "redirect-301":
        ok = ok and bool(moved and moved.endswith("feed-moved.xml"))
    if fault["kind"] == "html-not-feed":
        found = discover_feed_urls(head, fault["url"])
        ok = ok and bool(found) and found[0].endswith("syndication.xml")
    return ok, kind or f"{status}"


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        run_child(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--sample", type=int, default=200, help="feeds for sequential feedparser")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each fetch measurement")
    parser.add_argument("--no-faults", action="store_true", help="skip the faulty farm")
    parser.add_argument("--faults-only", action="store_true", help="only the faulty farm")
    args = parser.parse_args()
    if not FARM.exists():
        raise SystemExit(f"feed farm not found: {FARM}")
    with tempfile.TemporaryDirectory() as tmp:
        lines = [
            f"# fetch benchmark ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
            f"{os.cpu_count()} CPUs, load average at start "
            f"{', '.join(f'{x:.1f}' for x in os.getloadavg())})",
            "",
            "command: `.venv/bin/python bench/fetch_bench.py "
            f"--feeds {args.feeds} --sample {args.sample} --repeat {args.repeat}`",
            "",
        ]
        if not args.faults_only:
            lines += bench_clean(args.feeds, args.sample, Path(tmp), args.repeat)
        if not args.no_faults:
            lines += bench_faults(args.feeds, Path(tmp))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
