"""Rank the month's posts: score, collapse duplicates, keep variety, pick (pure).

``rank_posts(posts, newsletter, edition, history, now)`` decides everything from
records and the ``now`` passed in: no clock, network or database. Every decision
carries its reason, so ``mash posts`` can explain it.
"""

from __future__ import annotations

import math
import re
import zlib
from array import array
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from mash.blurb import choose_blurb, words
from mash.dates import date_flags
from mash.records import Edition, Newsletter, Ranking, ScoredPost, StoredPost
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
    near_duplicate: float = 0.6  # Jaccard of 5-word shingles (see bench/DEDUP.md)


def topic_profile(newsletter: Newsletter) -> dict[str, float]:
    """Return the weighted words of the newsletter's topic."""
    profile = dict(TOPIC_TERMS)
    extra = Counter(words(newsletter.topic + " " + " ".join(newsletter.topic_examples)))
    for word, count in extra.items():
        if len(word) > 3:
            profile[word] = max(profile.get(word, 0.0), min(2.0, 0.5 + 0.25 * count))
    return profile


@dataclass(frozen=True)
class Features:
    """What rank needs of a post, computed once per post and run."""

    key: str  # url_key of the post
    canonical_key: str  # url_key of its rel=canonical, "" when none or itself
    counts: dict[str, int]  # the profile's words only, in the profile's order
    length: int  # words, of title x3 plus the first _TEXT_CHARS of text
    words: int  # words of the whole text; _WORDS_CAP + 1 when there are more
    promo: tuple[str, ...]
    fingerprint: array[int]  # sorted: its first _SKETCH values are the sketch
    origin: str = ""  # the blog the post says it first appeared on (blog_key), or ""
    head: str = ""  # title and first _HEAD_WORDS words: the same in copies edited below


# relevance and duplicates read the start of a post: enough, and bounded
_TEXT_CHARS = 8000
# Near-duplicate candidates share one of the _SKETCH smallest fingerprint hashes (a
# bottom-k sketch): copies (Jaccard ~0.98) almost surely do, so only they are compared.
_SKETCH = 6
SHORTLIST = 30  # candidates given a suggested blurb for the editor's draft
# quality is the same for any length from 600 words, so counting stops just past it
_WORDS_CAP = 600
# Each phrase as its words (all must be among the post's words) and as the padded text
# matched against the joined words; "% off" is not a word and is matched in the text.
_PROMO_WORDS: tuple[tuple[str, tuple[tuple[frozenset[str], str], ...]], ...] = tuple(
    (label, tuple((frozenset(p.split()), f" {p} ") for p in phrases if "%" not in p))
    for label, phrases in PROMO_PHRASES.items()
)
_PROMO_VOCABULARY = frozenset(w for _, phrases in _PROMO_WORDS for ws, _ in phrases for w in ws)


# "This post originally appeared on Modern Service." names the original's blog: the post
# is a syndicated copy whatever its date (copies are often dated before their original).
_ORIGIN_RE = re.compile(
    r"\b(?:originally|first)\s+(?:appeared|published|posted)\s+(?:on|at|in)\s+([^\n.!?]{2,80})",
    re.IGNORECASE,
)


# Copies whose text was edited further down (paragraphs moved, a list reworded) keep
# the title and the opening: the same title and first 25 words make a copy (see #5).
_HEAD_WORDS = 25


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
    """Compute a post's features: topic-word counts, promotional phrases, fingerprint.

    Keeps the counts of the profile's words only: all words of 20,000 posts would not
    fit the memory budget (see #5).
    """
    tokens = words(post.text[:_TEXT_CHARS])
    title = words(post.title)
    every = Counter(tokens + title * 3)
    key = url_key(post.url)
    canonical = url_key(post.canonical) if post.canonical else ""
    return Features(
        key=key,
        canonical_key=canonical if canonical != key else "",
        counts={w: every[w] for w in profile if w in every},
        length=len(tokens) + 3 * len(post.title.split()),
        words=len(post.text.split(maxsplit=_WORDS_CAP)),
        promo=tuple(promotional_hits(post.text, title, tokens[:700], every)),
        fingerprint=fingerprint(tokens),
        origin=syndicated_from(post.text),
        head=" ".join(title + ["|"] + tokens[:_HEAD_WORDS]) if len(tokens) >= _HEAD_WORDS else "",
    )


def relevance(features: Features, profile: dict[str, float], idf: dict[str, float]) -> float:
    """Score 0..1: BM25 saturation of topic words in title and text, length-normalised."""
    if not features.length:
        return 0.0
    k1, b, avg = 1.2, 0.75, 400.0
    norm = k1 * (1 - b + b * features.length / avg)
    total = 0.0
    for word, tf in features.counts.items():  # in the profile's order, as the sum's terms
        total += profile[word] * idf.get(word, 1.0) * tf * (k1 + 1) / (tf + norm)
    return 1 - math.exp(-total / 12)


def promotional_hits(
    text: str, title: Sequence[str], body: Sequence[str], present: Mapping[str, object]
) -> list[str]:
    """Return the labels of the promotional phrases found in a post's title and start.

    ``title`` and ``body`` are the words of the title and of the text's start, and
    ``present`` has at least all of them as keys. Matches whole words: joined with
    spaces on both sides, a substring test in C is a word-boundary match (one regex per
    label was most of rank's time, see #5). A phrase with a word not present cannot
    match, so most posts never build the joined text.
    """
    vocabulary = present.keys() & _PROMO_VOCABULARY
    sample, found = "", []
    for label, phrases in _PROMO_WORDS:
        for phrase_words, padded in phrases:
            if phrase_words <= vocabulary:
                sample = sample or f" {' '.join(title)} {' '.join(body)} "
                if padded in sample:
                    found.append(label)
                    break
    if "discount" not in found and text.find("% off", 0, 4000) >= 0:
        found.append("discount")
    return found


class _WordIds(dict[str, int]):
    """Each word's CRC-32: the same in every process, unlike hash() of a str (salted)."""

    def __missing__(self, word: str) -> int:
        if len(self) > 1_000_000:
            self.clear()
        value = self[word] = zlib.crc32(word.encode("utf-8", "surrogatepass"))
        return value


_WORD_IDS = _WordIds()


def fingerprint(tokens: Sequence[str], size: int = 5, sample: int = 8) -> array[int]:
    """Return a sample (1 in ``sample``) of the hashed word 5-grams of a text, sorted.

    The Jaccard similarity of two samples estimates that of the full shingle sets
    (mod-sampling). A 5-gram is hashed as the tuple of its words' CRC-32s: hash() of
    ints and tuples is the same in every run, so the same posts always give the same
    similarities, duplicates and issue (hash() of str is salted per process). An array
    of machine integers is a tenth of the memory of a set of Python ints (see #5).
    """
    ids = list(map(_WORD_IDS.__getitem__, tokens))
    grams = zip(*(ids[i:] for i in range(size)), strict=False)
    return array("q", sorted({h for h in map(hash, grams) if not h % sample}))


def jaccard(a: Collection[int], b: Collection[int]) -> float:
    """Return the Jaccard similarity of two collections of distinct values."""
    if not a or not b:
        return 0.0
    shared = len(set(a).intersection(b))
    return shared / (len(a) + len(b) - shared)


def _idf(features: Sequence[Features], profile: dict[str, float]) -> dict[str, float]:
    n = len(features) + 1
    df: Counter[str] = Counter()
    for f in features:
        df.update(f.counts.keys())  # the profile's words only
    return {w: 0.5 + math.log(1 + n / (1 + df[w])) / math.log(1 + n) for w in profile}


def _popularity(post: StoredPost, top_comments: int, top_views: int) -> float:
    parts = []
    if post.comments is not None and top_comments:
        parts.append(math.log1p(post.comments) / math.log1p(top_comments))
    if post.page_views is not None and top_views:
        parts.append(math.log1p(post.page_views) / math.log1p(top_views))
    return max(parts) if parts else 0.0


def _quality(features: Features) -> float:
    count = features.words
    length = min(1.0, count / 600) if count >= 80 else count / 400
    return max(0.0, length - 0.25 * len(features.promo))


def _recency(post: StoredPost, start: datetime, end: datetime) -> float:
    when = post.published or post.first_seen
    span = (end - start).total_seconds() or 1.0
    return max(0.0, min(1.0, (when - start).total_seconds() / span))


_PARTS = ("relevance", "popularity", "quality", "recency")  # of the score, weighted


def score_posts(
    posts: Sequence[StoredPost],
    features: Sequence[Features],
    newsletter: Newsletter,
    start: datetime,
    end: datetime,
    weights: Weights = Weights(),
) -> list[ScoredPost]:
    """Score every post; mark off-topic and promotional ones out (nothing else decided)."""
    profile = topic_profile(newsletter)
    idf = _idf(features, profile)
    top_comments = max((p.comments or 0 for p in posts), default=0)
    top_views = max((p.page_views or 0 for p in posts), default=0)
    factors = [getattr(weights, part) for part in _PARTS]
    scored = []
    for post, feats in zip(posts, features, strict=True):
        rel = relevance(feats, profile, idf)
        values = (
            round(rel, 3),
            round(_popularity(post, top_comments, top_views), 3),
            round(_quality(feats), 3),
            round(_recency(post, start, end), 3),
        )
        parts = (*zip(_PARTS, values, strict=True), ("weight", post.weight))
        total = post.weight * sum(w * v for w, v in zip(factors, values, strict=True))
        status, reason = "candidate", f"score {total:.3f}"
        if len(feats.promo) >= weights.promo_hits:
            status, reason = "out", f"promotional ({', '.join(feats.promo)})"
        elif rel < weights.min_relevance:
            status, reason = "out", f"off-topic (relevance {rel:.2f} < {weights.min_relevance})"
        scored.append(ScoredPost(post, round(total, 4), parts, status, reason))
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
    index: dict[int, list[int]] = {}
    kept_keys: dict[str, int] = {}
    kept_heads: dict[str, int] = {}
    for i in order:
        feats = features[i]
        original, how = _find_original(i, features, kept_keys, index, weights)
        if original is None and feats.head in kept_heads:
            original, how = kept_heads[feats.head], f"same title and first {_HEAD_WORDS} words"
        if original is not None and original != i:
            result[i] = _copy(scored[i], scored[original].post.url, how)
            continue
        kept_keys.setdefault(feats.key, i)
        if feats.head:
            kept_heads.setdefault(feats.head, i)
        for h in feats.fingerprint[:_SKETCH]:
            index.setdefault(h, []).append(i)
    return result


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
    by_blog: dict[str, list[tuple[StoredPost, Features]]] = {}
    for post in nearby:
        key = blog_key(post.blog)
        if key in wanted:
            by_blog.setdefault(key, []).append((post, post_features(post, profile)))
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
    index: dict[int, list[int]],
    weights: Weights,
) -> tuple[int | None, str]:
    feats = features[i]
    if feats.key in kept_keys:
        return kept_keys[feats.key], "same URL"
    # a shingle in a hundred posts is boilerplate, not copying
    buckets = [b for h in feats.fingerprint[:_SKETCH] if 0 < len(b := index.get(h, ())) <= 100]
    if len(buckets) < 2:  # a candidate shares two sketch values: most posts have none
        return None, ""
    shared: Counter[int] = Counter()
    for bucket in buckets:
        shared.update(bucket)
    candidates = [j for j, count in shared.items() if count >= 2]
    best, best_similarity = None, 0.0
    for j in candidates:
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
    this month names its original's blog, the original may be among them. Does not
    read the editor's order or blurbs beyond pins, drops and the listening pick:
    compose applies order and blurbs.
    """
    profile = topic_profile(newsletter)
    features = [post_features(p, profile) for p in posts]
    scored = collapse_duplicates(
        score_posts(posts, features, newsletter, start, end, weights), features, weights
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
            item = replace(
                item, status="listening", reason=f"Someone Was Listening: {listening_reason}"
            )
        elif key in drops:
            item = replace(item, status="out", reason="dropped by the editor")
        elif key in pins:
            item = replace(
                item, status="pinned", reason="pinned by the editor", score=item.score + 100
            )
        elif item.status == "out":
            pass
        elif key in featured:
            item = replace(item, status="out", reason=f"already featured in {featured[key]}")
        elif flags := date_flags(item.post, now):
            item = replace(
                item, status="out", reason=f"flagged date: {'; '.join(flags)} (pin it to include)"
            )
        elif item.post.house:
            item = replace(item, status="out", reason="house blog (feeds Someone Was Listening)")
        elif len(recent_blogs) >= weights.memory and all(
            item.post.feed_url in b for b in recent_blogs
        ):
            damped = round(item.score * weights.damping, 4)
            item = replace(
                item,
                score=damped,
                reason=f"score {damped:.3f} (damped: blog in each of the last "
                f"{weights.memory} issues)",
            )
        decided.append(item)
    picks = _select(decided, newsletter)
    picked_ids = {p.post.id for p in picks}
    final = []
    for item in decided:
        if item.post.id in picked_ids:
            item = replace(item, status="picked", reason=item.reason)
        elif item.status in ("candidate", "pinned"):
            item = replace(item, status="out", reason=_cut_reason(item, picks, newsletter))
        final.append(item)
    final.sort(key=lambda s: (-s.score, s.post.id))
    # blurbs cost a sentence scan each: only for the issue and the editor's shortlist
    final = [
        replace(s, blurb=choose_blurb(s.post.text, s.post.title, newsletter.blurb_chars))
        if s.status in ("picked", "listening") or n < SHORTLIST
        else s
        for n, s in enumerate(final)
    ]
    ordered_picks = tuple(s for s in final if s.status == "picked")
    chosen = next((s for s in final if s.status == "listening"), None)
    return Ranking(
        month=edition.month,
        candidates=tuple(final),
        picks=ordered_picks,
        listening=chosen,
        listening_reason=listening_reason if chosen else "",
    )


def _select(decided: Sequence[ScoredPost], newsletter: Newsletter) -> list[ScoredPost]:
    pool = sorted(
        (s for s in decided if s.status in ("candidate", "pinned")),
        key=lambda s: (-s.score, s.post.id),
    )
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


def _cut_reason(item: ScoredPost, picks: Sequence[ScoredPost], newsletter: Newsletter) -> str:
    same_blog = sum(1 for p in picks if p.post.feed_url == item.post.feed_url)
    if same_blog >= newsletter.per_blog_cap:
        return f"cap per blog ({newsletter.per_blog_cap}) reached; score {item.score:.3f}"
    return f"below the cut ({newsletter.picks_max} picks); score {item.score:.3f}"
