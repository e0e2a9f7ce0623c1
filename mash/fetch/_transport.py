"""httpx's transport interface over aiohttp's connections, with nothing else per request.

httpx stays the client API (#8): ``Http`` sends ``httpx.Request`` objects and reads
``httpx.Response`` objects. aiohttp does the sockets, the keep-alive pool and the
HTTP/1.1 parsing, which costs about half of what httpx's own pool does.

The ``httpx-aiohttp`` package does the same job. It was our transport until its own
per-request work showed up in the profile of an all-304 run: a ``ClientTimeout`` and
a proxy check per request, headers converted twice, yarl re-quoting an URL httpx has
already quoted, a context manager around every call, and ``importlib.metadata`` and
a CA bundle loaded at start even when no feed is https. Side by side on 1000
conditional GETs (``bench/fetch_bench.py``), this one costs about a fifth less CPU.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import aiohttp
import httpx
import yarl

from mash.fetch._guard import Guard, GuardedResolver

CHUNK = 64 * 1024

# The aiohttp error, most specific class first in its MRO, and the httpx error it becomes.
# The aiohttp error stays reachable as __cause__: mash.fetch._http.classify reads it.
_ERRORS: dict[type[BaseException], type[httpx.TransportError]] = {
    aiohttp.ConnectionTimeoutError: httpx.ConnectTimeout,
    aiohttp.SocketTimeoutError: httpx.ReadTimeout,
    aiohttp.ServerTimeoutError: httpx.ReadTimeout,
    aiohttp.ClientProxyConnectionError: httpx.ProxyError,
    aiohttp.ClientHttpProxyError: httpx.ProxyError,
    aiohttp.ClientConnectorError: httpx.ConnectError,
    aiohttp.ServerDisconnectedError: httpx.RemoteProtocolError,
    aiohttp.ClientPayloadError: httpx.ReadError,
    aiohttp.ClientResponseError: httpx.RemoteProtocolError,
    aiohttp.ClientConnectionError: httpx.NetworkError,
    aiohttp.NonHttpUrlClientError: httpx.UnsupportedProtocol,
    aiohttp.InvalidUrlClientError: httpx.UnsupportedProtocol,
    aiohttp.InvalidURL: httpx.UnsupportedProtocol,
    aiohttp.ClientError: httpx.TransportError,
}


def as_httpx_error(exc: BaseException) -> httpx.TransportError:
    """Return the httpx error for an aiohttp one: its closest class in ``_ERRORS`` decides."""
    for cls in type(exc).__mro__:
        if (mapped := _ERRORS.get(cls)) is not None:
            return mapped(str(exc) or type(exc).__name__)
    raise TypeError(f"not an aiohttp error: {exc!r}")


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session, opened at the first request, behind httpx's transport API.

    Redirects, cookies and decompression are left to the caller: responses come back
    as sent, their bodies streamed. https uses httpx's CA choice (certifi, or
    SSL_CERT_FILE / SSL_CERT_DIR), loaded at the first https request. Every
    connection goes to an address ``guard`` allows (see mash.fetch._guard);
    ``resolver`` is the one it filters (the system's by default).
    """

    def __init__(
        self, size: int, guard: Guard, resolver: aiohttp.abc.AbstractResolver | None = None
    ) -> None:
        self._size = size
        self._guard = guard
        self._resolver = resolver
        self._session: aiohttp.ClientSession | None = None
        self._ssl: ssl.SSLContext | None = None
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        url = request.url
        self._guard.check_host(url.host)  # an IP literal: aiohttp resolves none (see #21)
        try:
            response = await session.request(
                request.method,
                yarl.URL(str(url), encoded=True),  # httpx has quoted it already
                headers=request.headers.multi_items(),
                data=request.content or None,
                allow_redirects=False,
                auto_decompress=False,
                timeout=self._timeout(request),
                ssl=self._ssl_context() if url.scheme == "https" else True,
            )
        except aiohttp.ClientError as e:
            raise as_httpx_error(e) from e
        except ValueError as e:  # a header aiohttp will not send (CR, LF): as httpx's own says
            raise httpx.LocalProtocolError(str(e)) from e
        reason = response.reason
        return httpx.Response(
            response.status,
            headers=response.raw_headers,
            stream=_Body(response),
            request=request,
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": reason.encode(errors="replace") if reason else b"",
            },
        )

    def _open(self) -> aiohttp.ClientSession:
        # no cookie jar; DNS answers kept for the run (one lookup per host, not per feed)
        connector = aiohttp.TCPConnector(
            limit=self._size,
            ttl_dns_cache=300,
            resolver=GuardedResolver(self._guard, self._resolver),
        )
        self._session = aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar()
        )
        # aiohttp re-sends a GET once by itself when its connection drops; mash.fetch._http
        # makes that one retry itself, for both transports, so it is not made twice (#18).
        # No public switch: this is the attribute aiohttp's own test client sets.
        self._session._retry_connection = False
        return self._session

    def _timeout(self, request: httpx.Request) -> aiohttp.ClientTimeout:
        """httpx's per-request timeouts as aiohttp's, made once per distinct set."""
        given = request.extensions.get("timeout") or {}
        key = (given.get("connect"), given.get("read"), given.get("pool"))
        timeout = self._timeouts.get(key)
        if timeout is None:
            timeout = aiohttp.ClientTimeout(sock_connect=key[0], sock_read=key[1], connect=key[2])
            self._timeouts[key] = timeout
        return timeout

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context()
        return self._ssl

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class _Body(httpx.AsyncByteStream):
    """An aiohttp response body as httpx's byte stream, its errors as httpx's."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(CHUNK):
                yield chunk
        except aiohttp.ClientError as e:
            raise as_httpx_error(e) from e

    async def aclose(self) -> None:
        # release the connection to the pool; one with its body unread is closed instead
        await self._response.wait_for_close()
