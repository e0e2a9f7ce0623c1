"""Fetch against real HTTP servers on 127.0.0.1: one test per behaviour and fault kind."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import gzip
import io
import ipaddress
import json
import os
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from mash.cli import main as mash
from mash.fetch import (
    check_links_with,
    discover_feed_urls,
    fetch_feeds,
    fetch_feeds_sync,
    fetch_feeds_with,
    fetch_pages_with,
)
from mash.fetch._aiohttp import no_default_cas
from mash.fetch._body import _STEP, BodyTooLarge, _Inflate
from mash.fetch._http import MAX_REDIRECTS, Http, _retry_after
from mash.fetch._robots import agent_token, parse_robots, robots_allows
from mash.records import FeedState, FetchResult, FetchSettings
from tests.conftest import feed_farm, fetch_section

DATA = Path(__file__).parent / "data" / "fetch"
FEED = (DATA / "feed.xml").read_bytes()
HOME = (DATA / "home.html").read_bytes()

Handler = Callable[["_Request"], None]


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    at: float
    method: str = "GET"


@dataclass
class Server:
    """A threaded HTTP/1.1 server whose routes the test sets; it records every request."""

    base: str
    routes: dict[str, Handler] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)
    inflight: int = 0
    max_inflight: int = 0
    cert: Path | None = None  # the self-signed certificate of an https server
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return self.base + path

    def seen(self, path: str) -> list[Hit]:
        return [h for h in self.hits if h.path == path]


class _Request(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        state = self.server.state
        with state.lock:
            headers = {k.lower(): v for k, v in self.headers.items()}
            state.hits.append(Hit(self.path, headers, time.monotonic(), self.command))
            state.inflight += 1
            state.max_inflight = max(state.max_inflight, state.inflight)
        try:
            handler = state.routes.get(self.path)
            if handler is None:
                send(self, 404, b"not here")
            else:
                handler(self)
        finally:
            with state.lock:
                state.inflight -= 1

    do_HEAD = do_GET  # noqa: N815 (http.server's name); `send` writes no body to a HEAD

    def log_message(self, format: str, *args: object) -> None:
        pass


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    state: Server

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # resets and cut-off clients are the point of several tests


def send(
    h: BaseHTTPRequestHandler,
    status: int,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> None:
    h.send_response(status)
    sent = {"Content-Type": "application/rss+xml", "Content-Length": str(len(body))}
    sent.update(headers or {})
    for name, value in sent.items():
        h.send_header(name, value)
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(body)


@pytest.fixture
def server() -> Iterator[Server]:
    httpd = _HTTPServer(("127.0.0.1", 0), _Request)
    httpd.state = Server(base=f"http://127.0.0.1:{httpd.server_address[1]}")
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd.state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(params=["aiohttp", "httpx"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# the test servers' address, and nothing else (see #21)
LOOPBACK = (ipaddress.ip_network("127.0.0.1"),)
FAST = FetchSettings(
    connect_timeout=2,
    read_timeout=2,
    deadline=5,
    retries=2,
    max_bytes=1 << 20,
    allow_private=LOOPBACK,
)


def run(
    transport: str, urls: list[str] | list[FeedState], settings: FetchSettings = FAST
) -> list[FetchResult]:
    feeds = [u if isinstance(u, FeedState) else FeedState(u) for u in urls]
    return asyncio.run(fetch_feeds_with(feeds, settings, transport=transport))


def one(transport: str, url: str | FeedState, settings: FetchSettings = FAST) -> FetchResult:
    feed = url if isinstance(url, FeedState) else FeedState(url)
    return run(transport, [feed], settings)[0]


def feed_route(h: BaseHTTPRequestHandler) -> None:
    send(h, 200, FEED, {"ETag": '"v1"', "Last-Modified": "Mon, 02 Nov 2026 10:00:00 GMT"})


def redirect(status: int, target: str) -> Handler:
    return lambda h: send(h, status, b"moved", {"Location": target})


# --- success, conditional GET ------------------------------------------------------------


def test_ok_returns_body_and_validators(server: Server, transport: str) -> None:
    server.routes["/feed"] = feed_route
    result = one(transport, server.url("/feed"))
    assert result.ok and result.status == 200
    assert result.content == FEED
    assert (result.etag, result.last_modified) == ('"v1"', "Mon, 02 Nov 2026 10:00:00 GMT")
    assert result.final_url == server.url("/feed") and result.moved_to is None
    assert "mash/" in server.hits[0].headers["user-agent"]


def test_url_is_sent_as_httpx_quotes_it(server: Server, transport: str) -> None:
    """Non-ASCII and spaces are percent-encoded once; escapes already there are kept."""
    server.routes["/caf%C3%A9%20feed?q=a%2Fb&x=%C3%A9"] = feed_route
    result = one(transport, server.url("/café feed?q=a%2Fb&x=é"))
    assert result.ok and result.content == FEED
    assert [hit.path for hit in server.hits] == ["/caf%C3%A9%20feed?q=a%2Fb&x=%C3%A9"]


def test_304_when_validators_match(server: Server, transport: str) -> None:
    def conditional(h: BaseHTTPRequestHandler) -> None:
        if h.headers.get("If-None-Match") == '"v1"':
            send(h, 304)
        else:
            feed_route(h)

    server.routes["/feed"] = conditional
    state = FeedState(
        server.url("/feed"), etag='"v1"', last_modified="Mon, 02 Nov 2026 10:00:00 GMT"
    )
    result = one(transport, state)
    assert result.status == 304 and result.not_modified and result.content == b""
    assert result.etag == '"v1"'  # kept from the state when the 304 does not repeat it
    headers = server.hits[0].headers
    assert headers["if-none-match"] == '"v1"'
    assert headers["if-modified-since"] == "Mon, 02 Nov 2026 10:00:00 GMT"


def test_a_non_ascii_etag_goes_back_as_it_came(server: Server, transport: str) -> None:
    """Some servers put UTF-8 in an ETag: it returns byte for byte, and never stops a run."""
    wire = '"caf\u00c3\u00a9"'  # the UTF-8 bytes of "café"; http.server speaks latin-1

    def conditional(h: BaseHTTPRequestHandler) -> None:
        if h.headers.get("If-None-Match") == wire:
            send(h, 304)
        else:
            send(h, 200, FEED, {"ETag": wire})

    server.routes["/feed"] = conditional
    first = one(transport, server.url("/feed"))
    assert first.ok and first.etag == '"café"'
    second = one(transport, FeedState(server.url("/feed"), etag=first.etag))
    assert second.error is None and second.status == 304


def test_a_header_with_a_line_break_fails_that_feed_only(server: Server, transport: str) -> None:
    """No header injection, and no stopped run: the feed fails with the reason, others go on."""
    server.routes["/feed"] = feed_route
    server.routes["/other"] = feed_route
    bad = FeedState(server.url("/feed"), etag='"a"\r\nX-Injected: 1')
    results = run(transport, [bad, FeedState(server.url("/other"))])
    assert results[0].error_kind == "connection" and results[0].error is not None
    assert "header" in results[0].error.lower()
    assert results[1].ok
    assert [hit.path for hit in server.hits] == ["/other"]


def test_an_unforeseen_error_fails_that_feed_only(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unit: whatever a request raises for one feed becomes that feed's error, named."""
    from mash.fetch import _http

    real = _http._follow

    async def follow_or_fail(client: Http, url: str, *args: Any) -> Any:
        if url.endswith("/boom"):
            raise RuntimeError("a bug")
        return await real(client, url, *args)

    monkeypatch.setattr(_http, "_follow", follow_or_fail)
    server.routes["/feed"] = feed_route
    results = run("aiohttp", [server.url("/boom"), server.url("/feed")])
    assert results[0].error_kind == "unexpected"
    assert results[0].error is not None and "RuntimeError: a bug" in results[0].error
    assert results[1].ok


def test_gzip_and_deflate_bodies_are_decoded(server: Server, transport: str) -> None:
    server.routes["/gz"] = lambda h: send(h, 200, gzip.compress(FEED), {"Content-Encoding": "gzip"})
    server.routes["/zlib"] = lambda h: send(
        h, 200, zlib.compress(FEED), {"Content-Encoding": "deflate"}
    )
    results = run(transport, [server.url("/gz"), server.url("/zlib")])
    assert [r.content for r in results] == [FEED, FEED]


def test_results_keep_input_order_and_report_progress(server: Server) -> None:
    server.routes["/feed"] = feed_route
    urls = [server.url("/feed"), server.url("/missing"), server.url("/feed?x")]
    seen: list[FetchResult] = []
    results = asyncio.run(fetch_feeds([FeedState(u) for u in urls], FAST, seen.append))
    assert [r.url for r in results] == urls
    assert sorted(r.url for r in seen) == sorted(urls)


# --- redirects ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 308])
def test_permanent_redirect_sets_moved_to(server: Server, transport: str, status: int) -> None:
    server.routes["/old"] = redirect(status, "/mid")
    server.routes["/mid"] = redirect(301, server.url("/new"))
    server.routes["/new"] = feed_route
    result = one(transport, server.url("/old"))
    assert result.ok and result.content == FEED
    assert result.moved_to == server.url("/new") == result.final_url


@pytest.mark.parametrize("status", [302, 307])
def test_temporary_redirect_does_not_set_moved_to(
    server: Server, transport: str, status: int
) -> None:
    server.routes["/old"] = redirect(301, "/mid")  # one temporary hop spoils the chain
    server.routes["/mid"] = redirect(status, "/new")
    server.routes["/new"] = feed_route
    result = one(transport, server.url("/old"))
    assert result.ok and result.final_url == server.url("/new")
    assert result.moved_to is None


def test_redirect_loop_is_an_error(server: Server, transport: str) -> None:
    server.routes["/a"] = redirect(302, "/b")
    server.routes["/b"] = redirect(302, "/a")
    result = one(transport, server.url("/a"))
    assert result.error_kind == "redirect-loop" and not result.ok
    assert len(server.hits) == 2


def test_redirect_chain_over_limit_is_an_error(server: Server, transport: str) -> None:
    for i in range(MAX_REDIRECTS + 2):
        server.routes[f"/r{i}"] = redirect(301, f"/r{i + 1}")
    server.routes[f"/r{MAX_REDIRECTS}"] = feed_route  # exactly the limit: fine
    assert one(transport, server.url("/r0")).ok
    server.routes[f"/r{MAX_REDIRECTS}"] = redirect(301, "/end")
    server.routes["/end"] = feed_route
    result = one(transport, server.url("/r0"))
    assert result.error_kind == "too-many-redirects"


# --- HTTP errors and retries -------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 410])
def test_client_errors_are_reported_not_retried(
    server: Server, transport: str, status: int
) -> None:
    server.routes["/feed"] = lambda h: send(h, status, b"<html>gone</html>")
    result = one(transport, server.url("/feed"))
    assert (result.status, result.error_kind) == (status, f"http-{status}")
    assert result.error is not None and str(status) in result.error
    assert len(server.hits) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_not_retried_in_the_run(
    server: Server, transport: str, status: int
) -> None:
    # no Retry-After: the next run tries it, not this one (#18; retried twice before)
    server.routes["/feed"] = lambda h: send(h, status, b"oops")
    result = one(transport, server.url("/feed"))
    assert (result.status, result.error_kind) == (status, f"http-{status}")
    assert len(server.hits) == 1


def test_503_with_retry_after_then_success(server: Server, transport: str) -> None:
    def flaky(h: BaseHTTPRequestHandler) -> None:
        if len(server.hits) == 1:
            send(h, 503, b"busy", {"Retry-After": "1"})
        else:
            feed_route(h)

    server.routes["/feed"] = flaky
    result = one(transport, server.url("/feed"))
    assert result.ok and result.content == FEED
    first, second = server.hits  # retried once, then fine
    assert second.at - first.at >= 0.9  # Retry-After honoured


def test_503_with_a_long_retry_after_is_left_to_the_next_run(
    server: Server, transport: str
) -> None:
    server.routes["/feed"] = lambda h: send(h, 503, b"busy", {"Retry-After": "120"})
    result = one(transport, server.url("/feed"))
    assert (result.status, result.error_kind) == (503, "http-503")
    assert result.error is not None and "come back in 120 s; the next run tries" in result.error
    assert len(server.hits) == 1


@pytest.mark.parametrize("retries", [0, 1, 2])
def test_a_short_retry_after_is_honoured_up_to_fetch_retries(
    server: Server, transport: str, retries: int
) -> None:
    server.routes["/feed"] = lambda h: send(h, 429, b"slow down", {"Retry-After": "0"})
    result = one(transport, server.url("/feed"), replace(FAST, retries=retries))
    assert (result.status, result.error_kind) == (429, "http-429")
    assert len(server.hits) == retries + 1


def test_429_with_long_retry_after_gives_up(server: Server, transport: str) -> None:
    server.routes["/feed"] = lambda h: send(h, 429, b"slow down", {"Retry-After": "3600"})
    result = one(transport, server.url("/feed"))
    assert (result.status, result.error_kind) == (429, "http-429")
    assert result.error is not None and "come back in 3600 s" in result.error
    assert len(server.hits) == 1  # an hour is past the short wait: no retry


def test_429_then_success(server: Server, transport: str) -> None:
    def limited(h: BaseHTTPRequestHandler) -> None:
        if len(server.hits) == 1:
            send(h, 429, b"slow down", {"Retry-After": "0"})
        else:
            feed_route(h)

    server.routes["/feed"] = limited
    assert one(transport, server.url("/feed")).ok
    assert len(server.hits) == 2


def _reset(h: BaseHTTPRequestHandler) -> None:
    h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    h.connection.close()
    h.close_connection = True


def test_a_reset_before_the_response_is_retried_once_then_fails(
    server: Server, transport: str
) -> None:
    server.routes["/feed"] = _reset
    result = one(transport, server.url("/feed"))
    assert result.error_kind == "connection" and result.status is None
    assert result.error is not None and "before any response" in result.error
    # one quick retry, made by mash for both transports (aiohttp's own one is off: #18)
    assert len(server.hits) == 2


def test_a_reset_before_the_response_then_an_answer_is_fetched(
    server: Server, transport: str
) -> None:
    server.routes["/feed"] = lambda h: _reset(h) if len(server.hits) == 1 else feed_route(h)
    result = one(transport, server.url("/feed"))
    assert result.ok and result.content == FEED
    assert len(server.hits) == 2


def test_no_retries_means_a_reset_is_tried_once(server: Server, transport: str) -> None:
    server.routes["/feed"] = _reset
    result = one(transport, server.url("/feed"), replace(FAST, retries=0))
    assert result.error_kind == "connection"
    assert len(server.hits) == 1


def test_a_reset_after_the_response_began_is_not_retried(server: Server, transport: str) -> None:
    def cut(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", "100000")
        h.end_headers()
        h.wfile.write(b"<rss>" + b"x" * 1000)
        h.wfile.flush()
        time.sleep(0.1)
        _reset(h)

    server.routes["/feed"] = cut
    result = one(transport, server.url("/feed"))
    assert result.error_kind == "connection" and not result.ok
    assert len(server.hits) == 1


def _garbage(h: BaseHTTPRequestHandler) -> None:
    h.wfile.write(b"this is not HTTP at all\r\n\r\n")
    h.close_connection = True


def test_a_server_that_does_not_speak_http(server: Server, transport: str) -> None:
    server.routes["/feed"] = _garbage
    result = one(transport, server.url("/feed"))
    assert result.error_kind == "connection" and result.error is not None


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/feed", "http://[::1/feed", "not a url"])
def test_unfetchable_urls_are_reported_not_raised(transport: str, url: str) -> None:
    result = one(transport, url)
    assert result.error_kind == "bad-url" and not result.ok


def test_connection_refused(transport: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: refused
        result = one(transport, f"http://127.0.0.1:{port}/feed")
    assert result.error_kind == "connection"


def test_slow_server_hits_the_read_timeout_once(server: Server, transport: str) -> None:
    release = threading.Event()

    def slow(h: BaseHTTPRequestHandler) -> None:
        release.wait(5)
        feed_route(h)

    server.routes["/feed"] = slow
    settings = FetchSettings(read_timeout=0.5, deadline=5, retries=2, allow_private=LOOPBACK)
    result = one(transport, server.url("/feed"), settings)
    release.set()
    assert result.error_kind == "timeout"
    assert len(server.hits) == 1  # a read timeout is not retried


def test_trickling_server_is_cut_off_by_the_deadline(server: Server, transport: str) -> None:
    stop = threading.Event()

    def trickle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", "100000")
        h.end_headers()
        while not stop.wait(0.2):  # one byte every 0.2 s: never trips the read timeout
            h.wfile.write(b"x")
            h.wfile.flush()

    server.routes["/feed"] = trickle
    settings = FetchSettings(read_timeout=1, deadline=1.5, retries=2, allow_private=LOOPBACK)
    result = one(transport, server.url("/feed"), settings)
    stop.set()
    assert result.error_kind == "timeout"
    assert result.error is not None and "deadline" in result.error
    assert len(server.hits) == 1


def _drip(total: int, piece: int, every: float, stop: threading.Event) -> Handler:
    def handler(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(total))
        h.end_headers()
        sent = 0
        while sent < total and not stop.is_set():
            h.wfile.write(b"x" * min(piece, total - sent))
            h.wfile.flush()
            sent += piece
            stop.wait(every)

    return handler


def test_a_body_too_slow_to_end_by_the_deadline_fails_early(server: Server, transport: str) -> None:
    stop = threading.Event()
    # 1 KB every 0.1 s: 100 s for the whole, against a 30 s deadline
    server.routes["/feed"] = _drip(1_000_000, 1000, 0.1, stop)
    settings = FetchSettings(read_timeout=5, deadline=30, retries=2, allow_private=LOOPBACK)
    result = one(transport, server.url("/feed"), settings)
    stop.set()
    assert result.error_kind == "timeout"
    assert result.error is not None and "KiB/s" in result.error and "30 s deadline" in result.error
    assert result.elapsed < 15  # judged on its pace, not waited out to the deadline
    assert len(server.hits) == 1


def test_a_slow_body_that_ends_in_time_is_read(server: Server, transport: str) -> None:
    stop = threading.Event()
    # 4 KB every 0.25 s: 3 s for the whole, within a 6 s deadline
    server.routes["/feed"] = _drip(48_000, 4000, 0.25, stop)
    settings = FetchSettings(read_timeout=2, deadline=6, retries=0, allow_private=LOOPBACK)
    result = one(transport, server.url("/feed"), settings)
    stop.set()
    assert result.ok and len(result.content) == 48_000


def test_article_pages_follow_the_same_retry_policy(server: Server, transport: str) -> None:
    release = threading.Event()

    def slow(h: BaseHTTPRequestHandler) -> None:
        release.wait(5)
        send(h, 200, b"<html>late</html>")

    server.routes.update({"/reset": _reset, "/slow": slow})
    server.routes["/busy"] = lambda h: send(h, 503, b"busy", {"Retry-After": "120"})
    settings = FetchSettings(read_timeout=0.5, deadline=5, retries=2, allow_private=LOOPBACK)
    urls = [server.url(p) for p in ("/reset", "/slow", "/busy")]
    reset, timed_out, busy = asyncio.run(fetch_pages_with(urls, settings, transport=transport))
    release.set()
    assert (reset.error_kind, timed_out.error_kind, busy.error_kind) == (
        "connection",
        "timeout",
        "http-503",
    )
    assert [len(server.seen(p)) for p in ("/reset", "/slow", "/busy")] == [2, 1, 1]


def test_a_failing_feed_is_tried_once_a_run_then_backed_off(server: Server, tmp_path: Path) -> None:
    release = threading.Event()

    def slow(h: BaseHTTPRequestHandler) -> None:
        release.wait(5)
        feed_route(h)

    server.routes.update({"/feed": slow, "/ok": feed_route})
    config = tmp_path / "feeds.yaml"
    feed = server.url("/feed")
    feeds = f"feeds:\n  - url: {feed}\n  - url: {server.url('/ok')}\n"
    config.write_text(feeds + fetch_section(read_timeout=0.5))

    def fetch_then_check() -> tuple[dict[str, Any], str]:
        assert mash(["--config", str(config), "fetch", "--feeds-only", "--quiet"]) == 0
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert mash(["--config", str(config), "feeds", "check", "--json"]) == 1
        row = next(r for r in json.loads(out.getvalue()) if r["url"] == feed)
        with contextlib.redirect_stdout(out := io.StringIO()):
            mash(["--config", str(config), "feeds", "check"])
        return row, out.getvalue()

    try:
        first, table = fetch_then_check()
        assert len(server.seen("/feed")) == 1  # a timeout: once in the run
        assert (first["status"], first["error"], first["consecutive_failures"]) == (
            "failing",
            "timeout",
            1,
        )
        assert first["next_attempt"] is None and "next run" in table  # the next run tries it
        second, table = fetch_then_check()
        assert len(server.seen("/feed")) == 2 and second["consecutive_failures"] == 2
        when = datetime.fromisoformat(second["next_attempt"])
        assert timedelta(hours=1.9) < when - datetime.now(UTC) <= timedelta(hours=2)
        assert when.strftime("%Y-%m-%d %H:%M") in table  # "next try" in `feeds check`
        third, _ = fetch_then_check()
        assert len(server.seen("/feed")) == 2  # backed off: not due in the third run
        assert third["consecutive_failures"] == 2
    finally:
        release.set()


# --- size cap, decompression bombs -------------------------------------------------------


def _chunked(h: BaseHTTPRequestHandler, pieces: Iterator[bytes], headers: dict[str, str]) -> None:
    h.send_response(200)
    for name, value in {"Transfer-Encoding": "chunked", **headers}.items():
        h.send_header(name, value)
    h.end_headers()
    try:
        for piece in pieces:
            h.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        h.wfile.write(b"0\r\n\r\n")
    except OSError:
        h.close_connection = True  # the client hung up at its cap


def test_huge_body_is_refused_at_the_cap(server: Server, transport: str) -> None:
    block = b"<item><title>x</title></item>" * 2000
    server.routes["/chunked"] = lambda h: _chunked(h, iter([block] * 200), {})
    server.routes["/declared"] = lambda h: send(h, 200, b"x" * (2 << 20))
    for path in ("/chunked", "/declared"):
        result = one(transport, server.url(path))
        assert (result.error_kind, result.content) == ("too-large", b""), path


def _bomb(megabytes: int) -> bytes:
    """Gzip ``megabytes`` MiB of zeros fast: one compressed MiB block, repeated."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = deflate.compress(b"\0" * (1 << 20)) + deflate.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(megabytes):
        crc = zlib.crc32(b"\0" * (1 << 20), crc)
    trailer = struct.pack("<II", crc, (megabytes << 20) & 0xFFFFFFFF)
    return b"\x1f\x8b\x08\0\0\0\0\0\x02\xff" + block * megabytes + deflate.flush() + trailer


def test_gzip_bomb_is_refused_at_the_cap(server: Server, transport: str) -> None:
    bomb = _bomb(256)  # 256 MiB inflated, about 250 KiB on the wire
    server.routes["/feed"] = lambda h: send(h, 200, bomb, {"Content-Encoding": "gzip"})
    tracemalloc.start()
    try:
        result = one(transport, server.url("/feed"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.error_kind == "too-large"
    assert peak < FAST.max_bytes + (8 << 20)  # the cap plus a few MB, never the 256 MiB


def test_inflate_yields_bounded_pieces() -> None:
    inflate = _Inflate(gzip=True)
    sizes = [len(piece) for piece in inflate.feed(_bomb(8))]
    assert max(sizes) <= _STEP and sum(sizes) == 8 << 20


def test_corrupt_gzip_is_an_encoding_error(server: Server, transport: str) -> None:
    server.routes["/feed"] = lambda h: send(
        h, 200, b"\x1f\x8bnot gzip", {"Content-Encoding": "gzip"}
    )
    assert one(transport, server.url("/feed")).error_kind == "encoding"


def test_body_too_large_names_the_cap() -> None:
    assert "1024" in str(BodyTooLarge("body is over the 1024 byte cap"))


# --- HTML instead of a feed: autodiscovery -----------------------------------------------


def test_html_page_leads_to_its_feed(server: Server, transport: str) -> None:
    server.routes["/blog/"] = lambda h: send(h, 200, HOME, {"Content-Type": "text/html"})
    server.routes["/blog/feed/"] = feed_route
    page = one(transport, server.url("/blog/"))
    assert page.ok and page.content_type == "text/html"
    found = discover_feed_urls(page.content, page.final_url)
    assert found[0] == server.url("/blog/feed/")
    assert one(transport, found[0]).content == FEED


def test_discovery_resolves_relative_links_and_puts_comment_feeds_last() -> None:
    html = """<html><head><base href="https://blog.example/sub/">
    <link rel="alternate" type="application/rss+xml" title="Comments" href="comments/feed/">
    <link rel="alternate stylesheet" type="text/css" href="x.css">
    <link rel="ALTERNATE" type="application/atom+xml; charset=utf-8" href="/atom.xml">
    <link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">
    <link rel="alternate" type="application/atom+xml" href="/atom.xml"></head></html>"""
    assert discover_feed_urls(html, "https://blog.example/") == [
        "https://blog.example/atom.xml",
        "https://blog.example/sub/comments/feed/",
    ]


def test_discovery_on_a_page_without_feeds() -> None:
    assert discover_feed_urls(b"<html><body><p>hello</p></body></html>", "http://x/") == []


# --- 403 and bot protection --------------------------------------------------------------


def test_403_is_retried_with_browser_headers(server: Server, transport: str) -> None:
    def picky(h: BaseHTTPRequestHandler) -> None:
        if "Mozilla" in h.headers.get("User-Agent", ""):
            feed_route(h)
        else:
            send(h, 403, b"forbidden")

    server.routes["/feed"] = picky
    result = one(transport, server.url("/feed"))
    assert result.ok and result.content == FEED
    assert [h.headers["user-agent"].startswith("mash/") for h in server.hits] == [True, False]


def test_403_twice_names_bot_protection(server: Server, transport: str) -> None:
    server.routes["/feed"] = lambda h: send(h, 403, b"forbidden")
    result = one(transport, server.url("/feed"))
    assert (result.status, result.error_kind) == (403, "http-403-blocked")
    assert result.error is not None and "bot protection" in result.error
    assert len(server.hits) == 2


# --- concurrency -------------------------------------------------------------------------


def test_per_host_bound_holds_at_the_server(server: Server, transport: str) -> None:
    def slow_feed(h: BaseHTTPRequestHandler) -> None:
        time.sleep(0.05)
        feed_route(h)

    server.routes.update({f"/f{i}": slow_feed for i in range(12)})
    settings = FetchSettings(concurrency=10, per_host=3, deadline=10, allow_private=LOOPBACK)
    results = run(transport, [server.url(f"/f{i}") for i in range(12)], settings)
    assert all(r.ok for r in results)
    assert 1 <= server.max_inflight <= 3


def test_global_bound_holds(server: Server, transport: str) -> None:
    server.routes.update({f"/f{i}": feed_route for i in range(8)})
    settings = FetchSettings(concurrency=1, per_host=4, deadline=10, allow_private=LOOPBACK)
    assert all(r.ok for r in run(transport, [server.url(f"/f{i}") for i in range(8)], settings))
    assert server.max_inflight == 1


# --- article pages: robots.txt, Crawl-delay (private addresses: test_guard.py) -------------

PAGE = b"<html><body><article><p>Hello</p></article></body></html>"
ROBOTS = b"User-agent: *\nDisallow: /members/\n\nUser-agent: BadBot\nDisallow: /\n"
# RFC 9309: the group naming our agent replaces the "*" group for us.
ROBOTS_FOR_MASH = ROBOTS + b"\nUser-agent: mash\nDisallow: /private/\n"


def pages(urls: list[str], transport: str) -> list[FetchResult]:
    return asyncio.run(fetch_pages_with(urls, FAST, transport=transport))


def test_robots_disallow_is_honoured(server: Server, transport: str) -> None:
    server.routes["/robots.txt"] = lambda h: send(h, 200, ROBOTS, {"Content-Type": "text/plain"})
    for path in ("/a", "/members/b", "/private/c"):
        server.routes[path] = lambda h: send(h, 200, PAGE, {"Content-Type": "text/html"})
    results = pages([server.url(p) for p in ("/a", "/members/b", "/private/c")], transport)
    assert [r.error_kind for r in results] == [None, "robots", None]
    assert results[0].content == PAGE
    assert sorted(h.path for h in server.hits) == ["/a", "/private/c", "/robots.txt"]


def test_robots_group_for_mash_applies(server: Server, transport: str) -> None:
    robots = ROBOTS_FOR_MASH
    server.routes["/robots.txt"] = lambda h: send(h, 200, robots, {"Content-Type": "text/plain"})
    for path in ("/a", "/private/c"):
        server.routes[path] = lambda h: send(h, 200, PAGE, {"Content-Type": "text/html"})
    results = pages([server.url(p) for p in ("/a", "/private/c")], transport)
    assert [r.error_kind for r in results] == [None, "robots"]
    assert results[1].error is not None and "/private/c" in results[1].error
    assert [h.path for h in server.hits] == ["/robots.txt", "/a"]  # fetched once, obeyed


def test_missing_robots_allows_everything(server: Server, transport: str) -> None:
    server.routes["/members/b"] = lambda h: send(h, 200, PAGE, {"Content-Type": "text/html"})
    assert pages([server.url("/members/b")], transport)[0].ok


def test_robots_server_error_disallows_the_host(server: Server, transport: str) -> None:
    server.routes["/robots.txt"] = lambda h: send(h, 500, b"oops")
    server.routes["/a"] = lambda h: send(h, 200, PAGE)
    assert pages([server.url("/a")], transport)[0].error_kind == "robots"
    assert server.seen("/a") == []


def test_crawl_delay_spaces_requests(server: Server, transport: str) -> None:
    robots = b"User-agent: *\nCrawl-delay: 1\n"
    server.routes["/robots.txt"] = lambda h: send(h, 200, robots, {"Content-Type": "text/plain"})
    server.routes["/a"] = server.routes["/b"] = lambda h: send(h, 200, PAGE)
    assert all(r.ok for r in pages([server.url("/a"), server.url("/b")], transport))
    first, second = sorted(h.at for h in server.hits if h.path in ("/a", "/b"))
    assert second - first >= 0.9


# --- the links (`mash check`, see #17) ----------------------------------------------


def links(urls: list[str], transport: str, pace: float = 0.0) -> list[FetchResult]:
    return asyncio.run(check_links_with(urls, FAST, pace=pace, transport=transport))


def test_links_are_asked_with_head_and_judged_by_status(server: Server, transport: str) -> None:
    server.routes["/good"] = lambda h: send(h, 200, PAGE, {"Content-Type": "text/html"})
    server.routes["/old"] = redirect(301, "/new")
    server.routes["/new"] = lambda h: send(h, 200, PAGE, {"Content-Type": "text/html"})
    server.routes["/for-now"] = redirect(302, "/good")
    good, dead, moved, temporary = links(
        [server.url(p) for p in ("/good", "/dead", "/old", "/for-now")], transport
    )
    assert (good.status, good.error, good.content) == (200, None, b"")
    assert (moved.status, moved.moved_to) == (200, server.url("/new"))
    assert (temporary.status, temporary.moved_to, temporary.final_url) == (
        200,
        None,
        server.url("/good"),
    )
    assert (dead.status, dead.error_kind) == (404, "http-404")
    # HEAD everywhere; only the link HEAD found dead was asked again with GET
    asked = [(h.method, h.path) for h in server.hits if h.path != "/robots.txt"]
    assert sorted(asked) == sorted(
        [("HEAD", "/good"), ("HEAD", "/dead"), ("GET", "/dead"), ("HEAD", "/old")]
        + [("HEAD", "/new"), ("HEAD", "/for-now"), ("HEAD", "/good")]
    )


def test_a_link_that_refuses_head_is_asked_with_get(server: Server, transport: str) -> None:
    def no_head(h: BaseHTTPRequestHandler) -> None:
        if h.command == "HEAD":
            send(h, 405, b"", {"Allow": "GET"})
        else:
            send(h, 200, b"x" * 300_000, {"Content-Type": "text/html"})

    server.routes["/page"] = no_head
    (result,) = links([server.url("/page")], transport)
    # the GET answered 2xx; its body is not wanted past 64 KB: "too-large", an answer
    assert result.error_kind == "too-large"
    assert [h.method for h in server.seen("/page")] == ["HEAD", "GET"]


def test_links_mind_robots_txt_and_a_dead_host(server: Server, transport: str) -> None:
    server.routes["/robots.txt"] = lambda h: send(h, 200, ROBOTS, {"Content-Type": "text/plain"})
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    members, gone = links([server.url("/members/x"), f"http://127.0.0.1:{port}/a"], transport)
    assert members.error_kind == "robots" and server.seen("/members/x") == []
    assert gone.error_kind == "connection" and gone.status is None


def test_links_to_one_host_are_paced(server: Server, transport: str) -> None:
    server.routes["/a"] = server.routes["/b"] = lambda h: send(h, 200, PAGE)
    assert all(r.ok for r in links([server.url("/a"), server.url("/b")], transport, pace=0.5))
    first, second = sorted(h.at for h in server.hits if h.path in ("/a", "/b"))
    assert second - first >= 0.45


# --- small pure parts ----------------------------------------------------------------------


def test_retry_after_as_an_http_date() -> None:
    later = datetime.now(UTC) + timedelta(seconds=120)
    response = httpx.Response(503, headers={"Retry-After": format_datetime(later, usegmt=True)})
    wait = _retry_after(response)
    assert wait is not None and 100 < wait <= 120
    assert _retry_after(httpx.Response(503, headers={"Retry-After": "soon"})) is None


def test_raw_deflate_is_decoded(server: Server, transport: str) -> None:
    squeeze = zlib.compressobj(6, zlib.DEFLATED, -15)
    raw = squeeze.compress(FEED) + squeeze.flush()
    server.routes["/feed"] = lambda h: send(h, 200, raw, {"Content-Encoding": "deflate"})
    assert one(transport, server.url("/feed")).content == FEED


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[Server]:
    """An HTTPS server with a self-signed certificate that no client should trust."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: cannot make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    httpd = _HTTPServer(("127.0.0.1", 0), _Request)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    httpd.state = Server(base=f"https://127.0.0.1:{httpd.server_address[1]}", cert=cert)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd.state
    httpd.shutdown()
    httpd.server_close()


def test_untrusted_certificate_is_refused(tls_server: Server, transport: str) -> None:
    tls_server.routes["/feed"] = feed_route
    result = one(transport, tls_server.url("/feed"))
    assert result.error_kind == "connection"
    assert result.error is not None and "CERTIFICATE" in result.error.upper()
    assert tls_server.hits == []  # never trusted, never asked


def test_certificate_trusted_through_ssl_cert_file(
    tls_server: Server, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """https works, and takes its CAs where httpx does: SSL_CERT_FILE, else certifi."""
    assert tls_server.cert is not None
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_server.cert))
    tls_server.routes["/feed"] = feed_route
    result = one(transport, tls_server.url("/feed"))
    assert result.error is None and result.status == 200
    assert result.content == FEED
    assert [hit.path for hit in tls_server.hits] == ["/feed"]


def test_no_default_cas_restores_set_and_unset_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", "/some/bundle.pem")
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with no_default_cas():
        assert os.environ["SSL_CERT_FILE"] == os.environ["SSL_CERT_DIR"] == os.devnull
        assert ssl.create_default_context().cert_store_stats()["x509_ca"] == 0
    assert os.environ["SSL_CERT_FILE"] == "/some/bundle.pem"
    assert "SSL_CERT_DIR" not in os.environ


POOL_THEN_FETCH = """
import threading
from concurrent.futures import ProcessPoolExecutor
with ProcessPoolExecutor(1) as pool:
    assert pool.submit(int, "7").result() == 7  # its manager and feeder threads run
    assert threading.active_count() > 1
    import mash.fetch
    import aiohttp.connector
    from mash.fetch._aiohttp import only_pool_threads
    assert aiohttp.connector._SSL_CONTEXT_VERIFIED.cert_store_stats()["x509_ca"] == 0
    assert only_pool_threads()
    other = threading.Thread(target=threading.Event().wait, args=(5,), daemon=True)
    other.start()
    assert not only_pool_threads()
print("ok")
"""


def test_aiohttp_cas_skipped_beside_a_process_pool_but_not_another_thread() -> None:
    """A first run starts its parse workers before the fetch stage is imported: their
    threads never load CAs, so aiohttp's are skipped; any other thread stops that."""
    args = [sys.executable, "-c", POOL_THEN_FETCH]
    assert subprocess.run(args, capture_output=True, text=True, check=True).stdout == "ok\n"


FRESH_PROCESS_FETCH = """
import asyncio, ipaddress, json, os, sys
before = {name: os.environ.get(name) for name in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
from mash.fetch import fetch_feeds
import aiohttp.connector
from mash.records import FeedState, FetchSettings
after = {name: os.environ.get(name) for name in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
loopback = (ipaddress.ip_network("127.0.0.1"),)
settings = FetchSettings(
    deadline=5, connect_timeout=2, read_timeout=2, retries=0, allow_private=loopback
)
[result] = asyncio.run(fetch_feeds([FeedState(sys.argv[1])], settings))
print(json.dumps({
    "aiohttp_cas": aiohttp.connector._SSL_CONTEXT_VERIFIED.cert_store_stats()["x509_ca"],
    "env_kept": before == after,
    "status": result.status,
    "error": result.error,
}))
"""


def test_fresh_process_skips_aiohttp_cas_and_still_verifies_https(tls_server: Server) -> None:
    """As in `mash fetch`: aiohttp's import-time CA stores stay empty, the environment is
    as it was, and https is verified against SSL_CERT_FILE all the same."""
    assert tls_server.cert is not None
    tls_server.routes["/feed"] = feed_route
    env = {**os.environ, "SSL_CERT_FILE": str(tls_server.cert)}
    args = [sys.executable, "-c", FRESH_PROCESS_FETCH, tls_server.url("/feed")]
    trusted = json.loads(subprocess.run(args, env=env, capture_output=True, check=True).stdout)
    assert trusted == {"aiohttp_cas": 0, "env_kept": True, "status": 200, "error": None}
    # and without the server's certificate in SSL_CERT_FILE it is refused, not passed
    env["SSL_CERT_FILE"] = os.devnull
    refused = json.loads(subprocess.run(args, env=env, capture_output=True, check=True).stdout)
    assert refused["status"] is None and "CERTIFICATE" in refused["error"].upper()
    assert len(tls_server.hits) == 1


# --- the shared feed farm: every fault kind, as the benchmark sees them ---------------------

FARM_FETCH_KIND = {
    "http-500": "http-500",
    "http-404": "http-404",
    "http-410": "http-410",
    "redirect-loop": "redirect-loop",
    "slow": "timeout",
    "trickle": "timeout",
    "huge": "too-large",
    "gzip-bomb": "too-large",
    "conn-reset": "connection",
}


@pytest.fixture
def every_fault_farm() -> Iterator[str]:
    """32 blogs, half of them faulty, every fault kind; slow, huge and bomb faults kept small."""
    with feed_farm(
        feeds=32, faults=50, seed=3, now="2026-10-31", slow_seconds=3, huge_mb=4, bomb_mb=64
    ) as base:
        yield base


def test_every_farm_fault_gets_its_error_kind(every_fault_farm: str) -> None:
    with urllib.request.urlopen(every_fault_farm + "_farm/faults.json") as response:
        faults = json.load(response)
    faults = faults["faults"] if isinstance(faults, dict) else faults
    with urllib.request.urlopen(every_fault_farm + "_farm/feeds.txt") as response:
        urls = response.read().decode().split()
    settings = FetchSettings(
        read_timeout=1, deadline=2, retries=2, max_bytes=1 << 20, allow_private=LOOPBACK
    )
    results = {r.url: r for r in asyncio.run(fetch_feeds([FeedState(u) for u in urls], settings))}
    assert len({f["kind"] for f in faults}) == 16  # every kind is in this farm
    for fault in faults:
        result = results[fault["url"]]
        assert result.error_kind == FARM_FETCH_KIND.get(fault["kind"]), fault
        if fault["kind"] == "redirect-301":
            assert result.moved_to is not None and result.moved_to.endswith("/feed-moved.xml")
        if fault["kind"] == "html-not-feed":
            found = discover_feed_urls(result.content, result.final_url)
            assert found[0].endswith("/syndication.xml")
    healthy = [r for u, r in results.items() if u not in {f["url"] for f in faults}]
    assert healthy and all(r.ok and r.content for r in healthy)


# --- robots.txt rules (RFC 9309) ------------------------------------------------------------

WORDPRESS_ROBOTS = """\ufeff# a typical WordPress robots.txt
User-agent: *
Disallow: /wp-admin/
Allow: /wp-admin/admin-ajax.php
Disallow: /*?replytocom=
Disallow: /*.pdf$
Disallow: /caf%C3%A9/
Crawl-delay: 2.5

User-agent: Googlebot
user-agent: BadBot
Disallow: /

Sitemap: https://blog.example/sitemap.xml
"""


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/2026/11/a-post/", True),
        ("/wp-admin/options.php", False),
        ("/wp-admin/admin-ajax.php", True),  # the longer Allow beats the shorter Disallow
        ("/2026/11/a-post/?replytocom=42", False),  # "*" is a wildcard, not a character
        ("/files/guide.pdf", False),
        ("/files/guide.pdf?download=1", True),  # "$" anchors the end
        ("/café/menu", False),  # percent-encoded rules match decoded paths
        ("/robots.txt", True),
    ],
)
def test_robots_rules_for_everyone(path: str, allowed: bool) -> None:
    rules = parse_robots(WORDPRESS_ROBOTS, "mash")
    assert robots_allows(rules, "https://blog.example" + path) is allowed
    assert rules.crawl_delay == 2.5


def test_robots_group_naming_us_replaces_the_star_group() -> None:
    text = WORDPRESS_ROBOTS + "\nUser-agent: Mash/2.0\nDisallow: /drafts/\nAllow: /drafts/ok\n"
    rules = parse_robots(text, agent_token("mash/0.1 (+https://example.org)"))
    assert robots_allows(rules, "https://blog.example/wp-admin/x")  # the * group is not ours
    assert not robots_allows(rules, "https://blog.example/drafts/x")
    assert robots_allows(rules, "https://blog.example/drafts/ok")
    assert rules.crawl_delay is None
    assert not robots_allows(parse_robots(text, "badbot"), "https://blog.example/")
    assert robots_allows(parse_robots(text, "mashup"), "https://blog.example/drafts/x")


def test_robots_edge_cases() -> None:
    assert robots_allows(parse_robots("User-agent: *\nDisallow:\n", "mash"), "http://x/a")
    assert robots_allows(parse_robots("", "mash"), "http://x/a")
    tie = parse_robots("User-agent: *\nDisallow: /p\nAllow: /p\n", "mash")
    assert robots_allows(tie, "http://x/p")  # equal length: Allow wins
    orphan = parse_robots("Disallow: /\nUser-agent: *\nDisallow: /x\n", "mash")
    assert robots_allows(orphan, "http://x/a")  # rules before any User-agent belong to none
    assert parse_robots("User-agent: *\nCrawl-delay: soon\n", "mash").crawl_delay is None


# --- a whole run's fetch, from synchronous code ---------------------------------------------


def _farm_states(farm: str) -> list[FeedState]:
    """The farm's feeds with the validators a first fetch gave them."""
    with urllib.request.urlopen(farm + "_farm/feeds.txt") as response:
        urls = response.read().decode().split()
    first = asyncio.run(
        fetch_feeds([FeedState(u) for u in urls], FetchSettings(per_host=8, allow_private=LOOPBACK))
    )
    assert all(r.status == 200 for r in first)
    return [FeedState(r.url, r.etag, r.last_modified) for r in first]


def test_a_refresh_reports_each_feed_once_in_order(farm: str) -> None:
    """Two feeds.yaml entries can end at one fetch URL (a redirect): each gets its result,
    in the order asked, with the validators for the next refresh."""
    states = _farm_states(farm)[:20]
    twice = [state for state in states for _ in range(2)]
    seen: list[FetchResult] = []
    results = fetch_feeds_sync(
        twice, FetchSettings(per_host=8, allow_private=LOOPBACK), seen.append
    )
    assert [r.url for r in results] == [s.url for s in twice]
    assert all(r.status == 304 and r.etag for r in results)
    assert sorted(r.url for r in seen) == sorted(s.url for s in twice)  # once each


def test_what_is_alive_before_a_run_is_out_of_the_collectors_walks(farm: str) -> None:
    """gc.freeze: a full collection no longer walks the imports' objects (see #8)."""
    gc.unfreeze()
    try:
        fetch_feeds_sync(_farm_states(farm)[:2], FetchSettings())
        assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()
