"""Canonical URLs: tracking parameters, scheme, host, slash (property tests with an oracle)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mash.urls import canonical_url, is_web_url, url_key


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
