"""Find a page's article: trafilatura, with blog boilerplate removed before and after it.

Before trafilatura runs, hidden elements and widgets go: comment sections and forms,
share bars, author boxes, follow and newsletter widgets, related posts, event blocks
and cookie banners, found by their class or id and by the label they show. After it,
the title and byline repeated at the top and the tag or share lines left at the
bottom are trimmed. Nothing here reads the network or the clock.
"""

from __future__ import annotations

import re
from typing import Any, TypeAlias

import lxml.etree
import lxml.html
import trafilatura
from lxml.etree import ParserError, _Element

_Tree: TypeAlias = lxml.html.HtmlElement
# trafilatura's own precision mode drops short article lines (captions, list items,
# sub-headings); our cleaning removes the boilerplate it guards against, so the
# default mode plus cleaning scores higher (bench/EXTRACT.md).
_PRECISION = False

# Class/id words that mark a widget around (never inside) an article (#4).
_BOILER_ALTS = (
    r"comments?|comment-?(?:respond|list|area|form|section|thread)|respond|"
    r"disqus(?:_thread)?|share(?:bar|daddy|-?buttons?|-?links?|-?row|-?tools)?|sharing|"
    r"social(?:-?(?:share|links|icons|buttons))?|addtoany|jp-relatedposts|related(?:-?posts)?|"
    r"yarpp|author-?(?:box|bio|info|card|profile|description)|about-?(?:the-?)?author|"
    r"newsletter|subscribe|subscription|follow-?(?:blog|us)|mailchimp|mc4wp|optin|"
    r"cookies?|cookie-?(?:banner|notice|bar|consent)|consent|gdpr|cc-window|"
    r"events?-?(?:box|list|widget)|upcoming-?events|sidebar|widget-?area|breadcrumbs?|"
    r"post-?navigation|nav-?links|pagination|popup|modal|advert(?:isement)?|ads?|sponsor(?:ed)?"
)
_BOILER_WORDS = re.compile(rf"(?:^|[-_\s])(?:{_BOILER_ALTS})(?:$|[-_\s])", re.I)
_BOILER_ID = re.compile(rf"(?:[a-z0-9]+[-_])?(?:{_BOILER_ALTS})(?:[-_][a-z0-9]+)?", re.I)
_BLOCKS = frozenset(
    [
        "div",
        "section",
        "aside",
        "nav",
        "header",
        "footer",
        "form",
        "ul",
        "ol",
        "dl",
        "table",
        "p",
        "blockquote",
        "figure",
        "details",
        "dialog",
        "menu",
        "center",
    ]
)
_LAYOUT_INSIDE = frozenset(
    ["table", "div", "p", "ul", "ol", "form", "h1", "h2", "h3", "h4", "blockquote", "iframe"]
)
# Class/id words of the article body itself: these and their ancestors are never removed.
_CORE_WORDS = re.compile(
    r"(?:^|[-_\s])(?:entry-?content|post-?(?:content|body|text|entry)|article-?(?:body|content|text)|"
    r"story-?body|blog-?post-?body|gh-content|single-?content|main-?content)(?:$|[-_\s])",
    re.I,
)
# Labels a widget shows as its first line (matched against short, whole texts).
_WIDGET_LABEL = re.compile(
    r"^(?:leave a (?:reply|comment)|post a comment|add a comment|"
    r"join the (?:conversation|discussion)|"
    r"(?:\d+|one|no|two|three) (?:comments?|responses?|replies|thoughts)(?: on| to)?\b.*|"
    r"comments?(?: \(\d+\))?|"
    r"share(?: this)?(?: post| article| story| page)?(?: on| via| with)?:?|like this:?|"
    r"spread the word:?|share on (?:facebook|twitter|linkedin)|"
    r"related(?: posts| articles| stories| reading)?:?|you (?:might|may) also (?:like|enjoy)|"
    r"read next|more (?:posts|articles|stories) (?:from|like this).*|recommended(?: for you)?|"
    r"popular posts|recent posts|"
    r"about the author|about the writer|author bio|written by .{1,40}|published by .{1,40}|"
    r"(?:subscribe|sign up)(?: to| for)?(?: our| the)?(?: newsletter| blog| updates)?.{0,30}|"
    r"follow (?:this )?blog(?: via email)?|follow us.{0,20}|get (?:our|the) newsletter|"
    r"enter your email address to (?:follow|subscribe).*|"
    r"upcoming events|upcoming webinars?|events calendar|"
    r"(?:we|this (?:web)?site) uses? cookies.*|by continuing to (?:browse|use) .*cookies.*"
    r")$",
    re.I,
)
_COOKIE_TEXT = re.compile(r"\b(?:we|this (?:web)?site|our site) uses? cookies\b", re.I)
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
_LABEL_TAGS = frozenset(
    ["h1", "h2", "h3", "h4", "h5", "h6", "p", "span", "strong", "b", "em", "div", "legend", "label"]
)


def extract_body(tree: _Tree, url: str | None, rich: bool) -> _Element | None:
    """Return trafilatura's article body (its XML) from tree after cleaning, or None.

    ``tree`` is changed in place. With rich, images, links and formatting are kept
    for the HTML output; without, the body is for plain text.
    """
    title = _page_title(tree)
    clean_page(tree)
    document: Any = trafilatura.bare_extraction(
        tree,
        url=url,
        favor_precision=_PRECISION,
        include_comments=False,
        include_images=rich,
        include_links=rich,
        include_formatting=rich,
        with_metadata=False,
    )
    body = getattr(document, "body", None)
    if body is None:
        return None
    trim_body(body, title)
    return body if len(body) or (body.text or "").strip() else None


def load_page(html: str) -> _Tree | None:
    """Parse html as lxml's HTML tree (None when there is nothing to parse)."""
    if not html or not html.strip():
        return None
    try:
        tree = trafilatura.utils.load_html(html)
    except (ParserError, ValueError):
        return None
    return tree if isinstance(tree, lxml.html.HtmlElement) else None


# --- cleaning before trafilatura --------------------------------------------------------


def clean_page(tree: _Tree) -> None:
    """Remove hidden elements and boilerplate widgets from tree, sparing the article core.

    An element holding most of the page's text is never removed, whatever its class.
    """
    _unwrap_layout_tables(tree)
    core = _core_elements(tree)
    limit = 0.6 * len(tree.text_content())
    doomed: list[_Tree] = []
    for element in tree.iter("*"):
        if element in core or not isinstance(element.tag, str):
            continue
        if _is_hidden(element) or _is_boilerplate_box(element):
            if len(element.text_content()) <= limit:
                doomed.append(element)
            continue
        label = _label_text(element)
        if label and (_WIDGET_LABEL.match(label) or _COOKIE_TEXT.search(label)):
            doomed.append(_widget_of(element, core, limit))
    for element in doomed:
        _drop(element)


def _unwrap_layout_tables(tree: _Tree) -> None:
    """Turn tables used for page layout into divs, so their cells read as blocks.

    trafilatura reads any table as data and runs a whole layout (menu, article,
    sidebar) into one row of text. A table is layout when it nests a table or
    block elements, has one row or one column, or says role="presentation".
    """
    for table in reversed(list(tree.iter("table"))):
        if not _is_layout_table(table):
            continue
        for element in table.iter("table", "tbody", "thead", "tfoot", "tr", "td", "th"):
            if element is table or not _inside_data_table(element, table):
                element.tag = "div"
                for name in ("width", "colspan", "rowspan", "valign", "align", "bgcolor"):
                    element.attrib.pop(name, None)


def _inside_data_table(element: _Tree, layout: _Tree) -> bool:
    for ancestor in element.iterancestors():
        if ancestor is layout:
            return False
        if ancestor.tag == "table":
            return True
    return False


def _is_layout_table(table: _Tree) -> bool:
    if (table.get("role") or "").lower() in ("presentation", "none"):
        return True
    if table.find(".//caption") is not None or table.find(".//th") is not None:
        return False
    rows = table.findall(".//tr")
    if len(rows) <= 1 or all(len(row.findall("td")) <= 1 for row in rows):
        return True
    return any(
        element.tag in _LAYOUT_INSIDE for element in table.iterdescendants() if element is not table
    )


def _label_text(element: _Tree) -> str:
    """Return element's whole text when it is a short label (a few children at most)."""
    if element.tag not in _LABEL_TAGS or not (element.text or "").strip() or len(element) > 4:
        return ""
    text = element.text_content()
    return " ".join(text.split()) if len(text) <= 400 else ""


def _core_elements(tree: _Tree) -> set[_Tree]:
    """Return the elements that may hold the article: the body's marked core and h1's ancestors."""
    core: set[_Tree] = set()
    anchors = [e for e in tree.iter("h1")][:1]
    for element in tree.iter("*"):
        marks = f"{element.get('class', '')} {element.get('id', '')}"
        if element.get("itemprop") == "articleBody" or (
            marks.strip() and _CORE_WORDS.search(marks)
        ):
            anchors.append(element)
    for anchor in anchors:
        core.add(anchor)
        core.update(anchor.iterancestors())
    return core


def _is_hidden(element: _Tree) -> bool:
    """Tell whether element is a block hidden by its markup (inline ones are left alone).

    Hidden inline elements are often accessible copies (MathML beside its image),
    whose removal confuses trafilatura about the text around them.
    """
    if element.tag not in _BLOCKS:
        return False
    if element.get("hidden") is not None:
        return True
    style = element.get("style")
    return bool(style and _HIDDEN_STYLE.search(style))


def _is_boilerplate_box(element: _Tree) -> bool:
    """Tell whether element's class, or its whole id, names a widget.

    Ids are matched whole (one word either side at most): ids made from headings,
    like "sharing-with-a-developer", name sections, not widgets.
    """
    if element.tag in ("body", "html", "main", "article", "p", "a", "span", "li", "img"):
        return False
    classes = element.get("class", "")
    if classes and _BOILER_WORDS.search(classes):
        return True
    ident = element.get("id", "")
    return bool(ident) and _BOILER_ID.fullmatch(ident) is not None


def _widget_of(label: _Tree, core: set[_Tree], limit: float) -> _Tree:
    """Return the widget that label heads: climb while it opens its parent.

    Stops below the body, the article's core and any element over limit characters.
    """
    node = label
    while True:
        parent = node.getparent()
        if parent is None or parent in core or parent.tag in ("body", "html"):
            return node
        if not _opens(parent, node) or len(parent.text_content()) > limit:
            return node
        node = parent


def _opens(parent: _Tree, child: _Tree) -> bool:
    """Tell whether child holds the first text of parent (nothing but markup before it)."""
    if (parent.text or "").strip():
        return False
    for sibling in parent:
        if sibling is child:
            return True
        if not isinstance(sibling.tag, str):
            continue
        if sibling.text_content().strip() or (sibling.tail or "").strip():
            return False
    return False


def _drop(element: _Tree) -> None:
    parent = element.getparent()
    if parent is None:
        return
    tail = element.tail
    previous = element.getprevious()
    parent.remove(element)
    if tail and tail.strip():
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail


# --- trimming after trafilatura ---------------------------------------------------------

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
    sizes = [len(_text_of(block)) for block in blocks]
    total, seen = sum(sizes), 0
    for index, block in enumerate(blocks):
        if seen >= total / 2 and sizes[index] < 200 and _END_MARK.match(_text_of(block)):
            for doomed in blocks[index:]:
                _remove(doomed)
            break
        seen += sizes[index]
    for block in reversed(_blocks(body)):
        text = _text_of(block)
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
    """Drop the title, byline and a teaser repeating the opening, at the top of body."""
    blocks = _blocks(body)
    for index, block in enumerate(blocks[:3]):
        text = _text_of(block)
        if not text:
            continue
        if _same_title(text, title) or _is_byline(text) or _is_teaser(text, blocks[index + 1 :]):
            _remove(block)
            continue
        lines = (block.text or "").split("\n")
        while lines and (
            not lines[0].strip() or _same_title(lines[0], title) or _is_byline(lines[0])
        ):
            lines.pop(0)
        block.text = "\n".join(lines)
        break


def _is_teaser(text: str, rest: list[_Element]) -> bool:
    """Tell whether text is a cut copy of the text that follows it (an excerpt or dek)."""
    words = _norm(text)
    if len(words.split()) < 8:
        return False
    following = _norm(" ".join(_text_of(block) for block in rest[:3]))
    return following.startswith(words)


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


def _text_of(element: _Element) -> str:
    return " ".join("".join(str(t) for t in element.itertext()).split())


def _same_title(text: str, title: str) -> bool:
    if not title:
        return False
    a, b = _norm(text), _norm(title)
    return bool(a) and (a == b or (len(a) > 15 and b.startswith(a)))


def _norm(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def _page_title(tree: _Tree) -> str:
    """Return the article's title: og:title, else the first h1, else <title>."""
    for meta in tree.iter("meta"):
        if (meta.get("property") or "").lower() == "og:title" and meta.get("content"):
            return str(meta.get("content"))
    for element in tree.iter("h1", "title"):
        text = " ".join(element.text_content().split())
        if text:
            return text
    return ""
