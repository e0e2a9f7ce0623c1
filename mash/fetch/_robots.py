"""robots.txt as RFC 9309 reads it: wildcards, ``$``, longest match wins.

The standard library's ``urllib.robotparser`` takes ``*`` in a path literally
(so ``Disallow: /*?replytocom=``, common on WordPress, never matches) and lets
the first rule win instead of the longest. This parser is pure: text in, rules out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class RobotsRules:
    """The rules of robots.txt that apply to one user agent."""

    rules: tuple[tuple[bool, str], ...] = ()  # (allow, path pattern)
    crawl_delay: float | None = None


@dataclass
class _Group:
    agents: list[str] = field(default_factory=list)
    rules: list[tuple[bool, str]] = field(default_factory=list)
    crawl_delay: float | None = None
    has_rules: bool = False


ALLOW_ALL = RobotsRules()
DISALLOW_ALL = RobotsRules(rules=((False, "/"),))


def agent_token(user_agent: str) -> str:
    """Return the product token robots.txt groups name: "mash" of "mash/0.1 (+url)"."""
    return user_agent.split("/", 1)[0].split()[0].strip().lower() if user_agent.strip() else "*"


def parse_robots(text: str, token: str) -> RobotsRules:
    """Return the rules for ``token``: its own groups if any name it, else the ``*`` groups."""
    groups = _groups(text.lstrip("\ufeff"))
    mine = [g for g in groups if any(_names(agent, token) for agent in g.agents)]
    chosen = mine or [g for g in groups if "*" in g.agents]
    rules = tuple(rule for g in chosen for rule in g.rules)
    delays = [g.crawl_delay for g in chosen if g.crawl_delay is not None]
    return RobotsRules(rules=rules, crawl_delay=delays[0] if delays else None)


def _names(agent: str, token: str) -> bool:
    return agent != "*" and agent.split("/", 1)[0].strip() == token


def _groups(text: str) -> list[_Group]:
    groups: list[_Group] = []
    group: _Group | None = None
    for raw in text.splitlines():
        key, _, value = raw.split("#", 1)[0].partition(":")
        key, value = key.strip().lower(), value.strip()
        if key == "user-agent":
            if group is None or group.has_rules:
                group = _Group()
                groups.append(group)
            group.agents.append(value.lower())
        elif group is not None and key in ("allow", "disallow"):
            group.has_rules = True
            if value:  # an empty Disallow allows everything: no rule
                group.rules.append((key == "allow", value))
        elif group is not None and key == "crawl-delay":
            group.has_rules = True
            group.crawl_delay = _seconds(value)
    return groups


def _seconds(value: str) -> float | None:
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def robots_allows(rules: RobotsRules, url: str) -> bool:
    """Tell whether ``url`` may be fetched: the longest matching rule wins, Allow wins ties."""
    parts = urlsplit(url)
    path = unquote(parts.path or "/") + (f"?{unquote(parts.query)}" if parts.query else "")
    if path == "/robots.txt":
        return True
    best: tuple[int, bool] | None = None
    for allow, pattern in rules.rules:
        if _pattern(pattern).match(path):
            candidate = (len(pattern), allow)
            best = candidate if best is None else max(best, candidate)
    return True if best is None else best[1]


@lru_cache(maxsize=4096)
def _pattern(pattern: str) -> re.Pattern[str]:
    anchored = pattern.endswith("$")
    body = unquote(pattern[:-1] if anchored else pattern)
    regex = ".*".join(re.escape(piece) for piece in body.split("*"))
    return re.compile(regex + ("$" if anchored else ""), re.DOTALL)
