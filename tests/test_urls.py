"""Canonical URLs: tracking parameters, scheme, host, slash (property tests with an oracle)."""

from __future__ import annotations

import random
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from hypothesis import given
from hypothesis import strategies as st

from mash.urls import (
    canonical_url,
    is_plain_url,
    is_plain_with_query,
    is_web_url,
    redact_url,
    restore_credentials,
    strip_credentials,
    url_key,
)


def test_tracking_parameters_removed_and_others_kept() -> None:
    url = "HTTPS://Blog.Example.org:443/a/b/?utm_source=rss&id=3&fbclid=x&utm_medium=feed#top"
    assert canonical_url(url) == "https://blog.example.org/a/b/?id=3"


def test_url_key_ignores_scheme_www_and_trailing_slash() -> None:
    assert url_key("http://www.example.org/post/") == url_key("https://example.org/post")
    assert url_key("https://example.org/post?utm_campaign=x") == url_key("https://example.org/post")
    assert url_key("https://example.org/a") != url_key("https://example.org/b")
    assert url_key("https://example.org/?p=1") != url_key("https://example.org/?p=2")


def test_only_http_urls_are_web_urls() -> None:
    assert is_web_url("https://example.org/x")
    for bad in ("javascript:alert(1)", "data:text/html,x", "ftp://x/y", "/relative", "http://"):
        assert not is_web_url(bad)


slugs = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)


@given(slugs, slugs, st.sampled_from(["utm_source", "utm_medium", "fbclid", "gclid"]), slugs)
def test_tracking_never_changes_the_key(host: str, path: str, param: str, value: str) -> None:
    plain = f"https://{host}.example/{path}"
    assert url_key(f"{plain}?{param}={value}") == url_key(plain)
    assert canonical_url(canonical_url(plain)) == canonical_url(plain)


# --- the fast path for plain URLs (see #8) -------------------------------------------------


def _reference_canonical(url: str) -> str:
    parts = urlsplit(url.strip())
    scheme, host, port = parts.scheme.lower(), (parts.hostname or "").lower(), parts.port
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    # the random URLs below cannot spell a tracking parameter: every pair is kept
    query = parse_qsl(parts.query, keep_blank_values=True)
    return urlunsplit((scheme, host, parts.path or "/", urlencode(query), ""))


def _reference_key(url: str) -> str:
    parts = urlsplit(_reference_canonical(url))
    host, path = parts.netloc.removeprefix("www."), parts.path.rstrip("/") or "/"
    return urlunsplit(("", host, path, parts.query, ""))[2:]


def _random_urls(count: int) -> list[str]:
    rng = random.Random(8)
    schemes = ["http://", "https://", "HTTP://", "http:/", "", "javascript:"]
    hosts = ["a.b", "www.x.org", "Ex.com", "a..b", "-a.b", "u@h.c", ""]
    hosts += ["a.b:80", "a.b:443", "a.b:8080", "www.a.b:99999", "a.b:080", "a.b:"]
    chars = "abcAB.-/_~%:?#@ \t;=&0123456789x/"
    return [
        rng.choice(schemes) + rng.choice(hosts) + "".join(rng.choices(chars, k=rng.randint(0, 14)))
        for _ in range(count)
    ]


def test_fast_path_gives_what_urllib_gives() -> None:
    urls = _random_urls(20_000) + ["https://blog.example/2026/10/post/", "http://a.example"]
    for url in urls:
        parts = urlsplit(url.strip())
        try:
            expected = (_reference_canonical(url), _reference_key(url))
        except ValueError:  # a bad port: the fast path never takes those
            continue
        assert (canonical_url(url), url_key(url)) == expected, url
        web = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
        assert is_web_url(url) == web, url
        if is_plain_url(url):
            for base in ("https://base.example/a/", "http://base.example/a/"):
                assert urljoin(base, url) == url, url


def test_fast_path_for_queries_gives_what_urllib_gives() -> None:
    # WordPress links end in ?utm_source=rss&utm_medium=rss&...: the fast path keeps
    # only what parse_qsl and the tracking filter would (see #8)
    rng = random.Random(9)
    keys = ["utm_source", "UTM_medium", "utm_campaign", "fbclid", "mtm_kwd", "p", "id", "", "a.b"]
    values = ["rss", "19", "a b", "x%20y", "1+2", "", "é", "a=b", "#frag", "q;r", "x~y"]
    bases = ["https://blog.example/2026/10/post/", "http://a.example", "https://x.org:8080/p"]
    for _ in range(5000):
        query = "&".join(
            f"{rng.choice(keys)}={rng.choice(values)}" for _ in range(rng.randint(0, 4))
        )
        url = f"{rng.choice(bases)}?{query}"
        parts = urlsplit(url)
        kept = [
            (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _tracking(k)
        ]
        expected = urlunsplit((parts.scheme, parts.netloc, parts.path or "/", urlencode(kept), ""))
        assert canonical_url(url) == expected, url
        assert url_key(url) == _reference_key(expected), url
        if is_plain_with_query(url):
            assert urljoin("https://feed.example/a/", url) == url, url


def _tracking(key: str) -> bool:
    key = key.lower()
    return key.startswith(("utm_", "mtm_", "pk_", "hsa_")) or key in ("fbclid", "gclid")


def test_host_key_fast_path_gives_what_urlsplit_gives() -> None:
    # #8: the fetch asks each request's host:port without urlsplit for plain URLs
    from mash.fetch._http import host_key, url_problem

    rng = random.Random(10)
    hosts = ["a.b", "x.example:8080", "h:1", "b.c:443", "B.c", "a.b:80", "a.b:99999"]
    for _ in range(5000):
        url = rng.choice(["http://", "https://", "HTTP://", "ftp://"]) + rng.choice(hosts)
        url += "".join(rng.choices("/ab?=&#.: ", k=rng.randint(0, 10)))
        try:
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            expected = f"{(parts.hostname or '').lower()}:{port}"
        except ValueError:
            expected = ""
        assert host_key(url) == expected, url
        if url_problem(url) is None:
            assert urlsplit(url).scheme in ("http", "https") and urlsplit(url).hostname, url


# --- credentials in URLs (see #21) ---------------------------------------------------------


def test_redact_url_masks_the_password_and_keeps_the_rest() -> None:
    assert redact_url("https://alice:pw@host/feed") == "https://alice:***@host/feed"
    assert redact_url("HTTP://alice:p@ss@host:81/f?a=b@c") == "HTTP://alice:***@host:81/f?a=b@c"
    assert redact_url("https://TOKEN123@host/feed") == "https://***@host/feed"  # a bare token
    for plain in ("https://host/a@b", "mailto:x@example.org", "x@example.org", "no url"):
        assert redact_url(plain) == plain
    message = "redirect loop: https://a:pw@h/x -> https://a:pw@h/y -> https://h/x"
    assert (
        redact_url(message)
        == "redirect loop: https://a:***@h/x -> https://a:***@h/y -> https://h/x"
    )


secrets = st.text(
    st.characters(blacklist_characters="/?#@ \t\r\n\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0"), min_size=4
)


@given(slugs, secrets, slugs, st.sampled_from(["", " and more", "; it links to x"]))
def test_redacted_text_never_holds_the_password(
    user: str, password: str, path: str, tail: str
) -> None:
    url = f"https://{user}:{password}@blog.example/{path}"
    shown = redact_url(f"failed: {url}{tail}")
    assert f":{password}@" not in shown and shown == redact_url(shown)
    assert urlsplit(redact_url(url)).password == "***"
    assert urlsplit(redact_url(url)).hostname == "blog.example"


def test_strip_and_restore_credentials() -> None:
    feed = "https://alice:pw@host/feed"
    assert strip_credentials(feed) == "https://host/feed"
    assert strip_credentials("https://host/a@b") == "https://host/a@b"
    # a moved feed's stored (masked) address gets the password back, for that login only
    assert (
        restore_credentials("https://alice:***@host/new?x=1", feed)
        == "https://alice:pw@host/new?x=1"
    )
    assert restore_credentials("https://alice:***@other/new", feed) == "https://alice:***@other/new"
    assert restore_credentials("https://bob:***@host/new", feed) == "https://bob:***@host/new"
    assert restore_credentials("https://host/new", feed) == "https://host/new"


def test_bracketed_ipv6_hosts_keep_their_brackets_and_bad_ones_are_no_urls() -> None:
    """One odd link must not fail a whole feed (see #21): valid ones canonicalise,
    invalid ones are simply not web URLs."""
    assert canonical_url("http://[::1]/x") == "http://[::1]/x"
    assert (
        canonical_url("HTTP://[2001:DB8::1]:8080/p?utm_source=a") == "http://[2001:db8::1]:8080/p"
    )
    assert canonical_url("https://[2001:db8::1]:443/p") == "https://[2001:db8::1]/p"
    assert url_key("http://[::1]/x/") == "[::1]/x"
    assert url_key("https://[2001:db8::1]:8080/p") == "[2001:db8::1]:8080/p"
    for good in ("http://[::1]/x", "http://[2001:db8::1]:8080/p", "http://[::ffff:10.0.0.1]/"):
        assert is_web_url(good)
        assert urlsplit(canonical_url(good)).hostname == urlsplit(good).hostname
    for bad in ("http://[::1/x", "http://[::1]:99999/p", "http://[v1.x]/p", "http://[nope]/"):
        assert not is_web_url(bad)


@given(st.ip_addresses(v=6), st.sampled_from(["", ":8080", ":80"]))
def test_an_ipv6_url_round_trips_through_canonical_url(address: object, port: str) -> None:
    url = f"http://[{address}]{port}/p"
    canonical = canonical_url(url)
    assert is_web_url(canonical)
    assert urlsplit(canonical).hostname == str(address)
    assert canonical_url(canonical) == canonical
    assert url_key(canonical) == url_key(url)
