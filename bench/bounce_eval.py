"""Measure mash.bounces.parse_bounce on Sisimai's corpus of real bounce mails (#16).

Usage (from the repo root, after `make install`):
    .venv/bin/python bench/bounce_eval.py GIT_DIR_OF_RB_SISIMAI [--out bench/BOUNCES.md]
        [--show N]

GIT_DIR_OF_RB_SISIMAI is a git directory (or checkout) of github.com/sisimai/rb-sisimai:
its ``set-of-emails/maildir/bsd/*.eml`` are the mails (collected from real servers,
addresses anonymised) and its ``test/public/*.rb`` the expected results, one row per
failed recipient: DSN status, reply code, reason and hard bounce (Sisimai's own
``IsExpected`` tables). The rows name no recipient, so where Debian's ``libsisimai-perl``
is installed (Sisimai 4.25, run once over all the mails) its records give each row's
recipient, when it finds as many as the table lists; elsewhere rows are matched in order.

Scored:
- recipient found: every expected recipient is among ours (messages with an oracle);
- records: as many records as expected rows;
- status right: our status equals the expected (rows whose expected status is a real
  RFC 3463 code: Sisimai's 5.0.9xx pseudo-codes and empty ones are left out);
- hard/soft right: our ``hard`` equals Sisimai's ``hardbounce``;
- the 5 auto-replies (rfc3834-*) and the 3 non-bounces (maildir/not) must give [];
- complaints (arf-*): complaint records, and the addresses.
flufl.bounce alone: the addresses ``flufl.bounce.all_failures`` finds, against the oracle.
The mails are read in place from git; nothing is written but the report.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mash.bounces import parse_bounce  # noqa: E402 (after the path is set)
from mash.records import Bounce  # noqa: E402

_ROW = re.compile(r"\[\s*'([^']*)'\s*,\s*'([^']*)'\s*,\s*'([^']*)'\s*,\s*(true|false)")
_DELAY = re.compile(rb"(?im)^subject:.*(delay|could not send message for past|still being retried)")
_ENTRY = re.compile(r"'(\d+)'\s*=>\s*\[(.*?)\]\s*,?\s*(?=\n\s*'\d+'|\n\s*\})", re.S)


@dataclass
class Row:
    status: str
    reply: str
    reason: str
    hard: bool
    recipient: str = ""


@dataclass
class Case:
    name: str  # e.g. lhost-postfix-02
    group: str  # e.g. lhost-postfix
    raw: bytes
    rows: list[Row] = field(default_factory=list)


def _git(source: Path, *args: str, data: bytes | None = None) -> bytes:
    git_dir = source if (source / "HEAD").is_file() else source / ".git"
    return subprocess.run(
        ["git", f"--git-dir={git_dir}", *args], input=data, check=True, capture_output=True
    ).stdout


def load_cases(source: Path) -> tuple[list[Case], list[Case]]:
    """Return (the cases with expected rows, the mails that must give nothing)."""
    names = _git(source, "ls-tree", "-r", "--name-only", "HEAD").decode().split("\n")
    tables = [n for n in names if re.match(r"test/public/(lhost|rhost|arf|rfc3)[\w-]*\.rb$", n)]
    mails = {
        Path(n).stem: n
        for n in names
        if n.startswith("set-of-emails/maildir/bsd/") and n.endswith(".eml")
    }
    negatives = [n for n in names if n.startswith("set-of-emails/maildir/not/")]
    cases: list[Case] = []
    for table in tables:
        text = _git(source, "show", f"HEAD:{table}").decode()
        group = Path(table).stem
        if group.endswith(("-test", "-code")):
            continue
        for number, body in _ENTRY.findall(text):
            name = f"{group}-{number}"
            if name not in mails:
                continue
            rows = [Row(s, r, why, hard == "true") for s, r, why, hard in _ROW.findall(body)]
            cases.append(Case(name, group, b"", rows))
    blobs = _cat([mails[c.name] for c in cases] + negatives, source)
    for case in cases:
        case.raw = blobs[mails[case.name]]
    others = [Case(Path(n).stem, "not-bounce", blobs[n]) for n in negatives]
    return cases, others


def _cat(paths: list[str], source: Path) -> dict[str, bytes]:
    out = _git(source, "cat-file", "--batch", data="".join(f"HEAD:{p}\n" for p in paths).encode())
    blobs, at = {}, 0
    for path in paths:
        end = out.index(b"\n", at)
        size = int(out[at:end].split()[2])
        blobs[path] = out[end + 1 : end + 1 + size]
        at = end + 1 + size + 1
    return blobs


_PERL = r"""
use Sisimai; use JSON::PP;
my %out;
for my $f (@ARGV) { my $v = Sisimai->make($f, 'delivered' => 0) || [];
  $out{$f} = [map { [$_->recipient->address, $_->deliverystatus] } @$v]; }
print JSON::PP->new->canonical->encode(\%out);
"""


def add_oracle(cases: list[Case]) -> bool:
    """Fill each row's recipient from Sisimai (Perl) where it finds as many records."""
    if not shutil.which("perl") or subprocess.run(["perl", "-MSisimai", "-e1"]).returncode:
        return False
    with tempfile.TemporaryDirectory() as folder:
        files = []
        for case in cases:
            path = Path(folder) / f"{case.name}.eml"
            path.write_bytes(case.raw)
            files.append(str(path))
        found = json.loads(
            subprocess.run(["perl", "-e", _PERL, *files], check=True, capture_output=True).stdout
        )
    for case, name in zip(cases, files, strict=True):
        records = found.get(name, [])
        if len(records) == len(case.rows):
            for row, (address, _) in zip(case.rows, records, strict=True):
                row.recipient = address.lower()
    return True


def flufl_addresses(raw: bytes) -> set[str]:
    import email

    from flufl.bounce import all_failures

    msg = email.message_from_bytes(raw)
    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # noqa: BLE001 (its heuristics raise on odd mail; count as none)
        return set()
    return {a.decode("utf-8", "replace").lower() for a in (*temporary, *permanent)}


def evaluate(cases: list[Case], others: list[Case], show: int) -> str:
    tally: Counter[str] = Counter()
    per_group: dict[str, Counter[str]] = defaultdict(Counter)
    misses: list[str] = []
    started = time.perf_counter()
    for case in cases:
        records = parse_bounce(case.raw)
        g = per_group[_family(case.group)]
        complaint = case.group == "arf"
        wanted = [
            r
            for r in case.rows
            if not (complaint and r.reason == "feedback" and "auth" in case.name)
        ]
        if complaint:
            _score_complaint(case, records, tally)
            continue
        if case.group == "rfc3834":
            tally["auto-reply"] += 1
            tally["auto-reply ignored"] += not records
            continue
        if all(r.reason == "delivered" for r in case.rows):
            tally["delivered"] += 1  # a delivery notice is no failure either
            tally["delivered ignored"] += not records
            continue
        if _DELAY.search(case.raw[:4000]):
            tally["delay"] += 1  # a delay warning is no failure: no record by design
            tally["delay ignored"] += not records
            continue
        g["messages"] += 1
        tally["messages"] += 1
        tally["rows"] += len(wanted)
        g["records right"] += len(records) == len(wanted)
        tally["records right"] += len(records) == len(wanted)
        by_address = {r.recipient: r for r in records}
        oracle = all(r.recipient for r in wanted)
        if oracle:
            tally["oracle messages"] += 1
            g["oracle messages"] += 1
            ok = all(r.recipient in by_address for r in wanted)
            tally["recipients right"] += ok
            g["recipients right"] += ok
            fl = flufl_addresses(case.raw)
            tally["flufl right"] += all(r.recipient in fl for r in wanted)
            tally["flufl none"] += not fl
            g["flufl right"] += all(r.recipient in fl for r in wanted)
        tally["none found"] += not records
        for i, row in enumerate(wanted):
            ours = by_address.get(row.recipient) if oracle else None
            if ours is None and i < len(records) and not oracle:
                ours = records[i]
            if ours is None:
                continue
            tally["matched rows"] += 1
            if re.fullmatch(r"[245]\.\d\.\d{1,2}", row.status):
                tally["status rows"] += 1
                g["status rows"] += 1
                tally["status right"] += ours.status == row.status
                g["status right"] += ours.status == row.status
                tally["class right"] += ours.status[:1] == row.status[:1]
            tally["hard right"] += ours.hard == row.hard
            g["hard rows"] += 1
            g["hard right"] += ours.hard == row.hard
            tally["hard expected"] += row.hard
            tally["hard found"] += ours.hard and row.hard
            tally["hard false"] += ours.hard and not row.hard
            tally["hard false filtered"] += ours.hard and not row.hard and row.reason == "filtered"
            tally["soft false"] += row.hard and not ours.hard
            if ours.hard != row.hard and len(misses) < show:
                misses.append(
                    f"{case.name}: expected {row.status} {row.reason} "
                    f"{'hard' if row.hard else 'soft'}, got {ours.status} {ours.category} "
                    f"{'hard' if ours.hard else 'soft'}: {ours.reason[:110]}"
                )
    for other in others:
        tally["non-bounce"] += 1
        tally["non-bounce ignored"] += not parse_bounce(other.raw)
    seconds = time.perf_counter() - started
    return _report(tally, per_group, misses, seconds, len(cases) + len(others))


def _score_complaint(case: Case, records: list[Bounce], tally: Counter[str]) -> None:
    kinds = [r.kind for r in records]
    tally["arf"] += 1
    expected_types = re.findall(rb"(?im)^feedback-type:\s*([\w-]+)", case.raw)
    is_auth = bool(expected_types) and expected_types[0].lower() == b"auth-failure"
    if is_auth:
        tally["arf auth-failure"] += 1
        tally["arf auth-failure ignored"] += not records
        return
    tally["arf complaints"] += 1
    tally["arf complaint found"] += bool(records) and all(k == "complaint" for k in kinds)
    tally["arf complaint rows"] += len(case.rows)
    tally["arf complaint records"] += min(len(records), len(case.rows))


def _family(group: str) -> str:
    return group.split("-", 1)[1] if "-" in group else group


def _pct(a: int, b: int) -> str:
    return f"{a} / {b} ({100 * a / b:.1f} %)" if b else "n/a"


def _report(
    t: Counter[str], groups: dict[str, Counter[str]], misses: list[str], seconds: float, mails: int
) -> str:
    lines = [
        f"- bounce mails: {t['messages']} ({t['rows']} failed recipients expected), "
        f"{mails} mails in all, parsed in {seconds:.1f} s",
        f"- as many records as expected: {_pct(t['records right'], t['messages'])}; "
        f"no record at all: {t['none found']}",
        f"- recipient found (messages where Sisimai names them): "
        f"{_pct(t['recipients right'], t['oracle messages'])}",
        f"- flufl.bounce alone, recipient found: {_pct(t['flufl right'], t['oracle messages'])}"
        f" (finds none in {t['flufl none']})",
        f"- status right: {_pct(t['status right'], t['status rows'])}; class (4/5) right: "
        f"{_pct(t['class right'], t['status rows'])}",
        f"- hard/soft right: {_pct(t['hard right'], t['matched rows'])}; hard bounces found "
        f"{_pct(t['hard found'], t['hard expected'])}; soft called hard: {t['hard false']}; "
        f"hard called soft: {t['soft false']}; of the soft called hard, "
        f"{t['hard false filtered']} are Sisimai's 'filtered' (refused after DATA), "
        "most of whose texts say the user is unknown",
        "- auto-replies (rfc3834) giving nothing: "
        f"{_pct(t['auto-reply ignored'], t['auto-reply'])}",
        f"- delay warnings giving nothing (by design): {_pct(t['delay ignored'], t['delay'])}; "
        f"delivery notices: {_pct(t['delivered ignored'], t['delivered'])}",
        f"- non-bounces (maildir/not) giving nothing: "
        f"{_pct(t['non-bounce ignored'], t['non-bounce'])}",
        "- ARF complaints read as complaints: "
        f"{_pct(t['arf complaint found'], t['arf complaints'])}"
        f" ({_pct(t['arf complaint records'], t['arf complaint rows'])} addresses); "
        f"auth-failure reports giving nothing: "
        f"{_pct(t['arf auth-failure ignored'], t['arf auth-failure'])}",
        "",
        "| family | mails | recipient right | flufl.bounce alone | status right "
        "| hard/soft right |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, g in sorted(groups.items(), key=lambda kv: -kv[1]["messages"]):
        if not g["messages"]:
            continue
        lines.append(
            f"| {name} | {g['messages']} | {g['recipients right']}/{g['oracle messages']} | "
            f"{g['flufl right']}/{g['oracle messages']} | {g['status right']}/{g['status rows']}"
            f" | {g['hard right']}/{g['hard rows']} |"
        )
    if misses:
        lines += ["", "Hard/soft disagreements (first ones):", ""]
        lines += [f"- {m}" for m in misses]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path, help="git directory of sisimai/rb-sisimai")
    parser.add_argument("--show", type=int, default=15, help="disagreements to list")
    args = parser.parse_args()
    cases, others = load_cases(args.source)
    oracle = add_oracle([c for c in cases if c.group not in ("arf", "rfc3834")])
    if not oracle:
        print("no libsisimai-perl: rows matched in order, recipients not scored", file=sys.stderr)
    print(evaluate(cases, others, args.show))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
