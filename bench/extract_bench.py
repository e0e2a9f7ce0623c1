"""Score mash's extractor against trafilatura's strongest setting, side by side (#4).

    .venv/bin/python bench/extract_bench.py                 # every corpus found
    .venv/bin/python bench/extract_bench.py --corpus farm   # or readability, real, blogs, demo
    .venv/bin/python bench/extract_bench.py --save-outputs /tmp/extract-out --worst 10

Runs ../shared/bench/extract_eval.py once per corpus with both extractors in the
same run (same pages, same process conditions), then prints one summary table:
shingle F1, precision, recall, CPU pages/s, and mash's CPU time per page as a
multiple of trafilatura's, and "lost": the pages under 0.2 where trafilatura is over
0.8 (#18). ``--before REV`` adds mash as of a git revision to the same run.
Corpora: readability-pages (all, and real-pages.txt), the feed farm's generated
pages, the demo corpus when demo/build.py exists, and the held-out Dragnet and
CleanEval pages (final set, and CleanEval's own development set) when
bench/build_heldout.py has built them.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
EVAL = SHARED / "bench" / "extract_eval.py"
READABILITY = SHARED / "corpora" / "readability-pages"
FARM = SHARED / "bench" / "feedfarm.py"
DEMO_BUILD = ROOT / "demo" / "build.py"
HELDOUT = ROOT / "bench" / "corpora"  # built by bench/build_heldout.py, git-ignored (#18)
EXTRACTORS = {
    "mash": "mash.extract:extract_text",
    "trafilatura": f"{Path(__file__).resolve()}:trafilatura_best",
}


def trafilatura_best(html: str, url: str | None) -> str:
    """Run trafilatura at its strongest setting for this job (the issue's baseline)."""
    import trafilatura

    return trafilatura.extract(html, url=url, favor_precision=True, include_comments=False) or ""


def _corpora(which: str, work: Path) -> list[tuple[str, Path, list[str]]]:
    """Return (label, directory, extra extract_eval arguments) for each corpus to score."""
    found: list[tuple[str, Path, list[str]]] = []
    if which in ("all", "readability"):
        found.append(("readability (all 130)", READABILITY, []))
    if which in ("all", "real"):
        found.append(("readability real pages (94)", READABILITY, ["--ids", "real-pages.txt"]))
    if which in ("all", "blogs"):
        ids = work / "blog-ids.txt"
        ids.write_text("\n".join(_blog_pages()) + "\n", encoding="utf-8")
        found.append(
            (f"readability blog pages ({len(_blog_pages())})", READABILITY, ["--ids", str(ids)])
        )
    if which in ("all", "farm"):
        farm = work / "farm"
        subprocess.run(
            [sys.executable, str(FARM), "corpus", "--out", str(farm), "--pages", "200"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        found.append(("feed farm (200 pages)", farm, []))
    for name in ("dragnet-dev", "dragnet", "cleaneval-dev", "cleaneval"):
        if which in ("all", "heldout", name):
            found += _heldout(name, work)
    if which in ("all", "demo"):
        if DEMO_BUILD.exists():
            demo = work / "demo"
            build = [sys.executable, str(DEMO_BUILD), "--corpus", str(demo)]
            done = subprocess.run(build, capture_output=True, text=True)
            if done.returncode == 0:
                found.append(("demo corpus", demo, []))
            else:
                tail = done.stderr.strip().splitlines()[-1:] or ["no message"]
                print(f"demo corpus skipped: demo/build.py failed: {tail[0]}", file=sys.stderr)
        else:
            print(f"demo corpus skipped: {DEMO_BUILD} does not exist yet", file=sys.stderr)
    return found


def _heldout(name: str, work: Path) -> list[tuple[str, Path, list[str]]]:
    """Return the held-out corpus called name, when bench/build_heldout.py has built it.

    Dragnet is split by a fixed rule: ids whose CRC-32 is divisible by 3 are the development pages
    (looked at while working on #18), the others are held out (never looked at).
    CleanEval comes as its final set and its own, separate development set.
    """
    folder = HELDOUT / (name if name.startswith("cleaneval") else name.removesuffix("-dev"))
    if not folder.is_dir():
        print(
            f"{name} corpus skipped: {folder} not built (bench/build_heldout.py)", file=sys.stderr
        )
        return []
    ids = sorted(p.name for p in folder.iterdir() if (p / "source.html").is_file())
    if name.startswith("dragnet"):
        dev = name.endswith("-dev")
        ids = [i for i in ids if (zlib.crc32(i.encode()) % 3 == 0) == dev]
        label = f"dragnet {'development' if dev else 'held-out'} pages ({len(ids)})"
    else:
        kind = "development" if name.endswith("-dev") else "final"
        label = f"cleaneval {kind} set ({len(ids)})"
    listing = work / f"{name}-ids.txt"
    listing.write_text("\n".join(ids) + "\n", encoding="utf-8")
    return [(label, folder, ["--ids", str(listing)])]


def _blog_pages() -> list[str]:
    """Return the real readability pages from blogs, by a rule, not by hand.

    A page is a blog's when its id names a blog engine or "blog", or its generator
    meta names one.
    """
    engines = ("blog", "wordpress", "tumblr", "medium", "ghost")
    real = (READABILITY / "real-pages.txt").read_text(encoding="utf-8").split()
    found = []
    for page in real:
        head = (READABILITY / page / "source.html").read_text(encoding="utf-8", errors="replace")
        generator = re.search(r'<meta[^>]*name="generator"[^>]*content="([^"]*)"', head, re.I)
        named = generator.group(1).lower() if generator else ""
        if any(e in page for e in engines) or any(e in named for e in engines):
            found.append(page)
    return found


def _score(
    corpus: Path, extra: list[str], out: Path, args: argparse.Namespace, extractors: dict[str, str]
) -> dict[str, dict]:
    """Score corpus with every extractor in one extract_eval run; add the collapse count."""
    command = [sys.executable, str(EVAL), "--corpus", str(corpus), "--json", str(out)]
    for name, spec in extractors.items():
        command += ["--extractor", f"{name}={spec}"]
    command += ["--bootstrap", str(args.bootstrap), *extra]
    if args.worst:
        command += ["--worst", str(args.worst)]
    if args.save_outputs:
        command += ["--save-outputs", str(Path(args.save_outputs) / corpus.name)]
    subprocess.run(command, check=True, cwd=ROOT, stdout=sys.stderr if args.quiet else None)
    doc = json.loads(out.read_text(encoding="utf-8"))
    base = {p["id"]: p["shingle"]["f1"] for p in doc["extractors"]["trafilatura"]["pages"]}
    summaries = {}
    for name, item in doc["extractors"].items():
        # Pages where trafilatura gets the article (F1 > 0.8) and we lose it (< 0.2), see #18.
        lost = [p["id"] for p in item["pages"] if p["shingle"]["f1"] < 0.2 and base[p["id"]] > 0.8]
        summaries[name] = {**item["summary"], "lost": lost}
    return summaries


def _before(revision: str, work: Path) -> str:
    """Export mash as of revision and return an extractor spec running it.

    The spec's module imports that mash on its first call, in the eval's worker
    process, after dropping any mash already imported (the worker is forked from
    the eval process, which has imported this tree's mash for the other extractor).
    """
    tree = work / "before"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "archive", revision, "mash"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    shim = work / "mash_before.py"
    shim.write_text(
        "import sys\n"
        "_fn = None\n"
        "def extract_text(html, url):\n"
        "    global _fn\n"
        "    if _fn is None:\n"
        "        for name in [m for m in sys.modules if m == 'mash' or m.startswith('mash.')]:\n"
        "            del sys.modules[name]\n"
        f"        sys.path.insert(0, {str(tree)!r})\n"
        "        import mash.extract\n"
        "        _fn = mash.extract.extract_text\n"
        "    return _fn(html, url)\n",
        encoding="utf-8",
    )
    return f"{shim}:extract_text"


def _row(label: str, name: str, s: dict, base: dict) -> str:
    ratio = base["cpu_pages_per_second"] / s["cpu_pages_per_second"]
    sh = s["shingle"]
    spread = f" ± {sh['f1_std']:.3f}" if "f1_std" in sh else ""
    return (
        f"| {label} | {name} | {sh['f1']:.3f}{spread} | {sh['precision']:.3f} | {sh['recall']:.3f} "
        f"| {len(s['lost'])} | {s['cpu_pages_per_second']:.1f} | {ratio:.2f}x |"
    )


def main() -> None:
    """Score every corpus and print a Markdown table of the results."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    corpora = ["all", "readability", "real", "blogs", "farm", "demo", "heldout"]
    corpora += ["dragnet-dev", "dragnet", "cleaneval-dev", "cleaneval"]
    ap.add_argument("--corpus", choices=corpora, default="all")
    ap.add_argument("--bootstrap", type=int, default=200)
    ap.add_argument("--worst", type=int, default=0)
    ap.add_argument("--save-outputs", default="")
    ap.add_argument("--quiet", action="store_true", help="send extract_eval's tables to stderr")
    ap.add_argument(
        "--before", default="", metavar="REV", help="also score mash as of this git revision"
    )
    ap.add_argument("--lost", action="store_true", help="list the pages counted as lost")
    args = ap.parse_args()
    if not EVAL.exists():
        raise SystemExit(f"error: {EVAL} not found (the shared bench folder beside the repo)")
    rows = [
        "| corpus | extractor | F1 | precision | recall | lost | cpu pages/s | cpu/page vs traf. |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lost: list[str] = []
    with tempfile.TemporaryDirectory(prefix="mash-extract-bench-") as tmp:
        work = Path(tmp)
        extractors = dict(EXTRACTORS)
        if args.before:
            extractors[f"mash@{args.before}"] = _before(args.before, work)
        for label, corpus, extra in _corpora(args.corpus, work):
            summaries = _score(corpus, extra, work / "scores.json", args, extractors)
            base = summaries["trafilatura"]
            rows += [_row(label, name, summaries[name], base) for name in extractors]
            lost += [f"{label}: {name}: {' '.join(s['lost'])}" for name, s in summaries.items()]
    print("\n".join(rows))
    if args.lost:
        print("\n".join(["", "lost pages (F1 < 0.2 where trafilatura's > 0.8):", *lost]))


if __name__ == "__main__":
    main()
