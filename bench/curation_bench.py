"""Curation benchmark (#5): labelled quality on the feed farm and the demo, and rank speed.

    .venv/bin/python bench/curation_bench.py [--feeds 100] [--posts 20000]

1. Starts ../shared/bench/feedfarm.py (its manifest labels every entry: normal, promo,
   offtopic, and syndicated copies), runs a real `mash fetch` of it into a temp folder,
   ranks each month and scores against the labels: excluded as off-topic/promotional,
   picked vs on-topic, duplicates found vs syndicated copies; and prints the similarity
   of true copies against the closest non-copies (how the threshold was chosen).
2. The same on the demo corpus (demo/truth.json).
3. Ranks a synthetic month of --posts posts (sentences of the farm's posts recombined,
   2% syndicated copies) in a child process: wall, CPU and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FARM = ROOT.parent / "shared" / "bench" / "feedfarm.py"

from mash import pipeline  # noqa: E402
from mash.cli import main as mash  # noqa: E402
from mash.config import load_config  # noqa: E402
from mash.rank import jaccard, post_features, rank_posts, topic_profile  # noqa: E402
from mash.records import Edition, Newsletter, StoredPost  # noqa: E402
from mash.store import open_store  # noqa: E402
from mash.urls import url_key  # noqa: E402


def start_farm(feeds: int) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            str(FARM),
            "serve",
            "--port",
            "0",
            "--quiet",
            "--feeds",
            str(feeds),
            "--entries",
            "20",
            "--seed",
            "1",
            "--now",
            "2026-10-31",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().split()[2]


def ratio(a: int, b: int) -> str:
    return f"{a / b:.3f}" if b else "n/a"


def score_month(config_path: Path, month: str, labels: dict[str, dict[str, Any]]) -> dict[str, Any]:
    config = load_config(config_path)
    with open_store(config) as store:
        ranking = pipeline.rank_month(config, month, store)
    tp_ex = fp_ex = fn_ex = 0
    tp_dup = fp_dup = fn_dup = 0
    picked_on = picked = 0
    for c in ranking.candidates:
        label = labels.get(url_key(c.post.url))
        if label is None:
            continue
        bad = label["bad"]
        excluded = c.reason.startswith(("off-topic", "promotional"))
        tp_ex += bad and excluded
        fp_ex += excluded and not bad
        fn_ex += bad and not excluded and not c.duplicate_of
        is_copy = bool(label["copy_of"])
        found = c.duplicate_of is not None
        tp_dup += is_copy and found and url_key(c.duplicate_of or "") == label["copy_of"]
        fp_dup += found and not is_copy
        fn_dup += is_copy and not found
        if c.status == "picked":
            picked += 1
            picked_on += not bad and not is_copy
    return {
        "month": month,
        "candidates": len(ranking.candidates),
        "picked": picked,
        "picked_on_topic": ratio(picked_on, picked),
        "exclusion_precision": ratio(tp_ex, tp_ex + fp_ex),
        "exclusion_recall": ratio(tp_ex, tp_ex + fn_ex),
        "duplicate_precision": ratio(tp_dup, tp_dup + fp_dup),
        "duplicate_recall": ratio(tp_dup, tp_dup + fn_dup),
        "copies": tp_dup + fn_dup,
    }


def similarity_report(config_path: Path, labels: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Jaccard of each true copy with its original, and the closest pair of non-copies."""
    config = load_config(config_path)
    with open_store(config) as store:
        posts = store.posts_between(
            datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC), config.feeds
        )
    profile = topic_profile(config.newsletter)
    feats = {url_key(p.url): post_features(p, profile) for p in posts}
    copies = []
    for key, label in labels.items():
        if label["copy_of"] and key in feats and label["copy_of"] in feats:
            copies.append(jaccard(feats[key].fingerprint, feats[label["copy_of"]].fingerprint))
    keys = [k for k in feats if not labels.get(k, {}).get("copy_of")]
    random.Random(1).shuffle(keys)
    closest = 0.0
    index: dict[int, list[str]] = {}
    for k in keys:
        for h in feats[k].fingerprint:
            index.setdefault(h, []).append(k)
    for k in keys:
        others = {o for h in feats[k].fingerprint for o in index[h][:50] if o != k}
        for o in others:
            closest = max(closest, jaccard(feats[k].fingerprint, feats[o].fingerprint))
    return {
        "copies": len(copies),
        "copy_similarity_min": round(min(copies, default=0), 3),
        "copy_similarity_median": round(sorted(copies)[len(copies) // 2], 3) if copies else 0,
        "closest_non_copy": round(closest, 3),
    }


def farm_quality(feeds: int) -> None:
    proc, base = start_farm(feeds)
    try:
        with urllib.request.urlopen(f"{base}_farm/manifest.json") as r:
            manifest = json.loads(r.read())
        with urllib.request.urlopen(f"{base}_farm/feeds.yaml") as r:
            feeds_yaml = r.read().decode()
        folder = Path(tempfile.mkdtemp(prefix="mash-curation-"))
        (folder / "feeds.yaml").write_text(
            "fetch:\n  concurrency: 32\n  per_host: 16\n  allow_private: [127.0.0.1]\n" + feeds_yaml
        )
        started = time.perf_counter()
        assert mash(["--config", str(folder / "feeds.yaml"), "fetch", "--quiet"]) == 0
        print(
            f"fetched the farm ({feeds} feeds, with pages) in {time.perf_counter() - started:.1f} s"
        )
    finally:
        proc.terminate()
        proc.wait()
    labels = {
        url_key(m["url"]): {
            "bad": m["kind"] != "normal",
            "copy_of": url_key(m["syndicated_from"]) if m["syndicated_from"] else "",
        }
        for m in manifest
    }
    for month in ("2026-09", "2026-10"):
        print("farm", json.dumps(score_month(folder / "feeds.yaml", month, labels)))
    print("farm similarity", json.dumps(similarity_report(folder / "feeds.yaml", labels)))


def demo_quality() -> None:
    from mash.demo import DEMO, serve_folder, write_demo_config

    folder = Path(tempfile.mkdtemp(prefix="mash-demo-"))
    with serve_folder(DEMO / "site") as base:
        config = write_demo_config(folder, base)
        assert mash(["--config", str(config), "fetch", "--quiet"]) == 0
        truth = json.loads((DEMO / "truth.json").read_text().replace("{{BASE}}", base))
    labels = {
        url_key(t["url"]): {
            "bad": not t["on_topic"] or t["promotional"],
            "copy_of": url_key(t["duplicate_of"]) if t["duplicate_of"] else "",
        }
        for t in truth
    }
    for month in ("2026-09", "2026-10"):
        print("demo", json.dumps(score_month(config, month, labels)))


def synthetic_posts(n: int, seed: int = 1) -> list[StoredPost]:
    """Return n posts of recombined customer-service sentences, 2% syndicated copies."""
    from mash.blurb import split_sentences

    pool = []
    for path in sorted((ROOT / "demo" / "truth.json").parent.glob("truth.json")):
        for t in json.loads(path.read_text()):
            pool += split_sentences(t["expected_text"])
    rng = random.Random(seed)
    vocab = sorted({w for sentence in pool for w in sentence.split()})
    start = datetime(2026, 10, 1, tzinfo=UTC)
    posts: list[StoredPost] = []
    for i in range(n):
        if posts and rng.random() < 0.02:
            src = rng.choice(posts)
            text = "This post originally appeared elsewhere.\n" + src.text
            title = src.title
        else:  # pool sentences with a third of their words swapped: distinct prose
            text = "\n".join(
                " ".join(
                    w if rng.random() > 0.3 else rng.choice(vocab) for w in rng.choice(pool).split()
                )
                for _ in range(rng.randint(15, 60))
            )
            title = " ".join(rng.choice(pool).split()[:8])
        when = start + timedelta(seconds=rng.randint(0, 30 * 86400))
        posts.append(
            StoredPost(
                id=i,
                feed_url=f"https://b{i % 1000}.example/feed",
                blog=f"Blog {i % 1000}",
                guid=str(i),
                url=f"https://b{i % 1000}.example/p/{i}",
                title=title,
                author="A",
                published=when,
                first_seen=when,
                summary_html="",
                html="",
                text=text,
                source="feed",
                comments=rng.randint(0, 30),
                feed_published=when,
                first_published=when,
            )
        )
    return posts


def rank_speed(n: int) -> None:
    """Rank n synthetic posts (run in a child process so peak RSS is rank's alone)."""
    posts = synthetic_posts(n)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    wall, cpu = time.perf_counter(), time.process_time()
    ranking = rank_posts(
        posts,
        Newsletter(),
        Edition(month="2026-10"),
        [],
        datetime(2026, 10, 1, tzinfo=UTC),
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 11, 2, tzinfo=UTC),
    )
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    dups = sum(1 for c in ranking.candidates if c.duplicate_of)
    print(
        json.dumps(
            {
                "rank_posts": n,
                "wall_s": round(wall, 2),
                "cpu_s": round(cpu, 2),
                "peak_rss_mb": round(peak / 1024),
                "rss_before_rank_mb": round(before / 1024),
                "duplicates_found": dups,
                "picks": len(ranking.picks),
            }
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=100)
    parser.add_argument("--posts", type=int, default=20000)
    parser.add_argument("--only-rank", action="store_true")
    args = parser.parse_args()
    if args.only_rank:
        rank_speed(args.posts)
        return 0
    if FARM.exists():
        farm_quality(args.feeds)
    else:
        print("skipped the farm: ../shared/bench/feedfarm.py is absent")
    demo_quality()
    runs = []
    for _ in range(3):  # a fresh process each: peak memory is the ranking's own
        done = subprocess.run(
            [sys.executable, __file__, "--only-rank", "--posts", str(args.posts)],
            check=True,
            capture_output=True,
            text=True,
        )
        print(done.stdout.strip())
        runs.append(json.loads(done.stdout))
    walls = sorted(r["wall_s"] for r in runs)
    print(
        f"rank {args.posts} posts: median of 3 runs {walls[1]} s wall "
        f"({', '.join(map(str, walls))}), peak RSS {max(r['peak_rss_mb'] for r in runs)} MB "
        "(targets: under 2 s, under 300 MB)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
