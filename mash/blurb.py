"""Choose a blurb: the editor's words, the author's own summary, or a quote (pure).

In that order (see #20): the editor's blurb from the edition file; else a summary the
author wrote for the purpose (a feed's hand-written excerpt, a page description that
is not lifted from the body); else one or two sentences quoted verbatim, chosen for
carrying the post's own vocabulary (and title), never a greeting, disclosure or
boilerplate, and only a sentence that stands alone: it neither opens on a word that
points back ("It", "This", "But", "The trick is", "Five from ...") nor needs the
sentence before it. The last two are the author's words, and are shown as such.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterable

from mash.records import StoredPost
from mash.sanitize import html_to_text

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


# --- the rule: a sentence that stands alone (see #20) -------------------------------

EDITOR, SUMMARY, QUOTE = "editor", "summary", "quote"  # issue.json's blurb_source values
BLURB_SOURCES = (EDITOR, SUMMARY, QUOTE)


def _word_set(spaced: str) -> frozenset[str]:
    return frozenset(spaced.split())


# An opening word that points back to something said before: a pronoun, a
# demonstrative, or a connective that continues the sentence before.
_POINTING_WORDS = _word_set(
    "it its it's itself they them their theirs they're they've he him his he's she her hers "
    "she's this these that those that's such here here's but so also however then still and "
    "or yet instead nor thus hence therefore otherwise meanwhile besides moreover furthermore "
    "likewise similarly again both neither another which whose because plus"
)
_NUMBER_WORDS = _word_set(
    "two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty "
    "ninety hundred thousand dozen half"
)
# "The trick is ...": a noun that names something the text before has set up.
_POINTING_NOUNS = (
    "trick|catch|answer|result|fix|upshot|twist|irony|rest|same|difference|reason|point|"
    "lesson|idea|solution|key|secret|former|latter|other|others"
)
_POINTING_PHRASE = re.compile(
    rf"^(?:the (?:{_POINTING_NOUNS})\b|one (?:of|from|in|more|last)\b|in other words\b|"
    r"for (?:example|instance)\b|as a result\b|on the other hand\b|in (?:short|fact|turn)\b|"
    r"that said\b|even so\b|of course\b|after that\b|at that point\b|by then\b|"
    r"not that\b|which is why\b)",
    re.IGNORECASE,
)
# A short label and a colon opens an item of a list the text before introduced
# ("One good thing: a call that went well.", "Routing: ...").
_LIST_LABEL = re.compile(r"^\S+(?:\s+\S+){0,2}:\s")
# A reference to another part of the text, wherever it stands.
_NEEDS_CONTEXT = re.compile(
    r"\b(?:the former|the latter|as (?:i|we) (?:said|mentioned|noted)|mentioned (?:above|earlier)"
    r"|(?:see|shown|listed|the list|the table|the chart) (?:above|below)|the following)\b",
    re.IGNORECASE,
)
# A pronoun or "also" among the first words ("When they call, ..."; "Most of them ...";
# "The first reply decides whether it is also ...") leans on what was said before.
_EARLY_WORDS = 6
_EARLY_PRONOUNS = _word_set("it its they them their he him his she her these those also")
_FIRST_PERSON = _word_set(
    "i i'm i've i'd i'll me my mine myself we we're we've we'd we'll us our ours ourselves"
)
_LEADING_MARKS = "\"'“‘(«[—– "


def stands_alone(sentence: str) -> bool:
    """Tell whether sentence can be read on its own, without the one before it.

    False when it opens on a word that points back (a pronoun, "this/that/such",
    "here", "but/so/also/however/then/and/or/yet/instead", "the trick", a bare number
    such as "Five from ..."), opens on a list item's label ("One good thing: ..."), has
    a third-person pronoun or "also" among its first six words, refers to another part
    of the text ("the former", "see below"), or does not open on a capital letter.
    Does not judge whether the sentence is worth quoting.
    """
    text = sentence.lstrip(_LEADING_MARKS)
    if not text or not (text[0].isupper() or text[0].isdigit()):
        return False
    if text[0].isdigit() or _POINTING_PHRASE.match(text) or _LIST_LABEL.match(text):
        return False
    if _NEEDS_CONTEXT.search(text):
        return False
    first = words(text[:120])[:_EARLY_WORDS]
    if not first:
        return False
    head = first[0].strip("'-")
    if head in _POINTING_WORDS or head in _NUMBER_WORDS:
        return False
    return not any(w.strip("'-") in _EARLY_PRONOUNS for w in first)


def speaks_as_author(text: str) -> bool:
    """Tell whether text speaks in the first person ("I", "our", "we")."""
    return any(w.strip("'-") in _FIRST_PERSON for w in words(text))


def _usable(sentence: str) -> bool:
    count = len(sentence.split())
    return 6 <= count <= 60 and sentence[-1:] in '.!?…"”’)' and not _BOILERPLATE.search(sentence)


def choose_blurb(text: str, title: str, budget: int = 280) -> str:
    """Return one or two consecutive sentences of text that best carry its point.

    The first sentence stands alone (``stands_alone``); the second may lean on it, as
    they are read together, so a strong sentence that needs its lead-in comes with it.
    A blurb in the author's first person ("I", "our") loses to an equal one without,
    so the author's voice is not taken for the newsletter's. Returns "" when no
    sentence is usable. Sentences are kept verbatim.
    """
    sentences = split_sentences(text)
    content = [w for w in words(text) if w not in STOPWORDS and len(w) > 2]
    if not sentences or not content:
        return ""
    freq = Counter(content)
    top = freq.most_common(1)[0][1]
    title_words = {w for w in words(title) if w not in STOPWORDS}
    scores = [_sentence_score(s, freq, top, title_words) if _usable(s) else 0.0 for s in sentences]
    scores[0] *= 0.8  # the opening sentence is often scene-setting
    best, best_score = "", 0.0
    for i, sentence in enumerate(sentences):
        if not scores[i] or not stands_alone(sentence) or len(sentence) > budget:
            continue
        candidate, score = sentence, scores[i]
        nxt, nxt_score = (sentences[i + 1], scores[i + 1]) if i + 1 < len(scores) else ("", 0.0)
        if nxt_score and len(sentence) < 140 and len(sentence) + 1 + len(nxt) <= budget:
            candidate, score = f"{sentence} {nxt}", max(score, 0.9 * nxt_score)
        score *= 0.75 if speaks_as_author(candidate) else 1.0
        if score > best_score:
            best, best_score = candidate, score
    return best


def _sentence_score(sentence: str, freq: Counter[str], top: int, title_words: set[str]) -> float:
    """Return how much of the post's own vocabulary and title sentence carries."""
    tokens = [w for w in words(sentence) if w not in STOPWORDS and len(w) > 2]
    if not tokens:
        return 0.0
    score: float = sum(freq[w] / top for w in tokens) / len(tokens) ** 0.5
    return score + 0.4 * len(title_words & set(tokens))


# --- the blurb of a post: the editor's, the author's summary, or a quote (see #20) ----


def blurb_of(
    post: StoredPost, budget: int, editor: str = "", blog_wide: Collection[str] = ()
) -> tuple[str, str]:
    """Return post's blurb and where it comes from: EDITOR, SUMMARY or QUOTE.

    ``editor`` is the editor's own blurb (the edition file), used as he wrote it.
    ``blog_wide`` are descriptions a blog gives many posts (its tagline, not a
    summary). The quote is "" when no sentence is usable; its source is still QUOTE.
    """
    if editor:
        return editor, EDITOR
    candidates = (post.excerpt, html_to_text(post.summary_html), post.page_description)
    own = [c for c in candidates if c and c not in blog_wide]
    summary = author_summary(own, post.text, post.title, budget)
    if summary:
        return summary, SUMMARY
    return choose_blurb(post.text, post.title, budget), QUOTE


def blog_wide_descriptions(posts: Iterable[StoredPost]) -> frozenset[str]:
    """Return the descriptions or excerpts that two or more posts of one blog share."""
    seen = Counter(
        (post.feed_url, text)
        for post in posts
        for text in {post.excerpt, post.page_description}
        if text
    )
    return frozenset(text for (_, text), count in seen.items() if count > 1)


# --- the author's own summary ---------------------------------------------------------

_MARKER_SENTENCE = re.compile(
    r"\b(?:appeared first on|continue reading|read more|read the (?:full|rest)|keep reading)\b",
    re.IGNORECASE,
)
_TRAILING_MARKER = re.compile(r"\s*(?:…|\[\s*(?:…|\.\.\.|&hellip;)\s*\]|\.\.\.)\W{0,3}$")
_SUMMARY_MIN_WORDS = 6


def author_summary(candidates: Iterable[str], body: str, title: str, budget: int = 280) -> str:
    """Return the first candidate the author wrote for the purpose, trimmed to budget.

    Candidates are plain texts (a feed's excerpt, a page's description). One counts
    when it has some words (six or more), is not the title, and is not lifted from
    body: an automatic excerpt or description is the body's first words, cut. "Read
    more" and "The post X appeared first on Y." lines are dropped first. Returns ""
    when none counts. Does not tell a blog-wide description apart: the caller does.
    """
    for candidate in candidates:
        text = _clean_summary(candidate)
        if (
            len(text.split()) >= _SUMMARY_MIN_WORDS
            and words(text) != words(title)
            and not lifted_from(text, body)
        ):
            return trim_blurb(text, budget)
    return ""


def _clean_summary(text: str) -> str:
    kept = [s for s in split_sentences(text) if not _MARKER_SENTENCE.search(s)]
    return _TRAILING_MARKER.sub("", " ".join(kept)).strip()


def lifted_from(summary: str, body: str) -> bool:
    """Tell whether summary's words (but a last one, maybe cut) run on in body's words."""
    found = words(summary)[:-1]
    if not found:
        return True
    return f" {' '.join(found)} " in f" {' '.join(words(body))} "


def trim_blurb(text: str, budget: int) -> str:
    """Return text cut to budget characters: whole sentences, else whole words and "…"."""
    text = " ".join(text.split())
    if len(text) <= budget:
        return text
    kept = ""
    for sentence in split_sentences(text):
        joined = f"{kept} {sentence}".strip()
        if len(joined) > budget:
            break
        kept = joined
    if kept:
        return kept
    cut = text[: max(budget - 1, 0)].rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:—–-") + "…"


def suggest_blurbs(text: str, title: str, count: int = 5, budget: int = 280) -> list[str]:
    """Return up to ``count`` sentences of text an editor may take as a blurb, best first.

    Each stands alone, fits the budget and is kept verbatim (the desk offers them, see
    #17); the order is ``choose_blurb``'s scoring, not the post's.
    """
    sentences = split_sentences(text)
    content = [w for w in words(text) if w not in STOPWORDS and len(w) > 2]
    if not sentences or not content:
        return []
    freq = Counter(content)
    top = freq.most_common(1)[0][1]
    title_words = {w for w in words(title) if w not in STOPWORDS}
    scored = [
        (_sentence_score(s, freq, top, title_words), s)
        for s in dict.fromkeys(sentences)
        if _usable(s) and stands_alone(s) and len(s) <= budget
    ]
    scored.sort(key=lambda pair: -pair[0])
    return [s for score, s in scored[:count] if score > 0]
