"""Rank the month's posts: score, collapse duplicates, keep variety, pick (pure).

``rank_posts(posts, newsletter, edition, history, now)`` decides everything from
records and the ``now`` passed in: no clock, network or database. Every decision
carries its reason, so ``mash posts`` can explain it.
"""

from __future__ import annotations

import gc
import math
import re
from array import array
from collections import Counter
from collections.abc import Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import chain, pairwise, repeat
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from mash.blurb import blog_wide_descriptions, blurb_of, words
from mash.dates import date_flags
from mash.records import Edition, Newsletter, Ranking, ScoredPost, StoredPost
from mash.tokens import HashSet, Words, hash_words, keep_freed_memory, phrase_hash, word_hashes
from mash.urls import url_key

# The built-in profile of the default topic; the config's topic text and example posts
# are added to it. Weights say how strongly a word marks a post as on-topic.
TOPIC_TERMS: dict[str, float] = {
    "customer": 3,
    "customers": 3,
    "service": 2,
    "support": 2,
    "experience": 1.5,
    "cx": 2,
    "agent": 2,
    "agents": 2,
    "complaint": 2,
    "complaints": 2,
    "satisfaction": 2,
    "csat": 2.5,
    "nps": 2,
    "loyalty": 1.5,
    "empathy": 2,
    "refund": 1.5,
    "refunds": 1.5,
    "ticket": 1.5,
    "tickets": 1.5,
    "helpdesk": 2,
    "escalation": 2,
    "escalations": 2,
    "churn": 1.5,
    "feedback": 1,
    "frontline": 1.5,
    "call": 0.5,
    "chat": 1,
    "queue": 1,
    "self-service": 2,
    "onboarding": 1,
    "apology": 1.5,
    "apologize": 1.5,
    "apologise": 1.5,
    "retention": 1,
    "journey": 1,
    "caller": 1.5,
    "callers": 1.5,
    "resolution": 1.5,
    "resolve": 1,
    "listening": 0.5,
    "trust": 0.5,
    "hospitality": 1.5,
    "clients": 1,
    "shoppers": 1,
    "guests": 1,
    "representative": 1,
    "reps": 1,
    "contact": 0.5,
}

# Words and phrases that mark a post as selling something or not being an article (#5).
PROMO_PHRASES: dict[str, tuple[str, ...]] = {
    "webinar": ("webinar", "webinars"),
    "sign-up call": ("register", "sign up", "save your seat", "reserve your spot", "join us"),
    "discount": ("discount", "promo code", "coupon", "% off", "free trial", "limited time"),
    "sponsored": ("sponsored", "paid partnership", "advertorial"),
    "hiring": (
        "we're hiring",
        "were hiring",
        "join our team",
        "job opening",
        "apply now",
        "open position",
        "open positions",
    ),
    "event listing": (
        "tickets",
        "early bird",
        "early-bird",
        "agenda",
        "venue",
        "keynote speaker",
        "keynote speakers",
    ),
    "product launch": (
        "announcing",
        "new release",
        "now available",
        "pricing plan",
        "pricing plans",
    ),
}


@dataclass(frozen=True)
class Weights:
    """How the score's parts combine; the defaults are the documented rule."""

    relevance: float = 0.55
    popularity: float = 0.15
    quality: float = 0.15
    recency: float = 0.15
    min_relevance: float = 0.25  # below this a post is off-topic
    promo_hits: int = 2  # this many promotional phrases mark a post promotional
    damping: float = 0.85  # a blog featured in each of the last `memory` issues
    memory: int = 3
    near_duplicate: float = 0.6  # Jaccard of sampled 5-word shingles (README: Curation)


def topic_profile(newsletter: Newsletter) -> dict[str, float]:
    """Return the weighted words of the newsletter's topic."""
    profile = dict(TOPIC_TERMS)
    extra = Counter(words(newsletter.topic + " " + " ".join(newsletter.topic_examples)))
    for word, count in extra.items():
        if len(word) > 3:
            profile[word] = max(profile.get(word, 0.0), min(2.0, 0.5 + 0.25 * count))
    return profile


class Features(NamedTuple):
    """What rank needs of a post, computed once per post and run.

    A named tuple: made for every post of the month, and a tuple is made in a fifth
    of the time of a frozen dataclass (see #5).
    """

    key: str  # url_key of the post
    canonical_key: str  # url_key of its rel=canonical, "" when none or itself
    length: int  # words, of title x3 plus the first _TEXT_CHARS of text
    words: int  # words of the whole text; _WORDS_CAP + 1 when there are more
    promo: tuple[str, ...]
    fingerprint: array[int]  # sorted: its first _SKETCH values are the sketch
    origin: str = ""  # the blog the post says it first appeared on (blog_key), or ""
    head: str = ""  # title and hash of the first _HEAD_WORDS words ("" if fewer): see #5


@dataclass(frozen=True)
class TopicCounts:
    """The topic profile's words counted in posts: a row per post, a column per word.

    Titles count three times. Only the profile's words are kept: all words of 20,000
    posts would not fit the memory budget (see #5).
    """

    words: tuple[str, ...]
    table: npt.NDArray[np.int64]


# relevance and duplicates read the start of a post: enough, and bounded
_TEXT_CHARS = 8000
_BATCH_CHARS = 1 << 20  # of text, hashed at once (see features_of)
# Near-duplicate candidates share one of the _SKETCH smallest fingerprint hashes (a
# bottom-k sketch): copies (Jaccard ~0.98) almost surely do, so only they are compared.
_SKETCH = 6
SHORTLIST = 30  # candidates given a suggested blurb for the editor's draft
# quality is the same for any length from 600 words, so counting stops just past it
_WORDS_CAP = 600


# "This post originally appeared on Modern Service." names the original's blog: the post
# is a syndicated copy whatever its date (copies are often dated before their original).
_ORIGIN_RE = re.compile(
    r"\b(?:originally|first)\s+(?:appeared|published|posted)\s+(?:on|at|in)\s+([^\n.!?]{2,80})",
    re.IGNORECASE,
)


# Copies whose text was edited further down (paragraphs moved, a list reworded) keep
# the title and the opening: the same title and first 25 words make a copy (see #5).
_HEAD_WORDS = 25
_ORIGIN_VERBS = HashSet(word_hashes(["appeared", "published", "posted"]))


def blog_key(name: str) -> str:
    """Return a blog name as compared with a copy's attribution: lower case, words only."""
    key = " ".join(re.findall(r"[^\W_]+", name.lower()))
    return key.removeprefix("the ")


def syndicated_from(text: str) -> str:
    """Return the blog_key of the blog text says it originally appeared on, or ""."""
    for part in (text[-600:], text[:600]):
        lower = part.lower()  # a cheap test first: the regex over every post costs a second
        if "appeared" not in lower and "published" not in lower and "posted" not in lower:
            continue
        match = _ORIGIN_RE.search(part)
        if match:
            return blog_key(match.group(1))
    return ""


def post_features(post: StoredPost, profile: dict[str, float]) -> Features:
    """Return one post's features (features_of a list of one)."""
    return features_of([post], profile)[0][0]


def features_of(
    posts: Sequence[StoredPost], profile: dict[str, float]
) -> tuple[list[Features], TopicCounts]:
    """Compute posts' features (promotional phrases, fingerprint...) and topic counts.

    Works on batches of about a megabyte of text at a time (see mash.tokens): the
    memory stays bounded however many posts a month has.
    """
    keep_freed_memory()
    known = _PROFILES.get(tuple(profile)) or _PROFILES.setdefault(tuple(profile), _Profile(profile))
    batches: list[list[StoredPost]] = [[]]
    size = 0
    for post in posts:
        if size >= _BATCH_CHARS:
            batches.append([])
            size = 0
        batches[-1].append(post)
        size += min(len(post.text), _TEXT_CHARS)
    # numpy lets go of the GIL: two threads keep both cores busy for half the time
    with ThreadPoolExecutor(2) as pool:
        done = list(pool.map(_batch_features, batches, repeat(known)))
    found = [f for features, _ in done for f in features]
    table = np.concatenate([table for _, table in done])
    return found, TopicCounts(tuple(known.names), table)


def _batch_features(
    posts: Sequence[StoredPost], known: _Profile
) -> tuple[list[Features], npt.NDArray[np.int64]]:
    hashed = hash_words([p.text[:_TEXT_CHARS] for p in posts])
    titles = hash_words([p.title for p in posts])
    counts = _profile_counts(hashed, known) + 3 * _profile_counts(titles, known)
    promo = _promotional(hashed, titles, posts)
    prints = fingerprints(hashed)
    openings = hashed.openings(_HEAD_WORDS)
    title_keys = titles.wholes()
    # only a post with one of the verbs of "originally appeared on" may name its origin
    at, _ = _ORIGIN_VERBS.find(hashed.hashes)
    verbs = set(hashed.text[at].tolist())
    result = []
    sizes = np.diff(hashed.first).tolist()
    title_sizes = np.diff(titles.first).tolist()
    for i, post in enumerate(posts):
        tokens = sizes[i]
        key = url_key(post.url)
        canonical = url_key(post.canonical) if post.canonical else ""
        result.append(
            Features(
                key,
                canonical if canonical != key else "",
                tokens + 3 * title_sizes[i],
                min(tokens, _WORDS_CAP + 1)
                if tokens > _WORDS_CAP or len(post.text) <= _TEXT_CHARS
                else _word_count(post.text),
                promo[i],
                prints[i],
                syndicated_from(post.text) if i in verbs or len(post.text) > _TEXT_CHARS else "",
                f"{title_keys[i]:x}|{openings[i]:x}" if openings[i] else "",
            )
        )
    return result, counts


def _word_count(text: str) -> int:
    """Return the words of a text longer than the part hashed, _WORDS_CAP + 1 when there
    are more (quality needs no more)."""
    return len(words(text)[: _WORDS_CAP + 1])


class _Profile:
    """A topic profile's words as hashes, for counting them in a batch."""

    def __init__(self, profile: dict[str, float]) -> None:
        self.names = [w for w in profile if len(words(w)) == 1]
        self.hashes = HashSet(word_hashes(self.names))


_PROFILES: dict[tuple[str, ...], _Profile] = {}


def _profile_counts(hashed: Words, known: _Profile) -> npt.NDArray[np.int64]:
    """Return each text's counts of the profile's words: a row per text."""
    width, texts = len(known.names), len(hashed.first) - 1
    at, column = known.hashes.find(hashed.hashes)
    table = np.bincount(hashed.text[at] * width + column, minlength=texts * width)
    return table.reshape(texts, width)


def _promo_sets() -> tuple[HashSet, dict[int, tuple[HashSet, list[int]]]]:
    """Return the promotional phrases' first words, and by length their hashes and labels."""
    starts: list[int] = []
    by_size: dict[int, dict[int, int]] = {}
    for number, phrases in enumerate(PROMO_PHRASES.values()):
        for phrase in phrases:
            if "%" not in phrase:
                starts += word_hashes(words(phrase)[:1])
                size, value = phrase_hash(phrase)
                by_size.setdefault(size, {})[value] = number
    return HashSet(sorted(set(starts))), {
        size: (HashSet(list(found)), list(found.values())) for size, found in by_size.items()
    }


_PROMO_STARTS, _PROMO_BY_SIZE = _promo_sets()
_PROMO_LABELS = tuple(PROMO_PHRASES)
# promotional phrases are looked for in the title and the text's first words only
_PROMO_WORDS_READ = 700


def _promotional(
    hashed: Words, titles: Words, posts: Sequence[StoredPost]
) -> list[tuple[str, ...]]:
    """Return the labels of the promotional phrases in each post's title and start."""
    found: list[set[int]] = [set() for _ in posts]
    for words_of, read in ((hashed, _PROMO_WORDS_READ), (titles, None)):
        for i, label in _phrases_in(words_of, read):
            found[i].add(label)
    discount = _PROMO_LABELS.index("discount")
    for i, post in enumerate(posts):  # "% off" is not words
        if post.text.find("% off", 0, 4000) >= 0:
            found[i].add(discount)
    return [tuple(_PROMO_LABELS[k] for k in sorted(labels)) for labels in found]


def _phrases_in(hashed: Words, read: int | None) -> Iterator[tuple[int, int]]:
    """Yield (text, label) of the promotional phrases in texts' first ``read`` words."""
    starts, _ = _PROMO_STARTS.find(hashed.hashes)
    for size, (phrases, labels) in _PROMO_BY_SIZE.items():
        grams, at = hashed.grams_at(size, starts)
        hit, phrase = phrases.find(grams)
        text = hashed.text[at[hit]]
        if read is not None:
            early = at[hit] - hashed.first[text] + size <= read
            text, phrase = text[early], phrase[early]
        for i, k in zip(text.tolist(), phrase.tolist(), strict=True):
            yield i, labels[k]


def relevance(
    counts: TopicCounts, features: Sequence[Features], profile: dict[str, float]
) -> list[float]:
    """Score each post 0..1: BM25 saturation of topic words in title and text.

    Length-normalised; a word's weight is the profile's times its inverse document
    frequency among these posts.
    """
    if not features:
        return []
    k1, b, avg = 1.2, 0.75, 400.0
    n = len(features) + 1
    df = (counts.table > 0).sum(axis=0)
    idf = 0.5 + np.log(1 + n / (1 + df)) / math.log(1 + n)
    weight = np.array([profile[w] for w in counts.words], dtype=np.float64) * idf
    length = np.array([f.length for f in features], dtype=np.float64)
    norm = k1 * (1 - b + b * length / avg)
    tf = counts.table.astype(np.float64)
    total = (tf * (k1 + 1) / (tf + norm[:, None])) @ weight
    score = np.where(length > 0, 1 - np.exp(-total / 12), 0.0)
    return [float(x) for x in score.tolist()]


_SAMPLE = 8  # 1 in _SAMPLE of a text's 5-word shingles make its fingerprint


def fingerprint(text: str, sample: int = _SAMPLE) -> array[int]:
    """Return the fingerprint of one text (see fingerprints)."""
    return fingerprints(hash_words([text]), sample)[0]


def fingerprints(hashed: Words, sample: int = _SAMPLE) -> list[array[int]]:
    """Return a sample (1 in ``sample``) of each text's hashed word 5-grams, sorted.

    The Jaccard similarity of two samples estimates that of the full shingle sets
    (mod-sampling). The hashes are the same in every process and run, so the same
    posts always give the same similarities, duplicates and issue. An array of machine
    integers is a tenth of the memory of a set of Python ints (see #5).
    """
    grams, owner = hashed.sample(5, sample)
    values = grams.view(np.int64)
    order = np.lexsort((values, owner))
    values, owner = values[order], owner[order]
    fresh = np.ones(len(values), dtype=bool)
    fresh[1:] = (values[1:] != values[:-1]) | (owner[1:] != owner[:-1])
    values, owner = values[fresh], owner[fresh]
    bounds = (np.searchsorted(owner, np.arange(len(hashed.first))) * 8).tolist()
    packed = values.tobytes()
    return [array("q", packed[start:end]) for start, end in pairwise(bounds)]


def jaccard(a: Collection[int], b: Collection[int]) -> float:
    """Return the Jaccard similarity of two collections of distinct values."""
    if not a or not b:
        return 0.0
    shared = len(set(a).intersection(b))
    return shared / (len(a) + len(b) - shared)


def _popularity(posts: Sequence[StoredPost]) -> npt.NDArray[np.float64]:
    """Return comments and page views, each log-scaled to the month's top, the higher."""
    best = np.zeros(len(posts))
    for field in ("comments", "page_views"):
        raw = [getattr(p, field) for p in posts]
        known = np.array([-1 if v is None else v for v in raw], dtype=np.float64)
        top = known.max(initial=0.0)
        if top > 0:
            best = np.maximum(best, np.log1p(np.maximum(known, 0.0)) / np.log1p(top))
    return best


def _quality(features: Sequence[Features]) -> npt.NDArray[np.float64]:
    """Return 0..1 for length (full from 600 words, little under 80) less 0.25 per promo hit."""
    count = np.array([f.words for f in features], dtype=np.float64)
    length = np.where(count >= 80, np.minimum(1.0, count / 600), count / 400)
    promo = np.array([len(f.promo) for f in features], dtype=np.float64)
    return np.maximum(0.0, length - 0.25 * promo)


def _recency(
    posts: Sequence[StoredPost], start: datetime, end: datetime
) -> npt.NDArray[np.float64]:
    """Return 0..1: how late in the month each post was published (or first seen)."""
    span = (end - start).total_seconds() or 1.0
    when = np.array([(p.published or p.first_seen).timestamp() for p in posts], dtype=np.float64)
    return np.clip((when - start.timestamp()) / span, 0.0, 1.0)


_PARTS = ("relevance", "popularity", "quality", "recency")  # of the score, weighted


def score_posts(
    posts: Sequence[StoredPost],
    features: Sequence[Features],
    counts: TopicCounts,
    newsletter: Newsletter,
    start: datetime,
    end: datetime,
    weights: Weights = Weights(),
) -> list[ScoredPost]:
    """Score every post; mark off-topic and promotional ones out (nothing else decided).

    Each part is rounded to 3 places, and the score is the posts' weight times the
    weighted sum of the rounded parts, rounded to 4: what ``mash posts`` shows adds up.
    """
    if not posts:
        return []
    relevances = relevance(counts, features, topic_profile(newsletter))
    parts = np.round(
        np.stack(
            [
                np.array(relevances),
                _popularity(posts),
                _quality(features),
                _recency(posts, start, end),
            ],
            axis=1,
        ),
        3,
    )
    factors = np.array([getattr(weights, part) for part in _PARTS])
    weight = np.array([p.weight for p in posts], dtype=np.float64)
    totals = np.round(weight * (parts @ factors), 4).tolist()
    scored = []
    for post, feats, rel, values, total in zip(
        posts, features, relevances, parts.tolist(), totals, strict=True
    ):
        status, reason = "candidate", f"score {total:.3f}"
        if len(feats.promo) >= weights.promo_hits:
            status, reason = "out", f"promotional ({', '.join(feats.promo)})"
        elif rel < weights.min_relevance:
            status, reason = "out", f"off-topic (relevance {rel:.2f} < {weights.min_relevance})"
        named = (*zip(_PARTS, values, strict=True), ("weight", post.weight))
        scored.append(ScoredPost(post, total, named, status, reason))
    return scored


def collapse_duplicates(
    scored: Sequence[ScoredPost], features: Sequence[Features], weights: Weights = Weights()
) -> list[ScoredPost]:
    """Mark every copy of a post as out, keeping the original.

    First, a post whose rel=canonical names another URL is a copy of it, even when the
    original is not among these posts. Then, among the rest, the same URL key or
    near-identical text (Jaccard of sampled 5-word shingles; candidates found through
    an inverted index, so the work grows with the posts, not their pairs). Originals
    are the posts a copy names (by rel=canonical or by "originally appeared on"), else
    the earliest published.
    """
    by_key = {f.key: i for i, f in enumerate(features)}
    result = list(scored)
    named: set[int] = set()
    for i, feats in enumerate(features):
        if not feats.canonical_key:
            continue
        j = by_key.get(feats.canonical_key)
        if j is None:
            result[i] = _copy(
                scored[i],
                scored[i].post.canonical,
                "rel=canonical; original not among this month's posts",
            )
        elif j != i:
            named.add(j)
            result[i] = _copy(scored[i], scored[j].post.url, "rel=canonical")
    order = sorted(
        (i for i in range(len(scored)) if result[i].duplicate_of is None),
        key=lambda i: (
            i not in named,
            bool(features[i].origin),  # a post that names where it first appeared is a copy
            scored[i].post.published or scored[i].post.first_seen,
            scored[i].post.id,
        ),
    )
    similar = _sketch_neighbours(features)
    kept: set[int] = set()
    kept_keys: dict[str, int] = {}
    kept_heads: dict[str, int] = {}
    for i in order:
        feats = features[i]
        original, how = _find_original(i, features, kept_keys, similar, kept, weights)
        if original is None and feats.head in kept_heads:
            original, how = kept_heads[feats.head], f"same title and first {_HEAD_WORDS} words"
        if original is not None and original != i:
            result[i] = _copy(scored[i], scored[original].post.url, how)
            continue
        kept.add(i)
        kept_keys.setdefault(feats.key, i)
        if feats.head:
            kept_heads.setdefault(feats.head, i)
    return result


def _sketch_neighbours(features: Sequence[Features]) -> dict[int, list[int]]:
    """Return, for each post that has any, the posts sharing two of its sketch values.

    Only they can be near-identical (see _SKETCH). A value in over a hundred posts is
    boilerplate, not copying, and is not counted. Found by sorting all sketch values at
    once: most posts share none, and are never looked at again.
    """
    sketches = [f.fingerprint[:_SKETCH] for f in features]
    values = np.fromiter(chain.from_iterable(sketches), dtype=np.int64)
    owners = np.repeat(np.arange(len(sketches)), [len(s) for s in sketches])
    order = np.argsort(values, kind="stable")
    values, owners = values[order], owners[order]
    starts = np.flatnonzero(np.diff(values, prepend=values[:1] - 1) != 0)
    sizes = np.diff(starts, append=len(values))
    wanted = (sizes >= 2) & (sizes <= 100)
    group = np.repeat(np.arange(len(sizes)), sizes)
    inside = wanted[group]  # keep the values in 2 to 100 posts only
    group, owners = group[inside], owners[inside]
    pairs = [np.zeros(0, dtype=np.int64)]
    for gap in range(1, int(sizes[wanted].max(initial=1))):  # each pair, by its distance
        same = np.flatnonzero(group[gap:] == group[:-gap])
        a, b = owners[same], owners[same + gap]
        pairs.append(np.minimum(a, b) * len(sketches) + np.maximum(a, b))
    pair, count = np.unique(np.concatenate(pairs), return_counts=True)
    neighbours: dict[int, list[int]] = {}
    for a, b in map(divmod, pair[count >= 2].tolist(), repeat(len(sketches))):  # sorted
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    return neighbours


def _copies_of_nearby(
    scored: list[ScoredPost],
    features: Sequence[Features],
    nearby: Sequence[StoredPost],
    profile: dict[str, float],
    weights: Weights,
) -> list[ScoredPost]:
    """Mark the syndicated copies whose original is a post of another month.

    Only a post that names its original's blog is looked for, and only among that
    blog's posts: a copy found is out, with the original's URL; one not found stays
    (the original's blog may not be among the feeds).
    """
    wanted = {
        f.origin for f, s in zip(features, scored, strict=True) if f.origin and not s.duplicate_of
    }
    if not wanted or not nearby:
        return scored
    posts = [post for post in nearby if blog_key(post.blog) in wanted]
    by_blog: dict[str, list[tuple[StoredPost, Features]]] = {}
    for post, found in zip(posts, features_of(posts, profile)[0], strict=True):
        by_blog.setdefault(blog_key(post.blog), []).append((post, found))
    result = list(scored)
    for i, (item, feats) in enumerate(zip(scored, features, strict=True)):
        if item.duplicate_of is not None or feats.origin not in by_blog:
            continue
        best, similarity, same_head = max(
            (
                (
                    p,
                    jaccard(feats.fingerprint, f.fingerprint),
                    bool(f.head) and f.head == feats.head,
                )
                for p, f in by_blog[feats.origin]
            ),
            key=lambda found: (
                found[1] >= weights.near_duplicate or found[2],
                found[1],
                -found[0].id,
            ),
        )
        if similarity >= weights.near_duplicate or same_head:
            when = best.published.strftime("%Y-%m") if best.published else "another month"
            why = (
                f"near-identical text ({similarity:.2f})"
                if not same_head
                else "same title and opening"
            )
            result[i] = _copy(item, best.url, f"syndicated copy, {why}; original of {when}")
    return result


def _copy(item: ScoredPost, original: str, how: str) -> ScoredPost:
    return replace(
        item, status="out", reason=f"duplicate of {original} ({how})", duplicate_of=original
    )


def _find_original(
    i: int,
    features: Sequence[Features],
    kept_keys: dict[str, int],
    similar: dict[int, list[int]],
    kept: set[int],
    weights: Weights,
) -> tuple[int | None, str]:
    feats = features[i]
    if feats.key in kept_keys:
        return kept_keys[feats.key], "same URL"
    best, best_similarity = None, 0.0
    for j in similar.get(i, ()):
        if j in kept:
            similarity = jaccard(feats.fingerprint, features[j].fingerprint)
            if similarity > best_similarity:
                best, best_similarity = j, similarity
    if best is not None and best_similarity >= weights.near_duplicate:
        return best, f"near-identical text ({best_similarity:.2f})"
    return None, ""


def choose_listening(
    house: Sequence[ScoredPost], edition: Edition, all_posts: Sequence[ScoredPost]
) -> tuple[ScoredPost | None, str]:
    """Pick "Someone Was Listening": the editor's pick, else most page views, else comments."""
    if edition.listening:
        wanted = url_key(edition.listening)
        for item in all_posts:
            if url_key(item.post.url) == wanted:
                return item, "the editor's pick"
    if not house:
        return None, "no house post this month"

    def recency(s: ScoredPost) -> float:
        return (s.post.published or s.post.first_seen).timestamp()

    viewed = [s for s in house if s.post.page_views]
    if viewed:
        best = max(viewed, key=lambda s: (s.post.page_views or 0, recency(s)))
        return best, f"most page views: {best.post.page_views:,}, {best.post.page_views_source}"
    best = max(house, key=lambda s: (s.post.comments or 0, recency(s)))
    if best.post.comments:
        return best, f"most comments: {best.post.comments:,}"
    return best, "the most recent house post (no views or comments recorded)"


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cycle collector: ranking makes some 100,000 objects and no cycles.

    Each full collection walks every post in memory: three of them were 0.2 s of
    ranking 20,000 posts (see #5).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@_collector_paused()
def rank_posts(
    posts: Sequence[StoredPost],
    newsletter: Newsletter,
    edition: Edition,
    history: Sequence[tuple[str, Sequence[str]]],
    start: datetime,
    end: datetime,
    now: datetime,
    weights: Weights = Weights(),
    nearby: Sequence[StoredPost] = (),
) -> Ranking:
    """Rank a month's posts and choose the picks and the listening post.

    ``history`` is (month, featured URLs) of earlier issues, newest first. ``nearby``
    are posts of the neighbouring weeks, never candidates: where a syndicated copy of
    this month names its original's blog, the original may be among them. Reads the
    editor's pins, drops, listening pick and blurbs (so `mash posts` and the draft show
    the issue's blurbs); compose applies the order.
    """
    profile = topic_profile(newsletter)
    features, counts = features_of(posts, profile)
    scored = collapse_duplicates(
        score_posts(posts, features, counts, newsletter, start, end, weights), features, weights
    )
    scored = _copies_of_nearby(scored, features, nearby, profile, weights)
    keys = [f.key for f in features]
    del features  # free the fingerprints before the decisions below copy every post
    house = [s for s in scored if s.post.house and s.status != "out"]
    listening, listening_reason = choose_listening(house, edition, scored)
    featured = {url_key(u): month for month, urls in history for u in urls}
    recent_blogs = [
        {s.post.feed_url for s, key in zip(scored, keys, strict=True) if key in month_keys}
        for month_keys in ({url_key(u) for u in urls} for _, urls in history[: weights.memory])
    ]
    pins = {url_key(u) for u in edition.pins}
    drops = {url_key(u) for u in edition.drops}
    decided: list[ScoredPost] = []
    for item, key in zip(scored, keys, strict=True):
        if listening is not None and item.post.id == listening.post.id:
            item = _decided(
                item, status="listening", reason=f"Someone Was Listening: {listening_reason}"
            )
        elif key in drops:
            item = _decided(item, status="out", reason="dropped by the editor")
        elif key in pins:  # a status, not a boost: its score stays its own (see #20)
            item = _decided(item, status="pinned", reason="pinned by the editor")
        elif item.status == "out":
            pass
        elif key in featured:
            item = _decided(item, status="out", reason=f"already featured in {featured[key]}")
        elif flags := date_flags(item.post, now):
            item = _decided(
                item, status="out", reason=f"flagged date: {'; '.join(flags)} (pin it to include)"
            )
        elif item.post.house:
            item = _decided(item, status="out", reason="house blog (feeds Someone Was Listening)")
        elif len(recent_blogs) >= weights.memory and all(
            item.post.feed_url in b for b in recent_blogs
        ):
            damped = round(item.score * weights.damping, 4)
            item = _decided(
                item,
                status=item.status,
                score=damped,
                reason=f"score {damped:.3f} (damped: blog in each of the last "
                f"{weights.memory} issues)",
            )
        decided.append(item)
    decided.sort(key=_rank_order)  # once: the picks are chosen, and the posts listed, in it
    picks = _select(decided, newsletter)
    picked_ids = {p.post.id for p in picks}
    picks_per_blog = Counter(p.post.feed_url for p in picks)
    final = []
    for item in decided:
        if item.post.id in picked_ids:
            item = _decided(item, status="picked", reason=item.reason)
        elif item.status in ("candidate", "pinned"):
            item = _decided(
                item, status="out", reason=_cut_reason(item, picks_per_blog, newsletter)
            )
        final.append(item)
    final = _with_blurbs(final, edition, newsletter, blog_wide_descriptions(posts))
    ordered_picks = tuple(s for s in final if s.status == "picked")
    chosen = next((s for s in final if s.status == "listening"), None)
    return Ranking(
        month=edition.month,
        candidates=tuple(final),
        picks=ordered_picks,
        listening=chosen,
        listening_reason=listening_reason if chosen else "",
    )


def _with_blurbs(
    final: Sequence[ScoredPost], edition: Edition, newsletter: Newsletter, blog_wide: frozenset[str]
) -> list[ScoredPost]:
    """Give the issue's posts and the editor's shortlist their blurbs (blurb.blurb_of).

    Only those: a blurb costs a sentence scan. The editor's blurb (``blurbs:``, and
    ``listening_blurb:`` for the listening post) comes first, as in the issue.
    """
    editor = {url_key(u): b for u, b in edition.blurbs}
    out = []
    for n, item in enumerate(final):
        if item.status in ("picked", "listening") or n < SHORTLIST:
            own = editor.get(url_key(item.post.url), "")
            if item.status == "listening":
                own = edition.listening_blurb or own
            blurb, source = blurb_of(item.post, newsletter.blurb_chars, own, blog_wide)
            item = replace(item, blurb=blurb, blurb_source=source)
        out.append(item)
    return out


def _decided(item: ScoredPost, status: str, reason: str, score: float | None = None) -> ScoredPost:
    """Return item with a new decision: dataclasses.replace, without its cost per call."""
    return ScoredPost(
        item.post,
        item.score if score is None else score,
        item.parts,
        status,
        reason,
        item.blurb,
        item.duplicate_of,
        item.blurb_source,
    )


def _rank_order(item: ScoredPost) -> tuple[bool, float, int]:
    """Pinned posts first, then by score: the editor's pins are never cut."""
    return item.status != "pinned", -item.score, item.post.id


def _select(decided: Sequence[ScoredPost], newsletter: Newsletter) -> list[ScoredPost]:
    """Choose the picks from decided, which is in _rank_order."""
    pool = [s for s in decided if s.status in ("candidate", "pinned")]
    per_blog: Counter[str] = Counter()
    picks: list[ScoredPost] = []
    for item in pool:
        if len(picks) >= newsletter.picks_max and item.status != "pinned":
            continue
        if per_blog[item.post.feed_url] >= newsletter.per_blog_cap and item.status != "pinned":
            continue
        per_blog[item.post.feed_url] += 1
        picks.append(item)
    return picks


def _cut_reason(item: ScoredPost, per_blog: Mapping[str, int], newsletter: Newsletter) -> str:
    if per_blog.get(item.post.feed_url, 0) >= newsletter.per_blog_cap:
        return f"cap per blog ({newsletter.per_blog_cap}) reached; score {item.score:.3f}"
    return f"below the cut ({newsletter.picks_max} picks); score {item.score:.3f}"
