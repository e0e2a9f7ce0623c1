"""One URL fetched with redirects, a total deadline, a size cap and few quick retries.

Everything here returns a FetchResult; nothing raises for a failure of the URL.

What is retried within a run (see #18); everything else fails now, and the next run
tries it again (``mash.health.next_attempt_after`` spaces runs out for a feed that
keeps failing):

- a flaky connection: the connection was reset or closed after the request went out
  and before any byte of a response came back (a keep-alive connection the server had
  dropped, a restarting server). One quick retry, on a new connection, as RFC 9112
  section 9.3.1 allows for GET.
- 429 or 503 with a short Retry-After (at most ``SHORT_RETRY_AFTER`` seconds): the
  server says when to come back; up to ``fetch.retries`` times.

Not retried in the run: timeouts of any kind (a slow or dead host stays so for the
minutes a run lasts), a refused connection, a reset after the response began, every
other status (500, 502, 504, a 503 without Retry-After or with a long one), TLS errors.
``fetch.retries`` 0 turns every retry off.
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

from mash.fetch._body import (
    ACCEPT_ENCODING,
    BadEncoding,
    BodyTooLarge,
    TooSlow,
    drain,
    read_body,
)
from mash.fetch._guard import Guard, Refused, refusal_in
from mash.fetch._transport import AiohttpTransport
from mash.records import FetchResult, FetchSettings
from mash.urls import plain_host_port

MAX_REDIRECTS = 10
SHORT_RETRY_AFTER = 5.0  # seconds; a longer Retry-After fails now, the next run tries (#18)
RETRY_AFTER_STATUSES = frozenset({429, 503})
QUICK_RETRY = 0.2  # seconds before the one retry of a flaky connection, with jitter
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
    """One attempt: its result, and what may make it worth another in this run.

    ``flaky``: the connection died between our request and any response;
    ``retry_after``: the seconds a 429 or 503 asked us to wait.
    """

    result: FetchResult
    flaky: bool = False
    retry_after: float | None = None
    blocked: bool = False


class _NoResponse(Exception):
    """The connection was reset or closed after the request and before any response."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


async def fetch_url(
    client: Http,
    url: str,
    settings: FetchSettings,
    limits: Limits,
    headers: Mapping[str, str],
    method: str = "GET",
) -> FetchResult:
    """Fetch ``url`` following redirects; retry only what the module docstring names.

    A 403 is asked again once with browser-like headers and then reported as likely
    bot protection. ``elapsed`` runs from the first request sent, not from the wait
    for a slot; a retry's wait holds no slot. A ``method`` of "HEAD" (`mash check`'s
    links, see #17) reads no body.
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
            outcome = await _attempt(client, url, settings, sent, method)
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
    """Add to the final error that the server asked for a wait longer than a run gives it."""
    result = outcome.result
    if outcome.retry_after is not None and outcome.retry_after > SHORT_RETRY_AFTER:
        wait = f"{outcome.retry_after:.0f} s"
        message = f"{result.error}: the server asks to come back in {wait}; the next run tries"
        return replace(result, error=message)
    return result


def _blocked(outcome: _Outcome) -> _Outcome:
    message = (
        "HTTP 403 Forbidden, also with browser-like headers: the site likely uses bot "
        "protection (Cloudflare or similar) that blocks feed readers"
    )
    return _Outcome(replace(outcome.result, error=message, error_kind="http-403-blocked"))


def _retry_delay(outcome: _Outcome, attempt: int, settings: FetchSettings) -> float | None:
    """Return how long to wait before trying again in this run, or None to stop here.

    ``attempt`` counts the retries made so far. A flaky connection gets one retry,
    a short Retry-After up to ``settings.retries``; nothing else gets any.
    """
    if attempt >= settings.retries:
        return None
    if outcome.flaky:
        return None if attempt > 0 else QUICK_RETRY * random.uniform(0.5, 1.5)
    if outcome.retry_after is not None and outcome.retry_after <= SHORT_RETRY_AFTER:
        return outcome.retry_after
    return None


async def _attempt(
    client: Http,
    url: str,
    settings: FetchSettings,
    headers: Mapping[str, str],
    method: str = "GET",
) -> _Outcome:
    """Make one request (with its redirects) within the total deadline."""
    try:
        give_up_at = asyncio.get_running_loop().time() + settings.deadline
        async with asyncio.timeout_at(give_up_at):
            return await _follow(client, url, settings, headers, give_up_at, method)
    except TimeoutError:
        message = f"no complete response within the {settings.deadline:g} s deadline"
        return _failed(url, "timeout", message)
    except TooSlow as e:
        message = f"{e}, more than the {settings.deadline:g} s deadline allows"
        return _failed(url, "timeout", message)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as e:
        return _failed(url, "bad-url", f"not a fetchable http(s) URL: {e}")
    except _NoResponse as e:
        message = _describe(e.cause, "connection", settings)
        return _failed(url, "connection", f"{message}, before any response", flaky=True)
    except (httpx.HTTPError, aiohttp.ClientError) as e:
        kind, connecting = classify(e)
        return _failed(url, kind, _describe(e, kind, settings, connecting=connecting))
    except BodyTooLarge as e:
        return _failed(url, "too-large", f"too large: {e}")
    except BadEncoding as e:
        return _failed(url, "encoding", str(e))
    except Exception as e:  # noqa: BLE001 (one URL's surprise must not stop the run)
        message = f"unexpected error ({type(e).__name__}: {e}); please report it"
        return _failed(url, "unexpected", message)


def _failed(url: str, kind: str, message: str, *, flaky: bool = False) -> _Outcome:
    return _Outcome(FetchResult(url=url, error=message, error_kind=kind), flaky=flaky)


def classify(exc: BaseException) -> tuple[str, bool]:
    """Return (error_kind, connecting) for a transport error of either engine.

    ``connecting``: the error came while connecting (a connect timeout). Whether a
    "connection" error is worth a retry is not the error's business but where it
    came: ``_follow`` marks the ones that came before any response (``_NoResponse``).
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError | aiohttp.ClientSSLError):
            return "connection", False
        # the transport's aiohttp error is under the httpx one, and says more: look there.
        if isinstance(seen, aiohttp.SocketTimeoutError | httpx.ReadTimeout | httpx.WriteTimeout):
            return "timeout", False
        if isinstance(seen, aiohttp.ConnectionTimeoutError):
            return "timeout", True
        if isinstance(seen, aiohttp.ClientConnectionError | ConnectionError | httpx.NetworkError):
            return "connection", False
        if isinstance(seen, httpx.RemoteProtocolError | aiohttp.ClientPayloadError):
            return "connection", False
        if isinstance(seen, aiohttp.ClientResponseError):
            return "connection", False  # not HTTP at all
        seen = seen.__cause__
    if isinstance(exc, httpx.ConnectTimeout):
        return "timeout", True
    return ("timeout" if isinstance(exc, httpx.TimeoutException) else "connection"), False


def _describe(
    exc: BaseException, kind: str, settings: FetchSettings, *, connecting: bool = False
) -> str:
    """Say what went wrong in an editor's words, with the library's reason after a colon."""
    root = exc
    while root.__cause__ is not None:
        root = root.__cause__
    reason = f"{type(root).__name__}: {root}" if str(root) else type(root).__name__
    if kind == "timeout" and connecting:
        return f"could not connect within {settings.connect_timeout:g} s ({reason})"
    if kind == "timeout":
        return f"the server sent nothing for {settings.read_timeout:g} s ({reason})"
    return f"connection failed ({reason})"


def _dropped_before_response(exc: BaseException) -> bool:
    """Tell whether ``exc`` says a connection died after the request, before any response.

    Refused connections, DNS failures, TLS errors, timeouts and answers that are not
    HTTP are not: those are the host's state, which a retry a moment later does not
    change.
    """
    seen: BaseException | None = exc
    while seen is not None:  # the aiohttp transport: its error is the cause, and decides
        if isinstance(seen, aiohttp.ClientError):
            dropped = aiohttp.ServerDisconnectedError | aiohttp.ClientOSError
            return isinstance(seen, dropped) and not isinstance(seen, aiohttp.ClientConnectorError)
        seen = seen.__cause__
    # httpx's own pool: a reset is a ReadError or WriteError over an OSError; a closed
    # connection, "Server disconnected without sending a response."
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return True
    return isinstance(exc, httpx.RemoteProtocolError) and "disconnected" in str(exc)


async def _follow(
    client: Http,
    url: str,
    settings: FetchSettings,
    headers: Mapping[str, str],
    give_up_at: float,
    method: str = "GET",
) -> _Outcome:
    """Request ``url`` and follow up to MAX_REDIRECTS redirects by hand, detecting loops.

    Each hop connects only where the client's guard allows: a refused hop fails the
    whole fetch, so a permanent redirect to it is never reported as ``moved_to``.
    A connection that dies before a hop's response raises ``_NoResponse``.
    ``give_up_at`` is the deadline on the event loop's clock (see ``read_body``).
    """
    chain = [url]
    permanent = True
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        if len(chain) > 1 and (problem := url_problem(current)) is not None:
            return _failed(url, "bad-url", f"redirect to a bad URL: {problem}")
        try:
            response = await client.send(method, current, headers)
        except (OSError, httpx.TransportError) as e:
            if (refused := refusal_in(e)) is not None:
                return _refused(url, current, refused)
            if _dropped_before_response(e):
                raise _NoResponse(e) from e
            raise
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
            if method == "HEAD":  # no body to read (see #17)
                return _Outcome(_head_result(url, current, moved, response))
            return await _complete(url, current, moved, response, settings, give_up_at)
        finally:
            await response.aclose()
    message = f"more than {MAX_REDIRECTS} redirects: " + " -> ".join(chain[:3]) + " -> ..."
    return _failed(url, "too-many-redirects", message)


def _refused(url: str, hop: str, refused: Refused) -> _Outcome:
    return _failed(url, "private-address", refused.reason(url, hop))


async def _complete(
    url: str,
    final_url: str,
    moved: str | None,
    response: httpx.Response,
    settings: FetchSettings,
    give_up_at: float,
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
        content = await read_body(response, settings.max_bytes, give_up_at)
        return _Outcome(replace(result, content=content))
    if status == 304:
        return _Outcome(result)
    await drain(response)
    error = f"HTTP {status} {response.reason_phrase or ''}".rstrip()
    failed = replace(result, error=error, error_kind=f"http-{status}")
    if status == 403:
        return _Outcome(failed, blocked=True)
    retry_after = _retry_after(response) if status in RETRY_AFTER_STATUSES else None
    return _Outcome(failed, retry_after=retry_after)


def _head_result(
    url: str, final_url: str, moved: str | None, response: httpx.Response
) -> FetchResult:
    """Turn the final response to a HEAD into a result: its status, no body."""
    status = response.status_code
    error = None if status < 400 else f"HTTP {status} {response.reason_phrase or ''}".rstrip()
    return FetchResult(
        url=url,
        final_url=final_url,
        status=status,
        content_type=response.headers.get("content-type", ""),
        moved_to=moved,
        error=error,
        error_kind=f"http-{status}" if error else None,
    )


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
