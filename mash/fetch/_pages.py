"""Politeness and safety for article pages: robots.txt, per-host pace, private addresses."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from dataclasses import replace
from urllib.parse import urlsplit

import aiohttp
import aiohttp.abc

from mash.fetch._http import Http, Limits, PrivateAddressRefused, fetch_url, host_key, url_problem
from mash.fetch._robots import ALLOW_ALL, RobotsRules, agent_token, parse_robots, robots_allows
from mash.records import FetchSettings

ROBOTS_MAX_BYTES = 512 * 1024  # what Google reads of a robots.txt
CRAWL_DELAY_CAP = 10.0  # seconds; a longer Crawl-delay is honoured as this


class HostGuard:
    """Refuse hosts that resolve to private, loopback or link-local addresses.

    A feed must not be able to make mash fetch internal services (#3). The check
    runs on every redirect hop. A DNS answer that changes between this check and
    the connection is caught by GuardedResolver on the aiohttp transport only.
    """

    def __init__(self, settings: FetchSettings, allowed_hosts: frozenset[str]) -> None:
        self._allow_all = settings.allow_private
        self._allowed = {h.lower() for h in allowed_hosts}
        self._verdicts: dict[str, tuple[str, str] | None] = {}

    def allows_private(self, host: str) -> bool:
        """Tell whether ``host`` (a name, or ``host:port``) may resolve to a private address."""
        return self._allow_all or host.lower() in self._allowed

    async def __call__(self, url: str) -> tuple[str, str] | None:
        if (problem := url_problem(url)) is not None:
            return "bad-url", problem
        host = (urlsplit(url).hostname or "").lower()
        if self._allow_all or host in self._allowed or host_key(url) in self._allowed:
            return None
        if host not in self._verdicts:
            self._verdicts[host] = await _check_host(host)
        return self._verdicts[host]


async def _check_host(host: str) -> tuple[str, str] | None:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as e:
        return "connection", f"cannot resolve host {host}: {e}"
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if is_private_address(address):
            return "private-address", f"{host} resolves to a private address ({address}): refused"
    return None


class GuardedResolver(aiohttp.abc.AbstractResolver):
    """Resolve names for aiohttp, refusing private answers for hosts not allowed them.

    HostGuard checks a host before the request; this checks the very answer the
    connection uses, so a name that turns private in between (DNS rebinding) is
    refused too. IP literals never reach a resolver: HostGuard judges those.
    """

    def __init__(self, guard: HostGuard) -> None:
        self._guard = guard
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[aiohttp.abc.ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        if self._guard.allows_private(host) or self._guard.allows_private(f"{host}:{port}"):
            return answers
        for answer in answers:
            address = ipaddress.ip_address(answer["host"].split("%")[0])
            if is_private_address(address):
                message = f"{host} resolves to a private address ({address}): refused"
                raise PrivateAddressRefused(message)
        return answers

    async def close(self) -> None:
        await self._inner.close()


def is_private_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Tell whether ``address`` is private, loopback, link-local or otherwise not public."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
    )


class Robots:
    """robots.txt per host (RFC 9309), fetched once and cached for the run.

    A missing robots.txt (4xx) allows everything; one that cannot be fetched
    (5xx, timeout) disallows the host for this run, as Google does.
    """

    def __init__(
        self, client: Http, settings: FetchSettings, limits: Limits, guard: HostGuard
    ) -> None:
        self._client = client
        self._guard = guard
        self._settings = settings
        self._limits = limits
        self._token = agent_token(settings.user_agent)
        self._rules: dict[str, asyncio.Task[RobotsRules | None]] = {}

    async def _rules_for(self, url: str) -> RobotsRules | None:
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}"
        if key not in self._rules:
            self._rules[key] = asyncio.create_task(self._load(key + "/robots.txt"))
        return await self._rules[key]

    async def _load(self, robots_url: str) -> RobotsRules | None:
        settings = _replace_max_bytes(self._settings, ROBOTS_MAX_BYTES)
        result = await fetch_url(self._client, robots_url, settings, self._limits, {}, self._guard)
        if result.ok:
            return parse_robots(result.content.decode("utf-8", "replace"), self._token)
        if result.status is not None and 400 <= result.status < 500 and result.status != 429:
            return ALLOW_ALL  # no robots.txt
        return None

    async def check(self, url: str) -> tuple[str, str] | None:
        """Return ("robots", why) when robots.txt refuses ``url``, else None."""
        rules = await self._rules_for(url)
        if rules is None:
            return "robots", "robots.txt of the host could not be fetched: not fetching its pages"
        if not robots_allows(rules, url):
            return "robots", f"robots.txt disallows {urlsplit(url).path or '/'} for mash"
        return None

    async def crawl_delay(self, url: str) -> float:
        """Return the host's Crawl-delay for us, capped at CRAWL_DELAY_CAP (0 when none)."""
        rules = await self._rules_for(url)
        delay = rules.crawl_delay if rules is not None else None
        return min(delay, CRAWL_DELAY_CAP) if delay else 0.0


def _replace_max_bytes(settings: FetchSettings, max_bytes: int) -> FetchSettings:
    return replace(settings, max_bytes=min(settings.max_bytes, max_bytes), retries=0)


class Pacer:
    """Space requests to one host at least ``interval`` seconds apart."""

    def __init__(self) -> None:
        self._next: dict[str, float] = {}

    async def wait(self, url: str, interval: float) -> None:
        """Sleep until ``url``'s host may be requested again, and book the next slot."""
        if interval <= 0:
            return
        key = host_key(url)
        now = time.monotonic()
        at = max(now, self._next.get(key, now))
        self._next[key] = at + interval
        if at > now:
            await asyncio.sleep(at - now)
