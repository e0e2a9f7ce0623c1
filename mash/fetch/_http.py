"""One URL fetched with redirects, retries, a total deadline and a size cap.

Everything here returns a FetchResult; nothing raises for a failure of the URL.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import aiohttp
import httpx

from mash.fetch._body import ACCEPT_ENCODING, BadEncoding, BodyTooLarge, drain, read_body
from mash.fetch._guard import Guard, Refused, refusal_in
from mash.fetch._transport import AiohttpTransport
from mash.records import FetchResult, FetchSettings
from mash.urls import plain_host_port

MAX_REDIRECTS = 10
RETRY_AFTER_CAP = 30.0  # seconds; a longer Retry-After fails the fetch instead (see #3)
BACKOFF_BASE = 0.25  # seconds, doubled each retry, with jitter
BACKOFF_CAP = 8.0
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
DEFAULT_TRANSPORT = "aiohttp"  # measured in bench/FETCH.md against httpx's own pool (#8)

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8"
)
PAGE_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
# Sent once after a 403, because bot protection often blocks non-browser clients (#3).
BROWSER_HEADERS = {
    "User-Agent": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/126.0 Safari/537.36"
    ),
    "Accept": PAGE_ACCEPT,
    "Accept-Language": "en-US,en;q=0.9",
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Site": "none",
    "Upgrade-Insecure-Requests": "1",
}


class Http:
    """One pooled transport (keep-alive connections) and the timeouts every request carries.

    Requests go straight to the httpx transport: httpx's AsyncClient would add
    cookie handling and header merging we do not want, about 20% of the CPU of
    a 304 run (#8). Redirects are followed by ``_follow``, never by the transport.
    Either transport connects only where ``guard`` allows (``fetch.allow_private``,
    see #21); ``resolver`` replaces the system's DNS lookups, for tests.
    """

    def __init__(
        self,
        settings: FetchSettings,
        transport: str = DEFAULT_TRANSPORT,
        resolver: aiohttp.abc.AbstractResolver | None = None,
    ) -> None:
        self.guard = Guard(settings.allow_private)
        timeout = httpx.Timeout(
            connect=settings.connect_timeout,
            read=settings.read_timeout,
            write=settings.read_timeout,
            pool=None,  # our semaphores bound the requests in flight, never the pool
        )
        self.extensions: dict[str, object] = {"timeout": timeout.as_dict()}
        size = max(settings.concurrency, 1)
        self.transport: httpx.AsyncBaseTransport
        if transport == "aiohttp":
            self.transport = AiohttpTransport(size, self.guard, resolver)
        elif transport == "httpx":
            from mash.fetch._httpx_pool import guarded_pool

            self.transport = guarded_pool(size, self.guard, resolver)
        else:
            raise ValueError(f"unknown transport {transport!r}")

    async def send(self, method: str, url: str, headers: Mapping[str, str]) -> httpx.Response:
        """Send one request; the response streams until ``aclose``.

        Headers go as UTF-8 bytes: httpx refuses a str that is not ASCII (an ETag
        some server put UTF-8 in, a user agent from the config).
        """
        sent = [(name.encode(), value.encode()) for name, value in headers.items()]
        request = httpx.Request(method, url, headers=sent, extensions=self.extensions)
        return await self.transport.handle_async_request(request)

    async def __aenter__(self) -> Http:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.transport.aclose()


def host_key(url: str) -> str:
    """Return the ``host:port`` a URL's connections go to, lower-cased ("" if unparsable)."""
    plain = plain_host_port(url)
    if plain:  # most feed URLs: no urlsplit for each request (see #8)
        return plain
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return ""
    return f"{(parts.hostname or '').lower()}:{port}"


def url_problem(url: str) -> str | None:
    """Return why ``url`` cannot be fetched, or None when it is an absolute http(s) URL."""
    if plain_host_port(url):
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError as e:
        return f"not a valid URL ({e}): {url}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"not an absolute http(s) URL: {url}"
    return None


class Limits:
    """A global bound and a per-host bound on requests in flight."""

    def __init__(self, settings: FetchSettings) -> None:
        self._all = asyncio.Semaphore(max(settings.concurrency, 1))
        self._per_host_size = max(settings.per_host, 1)
        self._hosts: dict[str, asyncio.Semaphore] = {}

    def slot(self, url: str) -> tuple[asyncio.Semaphore, asyncio.Semaphore]:
        """Return the per-host and the global semaphore a request to ``url`` holds, in order."""
        key = host_key(url)
        host = self._hosts.get(key)
        if host is None:
            host = self._hosts[key] = asyncio.Semaphore(self._per_host_size)
        return host, self._all


@dataclass(frozen=True)
class _Outcome:
    """One attempt: its result, whether to retry, and how long the server asked us to wait."""

    result: FetchResult
    transient: bool = False
    retry_after: float | None = None
    blocked: bool = False


async def fetch_url(
    client: Http,
    url: str,
    settings: FetchSettings,
    limits: Limits,
    headers: Mapping[str, str],
) -> FetchResult:
    """Fetch ``url`` following redirects, retrying transient failures with backoff.

    Timeouts are not retried (a slow server stays slow); a 403 is retried once
    with browser-like headers and then reported as likely bot protection.
    ``elapsed`` runs from the first request sent, not from the wait for a slot.
    """
    start: float | None = None
    if (problem := url_problem(url)) is not None:
        return FetchResult(url=url, error=problem, error_kind="bad-url")
    sent = {"User-Agent": settings.user_agent, "Accept-Encoding": ACCEPT_ENCODING, **headers}
    attempt = 0
    browser_tried = False
    host, everyone = limits.slot(url)
    while True:
        async with host, everyone:
            start = start or time.monotonic()
            outcome = await _attempt(client, url, settings, sent)
        if outcome.blocked and not browser_tried:
            browser_tried = True
            sent.update(BROWSER_HEADERS)
            continue
        if outcome.blocked:
            outcome = _blocked(outcome)
        delay = _retry_delay(outcome, attempt, settings)
        if delay is None:
            return replace(_explain(outcome), elapsed=time.monotonic() - start)
        await asyncio.sleep(delay)
        attempt += 1


def _explain(outcome: _Outcome) -> FetchResult:
    """Add to the final error that the server asked for a wait longer than we give it."""
    result = outcome.result
    if outcome.retry_after is not None and outcome.retry_after > RETRY_AFTER_CAP:
        wait = f"{outcome.retry_after:.0f} s"
        return replace(result, error=f"{result.error}: the server asks to come back in {wait}")
    return result


def _blocked(outcome: _Outcome) -> _Outcome:
    message = (
        "HTTP 403 Forbidden, also with browser-like headers: the site likely uses bot "
        "protection (Cloudflare or similar) that blocks feed readers"
    )
    return _Outcome(replace(outcome.result, error=message, error_kind="http-403-blocked"))


def _retry_delay(outcome: _Outcome, attempt: int, settings: FetchSettings) -> float | None:
    """Return how long to wait before retrying, or None to stop here."""
    if not outcome.transient or attempt >= settings.retries:
        return None
    if outcome.retry_after is not None:
        return outcome.retry_after if outcome.retry_after <= RETRY_AFTER_CAP else None
    backoff = min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)
    return float(backoff * random.uniform(0.5, 1.5))


async def _attempt(
    client: Http,
    url: str,
    settings: FetchSettings,
    headers: Mapping[str, str],
) -> _Outcome:
    """Make one request (with its redirects) within the total deadline."""
    try:
        async with asyncio.timeout(settings.deadline):
            return await _follow(client, url, settings, headers)
    except TimeoutError:
        message = f"no complete response within the {settings.deadline:g} s deadline"
        return _failed(url, "timeout", message)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as e:
        return _failed(url, "bad-url", f"not a fetchable http(s) URL: {e}")
    except (httpx.HTTPError, aiohttp.ClientError) as e:
        kind, transient = classify(e)
        return _failed(url, kind, _describe(e, kind, transient, settings), transient=transient)
    except BodyTooLarge as e:
        return _failed(url, "too-large", f"too large: {e}")
    except BadEncoding as e:
        return _failed(url, "encoding", str(e))
    except Exception as e:  # noqa: BLE001 (one URL's surprise must not stop the run)
        message = f"unexpected error ({type(e).__name__}: {e}); please report it"
        return _failed(url, "unexpected", message)


def _failed(url: str, kind: str, message: str, *, transient: bool = False) -> _Outcome:
    return _Outcome(FetchResult(url=url, error=message, error_kind=kind), transient=transient)


def classify(exc: BaseException) -> tuple[str, bool]:
    """Return (error_kind, transient) for a transport error of either engine."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError | aiohttp.ClientSSLError):
            return "connection", False  # a bad certificate stays bad: no retry
        # the transport's aiohttp error is under the httpx one, and says more: look there.
        if isinstance(seen, aiohttp.SocketTimeoutError | httpx.ReadTimeout | httpx.WriteTimeout):
            return "timeout", False
        if isinstance(seen, aiohttp.ConnectionTimeoutError):
            return "timeout", True
        if isinstance(seen, aiohttp.ClientConnectionError | ConnectionError | httpx.NetworkError):
            return "connection", True
        if isinstance(seen, httpx.RemoteProtocolError | aiohttp.ClientPayloadError):
            return "connection", True
        if isinstance(seen, aiohttp.ClientResponseError):
            return "connection", False  # not HTTP at all: retrying will not help
        seen = seen.__cause__
    if isinstance(exc, httpx.ConnectTimeout):
        return "timeout", True
    if isinstance(exc, httpx.TimeoutException):
        return "timeout", False
    return "connection", False


def _describe(exc: BaseException, kind: str, transient: bool, settings: FetchSettings) -> str:
    """Say what went wrong in an editor's words, with the library's reason after a colon."""
    root = exc
    while root.__cause__ is not None:
        root = root.__cause__
    reason = f"{type(root).__name__}: {root}" if str(root) else type(root).__name__
    if kind == "timeout" and transient:
        return f"could not connect within {settings.connect_timeout:g} s ({reason})"
    if kind == "timeout":
        return f"the server sent nothing for {settings.read_timeout:g} s ({reason})"
    return f"connection failed ({reason})"


async def _follow(
    client: Http,
    url: str,
    settings: FetchSettings,
    headers: Mapping[str, str],
) -> _Outcome:
    """Request ``url`` and follow up to MAX_REDIRECTS redirects by hand, detecting loops.

    Each hop connects only where the client's guard allows: a refused hop fails the
    whole fetch, so a permanent redirect to it is never reported as ``moved_to``.
    """
    chain = [url]
    permanent = True
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        if len(chain) > 1 and (problem := url_problem(current)) is not None:
            return _failed(url, "bad-url", f"redirect to a bad URL: {problem}")
        try:
            response = await client.send("GET", current, headers)
        except (OSError, httpx.TransportError) as e:
            if (refused := refusal_in(e)) is None:
                raise
            return _refused(url, current, refused)
        try:
            location = response.headers.get("location")
            if response.status_code in (301, 302, 303, 307, 308) and location:
                await drain(response)
                permanent = permanent and response.status_code in (301, 308)
                current = urljoin(current, location.strip())
                if current in chain:
                    message = "redirect loop: " + " -> ".join([*chain, current])
                    return _failed(url, "redirect-loop", message)
                chain.append(current)
                continue
            moved = current if len(chain) > 1 and permanent else None
            return await _complete(url, current, moved, response, settings)
        finally:
            await response.aclose()
    message = f"more than {MAX_REDIRECTS} redirects: " + " -> ".join(chain[:3]) + " -> ..."
    return _failed(url, "too-many-redirects", message)


def _refused(url: str, hop: str, refused: Refused) -> _Outcome:
    return _failed(url, "private-address", refused.reason(url, hop))


async def _complete(
    url: str, final_url: str, moved: str | None, response: httpx.Response, settings: FetchSettings
) -> _Outcome:
    """Turn the final response of a chain into an outcome, reading the body only on 2xx."""
    status = response.status_code
    result = FetchResult(
        url=url,
        final_url=final_url,
        status=status,
        content_type=response.headers.get("content-type", ""),
        etag=response.headers.get("etag"),
        last_modified=response.headers.get("last-modified"),
        moved_to=moved,
    )
    if 200 <= status < 300:
        return _Outcome(replace(result, content=await read_body(response, settings.max_bytes)))
    if status == 304:
        return _Outcome(result)
    await drain(response)
    error = f"HTTP {status} {response.reason_phrase or ''}".rstrip()
    failed = replace(result, error=error, error_kind=f"http-{status}")
    if status == 403:
        return _Outcome(failed, blocked=True)
    retry_after = _retry_after(response) if status in (429, 503) else None
    transient = status in TRANSIENT_STATUSES or 500 <= status < 600
    return _Outcome(failed, transient=transient, retry_after=retry_after)


def _retry_after(response: httpx.Response) -> float | None:
    """Parse Retry-After (seconds or an HTTP date) into seconds from now."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
