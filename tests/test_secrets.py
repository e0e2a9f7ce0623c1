"""A password in a feed URL is used to fetch and never shown or stored (see #21).

A real feed server on 127.0.0.1 requires HTTP Basic auth; `mash fetch`, `mash feeds
check` (text and JSON) and `mash feeds export` run against it, and the password must
appear in none of their output nor in the bytes of the SQLite store.
"""

from __future__ import annotations

import base64
import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mash.cli import main as mash
from mash.opml import read_opml
from mash.store import open_store
from mash.store._sqlite import SqliteEngine
from mash.store.schema import MIGRATIONS
from tests.conftest import fetch_section

USER = "alice"
PASSWORD = "pw-4f9c1e"  # distinctive: a search of binary files for it finds only it
TOKEN = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

FEED = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>Members Only</title><link>/</link>
<description>A blog behind a login</description>
<item><title>First answer</title><link>/posts/first-answer/</link>
<guid isPermaLink="false">members-1</guid><pubDate>Mon, 05 Oct 2026 10:00:00 GMT</pubDate>
<description><![CDATA[<p>The first reply is where the customer decides whether anyone
is listening. <a href="/posts/second/">Read on</a>. <img src="/img/a.png" alt=""></p>]]>
</description></item>
<item><title>Second answer</title><link>/posts/second/</link>
<guid isPermaLink="false">members-2</guid><pubDate>Tue, 06 Oct 2026 10:00:00 GMT</pubDate>
<description>The second answer closes the loop with the customer.</description></item>
</channel></rss>
"""

PAGE = "<!doctype html><html><head><title>Not a feed</title></head><body>hi</body></html>"


class _Handler(BaseHTTPRequestHandler):
    """Answers only with the right Basic credentials; /old.xml moved to /feed.xml."""

    requests: list[tuple[str, bool]]

    def do_GET(self) -> None:
        authorized = self.headers.get("Authorization") == f"Basic {TOKEN}"
        self.requests.append((self.path, authorized))
        if not authorized:
            self._answer(401, "text/plain", "login needed", {"WWW-Authenticate": 'Basic "x"'})
        elif self.path == "/old.xml":
            self._answer(301, "text/plain", "", {"Location": "/feed.xml"})
        elif self.path == "/feed.xml":
            self._answer(200, "application/rss+xml", FEED)
        elif self.path == "/page.html":
            self._answer(200, "text/html", PAGE)
        else:
            self._answer(404, "text/plain", "not here")

    def _answer(
        self, status: int, kind: str, body: str, headers: dict[str, str] | None = None
    ) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def login_server() -> Iterator[tuple[int, list[tuple[str, bool]]]]:
    requests: list[tuple[str, bool]] = []
    handler = type("Handler", (_Handler,), {"requests": requests})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1]), requests
    finally:
        server.shutdown()
        server.server_close()


def write_config(folder: Path, urls: list[str]) -> Path:
    config = folder / "feeds.yaml"
    feeds = "".join(f'  - url: "{url}"\n' for url in urls)
    config.write_text(f"feeds:\n{feeds}{fetch_section(deadline=5, retries=0)}")
    return config


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = mash(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_hidden(*texts: str | bytes) -> None:
    for text in texts:
        data = text.encode() if isinstance(text, str) else text
        assert PASSWORD.encode() not in data


def store_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (folder / "data").glob("mash.db*"))


def test_password_in_a_feed_url_fetches_and_is_shown_nowhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with login_server() as (port, requests):
        base = f"http://{USER}:{PASSWORD}@127.0.0.1:{port}"
        # a feed that moved (the new address keeps the login), and one that is a page
        config = str(write_config(tmp_path, [f"{base}/old.xml", f"{base}/page.html"]))
        fetched = run(capsys, "--config", config, "fetch", "--feeds-only")
        again = run(capsys, "--config", config, "fetch", "--feeds-only")
        check = run(capsys, "--config", config, "feeds", "check")
        check_json = run(capsys, "--config", config, "feeds", "check", "--json")
        export = run(capsys, "--config", config, "feeds", "export")
    assert fetched[0] == 0 and "fetched 1, not modified 0, failed 1 of 2 feeds" in fetched[2]
    assert "2 new posts" in fetched[2]
    # the second run fetches the moved feed where it moved to, still logged in
    assert ("/feed.xml", True) in requests[-2:] and all(ok for _, ok in requests)
    assert again[0] == 0 and "failed 1 of 2 feeds" in again[2]
    assert f"{USER}:***@127.0.0.1:{port}/old.xml" in fetched[2]  # shown, masked
    assert f"{USER}:***@127.0.0.1:{port}/feed.xml" in check[1]  # the fix names the new URL
    # the page is failing: feeds check says so by its exit status, in both forms
    assert check[0] == 1 and check_json[0] == 1
    assert export[0] == 0 and "password" in export[2]
    exported = [f.url for f in read_opml(export[1].encode())]
    assert exported == [f"http://{USER}:***@127.0.0.1:{port}/old.xml", exported[1]]
    assert_hidden(*fetched[1:], *again[1:], *check[1:], *check_json[1:], *export[1:])
    assert_hidden(store_bytes(tmp_path))
    with open_store(tmp_path / "data" / "mash.db") as store:
        titles = {p.title for p in store.pending_posts()}
    assert titles == {"First answer", "Second answer"}


def test_progress_line_agrees_with_the_outcome(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A URL that answers 200 with a web page is "failed (not-a-feed)", never "ok" (#20)."""
    with login_server() as (port, _requests):
        base = f"http://{USER}:{PASSWORD}@127.0.0.1:{port}"
        config = str(write_config(tmp_path, [f"{base}/page.html", f"{base}/feed.xml"]))
        status, _, err = run(capsys, "--config", config, "fetch", "--feeds-only")
    assert status == 0
    progress = sorted(line for line in err.splitlines() if line.startswith("["))
    masked = f"http://{USER}:***@127.0.0.1:{port}"
    assert progress == [
        f"[1/2] failed (not-a-feed) {masked}/page.html",
        f"[2/2] ok {masked}/feed.xml",
    ] or progress == [
        f"[1/2] ok {masked}/feed.xml",
        f"[2/2] failed (not-a-feed) {masked}/page.html",
    ]
    assert f"failed: {masked}/page.html: not-a-feed" in err


def test_a_store_holding_a_full_url_is_masked_and_still_matches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A store written before #21 kept the password; opening it masks it in place."""
    with login_server() as (port, requests):
        url = f"http://{USER}:{PASSWORD}@127.0.0.1:{port}/feed.xml"
        config = str(write_config(tmp_path, [url]))
        db = tmp_path / "data" / "mash.db"
        engine = SqliteEngine(db)  # the store as version 3 wrote it, whatever came later
        for migrate in MIGRATIONS[:3]:
            migrate(engine)
        engine.execute("PRAGMA user_version = 3")
        engine.execute(
            "INSERT INTO feeds(url, fetch_url, etag, last_error) VALUES (?, ?, ?, ?)",
            (url, url, '"v1"', f"timeout fetching {url}"),
        )
        engine.execute(
            "INSERT INTO posts(feed_url, guid, url, url_key, title, first_seen)"
            " VALUES (?, 'members-1', 'http://x/p', 'x/p', 'Old post', '2026-10-01')",
            (url,),
        )
        engine.close()
        assert PASSWORD.encode() in store_bytes(tmp_path)
        status, _, err = run(capsys, "--config", config, "fetch", "--feeds-only")
    assert status == 0 and "fetched 1" in err
    assert requests == [("/feed.xml", True)]  # the stored ETag went with it: same feed
    assert_hidden(store_bytes(tmp_path), err)
    rows = sqlite3.connect(db).execute("SELECT feed_url, count(*) FROM posts GROUP BY 1")
    assert list(rows) == [(f"http://{USER}:***@127.0.0.1:{port}/feed.xml", 2)]


def test_errors_and_tracebacks_mask_the_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with login_server() as (port, _requests):
        pass  # the port is closed now: nothing listens there
    url = f"http://{USER}:{PASSWORD}@127.0.0.1:{port}/feed.xml"
    config = str(write_config(tmp_path, ["https://example.org/feed"]))
    status, out, err = run(capsys, "--config", config, "--debug", "feeds", "add", url)
    assert status == 1 and "Traceback" in err and "FetchError" in err
    assert f"{USER}:***@127.0.0.1:{port}/feed.xml" in err
    assert_hidden(out, err)
    twice = str(write_config(tmp_path, [url, url]))  # a config error quotes the URL
    status, out, err = run(capsys, "--config", twice, "fetch")
    assert status == 2 and "listed twice" in err
    assert_hidden(out, err)
