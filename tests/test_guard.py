"""The destination guard (#21): which addresses mash may connect to, on every connection.

Real servers on 127.0.0.1 (allowed) and 127.0.0.2 (not), each logging every request;
a fake resolver only where a name must answer an address no real name here has.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import ipaddress
import json
import socket
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import aiohttp.abc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mash.cli import main as mash
from mash.fetch import fetch_feeds_with, fetch_pages_with
from mash.fetch._guard import Guard, Refused, address_kind, embedded_ipv4
from mash.fetch._http import Http, Limits, fetch_url
from mash.records import FeedState, FetchResult, FetchSettings

ALLOWED = "127.0.0.1"  # what every config here allows
REFUSED = "127.0.0.2"  # loopback too, but not allowed: nothing may reach it
ONLY_ALLOWED = (ipaddress.ip_network(ALLOWED),)
SETTINGS = FetchSettings(
    connect_timeout=2, read_timeout=2, deadline=5, retries=0, allow_private=ONLY_ALLOWED
)


# --- address classification ------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.0.0.2", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("2002:a00:1::1", "private"),  # 6to4 of 10.0.0.1
        ("10.1.2.3", "private"),
        ("172.16.0.9", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "shared"),
        ("100.127.255.254", "shared"),
        ("169.254.169.254", "link-local"),  # the cloud metadata service
        ("fe80::1", "link-local"),
        ("fc00::1", "unique-local"),
        ("fd12:3456::1", "unique-local"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("0.1.2.3", "reserved"),
        ("192.0.2.1", "reserved"),  # documentation
        ("2001:db8::1", "reserved"),  # documentation
        ("::7f00:1", "reserved"),  # IPv4-compatible, deprecated
        ("93.184.215.14", None),
        ("100.128.0.1", None),  # just past the shared range
        ("172.32.0.1", None),  # just past 172.16/12
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", None),
        ("64:ff9b::5db8:d70e", None),  # NAT64 of the public 93.184.215.14
    ],
)
def test_address_kind(address: str, kind: str | None) -> None:
    assert address_kind(ipaddress.ip_address(address)) == kind


ipv4 = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)


@settings(deadline=None)  # a busy shared machine: timing is not the point
@given(ipv4)
def test_mapped_and_nat64_forms_are_judged_as_their_ipv4(address: ipaddress.IPv4Address) -> None:
    mapped = ipaddress.IPv6Address(f"::ffff:{address}")
    nat64 = ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(address))
    assert embedded_ipv4(mapped) == embedded_ipv4(nat64) == address
    assert address_kind(mapped) == address_kind(nat64) == address_kind(address)


@settings(deadline=None)  # a busy shared machine: timing is not the point
@given(ipv4)
def test_an_ipv4_address_is_public_exactly_when_the_standard_library_says_global(
    address: ipaddress.IPv4Address,
) -> None:
    # the oracle: Python's IANA special-purpose tables (multicast is "global" there)
    public = address.is_global and not address.is_multicast
    assert (address_kind(address) is None) is public


@pytest.mark.parametrize(
    ("network", "kind"),
    [
        ("127.0.0.0/8", "loopback"),
        ("10.0.0.0/8", "private"),
        ("172.16.0.0/12", "private"),
        ("192.168.0.0/16", "private"),
        ("100.64.0.0/10", "shared"),
        ("169.254.0.0/16", "link-local"),
        ("fe80::/10", "link-local"),
        ("fc00::/7", "unique-local"),
        ("224.0.0.0/4", "multicast"),
    ],
)
@settings(deadline=None)  # a busy shared machine: timing is not the point
@given(data=st.data())
def test_every_address_of_a_range_has_its_kind(
    network: str, kind: str, data: st.DataObject
) -> None:
    net = ipaddress.ip_network(network)
    address = data.draw(st.ip_addresses(network=net))
    assert address_kind(address) == kind


@settings(deadline=None)  # a busy shared machine: timing is not the point
@given(st.ip_addresses(v=4, network="127.0.0.0/8"))
def test_allowing_one_address_allows_no_other(address: ipaddress.IPv4Address) -> None:
    guard = Guard(ONLY_ALLOWED)
    allowed = str(address) == ALLOWED
    assert (guard.kind(address) is None) is allowed
    assert (guard.kind(ipaddress.IPv6Address(f"::ffff:{address}")) is None) is allowed


def test_a_network_allows_its_addresses_and_public_ones_always_pass() -> None:
    guard = Guard((ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")))
    assert guard.kind(ipaddress.ip_address("10.9.8.7")) is None
    assert guard.kind(ipaddress.ip_address("fd00::5")) is None
    assert guard.kind(ipaddress.ip_address("93.184.215.14")) is None
    assert guard.kind(ipaddress.ip_address("11.0.0.1")) is None
    assert guard.kind(ipaddress.ip_address("192.168.0.1")) == "private"
    assert guard.kind(ipaddress.ip_address("fc00::1")) == "unique-local"


def test_ip_literals_are_checked_and_odd_numeric_hosts_refused() -> None:
    guard = Guard(ONLY_ALLOWED)
    guard.check_host("127.0.0.1")
    guard.check_host("blog.example")  # a name: judged when resolved
    guard.check_host("0x7f.1")  # not numeric for aiohttp either: it is resolved, then judged
    for host in ("127.0.0.2", "::1", "169.254.169.254", "127.1", "2130706433", "127.0.0.2."):
        with pytest.raises(Refused):
            guard.check_host(host)
    with pytest.raises(Refused) as odd:
        guard.check_host("127.1")  # aiohttp < 3.14 would connect to 127.0.0.1 unresolved
    assert odd.value.reason("http://127.1/") == (
        "refused: http://127.1/ names the host 127.1: write it as a plain IP address"
    )
    with pytest.raises(Refused) as refused:
        guard.filter("intranet.example", ["127.0.0.2", "::1"])
    assert refused.value.address == "127.0.0.2" and refused.value.kind == "loopback"
    assert guard.filter("mixed.example", ["127.0.0.2", "127.0.0.1"]) == ["127.0.0.1"]


def test_the_refusal_names_the_url_the_redirect_and_the_address() -> None:
    refused = Refused("10.0.0.5", "10.0.0.5", "private")
    assert refused.reason("http://x/feed") == (
        "refused: http://x/feed resolves to 10.0.0.5, a private address; "
        "add it to fetch.allow_private to allow it"
    )
    assert refused.reason("http://x/feed", "http://10.0.0.5/f").startswith(
        "refused: http://x/feed redirects to http://10.0.0.5/f, which resolves to 10.0.0.5"
    )


# --- real servers on 127.0.0.1 and 127.0.0.2 ----------------------------------------------


@dataclass
class Site:
    """An HTTP server whose answers the test sets; ``hits`` lists every request's path."""

    base: str
    answers: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base + path

    def serve(self, path: str, body: bytes, kind: str = "text/html") -> None:
        self.answers[path] = (200, {"Content-Type": kind}, body)

    def redirect(self, path: str, to: str, status: int = 301) -> None:
        self.answers[path] = (status, {"Location": to}, b"")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    site: Site

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.site.hits.append(self.path)
        status, headers, body = self.site.answers.get(self.path, (404, {}, b"not here"))
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def site_on(address: str) -> Iterator[Site]:
    class Handler(_Handler):
        pass

    httpd = ThreadingHTTPServer((address, 0), Handler)
    Handler.site = site = Site(base=f"http://{address}:{httpd.server_address[1]}")
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield site
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def allowed() -> Iterator[Site]:
    with site_on(ALLOWED) as site:
        yield site


@pytest.fixture
def other_port() -> Iterator[Site]:
    """A second server on the allowed address: the address is allowed on every port."""
    with site_on(ALLOWED) as site:
        yield site


@pytest.fixture
def refused() -> Iterator[Site]:
    with site_on(REFUSED) as site:
        yield site


@pytest.fixture(params=["aiohttp", "httpx"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class FakeResolver(aiohttp.abc.AbstractResolver):
    """Answers names from a table, as a DNS server might (no test reaches a real one)."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[aiohttp.abc.ResolveResult]:
        if host not in self.table:
            raise OSError(f"{host}: no such name")
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in self.table[host]
        ]

    async def close(self) -> None:
        pass


def fetch(
    url: str,
    transport: str,
    settings: FetchSettings = SETTINGS,
    resolver: aiohttp.abc.AbstractResolver | None = None,
) -> FetchResult:
    async def go() -> FetchResult:
        async with Http(settings, transport, resolver) as client:
            return await fetch_url(client, url, settings, Limits(settings), {})

    return asyncio.run(go())


FEED = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>%s</title>
<link>http://blog.example/</link><item><title>%s</title><link>http://blog.example/1</link>
<description>text</description></item></channel></rss>"""


def test_a_permanent_redirect_to_a_refused_address_fails_and_is_not_moved(
    allowed: Site, refused: Site, transport: str
) -> None:
    refused.serve("/internal-feed.xml", FEED % (b"Internal", b"SECRET"), "application/rss+xml")
    allowed.redirect("/feed.xml", refused.url("/internal-feed.xml"))
    feed = FeedState(allowed.url("/feed.xml"))
    (result,) = asyncio.run(fetch_feeds_with([feed], SETTINGS, transport=transport))
    assert result.error_kind == "private-address" and result.moved_to is None
    assert result.error == (
        f"refused: {allowed.url('/feed.xml')} redirects to {refused.url('/internal-feed.xml')}, "
        f"which resolves to {REFUSED}, a loopback address; add it to fetch.allow_private to "
        "allow it"
    )
    assert refused.hits == [] and allowed.hits == ["/feed.xml"]


def test_the_allowed_address_is_allowed_on_any_port_and_a_redirect_there_moves(
    allowed: Site, other_port: Site, transport: str
) -> None:
    other_port.serve("/new.xml", FEED % (b"New", b"Post"), "application/rss+xml")
    allowed.redirect("/feed.xml", other_port.url("/new.xml"))
    (result,) = asyncio.run(
        fetch_feeds_with([FeedState(allowed.url("/feed.xml"))], SETTINGS, transport=transport)
    )
    assert result.ok and result.moved_to == other_port.url("/new.xml")


def test_a_feed_on_a_refused_address_is_never_requested(refused: Site, transport: str) -> None:
    refused.serve("/feed.xml", FEED % (b"Internal", b"SECRET"))
    result = fetch(refused.url("/feed.xml"), transport)
    assert result.error_kind == "private-address"
    assert result.error is not None and refused.url("/feed.xml") in result.error
    assert f"resolves to {REFUSED}, a loopback address" in result.error
    assert refused.hits == []
    assert fetch(refused.url("/feed.xml"), transport, FetchSettings(deadline=5)).error_kind == (
        "private-address"  # nothing allowed at all: loopback is refused too
    )


def test_a_name_that_resolves_to_a_refused_address_is_never_requested(
    allowed: Site, transport: str
) -> None:
    """``localhost`` answers 127.0.0.1 (and maybe ::1): with neither allowed, no request."""
    allowed.serve("/feed.xml", FEED % (b"Local", b"SECRET"))
    url = allowed.url("/feed.xml").replace(ALLOWED, "localhost")
    nothing = FetchSettings(deadline=5, allow_private=(ipaddress.ip_network("10.0.0.0/8"),))
    result = fetch(url, transport, nothing)
    assert result.error_kind == "private-address"
    assert result.error is not None and result.error.startswith(f"refused: {url} resolves to ")
    assert "a loopback address" in result.error
    assert allowed.hits == []


def test_a_resolved_name_connects_only_to_an_allowed_answer(
    allowed: Site, refused: Site, transport: str
) -> None:
    """A name answering both addresses (a rebinding name's second answer, say): the
    connection goes to the allowed one only, and the refused server sees nothing."""
    port = allowed.base.rsplit(":", 1)[1]
    refused_port = refused.base.rsplit(":", 1)[1]
    for site in (allowed, refused):
        site.serve("/feed.xml", FEED % (b"T", site.base.encode()))
    names = FakeResolver({"blog.test": [REFUSED, ALLOWED], "intranet.test": [REFUSED]})
    both = fetch(f"http://blog.test:{port}/feed.xml", transport, resolver=names)
    assert both.ok and allowed.base.encode() in both.content
    only = fetch(f"http://intranet.test:{refused_port}/feed.xml", transport, resolver=names)
    assert only.error_kind == "private-address"
    assert only.error is not None and f"resolves to {REFUSED}" in only.error
    assert refused.hits == []


def test_a_name_that_does_not_resolve_is_a_connection_failure(transport: str) -> None:
    result = fetch("http://nowhere.test/feed", transport, resolver=FakeResolver({}))
    assert result.error_kind == "connection"
    assert result.error is not None and "nowhere.test" in result.error


def test_pages_on_a_refused_address_are_never_requested_not_even_robots(
    allowed: Site, other_port: Site, refused: Site, transport: str
) -> None:
    page = b"<html><body><article><p>SECRET-INTERNAL-PAGE</p></article></body></html>"
    refused.serve("/secret", page)
    refused.serve("/robots.txt", b"User-agent: *\nAllow: /\n", "text/plain")
    other_port.serve("/public", b"<html><body><p>hello</p></body></html>")
    allowed.redirect("/hop", refused.url("/secret"), 302)
    urls = [refused.url("/secret"), other_port.url("/public"), allowed.url("/hop")]
    secret, public, hop = asyncio.run(fetch_pages_with(urls, SETTINGS, transport=transport))
    assert secret.error_kind == "private-address"
    assert secret.error is not None and secret.error.startswith(
        f"refused: {refused.url('/secret')} resolves to {REFUSED}"
    )
    assert public.ok and b"hello" in public.content
    assert hop.error_kind == "private-address" and refused.url("/secret") in (hop.error or "")
    assert refused.hits == []


def test_a_page_on_a_name_is_refused_with_its_url(transport: str, refused: Site) -> None:
    port = refused.base.rsplit(":", 1)[1]
    names = FakeResolver({"wiki.intranet.test": [REFUSED]})
    url = f"http://wiki.intranet.test:{port}/page"
    (result,) = asyncio.run(fetch_pages_with([url], SETTINGS, transport=transport, resolver=names))
    assert result.error_kind == "private-address"
    assert result.error is not None and result.error.startswith(
        f"refused: {url} resolves to {REFUSED}"
    )
    assert refused.hits == []


def test_feed_autodiscovery_is_guarded(allowed: Site, refused: Site, tmp_path: Path) -> None:
    """`mash feeds add`: a page on an allowed address linking a feed on a refused one."""
    refused.serve("/feed.xml", FEED % (b"Internal", b"SECRET"), "application/rss+xml")
    link = f'<link rel="alternate" type="application/rss+xml" href="{refused.url("/feed.xml")}">'
    allowed.serve("/", f"<html><head>{link}</head><body>hi</body></html>".encode())
    config = tmp_path / "feeds.yaml"
    before = f"fetch:\n  allow_private: [{ALLOWED}]\nfeeds:\n  - url: https://blog.example/feed\n"
    config.write_text(before)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert mash(["--config", str(config), "feeds", "add", allowed.url("/")]) == 1
    assert f"refused: {refused.url('/feed.xml')} resolves to {REFUSED}" in err.getvalue()
    assert refused.hits == [] and config.read_text() == before


# --- the whole pipeline: `mash fetch`, `mash feeds check`, `mash build` --------------------


def _month() -> tuple[str, str]:
    """The last complete month ("YYYY-MM") and an RFC 822 date in its middle."""
    first = datetime.now(UTC).replace(day=1)
    middle = (first - timedelta(days=1)).replace(day=15, hour=12)
    return middle.strftime("%Y-%m"), middle.strftime("%a, %d %b %Y %H:%M:%S +0000")


def _rss(title: str, items: list[tuple[str, str, str]], date: str) -> bytes:
    body = "".join(
        f"<item><title>{t}</title><link>{link}</link><guid>{link}</guid>"
        f"<pubDate>{date}</pubDate><description>{text}</description></item>"
        for t, link, text in items
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title>'
        f"<link>http://blog.example/</link>{body}</channel></rss>"
    ).encode()


def _run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = mash(list(args))
    return status, out.getvalue(), err.getvalue()


def test_nothing_of_a_refused_address_is_requested_stored_or_published(
    allowed: Site, other_port: Site, refused: Site, tmp_path: Path
) -> None:
    month, date = _month()
    secret_feed = _rss("Internal", [("SECRET-INTERNAL-FEED", refused.url("/p"), "x")], date)
    refused.serve("/internal-feed.xml", secret_feed, "application/rss+xml")
    refused.serve("/secret", b"<html><body><article>SECRET-INTERNAL-PAGE</article></body></html>")
    refused.serve("/robots.txt", b"User-agent: *\nAllow: /\n", "text/plain")
    allowed.redirect("/moved.xml", refused.url("/internal-feed.xml"))
    public = "<p>" + "A public page about customer service and support. " * 30 + "</p>"
    other_port.serve("/public", f"<html><body><article>{public}</article></body></html>".encode())
    items = [
        ("Customer service, linking an internal page", refused.url("/secret"), "Short."),
        ("Customer support on another port", other_port.url("/public"), "Short too."),
    ]
    allowed.serve("/feed.xml", _rss("Blog", items, date), "application/rss+xml")
    config = tmp_path / "feeds.yaml"
    moved, feed = allowed.url("/moved.xml"), allowed.url("/feed.xml")
    config.write_text(
        f"fetch:\n  allow_private: [{ALLOWED}]\n  deadline: 5\n  retries: 0\n"
        f"paths:\n  output: out\nfeeds:\n  - url: {moved}\n  - url: {feed}\n"
    )

    status, _, err = _run("--config", str(config), "fetch", "--quiet")
    assert status == 0
    hop = refused.url("/internal-feed.xml")
    assert f"failed: {moved}: private-address: refused: {moved} redirects to {hop}" in err
    assert f"which resolves to {REFUSED}, a loopback address" in err
    assert "moved permanently" not in err
    assert f"page refused: {refused.url('/secret')} resolves to {REFUSED}" in err
    assert refused.hits == []
    assert "/public" in other_port.hits  # the allowed address, on another port

    db_path = tmp_path / "data" / "mash.db"
    db = sqlite3.connect(db_path)
    fetch_url, moved_to = db.execute(
        "SELECT fetch_url, moved_to FROM feeds WHERE url = ?", (moved,)
    ).fetchone()
    assert fetch_url in (None, moved) and moved_to is None
    db.close()
    stored = db_path.read_bytes()
    assert b"SECRET" not in stored and b"A public page about customer service" in stored

    status, table, _ = _run("--config", str(config), "feeds", "check")
    assert status == 1 and f"refused: {moved} redirects to {hop}" in table  # a failing feed
    status, text, _ = _run("--config", str(config), "feeds", "check", "--json")
    (row,) = [r for r in json.loads(text) if r["url"] == moved]
    assert row["error"] == "private-address" and f"resolves to {REFUSED}" in row["last_error"]

    status, _, err = _run("--config", str(config), "build", "--month", month)
    assert status == 0, err
    built = tmp_path / "out" / month
    for name in ("email.html", "issue.json"):
        text = (built / name).read_text(encoding="utf-8")
        assert "SECRET" not in text
        assert "Customer support on another port" in text  # the issue did get built
    assert refused.hits == []


def test_a_name_resolving_to_a_refused_address_in_the_pipeline(
    refused: Site, allowed: Site, tmp_path: Path
) -> None:
    """The mirror case with a name: the feed on 127.0.0.2 (allowed here) links pages on
    ``localhost``, which resolves to 127.0.0.1 (not allowed here); a feed on ``localhost``
    too. No request reaches 127.0.0.1."""
    _, date = _month()
    port = allowed.base.rsplit(":", 1)[1]
    page = f"http://localhost:{port}/secret"
    allowed.serve("/secret", b"<html><body><article>SECRET-LOCAL-PAGE</article></body></html>")
    allowed.serve("/feed.xml", _rss("Local", [("SECRET-LOCAL-FEED", page, "x")], date))
    refused.serve("/feed.xml", _rss("Blog", [("A post", page, "Short.")], date))
    config = tmp_path / "feeds.yaml"
    local_feed = f"http://localhost:{port}/feed.xml"
    config.write_text(
        f"fetch:\n  allow_private: [{REFUSED}]\n  deadline: 5\n  retries: 0\n"
        f"feeds:\n  - url: {refused.url('/feed.xml')}\n  - url: {local_feed}\n"
    )
    status, _, err = _run("--config", str(config), "fetch", "--quiet")
    assert status == 0
    assert f"failed: {local_feed}: private-address: refused: {local_feed} resolves to " in err
    assert f"page refused: {page} resolves to " in err
    assert allowed.hits == []
    stored = (tmp_path / "data" / "mash.db").read_bytes()
    assert b"SECRET" not in stored and b"A post" in stored


def test_items_with_ipv6_literal_links_are_handled_one_by_one(
    allowed: Site, tmp_path: Path
) -> None:
    """Before #21, one such item failed its whole feed as "unexpected". Now each is stored
    or skipped alone, and its page is refused by the guard like any other (::1 is
    loopback, 2001:db8::/32 documentation)."""
    _, date = _month()
    links = ["http://[::1]:9/x", "http://[2001:db8::1]:8080/p", "http://[::1/broken"]
    items = [(f"Post {i}", link, "Short.") for i, link in enumerate(links)]
    items.append(("A plain post", allowed.url("/plain"), "Short."))
    allowed.serve("/feed.xml", _rss("Blog", items, date), "application/rss+xml")
    allowed.serve("/plain", b"<html><body><article><p>plain</p></article></body></html>")
    config = tmp_path / "feeds.yaml"
    config.write_text(
        f"fetch:\n  allow_private: [{ALLOWED}]\n  deadline: 5\n  retries: 0\n"
        f"feeds:\n  - url: {allowed.url('/feed.xml')}\n"
    )
    status, _, err = _run("--config", str(config), "fetch", "--quiet")
    assert status == 0 and "failed:" not in err
    assert "page refused: http://[::1]:9/x resolves to ::1, a loopback address" in err
    assert "page refused: http://[2001:db8::1]:8080/p resolves to 2001:db8::1, a reserved" in err
    db = sqlite3.connect(tmp_path / "data" / "mash.db")
    urls = {row[0] for row in db.execute("SELECT url FROM posts")}
    assert urls == {"http://[::1]:9/x", "http://[2001:db8::1]:8080/p", allowed.url("/plain")}
    assert db.execute("SELECT count(*) FROM posts WHERE source = 'pending'").fetchone()[0] == 0


def test_the_demo_allows_exactly_the_address_it_serves_from(tmp_path: Path) -> None:
    from mash.config import load_config
    from mash.demo import write_demo_config

    config = load_config(write_demo_config(tmp_path, "http://127.0.0.1:8123"))
    assert config.fetch.allow_private == ONLY_ALLOWED
