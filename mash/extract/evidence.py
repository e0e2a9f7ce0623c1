"""Judge an extracted article by what only mash has: the feed's summary (see #18).

Pure text functions, no lxml: a candidate article is accepted when it quotes the
summary's opening words and is not mostly short, link-like lines (a site's menu:
"Log in / Subscribe / My account"). The caller tries its candidates in order and
keeps the first accepted one.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from mash.extract.trim import norm_words

# Words of the summary's opening looked for in the article; fewer are taken from a
# summary that has fewer, down to _MIN_PROBE_WORDS (a shorter one proves nothing).
PROBE_WORDS = 8
_MIN_PROBE_WORDS = 4
# A summary cut by the feed ends in a marker, often mid-word ("complai…"): that last
# word is not looked for.
_CUT_MARK = re.compile(
    r"(?:\s*(?:…|&hellip;|&#8230;|\.\.\.|\[\s*(?:…|\.\.\.|&hellip;|&#8230;)\s*\]))+\W*$"
    r"|\s*(?:read more|continue reading)\W*$",
    re.I,
)
# A line of this many words or more is prose; menus, link lists and buttons are shorter.
_PROSE_LINE_WORDS = 8
# A list item ("- " in trafilatura's text) is a link list's line unless it is this long.
_PROSE_ITEM_WORDS = 25
# A candidate whose prose lines hold less than this share of its words is a menu.
_MIN_PROSE_SHARE = 0.3
# A candidate is suspect (worth checking against trafilatura's own) when it has fewer
# words than this, or when more than _MAX_LINKED_SHARE of its words are the page's
# link texts, line by line or cell by cell ("Products | About Us | Baby Scales").
SHORT_WORDS = 50
_MAX_LINKED_SHARE = 0.5
# Rows of table cells and link bars come out as "a | b | c": each part is a line.
_CELLS = re.compile(r"\n|\|")


@dataclass(frozen=True)
class Evidence:
    """What the feed says of a post's article, made by ``evidence_of``, used by extraction."""

    probe: str = ""  # the summary's opening words, normalised ("" when too short)
    title: str = ""


def evidence_of(summary: str, title: str = "") -> Evidence:
    """Return the evidence of a feed summary (plain text or HTML) and the post's title.

    Case, whitespace, punctuation and HTML entities do not count; a summary cut
    with "…", "[…]" or "Read more" loses its last, maybe partial, word.
    """
    text = html.unescape(re.sub(r"<[^>]*>", " ", summary)) if "<" in summary else summary
    text = html.unescape(text).strip()
    cut = _CUT_MARK.search(text)
    words = norm_words(text[: cut.start()] if cut else text).split()
    if cut and words:
        words = words[:-1]
    probe = " ".join(words[:PROBE_WORDS]) if len(words) >= _MIN_PROBE_WORDS else ""
    return Evidence(probe=probe, title=" ".join(html.unescape(title).split()))


def quotes(text: str, evidence: Evidence) -> bool:
    """Tell whether text holds the summary's opening words (True when there are none)."""
    return not evidence.probe or evidence.probe in norm_words(html.unescape(text))


def is_menu_like(text: str) -> bool:
    """Tell whether text is mostly short lines or list items: a menu or link list.

    Empty text counts as a menu: there is no article in it either.
    """
    total = prose = 0
    for line in text.splitlines():
        words = len(line.split())
        total += words
        item = line.startswith("- ")
        if words >= (_PROSE_ITEM_WORDS if item else _PROSE_LINE_WORDS):
            prose += words
    return total == 0 or prose < _MIN_PROSE_SHARE * total


def is_suspect(text: str, link_texts: frozenset[str]) -> bool:
    """Tell whether text is too short, or mostly the page's links, to trust without a check.

    link_texts are the page's link texts as ``norm_words`` gives them. A text that
    passes as an article but is suspect is compared with trafilatura's own (#18).
    """
    total = linked = 0
    for part in _CELLS.split(text):
        words = norm_words(part)
        count = words.count(" ") + 1 if words else 0
        total += count
        if words in link_texts:
            linked += count
    return total < SHORT_WORDS or linked > _MAX_LINKED_SHARE * total


def accepts(text: str, evidence: Evidence) -> bool:
    """Tell whether text passes as the article: not a menu, and quoting the summary."""
    return not is_menu_like(text) and quotes(text, evidence)
