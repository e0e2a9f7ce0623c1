"""`mash send` runs as real processes: two at once, and one killed (-9) then re-run (#15, #16).

Each test builds the demo's 2026-10 issue, imports 120 subscribers and sends through one
aiosmtpd server on 127.0.0.1, on each engine: PostgreSQL (two runs share the ledger)
and SQLite (one send at a time, the second refused with a clear message).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller

from mash.cli import main as mash
from mash.config import load_config
from mash.store import SENDING, SENT, database_of, is_database_url, open_store
from tests.test_pipeline import build
from tests.test_send import Collector, free_port

MONTH = "2026-10"
PEOPLE = [f"reader{i:03d}@example.com" for i in range(120)]
REPO = Path(__file__).resolve().parents[1]
RUN_MASH = "import sys; from mash.cli import main; sys.exit(main(sys.argv[1:]))"


class GateCollector(Collector):
    """Keeps every message; holds the reply to messages ``first``..``first + count - 1``
    (by arrival) until ``release`` is set, so their senders wait inside DATA."""

    def __init__(self, first: int, count: int) -> None:
        super().__init__()
        self.first = first
        self.count = count
        self.held: list[str] = []
        self.release = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        number = len(self.received)  # no await since the append: this message's number
        if self.first <= number < self.first + self.count:
            self.held.extend(envelope.rcpt_tos)
            while not self.release.is_set():
                await asyncio.sleep(0.01)
        return reply


@pytest.fixture
def sending(workspace: Path, database_env: str | Path, tmp_path: Path) -> Iterator[Path]:
    """The demo workspace on each engine, its 2026-10 issue built, 120 subscribers."""
    if is_database_url(database_env):
        assert mash(["--config", str(workspace), "fetch", "--quiet"]) == 0
    build(workspace, MONTH)
    people = tmp_path / "people.csv"
    people.write_text("email,name\n" + "".join(f"{a},{a[:9]}\n" for a in PEOPLE))
    assert mash(["--config", str(workspace), "subscribers", "import", str(people)]) == 0
    yield workspace


def serve(workspace: Path, collector: Collector) -> Controller:
    port = free_port()
    config = yaml.safe_load(workspace.read_text())
    config["smtp"].update({"port": port, "rate_per_second": 0, "connections": 4})
    workspace.write_text(yaml.safe_dump(config))
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    return controller


def start_send(workspace: Path, *flags: str) -> subprocess.Popen[str]:
    """Start `mash send` in its own process (the environment carries MASH_DATABASE_URL)."""
    return subprocess.Popen(
        [sys.executable, "-c", RUN_MASH, "--config", str(workspace), "send"]
        + ["--month", MONTH, "--quiet", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "MASH_SECRET": "test-secret-for-tokens", "PYTHONPATH": str(REPO)},
    )


def wait_for(test: Any, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not test():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def sent_count(out: str) -> int:
    found = re.search(r"^send 2026-10: (\d+) sent", out, re.MULTILINE)
    assert found, out
    return int(found.group(1))


def ledger_states(workspace: Path) -> dict[str, str]:
    with open_store(database_of(load_config(workspace))) as store:
        return {key: e.state for key, e in store.ledger_entries(MONTH).items()}


def test_two_sends_at_once_mail_each_subscriber_once(sending: Path) -> None:
    """The first send's four connections wait in DATA; a second starts meanwhile.

    PostgreSQL: the second leaves the four live claims to the first and sends the other
    116, which the first then finds taken. SQLite: the second is refused, and the first
    sends everyone once released.
    """
    collector = GateCollector(first=1, count=4)
    controller = serve(sending, collector)
    try:
        first = start_send(sending)
        wait_for(lambda: len(collector.held) == 4, "the first send's four connections")
        second_out, second_err = start_send(sending).communicate(timeout=300)
        collector.release.set()
        first_out, first_err = first.communicate(timeout=300)
    finally:
        collector.release.set()
        controller.stop()
    received = Counter(collector.recipients())
    assert sorted(received) == PEOPLE and set(received.values()) == {1}  # once each
    assert first.returncode == 0, first_out + first_err
    if is_database_url(database_of(load_config(sending))):
        assert "4 left to another send running now" in second_out, second_out + second_err
        assert sent_count(second_out) == 116 and sent_count(first_out) == 4
        assert not re.search(r"^in doubt:", first_out + second_out, re.MULTILINE)
    else:
        assert "another `mash send` is running" in second_err and sent_count(first_out) == 120
    assert set(ledger_states(sending).values()) == {SENT}


def test_a_send_killed_mid_run_then_rerun_mails_nobody_twice(sending: Path) -> None:
    """kill -9 while four messages wait in DATA (the server has them, no reply yet).

    The re-run names at least those four "in doubt" and does not re-send them; everyone
    else gets the issue exactly once, and nobody is neither mailed nor named.
    """
    collector = GateCollector(first=41, count=4)
    controller = serve(sending, collector)
    try:
        killed = start_send(sending)
        wait_for(lambda: len(collector.held) == 4, "four messages held in DATA")
        killed.send_signal(signal.SIGKILL)
        killed.communicate(timeout=60)
        collector.release.set()
        before = Counter(collector.recipients())
        rerun = start_send(sending)
        out, err = rerun.communicate(timeout=300)
    finally:
        collector.release.set()
        controller.stop()
    in_doubt = set(re.findall(r"^in doubt: (\S+) ", out, re.MULTILINE))
    received = Counter(collector.recipients())
    assert set(received.values()) == {1}, "somebody was mailed twice"
    assert set(collector.held) <= in_doubt  # in DATA when killed: reported, not re-sent
    assert set(PEOPLE) == set(received) | in_doubt  # nobody skipped
    assert in_doubt <= set(before)  # only a message the server may have had is in doubt
    assert sent_count(out) == len(PEOPLE) - len(before)
    assert rerun.returncode == 1, out + err  # in doubt needs the editor's decision
    states = ledger_states(sending)
    assert {a for a, state in states.items() if state == SENDING} == in_doubt
    assert {states[a] for a in set(PEOPLE) - in_doubt} == {SENT}
