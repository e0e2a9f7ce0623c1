"""Compare mash's parse_feed with feedparser on feedparser's own test feeds (#18).

Usage (from the repo root):
    .venv/bin/python bench/feed_diff.py GIT_DIR_OR_FOLDER [--examples 5] [--out bench/FEEDS.md]

GIT_DIR_OR_FOLDER is a git directory of github.com/kurtmckee/feedparser (every
``tests/**.xml`` at HEAD is read) or a folder of feed files (every ``*.xml`` under it).
Each feed is parsed by ``mash.parse.parse_feed`` and by ``feedparser.parse`` with the
same bytes and HTTP headers, and compared entry by entry by the rules of
tests/feeddiff.py: crashes, entries feedparser keeps with a title and an http(s) link
that mash loses, published/updated dates (UTC), titles, authors, text (words of the
content or summary) and mojibake. Prints a Markdown report (bench/FEEDS.md keeps the last).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.feeddiff import FeedDiff, compare  # noqa: E402 (after the path is set)


def feeds(source: Path) -> Iterator[tuple[str, bytes]]:
    """Yield (name, bytes) of every test feed in a git directory or a folder."""
    if (source / "objects").is_dir() or (source / "HEAD").is_file():
        names = subprocess.run(
            ["git", f"--git-dir={source}", "ls-tree", "-r", "--name-only", "HEAD", "tests/"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        names = sorted(n for n in names if n.endswith(".xml"))
        batch = subprocess.run(
            ["git", f"--git-dir={source}", "cat-file", "--batch"],
            input="".join(f"HEAD:{n}\n" for n in names).encode(),
            check=True,
            capture_output=True,
        ).stdout
        at = 0
        for name in names:
            header_end = batch.index(b"\n", at)
            size = int(batch[at:header_end].split()[2])
            yield name, batch[header_end + 1 : header_end + 1 + size]
            at = header_end + 1 + size + 1
    else:
        for path in sorted(source.rglob("*.xml")):
            yield path.relative_to(source).as_posix(), path.read_bytes()


def _group(name: str) -> str:
    parts = name.split("/")
    return "/".join(parts[1:3] if parts[0] == "tests" else parts[:1])[:40].removesuffix(".xml")


def report(source: Path, examples: int) -> str:
    diffs: list[FeedDiff] = []
    started = time.perf_counter()
    for name, data in feeds(source):
        diffs.append(compare(name, data))
    took = time.perf_counter() - started
    rows = {
        "crashes (must be 0)": [f"{d.name}: {d.crash}" for d in diffs if d.crash],
        "feeds rejected that feedparser keeps entries of": [
            f"{d.name}: {d.rejected}" for d in diffs if d.rejected
        ],
        "entries lost (feedparser keeps them with a title and a web link)": [
            f"{d.name}: {x}" for d in diffs for x in d.lost
        ],
        "date mismatches (published or updated, UTC)": [
            f"{d.name}: {x}" for d in diffs for x in d.dates
        ],
        "title mismatches (after whitespace and entities)": [
            f"{d.name}: {x}" for d in diffs for x in d.titles
        ],
        "encoding problems (mojibake mash has and feedparser has not)": [
            f"{d.name}: {x}" for d in diffs for x in d.mojibake
        ],
        "all entries: another number of entries than feedparser": [
            f"{d.name}: {d.entry_count}" for d in diffs if d.entry_count
        ],
        "all entries: date, title or encoding mismatches": [
            f"{d.name}: {x}" for d in diffs for x in d.entry_fields
        ],
        "all entries: author or text differences": [
            f"{d.name}: {x}" for d in diffs for x in d.entry_other
        ],
        "author differences": [f"{d.name}: {x}" for d in diffs for x in d.authors],
        "text differences (words of content or summary)": [
            f"{d.name}: {x}" for d in diffs for x in d.texts
        ],
    }
    fp_entries = sum(d.fp_entries for d in diffs)
    matched = sum(d.matched for d in diffs)
    untitled = sum(d.untitled for d in diffs)
    lines = [
        f"Feeds: {len(diffs)}; entries feedparser keeps with a title and a web link: "
        f"{fp_entries}; matched by mash (same canonical URL): {matched}; "
        f"entries with a web link but no title (mash drops them by choice, #3): {untitled}; "
        f"all entries feedparser reads: {sum(d.all_entries for d in diffs)}; "
        f"{took:.1f} s for both parsers.",
        "",
        "| finding | count | feeds |",
        "|---|---:|---:|",
    ]
    for label, found in rows.items():
        feeds_hit = len({x.partition(": ")[0] for x in found})
        lines.append(f"| {label} | {len(found)} | {feeds_hit} |")
    by_group: Counter[str] = Counter()
    for d in diffs:
        by_group[_group(d.name)] += len(d.defects)
    lines += [
        "",
        "Defects by folder: " + ", ".join(f"{g} {n}" for g, n in by_group.most_common() if n)
        or "none",
    ]
    for label, found in rows.items():
        if found:
            lines += ["", f"### {label}: first {min(examples, len(found))} of {len(found)}", ""]
            lines += [f"- `{x[:300]}`" for x in found[:examples]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="feedparser's git directory or a folder")
    parser.add_argument("--examples", type=int, default=5, help="examples per finding")
    parser.add_argument("--out", type=Path, help="also write the report to this file")
    args = parser.parse_args()
    command = " ".join(["bench/feed_diff.py", *sys.argv[1:]])
    today = datetime.now(UTC).date()
    text = f"## Feed differential, {today}\n\n`{command}`\n\n" + report(args.source, args.examples)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
