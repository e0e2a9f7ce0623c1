"""Build a held-out extraction corpus from a public benchmark's git repository (#18).

    .venv/bin/python bench/build_heldout.py --repo /work/.mirror/<owner>+<name>/repo \
        --dataset dragnet --out bench/corpora/dragnet
    .venv/bin/python bench/build_heldout.py --repo ... --dataset cleaneval \
        --out bench/corpora/cleaneval
    .venv/bin/python bench/build_heldout.py --repo ... --dataset cleaneval-dev \
        --out bench/corpora/cleaneval-dev

The repository is j-szulc/html-cleaning-dataset-merged (bring it with the session's
`fetch` tool, or `git clone --bare`): it mirrors the Dragnet data (seomoz/dragnet_data,
news and blog articles of 2012, ``dragnet_data/``) and the CleanEval final set
(``cleaneval-final/``) with CleanEval's own development set (``cleaneval-dev/``, 58
pages, none of them in the final set), each as ``input/<id>.html`` beside ``GoldStandard/<id>.txt``.
The pages are read with ``git show``, so a bare repository (no work tree) is enough.

Writes the readability layout that ../shared/bench/extract_eval.py reads:
``<out>/<id>/source.html`` (the bytes as published), ``expected.txt`` and, when the
gold names it, ``url.txt``. The data's licence is its owners' (see the repository's
README): the corpus is built where it is needed and never committed
(``bench/corpora/`` is git-ignored).

Gold text: Dragnet's gold holds the article, then a marker line and the page's
comments; only the article is kept, as mash never wants comments. CleanEval's gold
starts with a "URL:" line and marks blocks with <p>, <h>, <l>; the marks are dropped.
Pages whose gold article is under ``--min-words`` words are left out (Dragnet has
pages whose article is empty: nothing to score).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from pathlib import Path

DATASETS = {
    "dragnet": "dragnet_data",
    "cleaneval": "cleaneval-final",
    "cleaneval-dev": "cleaneval-dev",
}
_COMMENTS_MARK = re.compile(r"^!@#\$%\^&\*\(\)\s+COMMENTS\s*$", re.M)
_CLEANEVAL_TAG = re.compile(r"^\s*<(?:p|h|l)>", re.M)


def _git(repo: Path, *args: str) -> bytes:
    return subprocess.run(
        ["git", f"--git-dir={repo}", *args], check=True, capture_output=True
    ).stdout


def _gold_text(raw: bytes, dataset: str) -> tuple[str, str]:
    """Return the gold article text and the page URL ("" when the gold names none)."""
    text = raw.decode("utf-8", errors="replace").replace("\r\n", "\n")
    url = ""
    if dataset == "dragnet":
        text = _COMMENTS_MARK.split(text, maxsplit=1)[0]
    else:
        first, _, rest = text.partition("\n")
        if first.startswith("URL:"):  # CleanEval, final and development sets
            url, text = first[4:].strip(), rest
        text = _CLEANEVAL_TAG.sub("", text)
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return "\n".join(line for line in lines if line) + "\n", url


def build(repo: Path, dataset: str, out: Path, min_words: int, limit: int) -> int:
    """Write the corpus; return how many pages it holds."""
    folder = DATASETS[dataset]
    names = _git(repo, "ls-tree", "--name-only", f"HEAD:{folder}/GoldStandard").decode().split()
    ids = sorted(
        (n.removesuffix(".txt") for n in names if n.endswith(".txt")), key=lambda i: (len(i), i)
    )
    if out.exists():
        shutil.rmtree(out)
    count = 0
    for page_id in ids:
        try:
            html = _git(repo, "show", f"HEAD:{folder}/input/{page_id}.html")
        except subprocess.CalledProcessError:
            continue  # a gold file without its page
        gold, url = _gold_text(
            _git(repo, "show", f"HEAD:{folder}/GoldStandard/{page_id}.txt"), dataset
        )
        if len(gold.split()) < min_words:
            continue
        page = out / page_id
        page.mkdir(parents=True)
        (page / "source.html").write_bytes(html)
        (page / "expected.txt").write_text(gold, encoding="utf-8")
        if url:
            (page / "url.txt").write_text(url + "\n", encoding="utf-8")
        count += 1
        if limit and count >= limit:
            break
    return count


def main() -> None:
    """Build the corpus named on the command line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repo", type=Path, required=True, help="git dir of the fetched repository")
    ap.add_argument("--dataset", choices=sorted(DATASETS), default="dragnet")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--min-words", type=int, default=50)
    ap.add_argument("--limit", type=int, default=0, help="at most N pages (0: all)")
    args = ap.parse_args()
    count = build(args.repo, args.dataset, args.out, args.min_words, args.limit)
    print(f"{args.out}: {count} pages of {args.dataset}")


if __name__ == "__main__":
    main()
