"""Choose a blurb: one or two sentences quoted verbatim from a post (pure).

The blurb is about the post's point: sentences are scored by how much of the post's
own vocabulary (and title) they carry, never a greeting, disclosure or boilerplate,
and not simply the first sentence.
"""

from __future__ import annotations

import re
from collections import Counter

_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"”’)]?\s+(?=[\"“‘(]?[A-Z0-9])")
STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "let",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "also",
        "one",
        "get",
        "got",
        "us",
        "may",
        "might",
        "must",
        "much",
        "many",
        "make",
        "made",
        "even",
        "every",
        "really",
        "still",
        "well",
        "way",
    ]
)
# Sentences that are never a blurb (see #5).
_BOILERPLATE = re.compile(
    r"^(hi|hello|hey|dear|welcome|greetings|happy (monday|friday)|thanks for reading)\b"
    r"|\b(disclosure|disclaimer|affiliate|sponsored|this post (originally )?appeared|"
    r"appeared first on|subscribe|sign up|leave a (reply|comment)|share this|click here|"
    r"read more|continue reading|follow (us|me|this blog)|in this (post|article)|"
    r"newsletter|cookie|all rights reserved)\b",
    re.IGNORECASE,
)


_NOT_WORD_CHARS = '!"#$%&()*+,./:;<=>?@[\\]^_`{|}~0123456789“”‘’—–…«»·•'
# str.translate is fast only on ASCII text; a post with one "é" took ten times as long.
# So the few non-ASCII separators are replaced first, then the ASCII ones in the UTF-8
# bytes, where a multi-byte character never contains an ASCII byte (see #5).
_WIDE_NOT_WORD = tuple(c for c in _NOT_WORD_CHARS if not c.isascii())
_ASCII_NOT_WORD = "".join(c for c in _NOT_WORD_CHARS if c.isascii()).encode()
_NOT_WORD_BYTES = bytes.maketrans(_ASCII_NOT_WORD, b" " * len(_ASCII_NOT_WORD))


def words(text: str) -> list[str]:
    """Return the lower-cased words of text (letters, apostrophes and hyphens).

    Translating and splitting run in C: several times faster than a regex (see #5).
    """
    text = text.lower()
    for c in _WIDE_NOT_WORD:
        if c in text:
            text = text.replace(c, " ")
    raw = text.encode("utf-8", "surrogatepass").translate(_NOT_WORD_BYTES)
    return raw.decode("utf-8", "surrogatepass").split()


def split_sentences(text: str) -> list[str]:
    """Split plain text into sentences, one paragraph line at a time."""
    out: list[str] = []
    for line in text.splitlines():
        line = " ".join(line.split())
        if line:
            out.extend(s.strip() for s in _SENTENCE_END.split(line) if s.strip())
    return out


def _usable(sentence: str) -> bool:
    count = len(sentence.split())
    return 6 <= count <= 60 and sentence[-1:] in '.!?…"”’)' and not _BOILERPLATE.search(sentence)


def choose_blurb(text: str, title: str, budget: int = 280) -> str:
    """Return one or two consecutive sentences of text that best carry its point.

    Returns "" when no sentence is usable. Sentences are kept verbatim.
    """
    sentences = split_sentences(text)
    content = [w for w in words(text) if w not in STOPWORDS and len(w) > 2]
    if not sentences or not content:
        return ""
    freq = Counter(content)
    top = freq.most_common(1)[0][1]
    title_words = {w for w in words(title) if w not in STOPWORDS}
    best, best_score = "", 0.0
    for i, sentence in enumerate(sentences):
        if not _usable(sentence):
            continue
        tokens = [w for w in words(sentence) if w not in STOPWORDS and len(w) > 2]
        if not tokens:
            continue
        score = sum(freq[w] / top for w in tokens) / len(tokens) ** 0.5
        score += 0.4 * len(title_words & set(tokens))
        score *= 0.8 if i == 0 else 1.0  # the opening sentence is often scene-setting
        candidate = sentence
        nxt = sentences[i + 1] if i + 1 < len(sentences) else ""
        if nxt and _usable(nxt) and len(sentence) + 1 + len(nxt) <= budget and len(sentence) < 140:
            candidate = f"{sentence} {nxt}"
        if len(candidate) > budget:
            continue
        if score > best_score:
            best, best_score = candidate, score
    return best
