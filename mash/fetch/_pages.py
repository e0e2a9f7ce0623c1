"""Politeness for article pages: robots.txt and per-host pace.

Where pages may be fetched from is the client's guard's business (mash.fetch._guard),
as for every other connection.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from urllib.parse import urlsplit

from mash.fetch._http import Http, Limits, fetch_url, host_key
from mash.fetch._robots import ALLOW_ALL, RobotsRules, agent_token, parse_robots, robots_allows
from mash.records import FetchSettings

ROBOTS_MAX_BYTES = 512 * 1024  # what Google reads of a robots.txt
CRAWL_DELAY_CAP = 10.0  # seconds; a longer Crawl-delay is honoured as this


class Robots:
    """robots.txt per host (RFC 9309), fetched once and cached for the run.

    A missing robots.txt (4xx) allows everything; one that cannot be fetched
    (5xx, timeout) disallows the host for this run, as Google does.
    """

    def __init__(self, client: Http, settings: FetchSettings, limits: Limits) -> None:
        self._client = client
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
        result = await fetch_url(self._client, robots_url, settings, self._limits, {})
        if result.ok:
            return parse_robots(result.content.decode("utf-8", "replace"), self._token)
        if result.status is not None and 400 <= result.status < 500 and result.status != 429:
            return ALLOW_ALL  # no robots.txt
        return None

    async def check(self, url: str) -> tuple[str, str] | None:
        """Return ("robots", why) when robots.txt refuses ``url``, else None.

        When robots.txt was not fetched because the guard refused the host, that is
        the reason: ("private-address", why), naming ``url``.
        """
        rules = await self._rules_for(url)
        if rules is None:
            if (refused := self._client.guard.refused(urlsplit(url).hostname or "")) is not None:
                return "private-address", refused.reason(url)
            return "robots", "robots.txt of the host could not be fetched: not fetching its pages"
        if not robots_allows(rules, url):
            return "robots", f"robots.txt disallows {urlsplit(url).path or '/'} for mash"
        return None

    async def allows(self, url: str) -> bool | None:
        """Tell whether robots.txt lets us fetch ``url``; None when it could not be fetched."""
        rules = await self._rules_for(url)
        return None if rules is None else robots_allows(rules, url)

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
