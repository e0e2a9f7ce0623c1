"""`mash server` (mash.web.server): double opt-in end to end on a real waitress server,
a real aiosmtpd receiving the mails, on both store engines (see #16)."""

from __future__ import annotations

import functools
import http.client
import queue
import re
import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from mash.pipeline import mailing
from mash.records import Config, Newsletter, ServerSettings, SmtpSettings
from mash.send import smtp_connector
from mash.store import open_store
from mash.subscribers import PENDING, SUBSCRIBED, UNSUBSCRIBED, Subscriber
from mash.subscribers.tokens import make_confirm_token
from mash.web._wsgi import Limits, Server, serve
from mash.web.server import WEBHOOK_BODY, make_server_app
from mash.web.webhooks import Webhook
from tests.test_desk import chromium  # noqa: F401 (a fixture: Debian's chromium via Playwright)
from tests.test_send import Collector, free_port

SECRET = "s3cret-for-tests"
LIST_ID = "Monthly Mash <monthly-mash.example.org>"
SITE = "https://mash.example.org/"


@dataclass
class Clock:
    """The server's clock, which a test can move (token expiry)."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Running:
    port: int
    db: str | Path
    mails: Collector
    clock: Clock
    lists: mailing.Lists
    outbox: mailing.SmtpOutbox

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_mails(self, count: int, timeout: float = 30.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while len(self.mails.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return [m for m in self.mails.messages() if not m["Subject"].startswith("marker ")]

    def settle(self) -> list[EmailMessage]:
        """Let the outbox send what it has queued; return every mail received."""
        subject = f"marker {time.monotonic_ns()}"
        self.outbox.put(lambda: _marker(subject), "mash@example.org")
        deadline = time.monotonic() + 30
        marker = f"Subject: {subject}".encode()
        while time.monotonic() < deadline:  # the raw bytes: parsing every mail each poll is slow
            with self.mails.lock:
                if any(marker in content for _, content in self.mails.received):
                    break
            time.sleep(0.05)
        return [m for m in self.mails.messages() if not m["Subject"].startswith("marker ")]


def _marker(subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "mash@example.org"
    msg["To"] = "marker@example.org"
    msg["Subject"] = subject
    msg.set_content("marker")
    return msg


def make_config(tmp_path: Path, smtp_port: int, **server: Any) -> Config:
    newsletter = Newsletter(
        name="Monthly Mash",
        sender="mash@example.org",
        site_url=SITE,
        server_url="http://127.0.0.1:1/",  # replaced once the port is known
        postal_address="1 Example Street",
    )
    return Config(
        path=tmp_path / "feeds.yaml",
        newsletter=newsletter,
        feeds=(),
        db_path=tmp_path / "mash.db",
        output_dir=tmp_path / "output",
        editions_dir=tmp_path / "editions",
        templates_dir=tmp_path / "templates",
        subscribers_path=tmp_path / "subscribers.csv",
        smtp=SmtpSettings(
            host="127.0.0.1",
            port=smtp_port,
            security="none",
            unsubscribe_url="https://mash.example.org/unsubscribe",
            return_path="bounces@example.org",
        ),
        server=ServerSettings(**server),
    )


class _serving:
    def __init__(
        self,
        tmp_path: Path,
        db: str | Path,
        webhooks: Callable[[Config], dict[str, Webhook]] | None = None,
        threads: int = Limits.threads,
        **server: Any,
    ) -> None:
        self.tmp_path, self.db, self.server_settings = tmp_path, db, server
        self.webhooks, self.threads = webhooks, threads

    def __enter__(self) -> Running:
        from aiosmtpd.controller import Controller

        self.mails = Collector()
        smtp_port = free_port()
        self.smtpd = Controller(self.mails, hostname="127.0.0.1", port=smtp_port)
        self.smtpd.start()
        config = make_config(self.tmp_path, smtp_port, **self.server_settings)
        port = free_port()
        config = replace(
            config, newsletter=replace(config.newsletter, server_url=f"http://127.0.0.1:{port}/")
        )
        self.outbox = mailing.SmtpOutbox(smtp_connector(config.smtp, {}))
        lists = self.lists = mailing.Lists(config, self.db, SECRET, LIST_ID, self.outbox)
        clock = Clock()
        hooks = self.webhooks(config) if self.webhooks else None
        app = make_server_app(lists, clock=clock, webhooks=hooks)
        started: queue.Queue[Server] = queue.Queue()
        limits = Limits(max_body=WEBHOOK_BODY, read_timeout=120, threads=self.threads)
        self.thread = threading.Thread(
            target=serve,
            args=(app, "127.0.0.1", port),
            kwargs={"limits": limits, "ready": started.put},
        )
        self.thread.start()
        self.server = started.get(timeout=30)
        return Running(self.server.port, self.db, self.mails, clock, lists, self.outbox)

    def __exit__(self, *exc: object) -> None:
        self.server.stop()
        self.thread.join(timeout=30)
        self.lists.close()
        self.outbox.close()
        self.smtpd.stop()
        assert not self.thread.is_alive()


@pytest.fixture
def running(tmp_path: Path, database: str | Path) -> Iterator[Running]:
    with _serving(tmp_path, database) as started:
        yield started


def request(
    port: int,
    method: str,
    path: str,
    body: str | bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, str, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        sent = {"Content-Type": "application/x-www-form-urlencoded"} if body is not None else {}
        sent.update(headers or {})
        conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        return response.status, response.read().decode(), dict(response.getheaders())
    finally:
        conn.close()


def subscribe(run: Running, **fields: str) -> tuple[int, str, dict[str, str]]:
    return request(run.port, "POST", "/subscribe", urlencode(fields))


def state(db: str | Path) -> tuple[Any, ...]:
    """Everything the subscriber flows write, to show a refused request changed nothing."""
    with open_store(db) as store:
        return (
            store.subscribers(),
            store.subscriber_history(),
            store.engine.query("SELECT * FROM signups ORDER BY address_key"),
        )


def link_in(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    text = part.get_content()
    found = re.search(r"(http://127\.0\.0\.1:\d+/confirm\?token=\S+)", text)
    assert found, text
    return found.group(1)


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


# --- double opt-in, end to end -----------------------------------------------------------


def test_subscribe_confirm_and_welcome(running: Running) -> None:
    status, body, headers = subscribe(running, email="Ann@Example.COM", name="Ann")
    assert status == 200 and "Check your inbox" in body
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    (confirmation,) = running.wait_mails(1)
    assert confirmation["To"] == "Ann <Ann@example.com>"
    assert "confirm" in confirmation["Subject"].lower()
    assert confirmation.get_body(("html",)) is not None  # HTML and text
    assert running.mails.received[0][0] == ["Ann@example.com"]
    with open_store(running.db) as store:
        pending = store.subscriber("ann@example.com")
    assert pending is not None and pending.status == PENDING and pending.consent_source == "form"

    link = link_in(confirmation)
    status, page, _ = request(running.port, "GET", path_of(link))  # a mail scanner's GET
    assert status == 200 and "Confirm my subscription" in page and 'method="post"' in page
    with open_store(running.db) as store:
        assert store.subscriber("ann@example.com").status == PENDING  # type: ignore[union-attr]

    token = link.split("token=", 1)[1]
    status, page, _ = request(running.port, "POST", "/confirm", urlencode({"token": token}))
    assert status == 200 and "is subscribed" in page
    mails = running.wait_mails(2)
    welcome = mails[1]
    assert welcome["Subject"] == "Welcome to Monthly Mash"
    welcome_text = welcome.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert SITE in welcome_text and "Unsubscribe at any time: https://" in welcome_text
    with open_store(running.db) as store:
        ann = store.subscriber("ann@example.com")
        history = store.subscriber_history("ann@example.com")
    assert ann is not None and ann.status == SUBSCRIBED and ann.name == "Ann"
    assert ann.consent_source == "form" and ann.consented_at and ann.confirmed_at
    assert [(h.old, h.new) for h in history] == [(None, PENDING), (PENDING, SUBSCRIBED)]
    assert "confirmed by the link" in history[-1].reason

    before = state(running.db)
    status, page, _ = request(running.port, "POST", "/confirm", urlencode({"token": token}))
    assert status == 409 and "used already" in page  # a replay changes nothing
    assert state(running.db) == before
    assert len(running.settle()) == 2  # and sends no second welcome


def test_the_answer_is_the_same_for_new_pending_and_subscribed(running: Running) -> None:
    with open_store(running.db) as store:
        store.subscribe(Subscriber("old@example.com", consent_source="cli"), "added")

    def page(address: str) -> str:
        status, body, _ = subscribe(running, email=address)
        assert status == 200
        return body.replace(address, "ADDRESS")

    new, pending, subscribed = (
        page("new@example.com"),
        page("new@example.com"),
        page("old@example.com"),
    )
    assert new == pending == subscribed
    mails = running.settle()
    # one confirmation for the new address (the second ask is within 10 minutes), none
    # for the subscribed one
    assert [m["To"] for m in mails] == ["new@example.com"]
    with open_store(running.db) as store:
        assert store.subscriber("old@example.com").status == SUBSCRIBED  # type: ignore[union-attr]


def test_a_new_confirmation_mail_after_ten_minutes_and_the_old_link_still_works(
    running: Running,
) -> None:
    subscribe(running, email="cat@example.com")
    running.clock.now += timedelta(minutes=11)
    subscribe(running, email="cat@example.com")
    first, second = running.settle()
    assert link_in(first) != link_in(second)
    token = link_in(first).split("token=", 1)[1]
    status, _, _ = request(running.port, "POST", "/confirm", urlencode({"token": token}))
    assert status == 200


def test_an_unsubscribed_reader_can_subscribe_again_and_an_old_link_cannot(
    running: Running,
) -> None:
    subscribe(running, email="dan@example.com")
    (mail,) = running.settle()
    token = link_in(mail).split("token=", 1)[1]
    assert request(running.port, "POST", "/confirm", urlencode({"token": token}))[0] == 200
    with open_store(running.db) as store:
        store.opt_out("dan@example.com", LIST_ID, "one-click")
    running.clock.now += timedelta(seconds=2)
    # the old link, replayed after the reader left: refused, the reader stays out
    assert request(running.port, "POST", "/confirm", urlencode({"token": token}))[0] == 409
    with open_store(running.db) as store:
        assert store.subscriber("dan@example.com").status == UNSUBSCRIBED  # type: ignore[union-attr]
    subscribe(running, email="dan@example.com")
    mails = running.settle()
    fresh = link_in(mails[-1]).split("token=", 1)[1]
    assert request(running.port, "POST", "/confirm", urlencode({"token": fresh}))[0] == 200
    with open_store(running.db) as store:
        dan = store.subscriber("dan@example.com")
        assert dan is not None and dan.status == SUBSCRIBED
        assert "dan@example.com" not in store.opted_out()


# --- bad input: a clear answer, nothing changed --------------------------------------------


@pytest.mark.parametrize(
    ("fields", "status", "words"),
    [
        ({"email": "not-an-address"}, 400, "not an email address"),
        ({"email": "ann@localhost"}, 400, "bad domain"),
        ({"email": "ann@@example.com"}, 400, "not an email address"),
        ({"email": "a b@example.com"}, 400, "not an email address"),
        ({"email": ""}, 400, "empty address"),
        ({"email": "x" * 250 + "@example.com"}, 400, "not an email address"),
        ({"email": "ann@example.com\r\nBcc: all@example.com"}, 400, "line break"),
        ({"email": "ann@example.com", "name": "Ann\r\nBcc: all@example.com"}, 400, "line break"),
        ({"email": "ann@example.com", "name": "Ann\nSubject: x"}, 400, "line break"),
        ({"email": "ann@example.com", "url": "x\r\ny"}, 400, "line break"),
        ({"email": "ann@example.com", "name": "Ann\u202eevil"}, 400, "control character"),
    ],
)
def test_bad_subscribe_requests_are_refused_and_change_nothing(
    running: Running, fields: dict[str, str], status: int, words: str
) -> None:
    before = state(running.db)
    got, body, _ = subscribe(running, **fields)
    assert (got, words in body) == (status, True), body
    assert state(running.db) == before
    assert running.settle() == []


def test_oversized_bodies_and_other_content_types_are_refused(running: Running) -> None:
    before = state(running.db)
    big = urlencode({"email": "ann@example.com", "name": "x" * 5000})
    assert request(running.port, "POST", "/subscribe", big)[0] == 413
    # a body over the server's cap is refused before it is read (headers alone say so)
    with socket.create_connection(("127.0.0.1", running.port), timeout=30) as raw:
        raw.sendall(
            b"POST /subscribe HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            + f"Content-Length: {WEBHOOK_BODY * 2}\r\n\r\n".encode()
        )
        assert raw.recv(100).startswith(b"HTTP/1.1 413")
    body = '{"email": "ann@example.com"}'
    json_headers = {"Content-Type": "application/json"}
    assert request(running.port, "POST", "/subscribe", body, json_headers)[0] == 415
    assert request(running.port, "PUT", "/subscribe", "email=a")[0] == 405
    assert state(running.db) == before and running.settle() == []


def test_the_honeypot_gets_the_same_page_and_nothing_else(running: Running) -> None:
    status, body, _ = subscribe(running, email="bot@example.com", url="http://spam.example")
    assert status == 200 and "Check your inbox" in body
    assert state(running.db) == state(running.db) and running.settle() == []
    with open_store(running.db) as store:
        assert store.subscriber("bot@example.com") is None


def test_forged_expired_and_cross_site_confirmations_change_nothing(running: Running) -> None:
    subscribe(running, email="eve@example.com")
    (mail,) = running.settle()
    token = link_in(mail).split("token=", 1)[1]
    before = state(running.db)
    forged = make_confirm_token("eve@example.com", running.clock.now, LIST_ID, "wrong secret")
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for bad in (forged, tampered, "garbage", "a.b.c", token.replace(".", "", 1)):
        for method in ("GET", "POST"):
            path = "/confirm?" + urlencode({"token": bad})
            got, body, _ = request(running.port, method, path, "" if method == "POST" else None)
            assert (got, "not valid" in body) == (403, True), (bad, method)
    assert request(running.port, "GET", "/confirm")[0] == 400
    cross = {"Sec-Fetch-Site": "cross-site"}
    got, _, _ = request(running.port, "POST", "/confirm", urlencode({"token": token}), cross)
    assert got == 403
    got, _, _ = request(
        running.port,
        "POST",
        "/confirm",
        urlencode({"token": token}),
        {"Origin": "https://evil.example"},
    )
    assert got == 403
    running.clock.now += timedelta(days=7, minutes=1)
    for method in ("GET", "POST"):
        path = "/confirm?" + urlencode({"token": token})
        got, body, _ = request(running.port, method, path, "" if method == "POST" else None)
        assert (got, "expired" in body) == (410, True)
    assert state(running.db) == before
    assert [m["To"] for m in running.settle()] == ["eve@example.com"]  # no welcome


def test_one_client_address_is_limited(tmp_path: Path, database: str | Path) -> None:
    with _serving(tmp_path, database, ip_requests=3) as run:
        answers = [subscribe(run, email=f"p{n}@example.com")[0] for n in range(5)]
        assert answers == [200, 200, 200, 429, 429]
        status, body, headers = subscribe(run, email="p9@example.com")
        assert status == 429 and "try again" in body and int(headers["Retry-After"]) > 0
        assert len(run.settle()) == 3
        with open_store(run.db) as store:
            assert len(store.subscribers()) == 3


def test_the_unsubscribe_endpoint_is_served_unchanged(running: Running) -> None:
    from mash.unsubscribe import make_token

    token = make_token("fay@example.com", LIST_ID, SECRET)
    path = "/unsubscribe?" + urlencode({"token": token})
    status, body, _ = request(running.port, "POST", path, "List-Unsubscribe=One-Click")
    assert status == 200 and "fay@example.com is unsubscribed" in body
    with open_store(running.db) as store:
        assert store.opted_out() == {"fay@example.com"}


# --- load ------------------------------------------------------------------------------


def test_200_concurrent_subscribes_lose_and_duplicate_no_one(
    tmp_path: Path, database: str | Path
) -> None:
    """200 requests at once from 32 threads: 150 addresses, 50 of them asked twice."""
    with _serving(tmp_path, database, ip_requests=10_000) as run:
        addresses = [f"load{n}@example.com" for n in range(150)]
        asks = addresses + addresses[:50]

        def one(address: str) -> float:
            started = time.perf_counter()
            status, _, _ = subscribe(run, email=address)
            assert status == 200
            return time.perf_counter() - started

        with ThreadPoolExecutor(32) as pool:
            latencies = sorted(pool.map(one, asks))
        p50 = statistics.median(latencies)
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        print(f"\n200 concurrent subscribes: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")
        mails = run.settle()
        with open_store(run.db) as store:
            listed = store.subscribers()
            history = store.subscriber_history()
    assert sorted(s.email for s in listed) == sorted(addresses)
    assert all(s.status == PENDING for s in listed)
    assert len(history) == 150
    assert sorted(str(m["To"]) for m in mails) == sorted(addresses)  # one mail each


# --- in the browser ----------------------------------------------------------------------


@pytest.fixture
def built_site(tmp_path: Path, running: Running) -> Iterator[str]:
    """A static site built with the subscribe form pointing at the running server,
    served on 127.0.0.1 as a static host would (another origin than the server)."""
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from mash.site import build_site
    from tests.test_site import make_env, make_issue, make_newsletter

    site_port = free_port()
    newsletter = make_newsletter(
        site_url=f"http://127.0.0.1:{site_port}/", server_url=running.url + "/"
    )
    out = tmp_path / "public"
    build_site([make_issue("2026-10", 22, newsletter)], out, make_env(), newsletter)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(out))
    httpd = ThreadingHTTPServer(("127.0.0.1", site_port), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{site_port}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_reader_subscribes_from_the_site_in_chromium(
    running: Running, built_site: str, request: pytest.FixtureRequest
) -> None:
    page = request.getfixturevalue("chromium").new_page()
    try:
        page.goto(built_site + "2026/10/")
        form = page.locator("footer form.subscribe")
        assert form.get_attribute("action") == running.url + "/subscribe"
        box = page.locator("input[name=url]").bounding_box()  # the honeypot: off screen
        assert box is not None and box["x"] + box["width"] <= 0
        page.fill("#subscribe-email", "gil@example.com")
        page.click("footer form.subscribe button")
        page.wait_for_load_state()
        assert "Check your inbox" in page.content()
        (confirmation,) = running.wait_mails(1)
        page.goto(link_in(confirmation))  # what the reader's mail client opens
        with open_store(running.db) as store:
            assert store.subscriber("gil@example.com").status == PENDING  # type: ignore[union-attr]
        page.click("text=Confirm my subscription")
        page.wait_for_load_state()
        assert "gil@example.com is subscribed" in page.content()
    finally:
        page.close()
    with open_store(running.db) as store:
        gil = store.subscriber("gil@example.com")
    assert gil is not None and gil.status == SUBSCRIBED
    # where the consent came from: the site (browsers send only the origin cross-site)
    assert f"on the form ({built_site}" in store_history_reason(running.db, "gil@example.com")
    assert [m["Subject"] for m in running.wait_mails(2)][1] == "Welcome to Monthly Mash"


def store_history_reason(db: str | Path, email: str) -> str:
    with open_store(db) as store:
        return " ".join(h.reason for h in store.subscriber_history(email))


def test_the_site_has_no_form_without_a_server_url(tmp_path: Path) -> None:
    from mash.site import build_site
    from tests.test_site import make_env, make_issue, make_newsletter

    newsletter = make_newsletter()
    out = tmp_path / "public"
    build_site([make_issue("2026-10", 22, newsletter)], out, make_env(), newsletter)
    assert "subscribe" not in (out / "index.html").read_text(encoding="utf-8")


# --- the command ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["server", "unsubscribe-server"])
def test_the_command_serves_subscribe_and_stops_on_ctrl_c(tmp_path: Path, command: str) -> None:
    """`mash server --port N` (and its alias) as a real process: it mails the confirmation
    through the configured SMTP server, serves the unsubscribe endpoint, stops on Ctrl-C."""
    import os
    import signal
    import subprocess
    import sys

    from aiosmtpd.controller import Controller

    from tests.conftest import REPO

    mails = Collector()
    smtp_port = free_port()
    smtpd = Controller(mails, hostname="127.0.0.1", port=smtp_port)
    smtpd.start()
    port = free_port()
    (tmp_path / "feeds.yaml").write_text(
        "newsletter:\n"
        f"  server_url: http://127.0.0.1:{port}/\n"
        "feeds: []\n"
        f"smtp:\n  host: 127.0.0.1\n  port: {smtp_port}\n  security: none\n",
        encoding="utf-8",
    )
    argv = [sys.executable, "-m", "mash.cli", "--config", str(tmp_path / "feeds.yaml")]
    proc = subprocess.Popen(
        [*argv, command, "--port", str(port)],
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "MASH_SECRET": SECRET, "MASH_DATABASE_URL": ""},
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert line.startswith(f"mash server on http://127.0.0.1:{port}/"), line
        status, body, _ = request(port, "POST", "/subscribe", urlencode({"email": "hal@ex.org"}))
        assert status == 200 and "Check your inbox" in body
        deadline = time.monotonic() + 30
        while not mails.received and time.monotonic() < deadline:
            time.sleep(0.05)
        (message,) = mails.messages()
        assert message["To"] == "hal@ex.org" and "/confirm?token=" in link_in(message)
        assert request(port, "GET", "/unsubscribe")[0] == 400  # the endpoint, no token
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        smtpd.stop()
    assert proc.returncode == 130 and "interrupted" in err


def test_the_command_needs_the_server_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mash import cli

    monkeypatch.setenv("MASH_SECRET", SECRET)
    (tmp_path / "feeds.yaml").write_text("feeds: []\n", encoding="utf-8")
    assert cli.main(["--config", str(tmp_path / "feeds.yaml"), "server"]) == 2
    assert "set newsletter.server_url" in capsys.readouterr().err


def test_get_subscribe_shows_the_form(running: Running) -> None:
    status, body, headers = request(running.port, "GET", "/subscribe")
    assert status == 200 and 'name="email"' in body and 'action="/subscribe"' in body
    assert "script" not in headers["Content-Security-Policy"]


def _addressed(address: str) -> EmailMessage:
    message = _marker(f"to {address}")
    message.replace_header("To", address)
    return message


def test_the_outbox_retries_a_refusal_for_now_and_drops_a_permanent_one(tmp_path: Path) -> None:
    from aiosmtpd.controller import Controller

    mails = Collector(
        defer_once={"ivy@example.com": "451 4.7.1 try again later"},
        reject={"joe@example.com": "550 5.1.1 no such user"},
    )
    port = free_port()
    smtpd = Controller(mails, hostname="127.0.0.1", port=port)
    smtpd.start()
    config = make_config(tmp_path, port)
    outbox = mailing.SmtpOutbox(smtp_connector(config.smtp, {}), retry_delays=(0.05, 0.05))
    try:
        for address in ("joe@example.com", "ivy@example.com"):
            outbox.put(functools.partial(_addressed, address), "bounces@example.org")
    finally:
        outbox.close()
        smtpd.stop()
    assert mails.recipients() == ["ivy@example.com"]  # sent on the second try
    assert "ivy@example.com" not in mails.defer_once  # the first try was refused


@pytest.mark.parametrize(("proxy", "seen"), [("127.0.0.1", "203.0.113.9"), ("", "127.0.0.1")])
def test_the_client_address_comes_from_a_trusted_proxy_only(proxy: str, seen: str) -> None:
    """Behind nginx every client is 127.0.0.1 to waitress: with server.trusted_proxy set
    its X-Forwarded-For names the client (the per-IP limit needs it); otherwise the
    header is not believed, since anyone can send it."""

    def echo(environ: dict[str, Any], start: Any) -> list[bytes]:
        start("200 OK", [("Content-Type", "text/plain")])
        return [environ["REMOTE_ADDR"].encode()]

    started: queue.Queue[Server] = queue.Queue()
    limits = Limits(trusted_proxy=proxy)
    thread = threading.Thread(
        target=serve, args=(echo, "127.0.0.1", 0), kwargs={"limits": limits, "ready": started.put}
    )
    thread.start()
    server = started.get(timeout=30)
    try:
        status, body, _ = request(server.port, "GET", "/", None, {"X-Forwarded-For": "203.0.113.9"})
    finally:
        server.stop()
        thread.join(timeout=30)
    assert (status, body) == (200, seen)


def test_a_kept_postgresql_connection_that_breaks_is_replaced(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The server keeps one PostgreSQL connection per worker thread; when the database
    drops it (a restart, an idle timeout), that request gets a 503 with Retry-After and
    the next one connects again."""
    import psycopg

    url: str = request.getfixturevalue("postgres_url")
    with _serving(tmp_path, url, threads=1) as run:  # one thread: it meets the break
        assert subscribe(run, email="kim@example.com")[0] == 200
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        answers = [subscribe(run, email=f"k{n}@example.com")[0] for n in range(6)]
        assert answers == [503, 200, 200, 200, 200, 200]
        with open_store(url) as store:
            listed = {s.email for s in store.subscribers()}
    answered = {f"k{n}@example.com" for n, status in enumerate(answers) if status == 200}
    assert listed == {"kim@example.com"} | answered
