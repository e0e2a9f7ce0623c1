"""Benchmark the fetch stage against the local feed farm (issues #3 and #8).

Usage (from the repo root):
    .venv/bin/python bench/fetch_bench.py [--feeds 1000] [--sample 0] [--repeat 3] [--no-faults]

In one run it starts ../shared/bench/feedfarm.py and measures, side by side:

- sequential ``feedparser.parse(url)`` over the same URLs (all of them by default;
  ``--sample N`` times the first N and scales);
- the real command, ``mash fetch --feeds-only``: first run on a fresh database and the
  all-304 second run, ``--repeat`` times (medians), wall, CPU and peak RSS of its whole
  process tree (main process, forkserver, parse workers); then one whole ``mash fetch``
  with the article pages of the truncated feeds;
- the parts: ``fetch_feeds`` first and 304 runs on the aiohttp transport and on httpx's
  own; fetch then ``parse_feed``; ``fetch_pages`` for every truncated post;
- a ``--faults 10`` farm: ``fetch_feeds`` must give every faulty feed the error its fault
  calls for, and the real ``mash fetch --feeds-only`` must end by itself in under 60 s
  and under 400 MB, store every healthy feed's posts exactly (the farm's manifest) and
  report every faulty feed with the right status and error in ``mash feeds check --json``.

Prints a Markdown report on stdout (bench/FETCH.md keeps the last one).
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import ipaddress
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
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
FARM = ROOT.parent / "shared" / "bench" / "feedfarm.py"
# `reader` (lemon24/reader), the established Python feed-reader library #8 compares with. It
# vendors a feedparser that needs `sgmllib` (sgmllib3k), which clashes with ours: it gets its
# own venv, made on first use (needs PyPI); without it the bench says so and goes on.
READER_VENV = ROOT / ".venv-reader"
READER_PINS = ["reader>=3.26,<4", "sgmllib3k>=1.0,<2"]
READER_CHILD = """
import json, resource, sys, tempfile, time
from pathlib import Path
from reader import make_reader
urls = Path(sys.argv[1]).read_text().split()
reader = make_reader(str(Path(tempfile.mkdtemp()) / "reader.sqlite"))
for url in urls:
    reader.add_feed(url)
out = {}
for run in ("first", "second"):
    start, cpu = time.perf_counter(), time.process_time()
    reader.update_feeds(workers=int(sys.argv[2]), scheduled=False)
    out[run] = {"wall": time.perf_counter() - start, "cpu": time.process_time() - cpu}
out["entries"] = reader.get_entry_counts().total
out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""
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
# The farm serves on 127.0.0.1: mash may connect there, and nowhere else private (#21).
FARM_NETWORKS = (ipaddress.ip_network("127.0.0.1"),)
FARM_ALLOW = "  allow_private: [127.0.0.1]\n"  # a line of a feeds.yaml's fetch: section

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
    settings: dict[str, Any],
    save: Path | None = None,
) -> dict[str, Any]:
    from mash.fetch import fetch_feeds_with
    from mash.records import FeedState, FetchSettings

    known = json.loads(state.read_text()) if state.exists() else {}  # validators: a 304 run
    feeds = [FeedState(u, *known.get(u, (None, None))) for u in urls]
    start, cpu = time.perf_counter(), time.process_time()
    chosen = FetchSettings(**settings, allow_private=FARM_NETWORKS)
    results = asyncio.run(fetch_feeds_with(feeds, chosen, transport=transport))
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
    results = asyncio.run(fetch_pages(urls, FetchSettings(allow_private=FARM_NETWORKS)))
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
        sample = sample or len(urls)
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
                f"{sample} sampled, x{scale:g}" if scale != 1 else f"all {sample} URLs",
            )
        )
        readers = bench_reader(tmp / "all.txt", len(urls))
        rows += readers
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
        mash_rows, mash = _bench_mash(base, tmp, repeat)
        rows += mash_rows
        rows.append(_bench_pages(base, tmp))
    lines += _table(rows)
    first, second = figures["aiohttp-first"], figures["aiohttp-second"]
    sequential = rows[0][1]
    one, two = mash["first"], mash["second"]
    lines += [
        "",
        f"- body bytes fetched in the first run: {first['bytes'] / 1e6:.1f} MB",
        f"- `mash fetch --feeds-only` first run: {one['wall']:.2f} s, "
        f"**{sequential / one['wall']:.1f}x faster than sequential feedparser** over the same "
        f"URLs (targets: 5x, under 7 s)",
        f"- its all-304 run: {two['wall']:.2f} s, **{two['wall'] / one['wall']:.0%} of the first "
        f"run** (targets: under 20%, under 1 s)",
        *(
            [
                f"- against `reader`'s first update in the same run ({readers[0][1]:.1f} s): "
                f"**{readers[0][1] / one['wall']:.1f}x faster** (target: 6x); its all-304 "
                f"update took {readers[1][1]:.2f} s, mash's {two['wall']:.2f} s"
            ]
            if len(readers) == 2
            else [f"- `reader`: {readers[0][4]}"]
        ),
        f"- peak memory, first run: {one['rss_mb']:.0f} MB summed over its "
        f"{one['processes']} processes, {one['rss_one_mb']:.0f} MB the largest (target: under "
        "300 MB)",
        f"- fetch_feeds alone (HTTP, no parsing): {first['wall']:.2f} s first run, "
        f"{second['wall']:.2f} s all 304",
    ]
    return lines


def _reader_python() -> tuple[Path | None, str]:
    """Return reader's interpreter (making its venv the first time), or None and why not."""
    python = READER_VENV / "bin" / "python"
    if not python.exists():
        try:
            subprocess.run([sys.executable, "-m", "venv", str(READER_VENV)], check=True)
            pip = [str(python), "-m", "pip", "install", "--quiet", *READER_PINS]
            subprocess.run(pip, check=True, capture_output=True, timeout=600)
        except (OSError, subprocess.SubprocessError) as e:
            return None, f"could not install {' '.join(READER_PINS)} into {READER_VENV}: {e}"
    return python, ""


def bench_reader(urls: Path, feeds: int) -> list[tuple[str, float, float, float, str]]:
    """reader's first update of the farm's feeds, then its all-304 second one (8 workers)."""
    python, why = _reader_python()
    if python is None:
        return [("`reader` first / second update", 0.0, 0.0, 0.0, f"not measured: {why}")]
    done = subprocess.run(
        [str(python), "-c", READER_CHILD, str(urls), "8"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return [("`reader` first / second update", 0.0, 0.0, 0.0, f"not measured: {reason}")]
    got = json.loads(done.stdout)
    note = f"{got['entries']} entries from {feeds} feeds; 8 workers, scheduled=False"
    return [
        (
            "`reader` 3.x, first update",
            got["first"]["wall"],
            got["first"]["cpu"],
            got["rss_mb"],
            note,
        ),
        (
            "`reader` 3.x, second update (all 304)",
            got["second"]["wall"],
            got["second"]["cpu"],
            got["rss_mb"],
            "",
        ),
    ]


def run_tree(command: list[str], cwd: Path, ok: tuple[int, ...] = (0,)) -> dict[str, Any]:
    """Run command; return its wall time, the CPU and peak RSS of its whole process tree.

    The parse workers are grandchildren (forkserver), which getrusage never sees, so
    /proc is sampled every 20 ms: CPU is each process's last utime+stime, peak RSS the
    largest sum over the tree at one instant (an upper bound: forked workers share pages).
    """
    # files, not pipes: a child that fills a pipe nobody reads until it ends would hang
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        return _run_sampled(command, cwd, out, err, ok)


def _run_sampled(
    command: list[str], cwd: Path, out: IO[bytes], err: IO[bytes], ok: tuple[int, ...] = (0,)
) -> dict[str, Any]:
    tick = os.sysconf("SC_CLK_TCK")
    page = os.sysconf("SC_PAGE_SIZE")
    cpu: dict[int, float] = {}
    peak = peak_one = 0.0
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=err)
    while proc.poll() is None:
        total = 0.0
        for pid in _tree(proc.pid):
            try:
                stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page / 2**20
            except (OSError, IndexError, ValueError):
                continue
            cpu[pid] = (int(stat[11]) + int(stat[12])) / tick
            total += rss
            peak_one = max(peak_one, rss)
        peak = max(peak, total)
        time.sleep(0.02)
    wall = time.perf_counter() - start
    out.seek(0)
    err.seek(0)
    stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode not in ok:
        raise SystemExit(f"{' '.join(command)} failed ({proc.returncode}):\n{stderr}")
    return {
        "wall": wall,
        "cpu": sum(cpu.values()),
        "rss_mb": peak,
        "rss_one_mb": peak_one,
        "processes": len(cpu),
        "stdout": stdout,
        "stderr": stderr,
    }


def _tree(root: int) -> list[int]:
    """Return root and all its descendants (from /proc/PID/task/TID/children)."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            continue  # it ended since its parent listed it
        for task in tasks:
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
    return found


def _mash(folder: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "mash.cli", "--config", str(folder / "feeds.yaml"), *args]


def _last_line(got: dict[str, Any]) -> str:
    lines = got["stderr"].strip().splitlines()
    return lines[-1] if lines else ""


def _bench_mash(
    base: str, tmp: Path, repeat: int
) -> tuple[list[tuple[str, float, float, float, str]], dict[str, dict[str, Any]]]:
    """Time the real command, `mash fetch --feeds-only`: first run, then the all-304 run.

    Fetch, parse (in worker processes), full text of complete posts and the SQLite
    store, as an editor runs it, ``repeat`` times on a fresh database each (medians);
    then one whole `mash fetch` (article pages of the truncated feeds too).
    """
    feeds_yaml = "fetch:\n  per_host: 32\n" + FARM_ALLOW + _get(base + "_farm/feeds.yaml").decode()
    firsts, seconds = [], []
    for i in range(repeat):
        folder = tmp / f"mash-cli-{i}"
        folder.mkdir()
        (folder / "feeds.yaml").write_text(feeds_yaml)
        firsts.append(run_tree(_mash(folder, "fetch", "--feeds-only", "--quiet"), ROOT))
        seconds.append(run_tree(_mash(folder, "fetch", "--feeds-only", "--quiet"), ROOT))
    folder = tmp / "mash-cli-pages"
    folder.mkdir()
    (folder / "feeds.yaml").write_text(feeds_yaml)
    whole = run_tree(_mash(folder, "fetch", "--quiet"), ROOT)
    figures = {"first": _median(firsts), "second": _median(seconds), "whole": whole}
    rows = []
    for key, what in (("first", "first run"), ("second", "second run (all 304)")):
        got = figures[key]
        rows.append(
            (
                f"**`mash fetch --feeds-only`, {what}**",
                got["wall"],
                got["cpu"],
                got["rss_mb"],
                f"median of {repeat}: {_walls(got)}; {got['processes']} processes, "
                f"largest {got['rss_one_mb']:.0f} MB; {_last_line(got).split(';')[0]}",
            )
        )
    rows.append(
        (
            "`mash fetch` (feeds, then article pages), first run",
            whole["wall"],
            whole["cpu"],
            whole["rss_mb"],
            f"largest process {whole['rss_one_mb']:.0f} MB; {_last_line(whole)}",
        )
    )
    return rows, figures


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


def bench_faults(
    feeds: int, tmp: Path, slow: float, fault_settings: dict[str, float] = FAULT_SETTINGS
) -> list[str]:
    lines = ["", f"## The same farm with --faults 10 --slow-seconds {slow:g}", ""]
    with farm(feeds, "--faults", "10", "--slow-seconds", f"{slow:g}") as base:
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
            "settings": fault_settings,
        }
        got = measure(spec)
        cli_lines = bench_faults_cli(base, faults, tmp, fault_settings)
    what = "fetch_feeds + parse_feed" if spec["parse"] else "fetch_feeds"
    notes = f"fetch {got['fetch_wall']:.1f} s; {_outcomes(got)}"
    lines += _table([(f"{what}, faulty farm", got["wall"], got["cpu"], got["rss_mb"], notes)])
    lines += [
        "",
        f"settings: {fault_settings} (others default); the child process ended by itself in "
        f"{got['process_wall']:.1f} s (limit 60 s)",
        "",
        "| fault | feeds | fetch must say | fetch said | parser said | ok | slowest s |",
        "|---|---:|---|---|---|---|---:|",
    ]
    wrong = _check_faults(faults, got["results"], got.get("parse_kinds", {}), lines)
    lines += ["", f"**{len(faults) - wrong} of {len(faults)} faulty feeds reported as expected.**"]
    return lines + cli_lines


# What `mash feeds check --json` must say (status, error) after one run, per fault kind.
EXPECTED_HEALTH: dict[str, tuple[str, str | None]] = {
    "http-500": ("failing", "http-500"),
    "http-404": ("failing", "http-404"),
    "http-410": ("retired", "http-410"),
    "redirect-301": ("moved", None),
    "redirect-loop": ("failing", "redirect-loop"),
    "slow": ("failing", "timeout"),
    "trickle": ("failing", "timeout"),
    "malformed-xml": ("ok", "malformed"),
    "html-not-feed": ("failing", "not-a-feed"),
    "charset-mismatch": ("ok", None),
    "charset-missing": ("ok", None),
    "huge": ("failing", "too-large"),
    "gzip-bomb": ("failing", "too-large"),
    "empty": ("failing", "not-a-feed"),
    "flaky-503": ("ok", None),
    "conn-reset": ("failing", "connection"),
}
# Fault kinds whose feed still delivers every post (after a redirect, retries, re-decoding).
DELIVERS = {"redirect-301", "flaky-503", "charset-mismatch", "charset-missing"}


def bench_faults_cli(
    base: str, faults: list[dict[str, Any]], tmp: Path, fault_settings: dict[str, float]
) -> list[str]:
    """Run the real `mash fetch --feeds-only` on the faulty farm; check it against the truth.

    Every healthy feed's posts must be stored exactly (the farm's manifest: guid, title,
    link), and `mash feeds check --json` must give every faulty feed its status and error.
    """
    import sqlite3

    folder = tmp / "mash-faults"
    folder.mkdir()
    settings = "".join(f"  {k}: {v}\n" for k, v in fault_settings.items())
    farm_yaml = _get(base + "_farm/feeds.yaml").decode()
    (folder / "feeds.yaml").write_text("fetch:\n" + settings + FARM_ALLOW + farm_yaml)
    got = run_tree(_mash(folder, "fetch", "--feeds-only", "--quiet"), ROOT)
    # exit 1: some feeds are failing, which is what this farm is for (see #20)
    check = run_tree(_mash(folder, "feeds", "check", "--json"), ROOT, ok=(0, 1))
    health = {h["url"]: h for h in json.loads(check["stdout"])}
    manifest = json.loads(_get(base + "_farm/manifest.json"))
    fault_of = {f["url"]: f["kind"] for f in faults}
    from mash.urls import canonical_url

    # a post is (title, canonical link): the manifest's guid is not always the feed's id
    truth: dict[str, set[tuple[str, str]]] = {}
    for entry in manifest:
        truth.setdefault(entry["feed_url"], set()).add(
            (entry["title"], canonical_url(entry["feed_link"]))
        )
    db = sqlite3.connect(folder / "data" / "mash.db")
    stored: dict[str, dict[tuple[str, str], list[str]]] = {}
    for feed, guid, title, url in db.execute("SELECT feed_url, guid, title, url FROM posts"):
        stored.setdefault(feed, {}).setdefault((title, url), []).append(guid)
    db.close()
    exact = wrong_posts = 0
    problems: list[str] = []
    for feed, want in truth.items():
        kind = fault_of.get(feed)
        if kind is not None and kind not in DELIVERS:
            continue
        have = stored.get(feed, {})
        if have.keys() == want and all(len(guids) == 1 for guids in have.values()):
            exact += 1
        else:
            wrong_posts += 1
            problems.append(f"{feed}: {sum(map(len, have.values()))} stored, {len(want)} in feed")
    health_ok: dict[str, list[bool]] = {}
    for feed, kind in fault_of.items():
        seen = health.get(feed, {})
        health_ok.setdefault(kind, []).append(
            (seen.get("status"), seen.get("error")) == EXPECTED_HEALTH[kind]
        )
        if (seen.get("status"), seen.get("error")) != EXPECTED_HEALTH[kind]:
            problems.append(f"{feed} ({kind}): {seen.get('status')}/{seen.get('error')}")
    healthy_ok = sum(1 for url, h in health.items() if url not in fault_of and h["status"] == "ok")
    reported = sum(sum(v) for v in health_ok.values())
    lines = [
        "",
        "### The real command on the faulty farm",
        "",
        *_table(
            [
                (
                    "`mash fetch --feeds-only`, faulty farm",
                    got["wall"],
                    got["cpu"],
                    got["rss_mb"],
                    f"largest process {got['rss_one_mb']:.0f} MB; {_last_line(got)}",
                )
            ]
        ),
        "",
        f"- ended by itself in {got['wall']:.1f} s (limit 60 s); peak memory "
        f"{got['rss_mb']:.0f} MB summed over its processes (limit 400 MB)",
        f"- feeds whose posts must all be stored: **{exact} of {exact + wrong_posts} stored "
        "exactly** (each post once, with the farm manifest's title and link)",
        f"- healthy feeds `ok` in `mash feeds check --json`: {healthy_ok} of "
        f"{len(health) - len(fault_of)}",
        f"- **faulty feeds with the right status and error in `mash feeds check --json`: "
        f"{reported} of {len(fault_of)}**",
        "",
        "| fault | feeds | check must say | right |",
        "|---|---:|---|---:|",
    ]
    for kind, oks in sorted(health_ok.items()):
        status, error = EXPECTED_HEALTH[kind]
        lines.append(f"| {kind} | {len(oks)} | {status}, {error or '-'} | {sum(oks)} |")
    if problems:
        lines += ["", "Problems:", "", *[f"- {p}" for p in problems[:20]]]
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
    parser.add_argument(
        "--sample", type=int, default=0, help="feeds for sequential feedparser (0: all)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each fetch measurement")
    parser.add_argument("--no-faults", action="store_true", help="skip the faulty farm")
    parser.add_argument("--faults-only", action="store_true", help="only the faulty farm")
    parser.add_argument(
        "--slow-seconds",
        type=float,
        default=30.0,
        help="the faulty farm's --slow-seconds (slow and trickle feeds; default 30)",
    )
    parser.add_argument(
        "--default-settings",
        action="store_true",
        help=f"fetch the faulty farm with mash's default settings, not {FAULT_SETTINGS}",
    )
    args = parser.parse_args()
    if not FARM.exists():
        raise SystemExit(f"feed farm not found: {FARM}")
    # mash's bytecode, as an installed mash has it: where PYTHONDONTWRITEBYTECODE is set
    # (this machine, CI), each run would otherwise compile mash's source again, 0.06 s
    compileall.compile_dir(ROOT / "mash", quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        lines = [
            f"# fetch benchmark ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
            f"{os.cpu_count()} CPUs, load average at start "
            f"{', '.join(f'{x:.1f}' for x in os.getloadavg())})",
            "",
            "command: `.venv/bin/python bench/fetch_bench.py "
            f"--feeds {args.feeds} --sample {args.sample} --repeat {args.repeat}"
            + (" --faults-only" if args.faults_only else "")
            + f" --slow-seconds {args.slow_seconds:g}"
            + (" --default-settings" if args.default_settings else "")
            + "`",
            "",
        ]
        print("\n".join(lines), flush=True)  # each part as it ends: a late failure keeps them
        if not args.faults_only:
            print(
                "\n".join(bench_clean(args.feeds, args.sample, Path(tmp), args.repeat)), flush=True
            )
        if not args.no_faults:
            chosen = {} if args.default_settings else FAULT_SETTINGS
            faulty = bench_faults(args.feeds, Path(tmp), args.slow_seconds, chosen)
            print("\n".join(faulty), flush=True)


if __name__ == "__main__":
    main()
