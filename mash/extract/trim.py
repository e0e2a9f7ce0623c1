"""Trim what trafilatura keeps around an article: title, byline, teaser, tags, comments (#4)."""

from __future__ import annotations

import re

import lxml.etree
from lxml.etree import _Element

_BYLINE = re.compile(
    r"^(?:(?:posted |written |published )?by\s+\S.{0,60}|\d{1,2} min(?:ute)?s? read.*|"
    r".{0,60}\b(?:\d{4}|\d+ (?:comments?|replies|responses))\b.{0,40})$",
    re.I,
)
_TAIL = re.compile(
    r"^(?:like|like this:?|share this:?.*|share:|related:?|loading\.{3}|tags?:.*|tagged:?.*|"
    r"posted in .*|filed under.*|categories?:.*|originally published .*|"
    r"the post .+ appeared first on .+|©.*|copyright .*|all rights reserved.*|"
    r"(?:leave a (?:reply|comment)|post a comment).*|\d+ (?:comments?|replies|responses).*)$",
    re.I,
)


# Lines of an event listing a sidebar leaves at a short post's edge (#18): "Event
# Organiser: ...", "Virtual/Online", a price, a time with "@ 8:00 am".
_EVENT_MARK = re.compile(
    r"\bevent organi[sz]er\b|\b(?:organi[sz]er|venue|location|cost|price):|\bvirtual/online\b|"
    r"\bonline event\b|@\s*\d{1,2}(?::\d{2})?\s*[ap]\.?m\b|^(?:[£$€]\s?\d[\d,.]*|free)$",
    re.I,
)
_LISTING_LINE_WORDS = 10
_LABEL_WORDS = 12
_SENTENCE_END = (".", "?", "!", "…", '"', "”", ":")
_XML_INLINE = frozenset(["hi", "ref", "graphic", "del", "span", "sub", "sup", "code"])
_CRUMB_SEPARATOR = re.compile(r"\s+[>»›/|]\s+|\s*›\s*|\s*»\s*")
_CRUMB_START = re.compile(r"^(?:home|start|front page|main)\b", re.I)
_END_MARK = re.compile(
    r"^(?:(?:\d+|one|two|three|no) (?:comments?|replies|responses|thoughts)(?: on| to)?\b.*|"
    r"comments? \(\d+\)|leave a (?:reply|comment)|post a comment|"
    r"related(?: posts| articles| stories)?:?|you (?:might|may) also like:?|read next:?|"
    r"about the author|share (?:this|on)\b.{0,80})$",
    re.I,
)


def trim_body(body: _Element, title: str) -> None:
    """Trim what trafilatura keeps around the article in body.

    Drops the repeated title and byline at the start, everything from a comment,
    related-posts or author-box heading in the second half on, and tag, share and
    copyright lines at the end.
    """
    for div in [e for e in body.iter("div") if _is_mixed(e)]:
        _split_mixed(div)
    _drop_listings(body)
    _trim_head(body, title)
    blocks = _blocks(body)
    sizes = [len(text_of(block)) for block in blocks]
    total, seen = sum(sizes), 0
    for index, block in enumerate(blocks):
        if seen >= total / 2 and sizes[index] < 200 and _END_MARK.match(text_of(block)):
            for doomed in blocks[index:]:
                _remove(doomed)
            break
        seen += sizes[index]
    for block in reversed(_blocks(body)):
        text = text_of(block)
        if text and not _TAIL.match(text):
            break
        _remove(block)


def _is_mixed(div: _Element) -> bool:
    """Tell whether div holds loose text or line breaks beside its blocks."""
    if (div.text or "").strip():
        return True
    return any(child.tag == "lb" or (child.tail or "").strip() for child in div)


def _split_mixed(div: _Element) -> None:
    """Wrap each run of div's loose text and inline elements into its own p.

    A line break (``lb``) ends a run; blocks (p, list, quote, head ...) stay as they are.
    """
    runs: list[_Element] = []
    current: _Element | None = None

    def add_text(text: str | None) -> None:
        """Append loose text to the current run, opening one when needed."""
        nonlocal current
        if not text or not text.strip():
            return
        if current is None:
            current = lxml.etree.Element("p")
            runs.append(current)
        if len(current):
            current[-1].tail = (current[-1].tail or "") + text
        else:
            current.text = (current.text or "") + text

    add_text(div.text)
    for child in list(div):
        tail, child.tail = child.tail, None
        if child.tag == "lb":
            current = None
        elif child.tag in _XML_INLINE:
            if current is None:
                current = lxml.etree.Element("p")
                runs.append(current)
            current.append(child)
        else:
            runs.append(child)
            current = None
        add_text(tail)
    div.text = None
    for child in list(div):
        div.remove(child)
    div.extend(runs)


def _drop_listings(body: _Element) -> None:
    """Drop event listings at either edge of body: runs of short lines with an event mark.

    A run is whole blocks whose every line is short and unpunctuated; it goes only
    when one of its lines marks an event, and never when it is all of body.
    """
    blocks = _blocks(body)
    for edge in (list(reversed(blocks)), blocks):
        run: list[_Element] = []
        for block in edge:
            lines = _lines(block)
            if not lines or not all(_is_listing_line(line) for line in lines):
                break
            run.append(block)
        if len(run) == len(blocks):
            return
        if any(_EVENT_MARK.search(line) for block in run for line in _lines(block)):
            for block in run:
                _remove(block)
            blocks = [block for block in blocks if block not in run]


def _lines(block: _Element) -> list[str]:
    """Return block's lines (its line breaks split them), whitespace collapsed."""
    breaks = [lb for lb in block.iter("lb") if not lb.text]
    for lb in breaks:
        lb.text = "\n"
    text = "".join(str(t) for t in block.itertext())
    for lb in breaks:
        lb.text = None
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return [line for line in lines if line]


def _is_listing_line(line: str) -> bool:
    return len(line.split()) <= _LISTING_LINE_WORDS and not line.endswith(_SENTENCE_END)


def _trim_head(body: _Element, title: str) -> None:
    """Drop the breadcrumb, title, byline and a teaser repeating the opening, at the top.

    Short unpunctuated lines above a title or byline (a category, "Featured", a
    title the page's metadata words otherwise) go with it.
    """
    blocks = _blocks(body)
    labels: list[_Element] = []
    for index, block in enumerate(blocks[:5]):
        text = text_of(block)
        if not text:
            continue
        if _is_heading_matter(text, title) or _is_teaser(text, blocks[index + 1 :]):
            for label in [*labels, block]:
                _remove(label)
            labels = []
            continue
        if index < 3 and len(text.split()) <= _LABEL_WORDS and not text.endswith(_SENTENCE_END):
            labels.append(block)
            continue
        lines = (block.text or "").split("\n")
        while lines and (not lines[0].strip() or _is_heading_matter(lines[0], title)):
            lines.pop(0)
        block.text = "\n".join(lines)
        break


def _is_heading_matter(text: str, title: str) -> bool:
    """Tell whether a line above the article is its title, byline or breadcrumb trail."""
    return _same_title(text, title) or _is_byline(text) or _is_breadcrumb(text, title)


def _is_breadcrumb(text: str, title: str) -> bool:
    """Tell whether text is a trail like "Home > Articles > The Title"."""
    text = " ".join(text.split())
    if len(text.split()) > 20 or not _CRUMB_SEPARATOR.search(text):
        return False
    last = _CRUMB_SEPARATOR.split(text)[-1]
    return bool(_CRUMB_START.match(text)) or _same_title(last, title)


def _is_teaser(text: str, rest: list[_Element]) -> bool:
    """Tell whether text is a cut copy of the paragraph after it (an excerpt or dek).

    The copy must stop short of that paragraph: a page repeating a paragraph whole
    has no teaser.
    """
    words = norm_words(text)
    if len(words.split()) < 8 or not rest:
        return False
    following = norm_words(" ".join(text_of(block) for block in rest[:3]))
    return following.startswith(words) and len(norm_words(text_of(rest[0]))) > len(words)


def _is_byline(text: str) -> bool:
    text = " ".join(text.split())
    return (
        len(text.split()) <= 14 and bool(_BYLINE.match(text)) and not text.endswith((".", "?", "!"))
    )


def _blocks(body: _Element) -> list[_Element]:
    """Return body's blocks in order, looking through wrapping divs."""
    found: list[_Element] = []
    for child in body:
        if not isinstance(child.tag, str):
            continue
        if child.tag == "div" and len(child) and not (child.text or "").strip():
            found.extend(_blocks(child))
        else:
            found.append(child)
    return found


def _remove(element: _Element) -> None:
    parent = element.getparent()
    if parent is not None:
        parent.remove(element)


def text_of(element: _Element) -> str:
    """Return element's whole text with whitespace collapsed."""
    return " ".join("".join(str(t) for t in element.itertext()).split())


def _same_title(text: str, title: str) -> bool:
    if not title:
        return False
    a, b = norm_words(text), norm_words(title)
    return bool(a) and (a == b or (len(a) > 15 and b.startswith(a)))


def norm_words(text: str) -> str:
    """Return text's words, lower-cased and single-spaced, for comparisons."""
    return " ".join(re.findall(r"\w+", text.lower()))
