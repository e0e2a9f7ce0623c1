"""Where mash may connect: public addresses, and the networks ``fetch.allow_private`` lists.

Every connection mash opens goes through one ``Guard`` (see #21): feeds, each of their
redirects, article pages, robots.txt, feed autodiscovery. It judges the address a
connection is actually made to, after DNS, so a name that answers a public address to
one lookup and a private one to the next (DNS rebinding) cannot pass:

- on aiohttp, ``GuardedResolver`` filters the resolver's answers; aiohttp connects
  only to those it returns, and caches them per host (one lookup per host and run);
- on httpx's own pool (benchmarks only), ``mash.fetch._httpx_pool.GuardedBackend``
  resolves, filters and connects to a checked address itself;
- an IP literal is judged as it is (aiohttp never resolves one): ``Guard.check_host``.

Being the host of some feed grants nothing: the guard knows only addresses.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence

import aiohttp
import aiohttp.abc

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_PRIVATE_V4 = tuple(
    ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)
_SHARED_V4 = ipaddress.IPv4Network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)
_UNIQUE_LOCAL = ipaddress.IPv6Network("fc00::/7")
# IPv6 forms that carry an IPv4 address in their last 32 bits: NAT64 (RFC 6052, well-known
# and local-use prefixes). IPv4-mapped (::ffff:0:0/96) and 6to4 have their own properties.
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))

_KIND_TEXT = {
    "unspecified": "an unspecified",
    "loopback": "a loopback",
    "link-local": "a link-local",
    "multicast": "a multicast",
    "shared": "a shared (carrier-grade NAT)",
    "private": "a private",
    "unique-local": "a unique-local",
    "reserved": "a reserved (special-purpose, not public)",
    "odd-numeric": "an unusually written",  # 127.1, 2130706433: no plain IP address
}


def embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """Return the IPv4 address an IPv6 one stands for (IPv4-mapped, NAT64, 6to4), or None."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if any(address in network for network in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def address_kind(address: Address) -> str | None:
    """Return why ``address`` is not public ("loopback", "private", ...), or None if it is.

    An IPv6 address that stands for an IPv4 one (``::ffff:127.0.0.1``,
    ``64:ff9b::a00:1``) is judged as that IPv4 address.
    """
    address = embedded_ipv4(address) or address
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv4Address):
        if address in _SHARED_V4:
            return "shared"
        if any(address in network for network in _PRIVATE_V4):
            return "private"
    elif address in _UNIQUE_LOCAL:
        return "unique-local"
    if address.is_reserved or not address.is_global:  # 0/8, 240/4, documentation, ...
        return "reserved"
    return None


class Refused(OSError):
    """A connection the guard refused: ``host`` resolves to ``address``, of ``kind``."""

    def __init__(self, host: str, address: str, kind: str) -> None:
        super().__init__(f"{host} resolves to {address}, {_KIND_TEXT[kind]} address")
        self.host = host
        self.address = address
        self.kind = kind

    def reason(self, url: str, hop: str | None = None) -> str:
        """Say what was refused, naming ``url`` (and the redirect ``hop`` that led there)."""
        where = f"{url} redirects to {hop}, which" if hop and hop != url else url
        if self.kind == "odd-numeric":
            return f"refused: {where} names the host {self.host}: write it as a plain IP address"
        return (
            f"refused: {where} resolves to {self.address}, {_KIND_TEXT[self.kind]} address; "
            f"add it to fetch.allow_private to allow it"
        )


def refusal_in(exc: BaseException) -> Refused | None:
    """Return the Refused an error was raised from (``raise ... from``, as aiohttp and
    our transport wrap it), or None."""
    seen: BaseException | None = exc
    for _ in range(20):
        if seen is None or isinstance(seen, Refused):
            return seen
        seen = seen.__cause__
    return None


class Guard:
    """Judge addresses: public ones pass, and non-public ones in ``allow`` (the
    ``fetch.allow_private`` networks); everything else is refused.

    Verdicts on IP literals are kept per host: one dict lookup a request. The last
    refusal of each host is kept too, for a message that names a page refused while
    its robots.txt was fetched (see mash.fetch._pages.Robots).
    """

    def __init__(self, allow: Sequence[Network] = ()) -> None:
        self._allow = tuple(allow)
        self._literals: dict[str, tuple[str, str] | None] = {}  # host: (address, kind)
        self._refused: dict[str, Refused] = {}

    def kind(self, address: Address) -> str | None:
        """Return why a connection to ``address`` is refused, or None if it may go."""
        kind = address_kind(address)
        if kind is None or self._allowed(address):
            return None
        return kind

    def _allowed(self, address: Address) -> bool:
        candidates = (address, embedded_ipv4(address))
        return any(
            a is not None and a.version == n.version and a in n
            for n in self._allow
            for a in candidates
        )

    def check_host(self, host: str) -> None:
        """Raise Refused when ``host`` is an IP literal the guard refuses; names pass here
        (their addresses are judged when resolved)."""
        if host not in self._literals:
            self._literals[host] = self._judge_literal(host)
        if (verdict := self._literals[host]) is not None:
            raise self._refuse(host, *verdict)

    def _judge_literal(self, host: str) -> tuple[str, str] | None:
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            # aiohttp takes any host with a colon, or of digits and dots, for an address
            # and connects without resolving it ("127.1" is 127.0.0.1): refuse what we
            # cannot read as one.
            if ":" in host or host.replace(".", "").isdigit():
                return host, "odd-numeric"
            return None
        kind = self.kind(address)
        return None if kind is None else (str(address), kind)

    def _refuse(self, host: str, address: str, kind: str) -> Refused:
        refused = self._refused[_key(host)] = Refused(host, address, kind)
        return refused

    def filter(self, host: str, addresses: Iterable[str]) -> list[str]:
        """Return the ``addresses`` of ``host`` the guard allows; raise Refused if none."""
        allowed: list[str] = []
        first: tuple[str, str] | None = None
        for text in addresses:
            kind = self.kind(ipaddress.ip_address(text.partition("%")[0]))
            if kind is None:
                allowed.append(text)
            elif first is None:
                first = (text, kind)
        if not allowed and first is not None:
            raise self._refuse(host, *first)
        return allowed

    def refused(self, host: str) -> Refused | None:
        """Return the last refusal of ``host``, or None."""
        return self._refused.get(_key(host))


def _key(host: str) -> str:
    return host.lower().strip("[]")


class GuardedResolver(aiohttp.abc.AbstractResolver):
    """Resolve names for aiohttp, keeping only the answers the guard allows.

    aiohttp connects to nothing but what this returns, so the address connected to
    is a checked one. IP literals never reach a resolver: ``Guard.check_host``.
    """

    def __init__(self, guard: Guard, inner: aiohttp.abc.AbstractResolver | None = None) -> None:
        self._guard = guard
        self._inner = inner or aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[aiohttp.abc.ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        kept = set(self._guard.filter(host, (answer["host"] for answer in answers)))
        return [answer for answer in answers if answer["host"] in kept]

    async def close(self) -> None:
        await self._inner.close()
