"""Read a response body under a size cap counted on decoded bytes.

Decompression runs in bounded steps (``_STEP`` bytes of output at a time), so a
gzip bomb is refused at the cap without ever inflating more than the cap plus one
step. httpx's own decoders inflate a whole network chunk at once; we read the raw
stream and decode here instead (see #3).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import httpx

_STEP = 64 * 1024
ACCEPT_ENCODING = "gzip, deflate"


class BodyTooLarge(Exception):
    """The decoded body passed the size cap."""


class BadEncoding(Exception):
    """The body's Content-Encoding is unknown or its compressed data is corrupt."""


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


async def read_body(response: httpx.Response, max_bytes: int) -> bytes:
    """Return the decoded body, or raise BodyTooLarge as soon as it passes ``max_bytes``."""
    decoder = _decoder(response.headers.get("content-encoding", ""))
    declared = response.headers.get("content-length", "")
    if isinstance(decoder, _Identity) and declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge(f"Content-Length {int(declared)} is over the {max_bytes} byte cap")
    body = bytearray()
    async for raw in response.aiter_raw():
        for piece in decoder.feed(raw):
            _append(body, piece, max_bytes)
    for piece in decoder.flush():
        _append(body, piece, max_bytes)
    return bytes(body)


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
