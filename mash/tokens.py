"""The hashed words and word n-grams of many texts at once, with numpy (see #5).

Ranking reads every post's words three ways: topic-word counts, promotional phrases
and the 5-word shingles that find copies. Splitting 20,000 posts into Python strings
and hashing each shingle in Python was most of rank's 8 s. Here a batch of texts is
one byte array, and its words are found and hashed with array operations.

A word is what ``blurb.words`` gives (the same lower-casing and separators), and its
hash is the same in every process and run, so the same posts always rank the same.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from mash.blurb import _NOT_WORD_BYTES, _WIDE_NOT_WORD

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]

# Non-ASCII characters that end a word: blurb's wide separators and the spaces that
# str.split() splits on. They are found by their code point (see _fix_wide).
_WIDE_SEPARATORS = np.array(
    sorted({ord(c) for c in _WIDE_NOT_WORD} | {c for c in range(0x80, 0x3001) if chr(c).isspace()}),
    dtype=np.int64,
)
# One translation of the UTF-8 bytes: ASCII letters lower-cased, blurb's ASCII
# separators and whitespace made spaces; control characters that do not split words
# (str.split keeps them inside one) made DEL, so "is a word byte" is "> 32".
_TABLE = bytearray(_NOT_WORD_BYTES)
for _byte in range(256):
    if chr(_byte).isupper() and _byte < 128:
        _TABLE[_byte] = _byte + 32
    elif _byte < 32 and not chr(_byte).isspace():
        _TABLE[_byte] = 0x7F
    elif _byte <= 32:
        _TABLE[_byte] = 32
_TABLE[0] = 0  # the boundary between two texts
_TRANSLATION = bytes(_TABLE)

_GRAM = np.uint64(0x9E3779B97F4A7C15)  # odd: multiplying by it loses nothing
_TAIL = np.uint64(0xC2B2AE3D27D4EB4F)
_LENGTH = np.uint64(0xD6E8FEB86659FD93)
# _LOW[k] keeps the first k bytes of a little-endian 8-byte read
_LOW = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)


def mix(x: U64) -> U64:
    """Return splitmix64's finaliser of x: every input bit moves every output bit."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@dataclass(frozen=True)
class Words:
    """Every word of a batch of texts, in order, as hashes."""

    hashes: U64  # mixed hash of each word
    text: I64  # the index of the text each word is in
    first: I64  # the index of each text's first word; one more entry: the total

    def count(self, i: int) -> int:
        """Return the number of words of text i."""
        return int(self.first[i + 1] - self.first[i])

    def _runs(self, n: int) -> U64:
        """Return the hash of every run of n consecutive words, across texts or not."""
        size = max(len(self.hashes) - n + 1, 0)
        g = self.hashes[:size].copy()
        for k in range(1, n):
            g *= _GRAM
            g += self.hashes[k : k + size]
        return g

    def grams(self, n: int) -> tuple[U64, I64]:
        """Return the hashes of the n-word runs inside one text, and each run's text.

        A run's hash is a polynomial of its words' hashes, so ``phrase_hash`` of the same
        words gives the same value, and its low bits are as random as the words' hashes.
        """
        g = self._runs(n)
        inside = self.text[: len(g)] == self.text[n - 1 :]
        return g[inside], self.text[: len(g)][inside]

    def openings(self, n: int) -> list[int]:
        """Return the hash of each text's first n words (as grams gives), 0 if it has fewer."""
        whole = np.flatnonzero(np.diff(self.first) >= n)
        g = np.zeros(len(whole), dtype=np.uint64)
        for k in range(n):
            g *= _GRAM
            g += self.hashes[self.first[whole] + k]
        found = np.zeros(len(self.first) - 1, dtype=np.uint64)
        found[whole] = g
        return [int(h) for h in found.tolist()]

    def sample(self, n: int, every: int) -> tuple[U64, I64]:
        """Return the n-word runs (as grams) whose hash is a multiple of ``every``.

        The same as filtering grams' result, with less work: most runs are dropped
        before they are checked for crossing into the next text.
        """
        g = self._runs(n)
        if every & (every - 1):
            at = np.flatnonzero(g % np.uint64(every) == 0)
        else:  # a power of two: a mask, several times faster than a division
            at = np.flatnonzero((g & np.uint64(every - 1)) == 0)
        at = at[self.text[at] == self.text[at + n - 1]]
        return g[at], self.text[at]

    def wholes(self) -> list[int]:
        """Return the hash of each text's words, all of them in order (0 for no words)."""
        last = np.repeat(self.first[1:] - 1, np.diff(self.first))  # each word's text's last
        powers = np.full(int((last - np.arange(len(last))).max(initial=0)) + 1, _GRAM)
        powers[0] = 1
        powers = np.multiply.accumulate(powers)  # wraps modulo 2**64, as wanted
        whole = np.zeros(len(self.first) - 1, dtype=np.uint64)
        np.add.at(whole, self.text, self.hashes * powers[last - np.arange(len(last))])
        return [int(h) for h in whole.tolist()]

    def grams_at(self, n: int, at: I64) -> tuple[U64, I64]:
        """Return the hashes of the n-word runs starting at word positions ``at``.

        Runs that would cross into the next text are left out; returns their hashes and
        their starting positions.
        """
        at = at[(at + n <= len(self.hashes))]
        at = at[self.text[at] == self.text[at + n - 1]]
        g = self.hashes[at].copy()
        for k in range(1, n):
            g *= _GRAM
            g += self.hashes[at + k]
        return g, at


@lru_cache(maxsize=1)  # once per process
def keep_freed_memory() -> None:
    """Ask glibc to keep freed memory for reuse rather than give it back at once.

    Each batch makes and frees about 15 MB of arrays. By default glibc returns such
    memory to the system after each batch and takes it back for the next, and the page
    faults were a third of ranking's time (0.6 s of system time for 20,000 posts, see
    #5). Peak memory is unchanged. Elsewhere than glibc this does nothing.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_TRIM_THRESHOLD, 128 << 20)
    mallopt(_M_MMAP_THRESHOLD, 32 << 20)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h


def hash_words(texts: Sequence[str]) -> Words:
    """Find and hash the words of texts, as blurb.words splits them.

    Letters are lower-cased one by one (so a final capital sigma becomes "σ", not "ς").
    A word's hash is of its length, first 8 and last 8 bytes (UTF-8): two words alike in
    all three but not their middle bytes (both over 16 bytes) have the same hash.
    """
    joined = "\x00".join(t.replace("\x00", " ") if "\x00" in t else t for t in texts)
    raw = joined.encode("utf-8", "surrogatepass").translate(_TRANSLATION)
    # a separator before and 8 after: every word has edges, and 8-byte reads stay inside
    data = np.zeros(len(raw) + 9, dtype=np.uint8)
    data[1 : len(raw) + 1] = np.frombuffer(raw, dtype=np.uint8)
    if not joined.isascii():
        _fix_wide(data)
    word = data > 32
    edges = np.flatnonzero(word[1:] != word[:-1]) + 1
    starts, ends = edges[0::2], edges[1::2]
    # every 8 bytes from each byte on, read little-endian
    eight = np.ndarray((len(data) - 7,), dtype="<u8", buffer=data.data, strides=(1,))
    lengths = ends - starts
    head = eight[starts] & _LOW[np.minimum(lengths, 8)]
    long = np.flatnonzero(lengths > 8)
    head[long] += eight[ends[long] - 8] * _TAIL  # and the last 8 bytes of longer words
    hashes = mix(head + lengths.astype(np.uint64) * _LENGTH)
    first = np.empty(len(texts) + 1, dtype=np.int64)
    first[0], first[-1] = 0, len(starts)
    first[1:-1] = np.searchsorted(starts, np.flatnonzero(data == 0)[1 : len(texts)])
    text = np.repeat(np.arange(len(texts), dtype=np.int64), np.diff(first))
    return Words(hashes, text, first)


def _fix_wide(data: npt.NDArray[np.uint8]) -> None:
    """Make the non-ASCII separators of UTF-8 data spaces, and lower-case its letters.

    Only the few non-ASCII characters are looked at, by their code points; a letter
    whose lower case is longer in UTF-8 (only "İ") is left as it is.
    """
    lead = np.flatnonzero(data >= 0xC2)  # the first byte of each 2-, 3- or 4-byte character
    b0 = data[lead].astype(np.int64)
    b1 = (data[lead + 1] & 0x3F).astype(np.int64)
    b2 = (data[lead + 2] & 0x3F).astype(np.int64)
    size = np.where(b0 < 0xE0, 2, np.where(b0 < 0xF0, 3, 4))
    code = np.where(size == 2, ((b0 & 0x1F) << 6) | b1, ((b0 & 0x0F) << 12) | (b1 << 6) | b2)
    code[size == 4] = -1  # beyond the separators and cased letters looked for
    apart = np.isin(code, _WIDE_SEPARATORS)
    for k in range(3):
        data[lead[apart & (size > k)] + k] = 32
    for point in np.unique(code[~apart & (code >= 0)]).tolist():
        upper, lower = chr(point).encode("utf-8"), chr(point).lower().encode("utf-8")
        if upper != lower and len(upper) == len(lower):
            where = lead[code == point]
            for k, byte in enumerate(lower):
                data[where + k] = byte


def word_hashes(words: Iterable[str]) -> list[int]:
    """Return the hash of each word, as hash_words gives it."""
    listed = list(words)
    hashed = hash_words(listed)
    if len(hashed.hashes) != len(listed):
        raise ValueError(f"not single words: {listed!r}")
    return [int(h) for h in hashed.hashes]


def phrase_hash(phrase: str) -> tuple[int, int]:
    """Return (number of words, hash) of a phrase, as Words.grams gives its runs."""
    hashed = hash_words([phrase])
    n = len(hashed.hashes)
    grams, _ = hashed.grams(n)
    return n, int(grams[0])


_TOP = 3 if sys.byteorder == "little" else 0  # which uint16 of a uint64 is its top


class HashSet:
    """A small set of hashes, found among many: which positions hold one, and which."""

    def __init__(self, values: Sequence[int]) -> None:
        hashes = np.array(values, dtype=np.uint64)
        self.order = np.argsort(hashes).astype(np.int64)
        self.sorted = hashes[self.order]
        # a first, cheap look at each hash's top 16 bits rules out nearly all of them
        self.slots = np.zeros(1 << 16, dtype=bool)
        self.slots[self.sorted >> np.uint64(48)] = True

    def find(self, hashes: U64) -> tuple[I64, I64]:
        """Return the positions in hashes of the set's values, and each one's index in it."""
        if not len(self.sorted):
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty
        top = hashes.view(np.uint16)[_TOP::4]  # the top 16 bits of each: no shift needed
        maybe = np.flatnonzero(self.slots[top])
        at = np.minimum(np.searchsorted(self.sorted, hashes[maybe]), len(self.sorted) - 1)
        found = self.sorted[at] == hashes[maybe]
        return maybe[found], self.order[at[found]]
