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


def _trim_head(body: _Element, title: str) -> None:
    """Drop the breadcrumb, title, byline and a teaser repeating the opening, at the top."""
    blocks = _blocks(body)
    for index, block in enumerate(blocks[:4]):
        text = text_of(block)
        if not text:
            continue
        if _is_heading_matter(text, title) or _is_teaser(text, blocks[index + 1 :]):
            _remove(block)
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
