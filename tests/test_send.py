"""Sending through a real SMTP server on 127.0.0.1 (aiosmtpd): mash.send and its ledger."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jinja2
import pytest
from aiosmtpd.controller import Controller

from mash import mail
from mash.errors import ConfigError, SendError, StoreBusy, StoreError
from mash.records import Config, Issue, SmtpSettings
from mash.send import (
    RateLimiter,
    SendReport,
    auth_in_clear_refusal,
    load_email,
    plan_send,
    send_issue,
)
from mash.store import FAILED, SENDING, SENT, database_of, open_store
from mash.subscribers import Subscriber
from mash.subscribers.csv import save_subscribers
from mash.unsubscribe import verify_token
from tests.test_mail import REPO, make_issue

SECRET = "test-secret-not-for-production"
ENVIRON = {"MASH_SECRET": SECRET}
LIST_ID = "Monthly Mash <monthly-mash.example.org>"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Collector:
    """An aiosmtpd handler keeping every accepted message; can refuse or stall on cue."""

    received: list[tuple[list[str], bytes]] = field(default_factory=list)
    reject: dict[str, str] = field(default_factory=dict)  # address -> reply (every time)
    defer_once: dict[str, str] = field(default_factory=dict)  # address -> reply (first time)
    drop_during_data: set[str] = field(default_factory=set)  # accept, then cut the line
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.reject:
            return self.reject[address]
        if address in self.defer_once:
            return self.defer_once.pop(address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.received.append((list(envelope.rcpt_tos), bytes(envelope.content)))
        if set(envelope.rcpt_tos) & self.drop_during_data:
            self.drop_during_data -= set(envelope.rcpt_tos)
            server.transport.close()
        return "250 Message accepted"

    def messages(self) -> list[EmailMessage]:
        out = []
        for _rcpts, content in self.received:
            msg = BytesParser(policy=policy.default).parsebytes(content)
            assert isinstance(msg, EmailMessage)
            out.append(msg)
        return out

    def recipients(self) -> list[str]:
        return [r for rcpts, _ in self.received for r in rcpts]


@pytest.fixture
def smtpd() -> Iterator[tuple[Collector, int]]:
    collector = Collector()
    port = free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield collector, port
    finally:
        controller.stop()


def make_config(tmp_path: Path, port: int, **smtp: Any) -> Config:
    settings = SmtpSettings(
        host="127.0.0.1",
        port=port,
        security="none",
        rate_per_second=0,
        unsubscribe_url="https://example.org/unsubscribe",
        unsubscribe_mailto="mailto:unsubscribe@example.org?subject=unsubscribe",
    )
    return Config(
        path=tmp_path / "feeds.yaml",
        newsletter=make_issue().newsletter,
        feeds=(),
        db_path=tmp_path / "data" / "mash.db",
        output_dir=tmp_path / "output",
        editions_dir=tmp_path / "editions",
        templates_dir=REPO / "mash" / "templates",
        subscribers_path=tmp_path / "data" / "subscribers.csv",
        smtp=replace(settings, **smtp),
    )


def rendered(issue: Issue) -> tuple[str, str]:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(REPO / "mash" / "templates"), autoescape=True
    )
    return mail.render_email_html(issue, env), mail.render_email_text(issue, env)


def people(n: int) -> list[Subscriber]:
    return [Subscriber(f"reader{i:04d}@example.com", f"Reader {i}") for i in range(n)]


def send(config: Config, issue: Issue | None = None, **options: Any) -> SendReport:
    issue = issue or make_issue()
    html, text = rendered(issue)
    options.setdefault("environ", ENVIRON)
    options.setdefault("sleep", lambda _s: None)
    return send_issue(config, issue, html, text, **options)


# --- messages as received ------------------------------------------------------------------


def test_each_subscriber_gets_a_complete_message(
    smtpd: tuple[Collector, int], tmp_path: Path
) -> None:
    collector, port = smtpd
    config = make_config(tmp_path, port)
    save_subscribers(config.subscribers_path, people(3))
    report = send(config)
    assert report.sent == tuple(s.email for s in people(3))
    assert report.done and not report.in_doubt and not report.failed
    assert not report.needs_attention
    assert sorted(collector.recipients()) == [s.email for s in people(3)]
    for (rcpts, _), msg in zip(collector.received, collector.messages(), strict=True):
        address = rcpts[0]
        assert msg["From"] == "Monthly Mash <mash@example.org>"
        assert msg["To"].addresses[0].addr_spec == address
        assert msg["Subject"] == "Monthly Mash and the Customer's Invisible Rules"
        assert msg["Date"] and msg["MIME-Version"] == "1.0"
        assert msg["Message-ID"] == mail.make_message_id("2013-08", address, "mash@example.org")
        assert msg["List-Id"] == LIST_ID
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        https, mailto = [u.strip(" <>") for u in msg["List-Unsubscribe"].split(",")]
        assert mailto == "mailto:unsubscribe@example.org?subject=unsubscribe"
        token = parse_qs(urlsplit(https).query)["token"][0]
        assert https.startswith("https://example.org/unsubscribe?token=")
        assert verify_token(token, LIST_ID, SECRET) == address
        parts = list(msg.iter_parts())
        assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
        assert https in parts[0].get_content()
        assert https.replace("&", "&amp;") in parts[1].get_content()


def test_rerun_mails_nobody_twice(
    smtpd: tuple[Collector, int], tmp_path: Path, database_env: str | Path
) -> None:
    collector, port = smtpd
    config = make_config(tmp_path, port)
    save_subscribers(config.subscribers_path, people(3))
    send(config)
    again = send(config)
    assert again.sent == () and len(again.already_sent) == 3
    with open_store(config) as store:  # since #15 the list grows in the store
        store.import_subscribers(people(4), "more.csv")
    third = send(config)
    assert third.sent == ("reader0003@example.com",)
    assert sorted(collector.recipients()) == [s.email for s in people(4)]


def test_injection_through_names_titles_and_blurbs_is_neutralised(
    smtpd: tuple[Collector, int], tmp_path: Path
) -> None:
    collector, port = smtpd
    config = make_config(tmp_path, port)
    config.subscribers_path.parent.mkdir(parents=True)
    config.subscribers_path.write_text(
        'email,name,status\nann@example.com,"Ann\r\nBcc: victim@evil.example",subscribed\n'
    )
    issue = make_issue()
    evil = "\r\nBcc: victim@evil.example\r\nX-Injected: yes"
    picks = (replace(issue.picks[0], title="T" + evil, blurb="B" + evil), *issue.picks[1:])
    newsletter = replace(issue.newsletter, sender_name="Mash" + evil)
    issue = replace(issue, title="Title" + evil, picks=picks, newsletter=newsletter)
    report = send(replace(config, newsletter=newsletter), issue)
    assert report.sent == ("ann@example.com",)
    assert collector.recipients() == ["ann@example.com"]
    (msg,) = collector.messages()
    assert msg["Bcc"] is None and msg["X-Injected"] is None
    keys = [k.lower() for k in msg]
    assert len(keys) == len(set(keys))
    assert msg["To"].addresses[0].display_name == "Ann Bcc: victim@evil.example"
    assert msg["Subject"].startswith("Title Bcc:")


# --- the ledger ----------------------------------------------------------------------------


def test_permanent_refusal_is_recorded_and_not_retried(
    smtpd: tuple[Collector, int], tmp_path: Path
) -> None:
    collector, port = smtpd
    config = make_config(tmp_path, port)
    save_subscribers(config.subscribers_path, people(3))
    collector.reject["reader0001@example.com"] = "550 5.1.1 No such user"
    report = send(config)
    assert report.sent == ("reader0000@example.com", "reader0002@example.com")
    ((address, why),) = report.failed
    assert address == "reader0001@example.com" and "550" in why and "RCPT" in why
    with open_store(config.db_path) as ledger:
        assert ledger.ledger_entries("2013-08")["reader0001@example.com"].state == FAILED
    again = send(config)
    assert again.sent == () and again.failed == report.failed
    assert any("failed: reader0001@example.com: 550" in line for line in again.lines())


def test_transient_refusal_is_retried(smtpd: tuple[Collector, int], tmp_path: Path) -> None:
    collector, port = smtpd
    config = make_config(tmp_path, port)
    save_subscribers(config.subscribers_path, people(2))
    collector.defer_once["reader0000@example.com"] = "451 4.3.0 Try again later"
    waits: list[float] = []
    report = send(config, sleep=waits.append)
    assert report.sent == ("reader0000@example.com", "reader0001@example.com")
    assert waits == [2.0]
    assert collector.recipients().count("reader0000@example.com") == 1
    with open_store(config.db_path) as ledger:
        assert ledger.ledger_entries("2013-08")["reader0000@example.com"].attempts == 2


def test_transient_refusal_past_retries_is_deferred_to_the_next_run(
    smtpd: tuple[Collector, int], tmp_path: Path
) -> None:
    collector, port = smtpd
    config = make_config(tmp_path, port)
    save_subscribers(config.subscribers_path, people(2))
    collector.reject["reader0000@example.com"] = "452 4.2.2 Mailbox full"
    report = send(config)
    assert report.sent == ("reader0001@example.com",)
    assert [a for a, _ in report.deferred] == ["reader0000@example.com"]
    assert not report.done
    del collector.reject["reader0000@example.com"]
    again = send(config)
    assert again.sent == ("reader0000@example.com",) and again.done
    assert sorted(collector.recipients()) == [s.email for s in people(2)]


class LimitedCollector(Collector):
    """Answers 421 and hangs up at the third MAIL FROM of every connection."""

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        session.mails = getattr(session, "mails", 0) + 1
        if session.mails == 3:
            return "421 4.7.0 Too many messages on this connection"
        envelope.mail_from = address
        return "250 OK"


def test_server_hanging_up_between_messages_is_retried_at_once(tmp_path: Path) -> None:
    collector = LimitedCollector()
    port = free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        config = make_config(tmp_path, port)
        save_subscribers(config.subscribers_path, people(7))
        waits: list[float] = []
        report = send(config, sleep=waits.append)
    finally:
        controller.stop()
    assert report.sent == tuple(s.email for s in people(7)) and report.done
    assert waits == []
    assert sorted(collector.recipients()) == [s.email for s in people(7)]


class SenderRefusingCollector(Collector):
    """Refuses every MAIL FROM with 550 until ``fixed`` is set."""

    fixed = False

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if not self.fixed:
            return "550 5.7.1 Sender not allowed"
        envelope.mail_from = address
        return "250 OK"


def test_refused_sender_stops_the_run_and_blames_no_recipient(tmp_path: Path) -> None:
    collector = SenderRefusingCollector()
    port = free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        config = make_config(tmp_path, port)
        save_subscribers(config.subscribers_path, people(3))
        report = send(config)
        assert report.sent == () and report.failed == ()
        assert "refused the sender" in report.stopped and "550" in report.stopped
        assert [a for a, _ in report.deferred] == ["reader0000@example.com"]
        collector.fixed = True
        again = send(config)
    finally:
        controller.stop()
    assert again.sent == tuple(s.email for s in people(3)) and again.done


def test_cut_during_data_is_in_doubt_and_resent_only_on_request(
    smtpd: tuple[Collector, int], tmp_path: Path
) -> None:
    collector, port = smtpd
    config = make_config(tmp_path, port)
    save_subscribers(config.subscribers_path, people(3))
    collector.drop_during_data.add("reader0001@example.com")
    report = send(config)
    assert report.sent == ("reader0000@example.com", "reader0002@example.com")
    assert [a for a, _ in report.in_doubt] == ["reader0001@example.com"]
    assert report.done and report.needs_attention
    again = send(config)
    assert again.sent == () and [a for a, _ in again.in_doubt] == ["reader0001@example.com"]
    assert any("in doubt: reader0001@example.com" in line for line in again.lines())
    forced = send(config, resend_in_doubt=True)
    assert forced.sent == ("reader0001@example.com",)
    assert forced.resent_in_doubt == ("reader0001@example.com",)
    assert collector.recipients().count("reader0001@example.com") == 2
    (first, second) = [m for m in collector.messages() if "reader0001" in str(m["To"])]
    assert first["Message-ID"] == second["Message-ID"]


def test_opted_out_and_unsubscribed_are_skipped(
    smtpd: tuple[Collector, int], tmp_path: Path
) -> None:
    collector, port = smtpd
    config = make_config(tmp_path, port)
    subscribers = people(3)
    subscribers[2] = replace(subscribers[2], status="unsubscribed")
    save_subscribers(config.subscribers_path, subscribers)
    with open_store(config.db_path) as ledger:
        ledger.add_opt_out("reader0001@example.com", LIST_ID, "one-click")
    report = send(config)
    assert report.sent == ("reader0000@example.com",)
    assert report.opted_out == ("reader0001@example.com",)
    assert report.inactive == ("reader0002@example.com",)
    assert collector.recipients() == ["reader0000@example.com"]


def test_bad_rows_are_reported_and_skipped(smtpd: tuple[Collector, int], tmp_path: Path) -> None:
    collector, port = smtpd
    config = make_config(tmp_path, port)
    config.subscribers_path.parent.mkdir(parents=True)
    config.subscribers_path.write_text(
        "email,name,status\nok@example.com,Ok,\nnot an address,Bad,\nok2@example.com,Ok2,maybe\n"
    )
    report = send(config)
    assert report.sent == ("ok@example.com",)
    assert len(report.problems) == 2
    assert report.problems[0].startswith(f"{config.subscribers_path}:3: not an email address")
    assert report.problems[1].startswith(f"{config.subscribers_path}:4: unknown status")


def test_dry_run_sends_and_records_nothing(smtpd: tuple[Collector, int], tmp_path: Path) -> None:
    collector, port = smtpd
    config = make_config(tmp_path, port)
    save_subscribers(config.subscribers_path, people(2))
    report = send(config, dry_run=True, environ={})
    assert [r.email for r in report.would_send] == [s.email for s in people(2)]
    assert report.sent == () and collector.received == []
    assert report.warnings and "INSECURE" in report.warnings[0]
    assert "would send to Reader 0 <reader0000@example.com>" in report.lines()
    with open_store(config.db_path) as ledger:
        assert ledger.ledger_entries("2013-08") == {}


def test_proof_goes_to_one_address_and_is_not_recorded(
    smtpd: tuple[Collector, int], tmp_path: Path
) -> None:
    collector, port = smtpd
    config = make_config(tmp_path, port)
    save_subscribers(config.subscribers_path, people(2))
    report = send(config, proof="editor@example.org", environ={})
    assert report.mode == "proof" and report.sent == ("editor@example.org",)
    (msg,) = collector.messages()
    assert msg["Subject"] == "[PROOF] Monthly Mash and the Customer's Invisible Rules"
    assert collector.recipients() == ["editor@example.org"]
    with open_store(config.db_path) as ledger:
        assert ledger.ledger_entries("2013-08") == {}
    assert send(config).sent == tuple(s.email for s in people(2))


def test_real_send_requires_the_secret(tmp_path: Path) -> None:
    config = make_config(tmp_path, free_port())
    save_subscribers(config.subscribers_path, people(1))
    with pytest.raises(ConfigError, match="MASH_SECRET"):
        send(config, environ={})


def test_password_only_from_the_environment(tmp_path: Path) -> None:
    config = make_config(tmp_path, free_port(), user="mailer")
    save_subscribers(config.subscribers_path, people(1))
    with pytest.raises(ConfigError, match="MASH_SMTP_PASSWORD"):
        send(config)


def test_unreachable_server_marks_nobody(tmp_path: Path) -> None:
    config = make_config(tmp_path, free_port())
    save_subscribers(config.subscribers_path, people(2))
    with pytest.raises(SendError, match="cannot connect"):
        send(config)
    with open_store(config.db_path) as ledger:
        assert ledger.ledger_entries("2013-08") == {}


def test_load_email_names_the_missing_file(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="mash build --month 2013-08"):
        load_email(tmp_path, "2013-08")
    (tmp_path / "2013-08").mkdir()
    (tmp_path / "2013-08" / "email.html").write_text("<p>h</p>")
    (tmp_path / "2013-08" / "email.txt").write_text("t")
    assert load_email(tmp_path, "2013-08") == ("<p>h</p>", "t")


def test_plan_is_pure_and_explains_everyone() -> None:
    from mash.store import LedgerEntry

    subs = people(5)
    states = ((SENT, ""), (SENDING, ""), (FAILED, "550"))
    entries = {
        s.email: LedgerEntry(s.email, state, "<m>", 1, why, datetime(2013, 9, 1, tzinfo=UTC))
        for s, (state, why) in zip(subs, states, strict=False)
    }
    plan = plan_send(subs, entries, frozenset({"reader0003@example.com"}))
    assert [s.email for s in plan.to_send] == ["reader0004@example.com"]
    assert plan.already_sent == ("reader0000@example.com",)
    assert plan.in_doubt == ("reader0001@example.com",)
    assert plan.failed_before == (("reader0002@example.com", "550"),)
    assert plan.opted_out == ("reader0003@example.com",)
    forced = plan_send(subs, entries, frozenset(), resend_in_doubt=True)
    assert [s.email for s in forced.to_send][:1] == ["reader0001@example.com"]


def test_ledger_newer_than_code_is_refused(tmp_path: Path) -> None:
    """A file whose send ledger a newer mash migrated (ledger_meta, before #15) is refused."""
    db = tmp_path / "mash.db"
    with open_store(db) as store:
        store.engine.execute("CREATE TABLE ledger_meta (key TEXT PRIMARY KEY, value TEXT)")
        store.engine.execute("INSERT INTO ledger_meta VALUES ('version', '99')")
    with pytest.raises(StoreError, match="send ledger in .* is version 99, newer than this mash"):
        open_store(db)


# --- rate limit ------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_rate_limiter_spaces_messages() -> None:
    clock = FakeClock()
    limiter = RateLimiter(4.0, clock, clock.sleep)
    for _ in range(5):
        limiter.wait()
    assert limiter.sleeps == pytest.approx([0.25] * 4)
    clock.now += 10
    limiter.wait()
    assert len(limiter.sleeps) == 4
    off = RateLimiter(0, clock, clock.sleep)
    for _ in range(5):
        off.wait()
    assert off.sleeps == []


def test_send_obeys_the_rate_limit(smtpd: tuple[Collector, int], tmp_path: Path) -> None:
    collector, port = smtpd
    config = make_config(tmp_path, port, rate_per_second=10.0)
    save_subscribers(config.subscribers_path, people(6))
    clock = FakeClock()
    report = send(config, clock=clock, sleep=clock.sleep)
    assert len(report.sent) == 6
    assert clock.slept == pytest.approx([0.1] * 5)


# --- the lock ---------------------------------------------------------------------------------


def test_second_send_refuses_while_one_runs(smtpd: tuple[Collector, int], tmp_path: Path) -> None:
    collector, port = smtpd
    config = make_config(tmp_path, port)
    save_subscribers(config.subscribers_path, people(1))
    config.db_path.parent.mkdir(parents=True, exist_ok=True)
    with (
        open_store(config.db_path) as store,
        store.lock("send"),
        pytest.raises(StoreBusy, match="another `mash send` is running"),
    ):
        send(config)
    assert collector.received == []
    assert send(config).sent == ("reader0000@example.com",)


HOLD_LOCK = """
import sys, time
from pathlib import Path
from mash.store import open_store
with open_store(Path(sys.argv[1])) as store, store.lock("send"):
    print("locked", flush=True)
    time.sleep(600)
"""


def test_lock_of_a_killed_send_does_not_block(tmp_path: Path) -> None:
    db = tmp_path / "mash.db"
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(db)], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "locked"
        with (
            open_store(db) as store,
            pytest.raises(StoreBusy, match=f"pid {child.pid}"),
            store.lock("send"),
        ):
            pass
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate()
    with open_store(db) as store, store.lock("send"):
        pass


# --- SIGKILL in the middle of a send ----------------------------------------------------------

CHILD = """
import json, sys
from tests.test_send import child_send
child_send(json.loads(sys.argv[1]))
"""


def child_send(args: dict[str, Any]) -> None:
    """Run in a subprocess: one real send, its report printed as JSON."""
    config = make_config(Path(args["tmp"]), args["port"])
    report = send(config, resend_in_doubt=args.get("resend", False))
    print(json.dumps({"sent": report.sent, "in_doubt": [a for a, _ in report.in_doubt]}))


def run_child(tmp_path: Path, port: int) -> subprocess.Popen[str]:
    args = json.dumps({"tmp": str(tmp_path), "port": port})
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, args],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


class StallingCollector(Collector):
    """Accepts message ``stall_at`` then never answers, so the sender waits in DATA."""

    def __init__(self, stall_at: int) -> None:
        super().__init__()
        self.stall_at = stall_at
        self.stalled = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        if len(self.received) == self.stall_at:
            self.stalled.set()
            while not self.release.is_set():
                await asyncio.sleep(0.01)
        return reply


def test_sigkill_midway_then_rerun_mails_everyone_once(
    tmp_path: Path, database_env: str | Path
) -> None:
    collector = StallingCollector(stall_at=7)
    port = free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        config = make_config(tmp_path, port)
        save_subscribers(config.subscribers_path, people(20))
        child = run_child(tmp_path, port)
        assert collector.stalled.wait(timeout=120), "the child send never reached message 7"
        child.send_signal(signal.SIGKILL)
        child.communicate()
        collector.release.set()
        assert len(collector.received) == 7
        rerun = run_child(tmp_path, port)
        out, _ = rerun.communicate(timeout=120)
        result = json.loads(out)
    finally:
        controller.stop()
    received = collector.recipients()
    everyone = {s.email for s in people(20)}
    in_doubt = set(result["in_doubt"])
    assert in_doubt == {"reader0006@example.com"}  # the message stalled in DATA
    assert len(received) == len(set(received)) == 20  # nobody twice
    assert set(received) == everyone  # nobody skipped
    assert set(result["sent"]) == everyone - set(received[:7])
    with open_store(config) as ledger:  # on each engine (database_env)
        states = {k: e.state for k, e in ledger.ledger_entries("2013-08").items()}
    assert states.pop("reader0006@example.com") == SENDING
    assert set(states.values()) == {SENT}


def test_unsubscribe_from_a_received_message_stops_the_next_issue(
    smtpd: tuple[Collector, int], tmp_path: Path, database_env: str | Path
) -> None:
    from wsgiref.util import setup_testing_defaults

    from mash.web.subscribe import make_app

    collector, port = smtpd
    config = make_config(tmp_path, port)
    save_subscribers(config.subscribers_path, people(2))
    send(config)
    first = collector.messages()[0]
    https = first["List-Unsubscribe"].split(",")[0].strip(" <>")
    app = make_app(database_of(config), SECRET, list_id=LIST_ID)
    body = b"List-Unsubscribe=One-Click"
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "QUERY_STRING": urlsplit(https).query,
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
    }
    setup_testing_defaults(environ)
    environ["wsgi.input"] = io.BytesIO(body)
    statuses: list[str] = []
    b"".join(app(environ, lambda status, headers: statuses.append(status)))
    assert statuses == ["200 OK"]
    september = replace(make_issue(), month="2013-09")
    report = send(config, september)
    assert report.sent == ("reader0001@example.com",)
    assert report.opted_out == ("reader0000@example.com",)
    with open_store(config) as store:  # on each engine (database_env)
        gone = store.subscriber("reader0000@example.com")
        history = store.subscriber_history("reader0000@example.com")
    assert gone is not None
    assert (gone.status, gone.status_reason) == ("unsubscribed", "one-click unsubscribe")
    assert [(c.old, c.new, c.reason) for c in history][-1] == (
        "subscribed",
        "unsubscribed",
        "one-click unsubscribe",
    )


def test_send_mails_only_subscribed_addresses_of_the_store(
    smtpd: tuple[Collector, int], tmp_path: Path, database_env: str | Path
) -> None:
    collector, port = smtpd
    config = make_config(tmp_path, port)
    statuses = ("subscribed", "pending", "unsubscribed", "bounced", "complained", "subscribed")
    with open_store(config) as store:
        store.import_subscribers(
            [replace(s, status=st) for s, st in zip(people(6), statuses, strict=True)], "x.csv"
        )
    report = send(config)
    assert report.sent == ("reader0000@example.com", "reader0005@example.com")
    assert report.inactive == tuple(f"reader000{i}@example.com" for i in range(1, 5))
    assert sorted(collector.recipients()) == ["reader0000@example.com", "reader0005@example.com"]


def test_the_csv_is_read_once_then_only_the_store_counts(
    smtpd: tuple[Collector, int], tmp_path: Path, database_env: str | Path
) -> None:
    collector, port = smtpd
    config = make_config(tmp_path, port)
    save_subscribers(config.subscribers_path, people(2))
    before = config.subscribers_path.read_bytes()
    assert send(config).sent == ("reader0000@example.com", "reader0001@example.com")
    assert config.subscribers_path.read_bytes() == before  # imported, left untouched
    save_subscribers(config.subscribers_path, people(3))  # edited after the move: not read
    september = send(config, replace(make_issue(), month="2013-09"))
    assert september.sent == ("reader0000@example.com", "reader0001@example.com")
    assert september.problems == ()
    with open_store(config) as store:
        assert [s.consent_source for s in store.subscribers()] == ["import", "import"]


# --- TLS and login (a throwaway certificate from the openssl command) ---------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def check_login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    ok = isinstance(data, LoginPassword) and (data.login, data.password) in {
        ("mailer", "pw"),
        (b"mailer", b"pw"),
    }
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd sends the 535


@contextlib.contextmanager
def tls_server(certificate: tuple[Path, Path], implicit: bool) -> Iterator[tuple[Collector, int]]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    collector = Collector()
    port = free_port()
    tls: dict[str, Any] = (
        {"ssl_context": context, "auth_require_tls": False}  # the socket itself is TLS
        if implicit
        else {"tls_context": context}
    )
    controller = Controller(
        collector,
        hostname="127.0.0.1",
        port=port,
        authenticator=check_login,
        auth_exclude_mechanism=["LOGIN"],  # smtplib's LOGIN fallback stalls on aiosmtpd
        **tls,
    )
    controller.start()
    try:
        yield collector, port
    finally:
        controller.stop()


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_tls_and_login_with_the_password_from_the_environment(
    certificate: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    security: str,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    with tls_server(certificate, implicit=security == "tls") as (collector, port):
        config = make_config(tmp_path, port, security=security, user="mailer")
        save_subscribers(config.subscribers_path, people(2))
        with pytest.raises(SendError, match="SMTP login refused"):
            send(config, environ={**ENVIRON, "MASH_SMTP_PASSWORD": "wrong"})
        report = send(config, environ={**ENVIRON, "MASH_SMTP_PASSWORD": "pw"})
    assert report.sent == tuple(s.email for s in people(2))
    assert sorted(collector.recipients()) == [s.email for s in people(2)]


def test_login_without_encryption_goes_only_to_a_loopback_address(tmp_path: Path) -> None:
    """security: none with a user: allowed to 127.0.0.1, refused elsewhere (see #21)."""
    collector, port = Collector(), free_port()
    logins: list[str] = []

    def login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        logins.append(mechanism)
        return check_login(server, session, envelope, mechanism, data)

    controller = Controller(
        collector,
        hostname="127.0.0.1",
        port=port,
        authenticator=login,
        auth_require_tls=False,
        auth_exclude_mechanism=["LOGIN"],
    )
    controller.start()
    try:
        config = make_config(tmp_path, port, security="none", user="mailer")
        save_subscribers(config.subscribers_path, people(2))
        report = send(config, environ={**ENVIRON, "MASH_SMTP_PASSWORD": "pw"})
    finally:
        controller.stop()
    assert logins == ["PLAIN"] and report.sent == tuple(s.email for s in people(2))


@pytest.mark.parametrize("peer", ["192.0.2.25", "10.0.0.5", "2001:db8::25", "::ffff:192.0.2.25"])
def test_login_without_encryption_to_another_host_is_refused(peer: str) -> None:
    smtp = SmtpSettings(host="mail.example.org", port=25, security="none", user="mailer")
    refusal = auth_in_clear_refusal(smtp, peer)
    assert refusal is not None and peer in refusal and "mail.example.org" in refusal
    assert "smtp.security: starttls" in refusal and "tls (port 465)" in refusal
    for fine in (replace(smtp, security="starttls"), replace(smtp, security="tls")):
        assert auth_in_clear_refusal(fine, peer) is None
    assert auth_in_clear_refusal(replace(smtp, user=""), peer) is None  # no login to leak
    for loopback in ("127.0.0.1", "127.3.4.5", "::1", "::ffff:127.0.0.1"):
        assert auth_in_clear_refusal(smtp, loopback) is None


def test_untrusted_certificate_is_refused(certificate: tuple[Path, Path], tmp_path: Path) -> None:
    with tls_server(certificate, implicit=False) as (collector, port):
        config = make_config(tmp_path, port, security="starttls")
        save_subscribers(config.subscribers_path, people(1))
        with pytest.raises(SendError, match="cannot connect"):
            send(config)
    assert collector.received == []


def test_starttls_required_but_not_offered(smtpd: tuple[Collector, int], tmp_path: Path) -> None:
    collector, port = smtpd
    config = make_config(tmp_path, port, security="starttls")
    save_subscribers(config.subscribers_path, people(1))
    with pytest.raises(SendError, match="cannot connect"):
        send(config)
    assert collector.received == []


def test_second_process_refuses_while_a_send_is_running(
    tmp_path: Path, database_env: str | Path
) -> None:
    collector = StallingCollector(stall_at=1)
    port = free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        config = make_config(tmp_path, port)
        save_subscribers(config.subscribers_path, people(3))
        child = run_child(tmp_path, port)
        assert collector.stalled.wait(timeout=120), "the child send never started"
        busy = f"another `mash send` is running \\((mash )?pid {child.pid}[ )]"
        with pytest.raises(StoreBusy, match=busy):
            send(config)
        collector.release.set()
        out, _ = child.communicate(timeout=120)
    finally:
        controller.stop()
    assert len(json.loads(out)["sent"]) == 3
    assert sorted(collector.recipients()) == [s.email for s in people(3)]
