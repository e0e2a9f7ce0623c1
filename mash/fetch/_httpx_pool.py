"""httpx's own connection pool, connecting only where the guard allows (benchmarks only).

Apart from mash.fetch._guard so that httpcore, which the aiohttp transport never
needs, is imported only when this pool is chosen (#8: every import counts).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

import aiohttp
import aiohttp.abc
import httpcore
import httpx

from mash.fetch._guard import Guard


def guarded_pool(
    size: int, guard: Guard, resolver: aiohttp.abc.AbstractResolver | None = None
) -> httpx.AsyncHTTPTransport:
    """Return httpx's transport with ``size`` connections, each to a checked address."""
    limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
    transport = httpx.AsyncHTTPTransport(limits=limits, retries=0)
    # httpx takes no network backend: set its pool's, before any connection is made
    pool = transport._pool
    assert isinstance(pool, httpcore.AsyncConnectionPool)
    pool._network_backend = GuardedBackend(guard, pool._network_backend, resolver)
    return transport


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to addresses the guard allows.

    A name is resolved here (by the same resolver aiohttp would use) and the
    connection made to a checked address; TLS still verifies the name, which
    httpcore passes as the server name.
    """

    def __init__(
        self,
        guard: Guard,
        inner: httpcore.AsyncNetworkBackend,
        resolver: aiohttp.abc.AbstractResolver | None = None,
    ) -> None:
        self._guard = guard
        self._inner = inner
        self._resolver = resolver

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self._guard.check_host(host)  # an IP literal
        try:
            addresses = [str(ipaddress.ip_address(host.strip("[]")))]
        except ValueError:
            self._resolver = self._resolver or aiohttp.ThreadedResolver()
            try:
                answers = await self._resolver.resolve(host, port, socket.AF_UNSPEC)
            except OSError as e:  # as httpcore's own lookup fails
                raise httpcore.ConnectError(f"cannot resolve {host}: {e}") from e
            addresses = self._guard.filter(host, (answer["host"] for answer in answers))
        error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as e:
                error = e
        raise error or httpcore.ConnectError(f"no address for {host}")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
