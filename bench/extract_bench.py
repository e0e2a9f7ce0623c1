"""Score mash's extractor against trafilatura's strongest setting, side by side (#4).

    .venv/bin/python bench/extract_bench.py                 # every corpus found
    .venv/bin/python bench/extract_bench.py --corpus farm   # or readability, real, blogs, demo
    .venv/bin/python bench/extract_bench.py --save-outputs /tmp/extract-out --worst 10

Runs ../shared/bench/extract_eval.py once per corpus with both extractors in the
same run (same pages, same process conditions), then prints one summary table:
shingle F1, precision, recall, CPU pages/s, and mash's CPU time per page as a
multiple of trafilatura's. Corpora: readability-pages (all, and real-pages.txt),
the feed farm's generated pages, and the demo corpus when demo/build.py exists.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
EVAL = SHARED / "bench" / "extract_eval.py"
READABILITY = SHARED / "corpora" / "readability-pages"
FARM = SHARED / "bench" / "feedfarm.py"
DEMO_BUILD = ROOT / "demo" / "build.py"
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


def _score(corpus: Path, extra: list[str], out: Path, args: argparse.Namespace) -> dict[str, dict]:
    command = [sys.executable, str(EVAL), "--corpus", str(corpus), "--json", str(out)]
    for name, spec in EXTRACTORS.items():
        command += ["--extractor", f"{name}={spec}"]
    command += ["--bootstrap", str(args.bootstrap), *extra]
    if args.worst:
        command += ["--worst", str(args.worst)]
    if args.save_outputs:
        command += ["--save-outputs", str(Path(args.save_outputs) / corpus.name)]
    subprocess.run(command, check=True, cwd=ROOT, stdout=sys.stderr if args.quiet else None)
    doc = json.loads(out.read_text(encoding="utf-8"))
    return {name: item["summary"] for name, item in doc["extractors"].items()}


def _row(label: str, name: str, s: dict, base: dict) -> str:
    ratio = base["cpu_pages_per_second"] / s["cpu_pages_per_second"]
    sh = s["shingle"]
    spread = f" ± {sh['f1_std']:.3f}" if "f1_std" in sh else ""
    return (
        f"| {label} | {name} | {sh['f1']:.3f}{spread} | {sh['precision']:.3f} | {sh['recall']:.3f} "
        f"| {s['cpu_pages_per_second']:.1f} | {ratio:.2f}x |"
    )


def main() -> None:
    """Score every corpus and print a Markdown table of the results."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    corpora = ["all", "readability", "real", "blogs", "farm", "demo"]
    ap.add_argument("--corpus", choices=corpora, default="all")
    ap.add_argument("--bootstrap", type=int, default=200)
    ap.add_argument("--worst", type=int, default=0)
    ap.add_argument("--save-outputs", default="")
    ap.add_argument("--quiet", action="store_true", help="send extract_eval's tables to stderr")
    args = ap.parse_args()
    if not EVAL.exists():
        raise SystemExit(f"error: {EVAL} not found (the shared bench folder beside the repo)")
    rows = [
        "| corpus | extractor | F1 | precision | recall | cpu pages/s | cpu/page vs traf. |",
        "|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory(prefix="mash-extract-bench-") as tmp:
        work = Path(tmp)
        for label, corpus, extra in _corpora(args.corpus, work):
            summaries = _score(corpus, extra, work / "scores.json", args)
            base = summaries["trafilatura"]
            rows += [_row(label, name, summaries[name], base) for name in EXTRACTORS]
    print("\n".join(rows))


if __name__ == "__main__":
    main()
