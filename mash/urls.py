"""Canonical URLs: the one place that decides when two links name the same post."""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Query parameters that track a click and never change the page (see #5).
_TRACKING_PREFIXES = ("utm_", "mtm_", "pk_", "hsa_")
_TRACKING_KEYS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "msclkid",
        "mc_cid",
        "mc_eid",
        "_hsenc",
        "_hsmi",
        "igshid",
        "yclid",
        "ref_src",
        "share",
        "amp",
    }
)


# A URL every function here leaves as it is: lower-case http(s) scheme and host, a port
# only if not the scheme's default, no user, query, parameters, fragment, whitespace or
# dot segment. Most feed links are; matching it is ten times cheaper than urlsplit (#8).
_PLAIN_URL = re.compile(
    r"(https?)://([a-z0-9-]+(?:\.[a-z0-9-]+)*(?::([1-9][0-9]{0,4}))?)(/[^?#;\s]*)?"
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


@lru_cache(maxsize=256)  # parse asks about each link three or four times
def _plain(url: str) -> re.Match[str] | None:
    match = _PLAIN_URL.fullmatch(url)
    if not match or "/." in url:
        return None
    port = match.group(3)
    if port and (int(port) > 65535 or int(port) == _DEFAULT_PORTS[match.group(1)]):
        return None
    return match


def is_plain_url(url: str) -> bool:
    """Tell whether url is already absolute and canonical (urljoin would return it as is)."""
    return _plain(url) is not None


def is_plain_with_query(url: str) -> bool:
    """Tell whether url is a plain URL and a query: absolute, urljoin leaves it as it is."""
    base, _, query = url.partition("?")
    return bool(query) and is_plain_url(base) and not any(c in query for c in "# \t\r\n")


def plain_host_port(url: str) -> str | None:
    """Return "host:port" of url when it is plain but for a query, else None."""
    plain = _plain(url.partition("?")[0])
    if not plain:
        return None
    host, _, _ = plain.group(2).partition(":")
    return f"{host}:{plain.group(3) or _DEFAULT_PORTS[plain.group(1)]}"


def is_web_url(url: str) -> bool:
    """Tell whether url is an absolute http(s) URL with a host (and a valid port).

    A bracketed host must be an IPv6 address (``http://[::1]/``); one that is not, a
    bad port or an unclosed bracket make it no web URL, never an error (see #21).
    """
    if is_plain_url(url):
        return True
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError:
        return False
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return False
    return "[" not in parts.netloc or _is_ipv6(parts.hostname)


def _is_ipv6(host: str) -> bool:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True


def _is_tracking(key: str) -> bool:
    key = key.lower()
    return key in _TRACKING_KEYS or key.startswith(_TRACKING_PREFIXES)


# key=value of unreserved characters: parse_qsl and urlencode give it back as it is
_PLAIN_PARAMETER = re.compile(r"[A-Za-z0-9_.~-]+=[A-Za-z0-9_.~-]*")


def _plain_query(query: str) -> str | None:
    """Return query without its tracking parameters, when every parameter is plainly
    written (what parse_qsl and urlencode would give); else None."""
    parts = query.split("&")
    if not all(map(_PLAIN_PARAMETER.fullmatch, parts)):
        return None
    return "&".join(p for p in parts if not _is_tracking(p.partition("=")[0]))


def canonical_url(url: str) -> str:
    """Return url with tracking parameters, fragment and default port removed.

    The scheme and host are lower-cased; the path is kept as the site wrote it.
    """
    if is_plain_url(url):
        return url if url.count("/") > 2 else url + "/"
    base, mark, rest = url.partition("?")
    if mark and is_plain_url(base):  # ?utm_source=rss&..., ?id=19: the same, cheaper
        kept = _plain_query(rest)
        if kept is not None:
            base = base if base.count("/") > 2 else base + "/"
            return f"{base}?{kept}" if kept else base
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:  # an IPv6 address keeps its brackets (see #21)
        host = f"[{host}]"
    port = parts.port
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    query = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k)
    ]
    return urlunsplit((scheme, host, parts.path or "/", urlencode(query), ""))


def url_key(url: str) -> str:
    """Return the key under which two URLs of the same post compare equal.

    Ignores http/https, a leading ``www.``, a trailing slash and tracking parameters.
    """
    plain = _plain(url)
    if plain:
        return plain.group(2).removeprefix("www.") + ((plain.group(4) or "").rstrip("/") or "/")
    canonical = canonical_url(url)
    base, mark, query = canonical.partition("?")
    plain = _plain(base)
    if plain:
        key = plain.group(2).removeprefix("www.") + ((plain.group(4) or "").rstrip("/") or "/")
        return f"{key}?{query}" if query else key
    parts = urlsplit(canonical)
    host = parts.netloc.removeprefix("www.")
    path = parts.path.rstrip("/") or "/"
    return urlunsplit(("", host, path, parts.query, ""))[2:]


# The user information of every absolute URL in a text: "scheme://" then the part before
# the last "@" of the authority (as urlsplit reads it), with no "/", "?", "#" or space.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/?#\s@]*(?:@[^/?#\s@]*)*)@")


def _mask(match: re.Match[str]) -> str:
    user, colon, _password = match.group(2).partition(":")
    if not colon:  # a user and no password is often a token (https://TOKEN@host/): hide it
        return f"{match.group(1)}***@"
    return f"{match.group(1)}{user}:***@"


def redact_url(text: str) -> str:
    """Return text with the password of every URL in it shown as ``***`` (see #21).

    ``https://alice:pw@host/feed`` becomes ``https://alice:***@host/feed``; a user
    without a password (often a token) becomes ``***``. Works on one URL or on a
    message quoting several; text without credentials comes back as it is. The
    result is for showing and storing, never for fetching.
    """
    if "@" not in text:
        return text
    return _USERINFO.sub(_mask, text)


def strip_credentials(url: str) -> str:
    """Return url without its user and password: the base for a feed's relative links,
    which are published, so the login of a feed never reaches a reader (see #21)."""
    if "@" not in url:
        return url
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def restore_credentials(url: str, original: str) -> str:
    """Return url with the credentials of original when url carries them masked.

    The store keeps a moved feed's address as redact_url left it. The password of the
    feed's url in feeds.yaml goes back only to that same user, host and port.
    """
    if "***@" not in url or "@" not in original:
        return url
    here, real = urlsplit(url), urlsplit(original)
    if here.netloc != urlsplit(redact_url(original)).netloc:
        return url
    return urlunsplit(here._replace(netloc=real.netloc))
