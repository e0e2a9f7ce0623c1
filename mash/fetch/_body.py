"""Read a response body under a size cap counted on decoded bytes.

Decompression runs in bounded steps (``_STEP`` bytes of output at a time), so a
gzip bomb is refused at the cap without ever inflating more than the cap plus one
step. httpx's own decoders inflate a whole network chunk at once; we read the raw
stream and decode here instead (see #3).
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Iterator

import httpx

_STEP = 64 * 1024
ACCEPT_ENCODING = "gzip, deflate"
PACE_AFTER = 2.0  # seconds of body before its pace may condemn it (see read_body)


class BodyTooLarge(Exception):
    """The decoded body passed the size cap."""


class BadEncoding(Exception):
    """The body's Content-Encoding is unknown or its compressed data is corrupt."""


class TooSlow(Exception):
    """At the pace it comes, the body cannot end before the deadline."""


class _Identity:
    def feed(self, data: bytes) -> Iterator[bytes]:
        if data:
            yield data

    def flush(self) -> Iterator[bytes]:
        return iter(())


class _Inflate:
    """Inflate gzip (several members allowed) or deflate (zlib-wrapped or raw)."""

    def __init__(self, gzip: bool) -> None:
        self._gzip = gzip
        self._d: zlib._Decompress | None = zlib.decompressobj(31) if gzip else None

    def _start(self, data: bytes) -> zlib._Decompress:
        if self._d is None:
            # Servers send "deflate" both zlib-wrapped (RFC) and raw (old IIS).
            wrapped = len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
            self._d = zlib.decompressobj(15 if wrapped else -15)
        return self._d

    def feed(self, data: bytes) -> Iterator[bytes]:
        try:
            yield from self._inflate(data)
        except zlib.error as e:
            raise BadEncoding(f"corrupt compressed body: {e}") from e

    def _inflate(self, data: bytes) -> Iterator[bytes]:
        d = self._start(data)
        while True:
            out = d.decompress(data, _STEP)
            if out:
                yield out
            if d.eof:
                rest = d.unused_data
                if not (self._gzip and rest.startswith(b"\x1f\x8b")):
                    return  # trailing garbage after the stream: ignore it
                d = self._d = zlib.decompressobj(31)
                data = rest
                continue
            data = d.unconsumed_tail
            if not data and len(out) < _STEP:
                return

    def flush(self) -> Iterator[bytes]:
        if self._d is not None and not self._d.eof:
            out = self._d.flush()
            if out:
                yield out


def _decoder(content_encoding: str) -> _Identity | _Inflate:
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if not codings:
        return _Identity()
    if len(codings) == 1 and codings[0] in ("gzip", "x-gzip", "deflate"):
        return _Inflate(gzip=codings[0] != "deflate")
    raise BadEncoding(f"unsupported Content-Encoding: {content_encoding}")


async def read_body(
    response: httpx.Response, max_bytes: int, give_up_at: float | None = None
) -> bytes:
    """Return the decoded body, or raise BodyTooLarge as soon as it passes ``max_bytes``.

    With ``give_up_at`` (the deadline, on the event loop's clock) and a Content-Length,
    raise TooSlow once the body, after PACE_AFTER seconds, comes too slowly to be
    complete by then: a body dripping in (a stuck or overloaded server) fails in a
    few seconds instead of holding its per-host slot to the deadline (see #18).
    """
    decoder = _decoder(response.headers.get("content-encoding", ""))
    declared = response.headers.get("content-length", "")
    if isinstance(decoder, _Identity) and declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge(f"Content-Length {int(declared)} is over the {max_bytes} byte cap")
    pace = _Pace(int(declared), give_up_at) if declared.isdigit() and give_up_at else None
    body = bytearray()
    async for raw in response.aiter_raw():
        if pace is not None:
            pace.check(len(raw))
        for piece in decoder.feed(raw):
            _append(body, piece, max_bytes)
    for piece in decoder.flush():
        _append(body, piece, max_bytes)
    return bytes(body)


class _Pace:
    """Judge whether a body of ``total`` bytes, at its mean pace so far, ends in time."""

    def __init__(self, total: int, give_up_at: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._start = self._loop.time()
        self._total = total
        self._give_up_at = give_up_at
        self._seen = 0

    def check(self, received: int) -> None:
        """Count ``received`` more bytes; raise TooSlow when the body cannot end in time."""
        self._seen += received
        took = self._loop.time() - self._start
        if took < PACE_AFTER or self._seen >= self._total:
            return
        ends = self._start + took * self._total / max(self._seen, 1)
        if ends > self._give_up_at:
            rate = self._seen / took
            raise TooSlow(
                f"the body came at {rate / 1024:.1f} KiB/s ({self._seen} of {self._total} "
                f"bytes in {took:.1f} s): at that pace it needs {ends - self._start:.0f} s"
            )


def _append(body: bytearray, piece: bytes, max_bytes: int) -> None:
    if len(body) + len(piece) > max_bytes:
        raise BodyTooLarge(f"body is over the {max_bytes} byte cap")
    body += piece


async def drain(response: httpx.Response, limit: int = 64 * 1024) -> None:
    """Read a small unwanted body so the connection can be reused; give up past ``limit``."""
    seen = 0
    async for raw in response.aiter_raw():
        seen += len(raw)
        if seen > limit:
            return
