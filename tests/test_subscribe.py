"""The unsubscribe endpoint (mash.web.subscribe), served by waitress on 127.0.0.1."""

from __future__ import annotations

import contextlib
import http.client
import os
import queue
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest

from mash import mail
from mash.config import load_config
from mash.errors import ConfigError
from mash.store import open_store
from mash.subscribers import BOUNCED, SUBSCRIBED, UNSUBSCRIBED, Subscriber
from mash.unsubscribe import make_token
from mash.web._wsgi import Limits, Server, serve
from mash.web.subscribe import LIMITS, make_app
from tests.conftest import REPO

SECRET = "s3cret-for-tests"
LIST_ID = "Monthly Mash <monthly-mash.example.org>"


@pytest.fixture
def running(database: str | Path) -> Iterator[tuple[Server, str | Path]]:
    """The endpoint on 127.0.0.1, port 0, with the limits `mash unsubscribe-server` uses
    (but a read timeout long enough for the slow clients of the load test), its store on
    each engine (the `database` fixture)."""
    with _serving(database, replace(LIMITS, read_timeout=120)) as started:
        yield started


@pytest.fixture
def server(running: tuple[Server, str | Path]) -> tuple[int, str | Path]:
    return running[0].port, running[1]


class _serving:
    def __init__(self, db: str | Path, limits: Limits) -> None:
        self.db, self.limits = db, limits

    def __enter__(self) -> tuple[Server, str | Path]:
        app = make_app(self.db, SECRET, list_id=LIST_ID, name="Monthly Mash")
        started: queue.Queue[Server] = queue.Queue()
        self.thread = threading.Thread(
            target=serve,
            args=(app, "127.0.0.1", 0),
            kwargs={"limits": self.limits, "ready": started.put},
        )
        self.thread.start()
        self.server = started.get(timeout=30)
        return self.server, self.db

    def __exit__(self, *exc: object) -> None:
        self.server.stop()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()


def request(
    port: int, method: str, path: str, body: str | None = None
) -> tuple[int, str, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode(), dict(response.getheaders())
    finally:
        conn.close()


def opted_out(db: str | Path) -> frozenset[str]:
    with open_store(db) as store:
        return store.opted_out()


def path_for(address: str) -> str:
    return "/unsubscribe?token=" + quote(make_token(address, LIST_ID, SECRET), safe="")


def test_one_click_post_unsubscribes(server: tuple[int, str | Path]) -> None:
    port, db = server
    status, body, headers = request(
        port, "POST", path_for("ann@example.com"), "List-Unsubscribe=One-Click"
    )
    assert status == 200
    assert "ann@example.com is unsubscribed" in body
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert opted_out(db) == {"ann@example.com"}
    with open_store(db) as store:
        (row,) = store.engine.query("SELECT source, list_id FROM opt_outs")
    assert (row["source"], row["list_id"]) == ("one-click", LIST_ID)
    assert (
        request(port, "POST", path_for("ann@example.com"), "List-Unsubscribe=One-Click")[0] == 200
    )


def test_get_shows_a_confirmation_form_and_does_not_unsubscribe(
    server: tuple[int, str | Path],
) -> None:
    port, db = server
    status, body, headers = request(port, "GET", path_for("ann@example.com"))
    assert status == 200
    assert '<form method="post"' in body and "ann@example.com" in body
    assert headers["Cache-Control"] == "no-store"
    assert opted_out(db) == frozenset()
    token = make_token("ann@example.com", LIST_ID, SECRET)
    status, body, _ = request(port, "POST", "/unsubscribe", urlencode({"token": token}))
    assert status == 200 and opted_out(db) == {"ann@example.com"}
    with open_store(db) as store:
        assert [r["source"] for r in store.engine.query("SELECT source FROM opt_outs")] == [
            "confirm-page"
        ]


def test_unsubscribing_sets_the_status_with_its_history(server: tuple[int, str | Path]) -> None:
    port, db = server
    with open_store(db) as store:
        store.import_subscribers(
            [Subscriber("ann@example.com", "Ann"), Subscriber("bob@example.com", status=BOUNCED)],
            "list.csv",
        )
    for address in ("ann@example.com", "bob@example.com"):
        status, _, _ = request(port, "POST", path_for(address), "List-Unsubscribe=One-Click")
        assert status == 200
    request(port, "GET", path_for("ann@example.com"))  # a scanner following the link again
    with open_store(db) as store:
        ann, bob = store.subscribers()
        changes = [(c.email, c.old, c.new, c.reason) for c in store.subscriber_history()]
    assert (ann.status, ann.status_reason) == (UNSUBSCRIBED, "one-click unsubscribe")
    assert bob.status == BOUNCED  # the bounce says more; the opt-out is recorded all the same
    assert opted_out(db) == {"ann@example.com", "bob@example.com"}
    assert changes[2:] == [("ann@example.com", SUBSCRIBED, UNSUBSCRIBED, "one-click unsubscribe")]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_bad_token_is_refused(server: tuple[int, str | Path], method: str) -> None:
    port, db = server
    forged = make_token("ann@example.com", LIST_ID, "wrong-secret")
    body = "List-Unsubscribe=One-Click" if method == "POST" else None
    status, text, _ = request(port, method, "/u?token=" + quote(forged, safe=""), body)
    assert status == 403 and "not valid" in text
    assert request(port, method, "/u", body)[0] == 400
    assert opted_out(db) == frozenset()


def test_other_methods_are_refused(server: tuple[int, str | Path]) -> None:
    port, _db = server
    assert request(port, "DELETE", path_for("ann@example.com"))[0] == 405


def test_page_escapes_the_address(server: tuple[int, str | Path]) -> None:
    port, _db = server
    token = make_token("<script>@example.com", LIST_ID, SECRET)
    _, body, _ = request(port, "GET", "/u?token=" + quote(token, safe=""))
    assert "<script>@" not in body and "&lt;script&gt;@example.com" in body


def test_app_needs_a_secret(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        make_app(tmp_path / "mash.db", "", list_id=LIST_ID)


def test_serve_binds_loopback_by_default_and_keeps_tokens_out_of_the_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app(tmp_path / "mash.db", SECRET, list_id=LIST_ID)
    started: queue.Queue[Server] = queue.Queue()
    thread = threading.Thread(target=serve, args=(app,), kwargs={"port": 0, "ready": started.put})
    thread.start()
    server = started.get(timeout=30)
    try:
        assert server.host == "127.0.0.1"
        status, _, _ = request(
            server.port, "POST", path_for("ann@example.com"), "List-Unsubscribe=One-Click"
        )
    finally:
        server.stop()
        thread.join()
    assert status == 200
    assert opted_out(tmp_path / "mash.db") == {"ann@example.com"}
    log = capsys.readouterr().err
    assert '"POST /unsubscribe?…" 200' in log
    assert make_token("ann@example.com", LIST_ID, SECRET) not in log


def _slow_loris(port: int) -> socket.socket:
    """Connect, send part of a request line, and go quiet."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /unsubscribe?token=")
    return sock


def _still_open(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True  # nothing to read, not closed
    except OSError:
        return False
    finally:
        sock.setblocking(True)


def test_slow_clients_block_nobody_and_no_opt_out_is_lost(
    running: tuple[Server, str | Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """20 slow-loris connections held open while 200 one-click POSTs, 50 at a time, all
    succeed and all 200 opt-outs are stored (see #21: with wsgiref one quiet client
    blocked everyone, and 28 of 200 were reset and lost)."""
    server, db = running
    lorises = [_slow_loris(server.port) for _ in range(20)]
    addresses = [f"reader{i:03d}@example.com" for i in range(200)]

    def one_click(address: str) -> tuple[int, float]:
        started = time.monotonic()
        status = request(server.port, "POST", path_for(address), "List-Unsubscribe=One-Click")[0]
        return status, time.monotonic() - started

    try:
        with ThreadPoolExecutor(max_workers=50) as pool:
            results = list(pool.map(one_click, addresses))
        held = sum(_still_open(sock) for sock in lorises)
    finally:
        for sock in lorises:
            sock.close()
    latencies = sorted(seconds for _, seconds in results)
    p50 = statistics.median(latencies)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    with capsys.disabled():
        print(
            f"\n200 one-click POSTs beside 20 slow clients: p50 {p50 * 1000:.0f} ms, "
            f"p99 {p99 * 1000:.0f} ms"
        )
    assert [status for status, _ in results] == [200] * 200
    assert opted_out(db) == frozenset(addresses)
    assert held == 20  # the slow clients were connected throughout


def test_a_slow_client_is_dropped_after_the_read_timeout(tmp_path: Path) -> None:
    with _serving(tmp_path / "mash.db", replace(LIMITS, read_timeout=1)) as (server, db):
        sock = _slow_loris(server.port)
        started = time.monotonic()
        try:
            # closed by the server (maybe reset: it had unread bytes), not by our 10 s timeout
            with contextlib.suppress(ConnectionResetError):
                assert sock.recv(1024) == b""
        finally:
            sock.close()
        waited = time.monotonic() - started
        assert 0.9 < waited < 5  # the idle check runs each second
        one_click = "List-Unsubscribe=One-Click"
        assert request(server.port, "POST", path_for("ann@example.com"), one_click)[0] == 200
        assert opted_out(db) == {"ann@example.com"}


def test_a_body_over_the_cap_is_refused_unread(server: tuple[int, str | Path]) -> None:
    port, db = server
    body = "List-Unsubscribe=One-Click&pad=" + "x" * LIMITS.max_body
    assert request(port, "POST", path_for("ann@example.com"), body)[0] == 413
    assert opted_out(db) == frozenset()


def test_the_command_serves_until_interrupted(tmp_path: Path) -> None:
    """`mash unsubscribe-server --port N` as a real process: it says where it listens,
    records a one-click opt-out, and stops on Ctrl-C."""
    (tmp_path / "feeds.yaml").write_text("feeds:\n  - url: http://127.0.0.1:9/feed\n")
    command = [sys.executable, "-m", "mash.cli", "--config", str(tmp_path / "feeds.yaml")]
    proc = subprocess.Popen(
        [*command, "unsubscribe-server", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "MASH_SECRET": SECRET},
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert line.startswith("unsubscribe endpoint on http://127.0.0.1:"), line
        port = int(line.split(":")[2].split("/")[0])
        config = load_config(tmp_path / "feeds.yaml")
        list_id = mail.list_id(config.smtp, config.newsletter)
        token = quote(make_token("ann@example.com", list_id, SECRET), safe="")
        status = request(port, "POST", f"/?token={token}", "List-Unsubscribe=One-Click")[0]
        assert status == 200
        assert opted_out(config.db_path) == {"ann@example.com"}
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "interrupted" in err
