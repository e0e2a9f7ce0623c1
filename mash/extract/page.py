"""Find a page's article: trafilatura between our cleaning (clean.py) and trimming (trim.py).

With a feed summary, the article is verified: its opening words must appear in the
extracted text; when they do not, the page element holding them leads to the
article's container, which is extracted alone. Nothing here reads the network.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, replace
from functools import cache
from typing import Any, TypeAlias

import lxml.html
import trafilatura
import trafilatura.external
from lxml.etree import ParserError, _Element

from mash.extract.clean import clean_page
from mash.extract.evidence import Evidence, accepts, is_menu_like, is_suspect
from mash.extract.trim import norm_words, text_of, trim_body

_Tree: TypeAlias = lxml.html.HtmlElement
# trafilatura's own precision mode drops short article lines (captions, list items,
# sub-headings); our cleaning removes the boilerplate it guards against, so the
# default mode plus cleaning scores higher (bench/EXTRACT.md).
_PRECISION = False
_CONTAINER_TAGS = ("p", "div", "td", "li", "section", "article", "blockquote", "span")
_FIRST_TAG = re.compile(r"<([A-Za-z][\w:.-]*)")
_NOT_PAGES = frozenset(["rss", "feed", "rdf:rdf", "svg", "math"])  # XML served for a page
# Trafilatura's own body replaces a suspect one of ours when it has this many times the words.
FAR_LONGER = 3
_CONTAINER_MARKS = re.compile(r"(?:^|[-_\s])(?:post|entry|article|content|story)(?:$|[-_\s])", re.I)


def load_page(html: str) -> _Tree | None:
    """Parse html as lxml's HTML tree (None when there is nothing to parse)."""
    if not html or not html.strip():
        return None
    try:
        tree = trafilatura.utils.load_html(html)
        if tree is None:
            tree = _load_fragment(html)
    except (ParserError, ValueError):
        return None
    return tree if isinstance(tree, lxml.html.HtmlElement) else None


def _load_fragment(html: str) -> _Tree | None:
    """Parse a page trafilatura rejects for lacking a head (no <html>, no <title>, no <meta>).

    HTML lets a page leave out its html, head and body tags; trafilatura takes one
    without any head content for "not HTML" and so finds no article in it.
    """
    first = _FIRST_TAG.search(html)
    if first is None or first.group(1).lower() in _NOT_PAGES:
        return None  # plain text or a feed, not a page
    tree = lxml.html.document_fromstring(html)
    if not isinstance(tree, lxml.html.HtmlElement) or tree.find("body") is None:
        return None
    return tree if tree.text_content().strip() else None


def extract_body(
    tree: _Tree, url: str | None, rich: bool, images: bool = False, title: str = ""
) -> _Element | None:
    """Return trafilatura's article body (its XML) from tree after cleaning, or None.

    ``tree`` is changed in place. With rich, links and formatting are kept for the
    HTML output; without, the body is for plain text. Images are asked for apart:
    they change which blocks trafilatura keeps (see ``extract_article_body``). The
    title trimmed from the top is the feed's when given, else the page's.
    """
    title = title or page_title(tree)
    clean_page(tree)
    return _trafilatura_body(tree, url, rich, title, precision=_PRECISION, images=images)


def _trafilatura_body(
    tree: _Tree, url: str | None, rich: bool, title: str, *, precision: bool, images: bool
) -> _Element | None:
    """Return trafilatura's body of tree with title, byline and tail lines trimmed, or None."""
    _load_stoplists()
    document: Any = trafilatura.bare_extraction(
        tree,
        url=url,
        favor_precision=precision,
        include_comments=False,
        include_images=images,
        include_links=rich,
        include_formatting=rich,
        with_metadata=False,
    )
    body = getattr(document, "body", None)
    if body is None:
        return None
    trim_body(body, title)
    return body if len(body) or (body.text or "").strip() else None


@dataclass(frozen=True)
class Found:
    """The article body extract_checked chose, how, and whether the evidence accepted it."""

    body: _Element | None
    how: str
    accepted: bool


def extract_checked(
    html: str, tree: _Tree, url: str | None, evidence: Evidence, rich: bool
) -> Found:
    """Return the first candidate article of the page that the feed's evidence accepts.

    Candidates, in order (#18): ours (cleaning, trafilatura, trimming); when the page
    shows the summary's opening words but ours lacks them, the container holding
    them; trafilatura's own precision mode. A summary the page never shows (a feed's
    own excerpt) proves nothing, so then only the menu check counts. An article of
    ours that nothing vouches for and that is suspect (short, or mostly the page's
    links) gives way to trafilatura's precision mode when that is far longer. When no
    candidate passes, ``accepted`` is False and ``body`` is ours (or the baseline's when
    ours is empty); the caller decides whether the feed's text is better. ``tree`` is
    changed in place; ``html`` is parsed again only when ours fails or is suspect.
    """
    title = evidence.title or page_title(tree)
    if rich:
        ours = extract_article_body(tree, url, title)
    else:
        ours = extract_body(tree, url, rich=False, title=title)
    ours_text = body_text(ours)
    if accepts(ours_text, evidence):
        if evidence.probe:
            return Found(ours, ", matches the feed summary", True)
        return _checked_against_baseline(html, tree, url, rich, title, ours, ours_text, "")
    pristine = load_page(html)
    if pristine is None:
        return Found(ours, "", False)
    if evidence.probe and not page_shows(pristine, evidence.probe):
        evidence = replace(evidence, probe="")
        if not is_menu_like(ours_text):
            how = ", the page does not quote the feed summary"
            return _checked_against_baseline(pristine, tree, url, rich, title, ours, ours_text, how)
    if evidence.probe:
        near = extract_body_near(pristine, url, evidence.probe, rich)
        if accepts(body_text(near), evidence):
            return Found(near, ", found by the feed summary", True)
    baseline = extract_baseline(pristine, url, rich, title)
    if accepts(body_text(baseline), evidence):
        return Found(baseline, ", trafilatura's precision mode (ours failed the check)", True)
    return Found(ours if ours is not None else baseline, ", fails the check", False)


def _checked_against_baseline(
    page: str | _Tree,
    cleaned: _Tree,
    url: str | None,
    rich: bool,
    title: str,
    ours: _Element | None,
    ours_text: str,
    how: str,
) -> Found:
    """Return ours, or trafilatura's own body when ours is suspect and that is far longer.

    The safety net for an article nothing vouches for (no feed summary it quotes,
    #18): ours is suspect when it is short or mostly the page's link texts (a
    cleaning step that took the article for a widget, a layout table read as a
    menu); then trafilatura's precision mode runs on the page as published, and
    wins when it is accepted and has ``FAR_LONGER`` times the words of ours. ``page`` is
    the html or its pristine tree; ``cleaned`` the tree ours came from.
    """
    if not is_suspect(ours_text, _link_texts(cleaned)):
        return Found(ours, how, True)
    pristine = load_page(page) if isinstance(page, str) else page
    if pristine is None:
        return Found(ours, how, True)
    baseline = extract_baseline(pristine, url, rich, title)
    baseline_text = body_text(baseline)
    far_longer = _word_count(baseline_text) >= FAR_LONGER * max(1, _word_count(ours_text))
    if far_longer and accepts(baseline_text, Evidence()):
        return Found(baseline, ", trafilatura's precision mode (ours was short or links)", True)
    return Found(ours, how, True)


def _link_texts(tree: _Tree) -> frozenset[str]:
    """Return the texts of tree's links, as ``norm_words`` gives them."""
    return frozenset(norm_words(a.text_content()) for a in tree.iter("a"))


def _word_count(text: str) -> int:
    return len(norm_words(text).split())


def extract_article_body(tree: _Tree, url: str | None, title: str = "") -> _Element | None:
    """Return the article body for HTML output: with its images when that keeps the text.

    Asking trafilatura for images shifts its choice of blocks on some pages (image
    galleries, link lists), so the body with images is used only when its words
    match the body without; otherwise the article goes without its images.
    """
    pictured_tree = copy.deepcopy(tree) if tree.find(".//img") is not None else None
    body = extract_body(tree, url, rich=True, title=title)
    if body is None or pictured_tree is None:
        return body
    pictured = extract_body(pictured_tree, url, rich=True, images=True, title=title)
    if pictured is not None and _same_words(text_of(pictured), text_of(body)):
        return pictured
    return body


def _same_words(a: str, b: str) -> bool:
    words_a, words_b = norm_words(a).split(), norm_words(b).split()
    close = abs(len(words_a) - len(words_b)) <= 0.02 * len(words_b) + 3
    return close and words_a[:30] == words_b[:30] and words_a[-30:] == words_b[-30:]


@cache
def _load_stoplists() -> None:
    """Build trafilatura's justext stoplists once per process, on the first page.

    trafilatura builds them lazily inside the first extraction that needs them
    (0.7 s of CPU), which would charge one page with the whole process's setup.
    """
    external: Any = trafilatura.external
    if external.JT_STOPLIST is None:
        external.jt_stoplist_init()


def extract_baseline(tree: _Tree, url: str | None, rich: bool, title: str = "") -> _Element | None:
    """Return trafilatura's own article body of tree, in its precision mode, or None.

    The issue's baseline (#18), tried when our extraction fails the evidence: no
    cleaning, no images; the title, byline and tail lines are trimmed as ours are.
    ``tree`` is left unchanged (trafilatura works on a copy).
    """
    title = title or page_title(tree)
    return _trafilatura_body(tree, url, rich, title, precision=True, images=False)


def body_text(body: _Element | None) -> str:
    """Return the plain text of an extracted body, one line per block ("" for None)."""
    from trafilatura.xml import xmltotxt

    return str(xmltotxt(body, False)) if body is not None else ""


def page_shows(tree: _Tree, probe: str) -> bool:
    """Tell whether the page's text holds probe anywhere (a feed's own excerpt may not)."""
    return bool(probe) and probe in norm_words(tree.text_content())


def extract_body_near(tree: _Tree, url: str | None, probe: str, rich: bool) -> _Element | None:
    """Return the body extracted from the container of the element holding probe, or None.

    For pages where trafilatura picked another block than the one the feed
    summary quotes. ``tree`` is left unchanged.
    """
    holder = _holder_of(tree, probe)
    if holder is None:
        return None
    container = copy.deepcopy(_container_of(holder, len(tree.text_content())))
    # It is the article now, whatever its markup said (an aside, a widget class).
    container.tag = "article"
    for name in ("class", "id", "style", "hidden"):
        container.attrib.pop(name, None)
    page = lxml.html.document_fromstring("<html><head></head><body></body></html>")
    head, body = page[0], page[1]
    for element in tree.iter("title", "meta"):
        head.append(copy.deepcopy(element))
    body.append(container)
    return extract_article_body(page, url) if rich else extract_body(page, url, rich=False)


def _holder_of(tree: _Tree, probe: str) -> _Tree | None:
    """Return the smallest element whose text holds probe (None when no element does)."""
    best: _Tree | None = None
    best_size = 0
    for element in tree.iter(*_CONTAINER_TAGS):
        text = element.text_content()
        if len(text) > 20_000 or (best is not None and len(text) >= best_size):
            continue
        if probe in norm_words(text):
            best, best_size = element, len(text)
    return best


def _container_of(holder: _Tree, page_size: int) -> _Tree:
    """Climb from holder to the article's container.

    That is the first article or main element or one marked as a post or its
    content, else the last ancestor holding less than 80% of the page's text.
    """
    node = holder
    while True:
        parent = node.getparent()
        if parent is None or parent.tag in ("body", "html"):
            return node
        marks = f"{parent.get('class', '')} {parent.get('id', '')}"
        if parent.tag in ("article", "main") or _CONTAINER_MARKS.search(marks):
            return parent
        if len(parent.text_content()) > 0.8 * page_size:
            return node
        node = parent


def page_title(tree: _Tree) -> str:
    """Return the article's title: og:title, else the first h1, else <title>."""
    for meta in tree.iter("meta"):
        if (meta.get("property") or "").lower() == "og:title" and meta.get("content"):
            return str(meta.get("content"))
    for element in tree.iter("h1", "title"):
        text = " ".join(element.text_content().split())
        if text:
            return text
    return ""
