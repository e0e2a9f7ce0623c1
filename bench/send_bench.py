"""Benchmark the emailed issue (issue #6): size, send speed, and exactly-once under SIGKILL.

Usage (from the repo root):
    .venv/bin/python bench/send_bench.py [--subscribers 10000] [--kills 50] [--kill-size 300]

Measures, against a local aiosmtpd server run in its own process (it logs each
accepted recipient and Message-ID to a file, flushed per message):

- the email HTML size after CSS inlining for a realistic 12-pick issue, and the
  Gmail clipping verdict;
- the wall time to send to N subscribers in one process, rate limit off;
- ``--kills`` trials: a send to ``--kill-size`` subscribers in a child process,
  SIGKILLed at a uniformly random moment of the send, then re-run until done;
  duplicates (recipients the server got more than once) and recipients neither
  mailed nor named "in doubt" must both be 0.

Prints a Markdown report on stdout. Not a test: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jinja2  # noqa: E402

from mash import mail  # noqa: E402
from mash.records import (  # noqa: E402
    Config,
    Issue,
    Link,
    Listening,
    Newsletter,
    Pick,
    Section,
    SmtpSettings,
)
from mash.send import send_issue  # noqa: E402
from mash.subscribers import Subscriber  # noqa: E402
from mash.subscribers.csv import save_subscribers  # noqa: E402

SECRET = {"MASH_SECRET": "bench-secret"}
_MID = re.compile(rb"^Message-ID:\s*(\S+)", re.MULTILINE | re.IGNORECASE)

EDITORIAL = (
    "Every customer carries a set of rules they never tell you about. They expect you to "
    "know them anyway, and they judge you by them. "
) * 12


def realistic_issue(month: str = "2013-08", picks: int = 12) -> Issue:
    """A 12-pick issue with full-length blurbs and a four-paragraph editorial."""
    sections = (
        Section(
            "title", "Monthly Mash and the Customer's Invisible Rules", "Volume 22: August 2013"
        ),
        Section("welcome", "Welcome"),
        Section("editorial", "Thoughts on the Customer: the Customer's Invisible Rules"),
        Section(
            "picks",
            "The Month in Customer Service Blogging",
            "A collection of the best posts about customer service and the customer "
            "experience we read this past month.",
        ),
        Section(
            "listening",
            "Someone Was Listening",
            "Sometimes the most popular post from the previous month; sometimes just "
            "the one I liked best.",
        ),
        Section("about", "About the Monthly Mash"),
        Section("footer", "Why you are getting this"),
    )
    newsletter = Newsletter(
        editor="Jo Editor",
        editor_email="jo@example.org",
        about="Jo has led support teams for twenty years and writes about service.\n\n"
        "The Monthly Mash collects the month's best customer service writing.",
        links=(
            Link("Blog", "https://jo.example.org/"),
            Link("Archive", "https://example.org/mash/"),
        ),
        postal_address="1 High Street, Springfield, 12345",
    )
    blurb = (
        "A thoughtful look at how frontline agents learn what customers expect without "
        "being told, with three practical habits any team can start this week. "
    )[:280]
    items = tuple(
        Pick(
            url=f"https://blog{i}.example.com/2013/08/{i}-the-customers-invisible-rules-part-{i}",
            title=f"What customers never say out loud, part {i + 1}",
            blog=f"Customer Service Blog {i + 1}",
            author=f"Author Name {i + 1}",
            published=datetime(2013, 8, i + 1, tzinfo=UTC),
            blurb=blurb,
            score=10.0 - i,
        )
        for i in range(picks)
    )
    paragraphs = [EDITORIAL[i * 400 : (i + 1) * 400] for i in range(4)]
    return Issue(
        newsletter=newsletter,
        month=month,
        volume=22,
        title=sections[0].heading,
        theme="the Customer's Invisible Rules",
        editorial_html="".join(f"<p>{p}</p>\n" for p in paragraphs),
        editorial_text="\n\n".join(paragraphs),
        picks=items,
        listening=Listening(
            url="https://jo.example.org/2013/07/popular",
            title="The most popular post",
            blog="Jo's Blog",
            author="Jo Editor",
            published=datetime(2013, 7, 20, tzinfo=UTC),
            blurb=blurb,
            reason="most comments",
        ),
        sections=sections,
        web_url=f"https://example.org/mash/{month}/",
    )


def render(issue: Issue) -> tuple[str, str]:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(ROOT / "mash" / "templates"), autoescape=True
    )
    return mail.render_email_html(issue, env), mail.render_email_text(issue, env)


def make_config(folder: Path, port: int) -> Config:
    return Config(
        path=folder / "feeds.yaml",
        newsletter=realistic_issue().newsletter,
        feeds=(),
        db_path=folder / "mash.db",
        output_dir=folder / "output",
        editions_dir=folder,
        templates_dir=ROOT / "mash" / "templates",
        subscribers_path=folder / "subscribers.csv",
        smtp=SmtpSettings(
            host="127.0.0.1",
            port=port,
            security="none",
            rate_per_second=0,
            unsubscribe_url="https://example.org/unsubscribe",
            unsubscribe_mailto="mailto:unsubscribe@example.org",
        ),
    )


def people(n: int) -> list[Subscriber]:
    return [Subscriber(f"reader{i:05d}@example.com", f"Reader {i}") for i in range(n)]


# --- the SMTP server process -------------------------------------------------------------


def run_server(port: int, log: Path) -> None:
    """Serve SMTP on 127.0.0.1:port, appending "recipient<TAB>message-id" per delivery."""
    from aiosmtpd.controller import Controller

    out = log.open("ab", buffering=0)

    class Logger:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            found = _MID.search(envelope.content)
            mid = found.group(1) if found else b"-"
            out.write(b"".join(r.encode() + b"\t" + mid + b"\n" for r in envelope.rcpt_tos))
            return "250 OK"

    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    controller = Controller(Logger(), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        signal.sigwait({signal.SIGTERM, signal.SIGINT})
    finally:
        controller.stop()


@contextmanager
def smtp_server(log: Path) -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen(
        [sys.executable, __file__, "--server", str(port), str(log)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def deliveries(log: Path, month: str) -> list[str]:
    tag = f"<mash.{month}."
    lines = log.read_text().splitlines() if log.exists() else []
    return [line.split("\t")[0] for line in lines if tag in line]


# --- the child send (killed at random) ----------------------------------------------------


def child_send(folder: Path, port: int, month: str) -> None:
    issue = realistic_issue(month)
    html, text = render(issue)
    report = send_issue(make_config(folder, port), issue, html, text, environ=SECRET)
    print(
        json.dumps(
            {
                "done": report.done,
                "sent": len(report.sent),
                "in_doubt": [a for a, _ in report.in_doubt],
            }
        ),
        flush=True,
    )


def spawn_child(folder: Path, port: int, month: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, "--child", str(folder), str(port), month],
        stdout=subprocess.PIPE,
        text=True,
    )


def _wait_for_deliveries(
    log: Path, offset: int, month: str, target: int, child: subprocess.Popen[str]
) -> None:
    """Poll the server's log (new bytes only) until ``target`` deliveries for ``month``."""
    tag = f"<mash.{month}.".encode()
    seen = 0
    with log.open("rb") as f:
        f.seek(offset)
        pending = b""
        while seen < target and child.poll() is None:
            pending += f.read()
            *lines, pending = pending.split(b"\n")
            seen += sum(1 for line in lines if tag in line)
            time.sleep(0.001)


def kill_trial(
    n: int, trial: int, port: int, log: Path, window: float, rng: random.Random
) -> dict[str, Any]:
    """One SIGKILL at a random point, then re-runs until done; returns the tallies.

    The point: after a random number of deliveries (0 to n-1), plus a random fraction
    of one message's time, so kills land in every phase of a message.
    """
    month = f"{2001 + trial}-01"
    target = rng.randrange(n)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        save_subscribers(folder / "subscribers.csv", people(n))
        start = log.stat().st_size
        child = spawn_child(folder, port, month)
        _wait_for_deliveries(log, start, month, target, child)
        time.sleep(rng.uniform(0, window / n))
        child.send_signal(signal.SIGKILL)
        child.communicate()
        before = len(deliveries(log, month))
        in_doubt: set[str] = set()
        reruns = 0
        while True:
            reruns += 1
            out, _ = spawn_child(folder, port, month).communicate(timeout=600)
            result = json.loads(out)
            in_doubt |= set(result["in_doubt"])
            if result["done"] or reruns >= 5:
                break
    counts = Counter(deliveries(log, month))
    everyone = {s.email for s in people(n)}
    return {
        "killed_after": before,
        "duplicates": sum(c - 1 for c in counts.values() if c > 1),
        "missing": len(everyone - set(counts) - in_doubt),
        "in_doubt": len(in_doubt),
        "in_doubt_received": len(in_doubt & set(counts)),
        "reruns": reruns,
    }


# --- measurements ------------------------------------------------------------------------


def measure_size() -> tuple[int, str | None, int]:
    issue = realistic_issue()
    html, text = render(issue)
    return len(html.encode()), mail.email_size_warning(html), len(text.encode())


def measure_demo() -> str:
    """Build the bundled demo's latest issue offline (the lead's pipeline) and size it."""
    try:
        from mash.cli import main as mash
        from mash.demo import DEMO, MONTHS, serve_folder, write_demo_config

        with (
            tempfile.TemporaryDirectory() as tmp,
            serve_folder(DEMO / "site") as base,
            redirect_stdout(sys.stderr),  # the CLI's own lines stay out of the report
        ):
            config = str(write_demo_config(Path(tmp), base))
            for step in (["fetch", "--quiet"], ["build", "--month", MONTHS[-1]]):
                if mash(["--config", config, *step]) != 0:
                    return f"unavailable (`mash {' '.join(step)}` failed)"
            html = (Path(tmp) / MONTHS[-1] / "email.html").read_text(encoding="utf-8")
    except Exception as e:  # the demo is the lead's; report, do not fail the benchmark
        return f"unavailable ({type(e).__name__}: {e})"
    verdict = "under" if mail.email_size_warning(html) is None else "OVER"
    return f"{len(html.encode()) / 1024:.1f} KB ({MONTHS[-1]}; {verdict} Gmail's 102 KB clip)"


def measure_send(n: int, log: Path, port: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        save_subscribers(folder / "subscribers.csv", people(n))
        issue = realistic_issue("2000-01")
        html, text = render(issue)
        start = time.perf_counter()
        report = send_issue(make_config(folder, port), issue, html, text, environ=SECRET)
        elapsed = time.perf_counter() - start
    assert report.done and len(report.sent) == n, report.summary()
    return elapsed, len(deliveries(log, "2000-01"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--kill-size", type=int, default=300)
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    size, warning, text_size = measure_size()
    demo = measure_demo()
    with tempfile.TemporaryDirectory() as tmp, smtp_server(Path(tmp) / "log") as port:
        log = Path(tmp) / "log"
        elapsed, got = measure_send(args.subscribers, log, port)
        # Calibrate the kill window: one uninterrupted child send of kill-size, start to end.
        calib = Path(tmp) / "calib"
        calib.mkdir()
        save_subscribers(calib / "subscribers.csv", people(args.kill_size))
        start = time.perf_counter()
        spawn_child(calib, port, "2000-02").communicate(timeout=600)
        window = time.perf_counter() - start
        trials = [kill_trial(args.kill_size, t, port, log, window, rng) for t in range(args.kills)]
    print_report(args, size, warning, text_size, demo, elapsed, got, window, trials)


def print_report(
    args: argparse.Namespace,
    size: int,
    warning: str | None,
    text_size: int,
    demo: str,
    elapsed: float,
    got: int,
    window: float,
    trials: list[dict[str, Any]],
) -> None:
    def total(key: str) -> int:
        return sum(int(t[key]) for t in trials)

    print("# Send benchmark (issue #6)\n")
    print(
        f"Command: `.venv/bin/python bench/send_bench.py --subscribers {args.subscribers} "
        f"--kills {args.kills} --kill-size {args.kill_size} --seed {args.seed}`\n"
    )
    print("| measure | value |\n|---|---|")
    print(
        f"| email.html after inlining, 12 picks | {size / 1024:.1f} KB "
        f"({'under' if warning is None else 'OVER'} Gmail's 102 KB clip) |"
    )
    print(f"| email.txt | {text_size / 1024:.1f} KB |")
    print(f"| email.html of the bundled demo issue (`make demo`) | {demo} |")
    print(
        f"| send to {args.subscribers:,} subscribers, rate limit off | {elapsed:.1f} s "
        f"({args.subscribers / elapsed:.0f} msg/s; server got {got:,}) |"
    )
    print(
        f"| one uninterrupted {args.kill_size}-subscriber send in a child (sets the kill jitter) "
        f"| {window:.2f} s |"
    )
    print(
        f"| SIGKILL trials (each after a random 0..{args.kill_size - 1} deliveries) "
        f"| {len(trials)} |"
    )
    print(
        f"| kills that landed mid-send (0 < delivered < {args.kill_size}) | "
        f"{sum(1 for t in trials if 0 < t['killed_after'] < args.kill_size)} |"
    )
    print(f"| duplicates (must be 0) | {total('duplicates')} |")
    print(f"| neither mailed nor named in doubt (must be 0) | {total('missing')} |")
    print(
        f"| named in doubt (total; of which the server had received) | "
        f"{total('in_doubt')}; {total('in_doubt_received')} |"
    )
    print(f"| re-runs needed (max) | {max(t['reruns'] for t in trials)} |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--server":
        run_server(int(sys.argv[2]), Path(sys.argv[3]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_send(Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    else:
        main()
