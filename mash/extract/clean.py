"""Remove a page's boilerplate before trafilatura reads it (#4).

Hidden blocks and widgets go: comment sections and forms, share bars, author boxes,
follow and newsletter widgets, related posts, event blocks and cookie banners, found
by their class or id and by the label they show. Layout tables become divs. The
article's core (its marked body and the ancestors of its h1) is never removed.
"""

from __future__ import annotations

import re
from typing import TypeAlias

import lxml.etree
import lxml.html

_Tree: TypeAlias = lxml.html.HtmlElement

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
# State classes ("has-sidebar") and names joining content to a widget word
# ("content-sidebar-wrap", Genesis) belong to wrappers holding the article.
_WRAPPER_CLASS = re.compile(r"^(?:has|with|no|is|show|hide)[-_]|content", re.I)
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
# A data table's cells hold words and numbers, not headings, forms or articles.
_LAYOUT_INSIDE = frozenset(
    ["table", "form", "h1", "h2", "h3", "blockquote", "iframe", "article", "nav"]
)
_DATA_MARKS = ("caption", "thead", "tfoot", "th", "col", "colgroup")
# Class/id words of the article body itself: these and their ancestors are never removed.
_CORE_WORDS = re.compile(
    r"(?:^|[-_\s])(?:entry-?content|post-?(?:content|body|text|entry)|article-?(?:body|content|text)|"
    r"story-?body|blog-?post-?body|gh-content|single-?content|main-?content)(?:$|[-_\s])",
    re.I,
)
# Labels a widget shows as its first line (matched against short, whole texts).
# Labels heading a section of their own (comments, related posts, author box, events):
# the widget is all that follows the label in its container, prose included.
_SECTION_LABEL = re.compile(
    r"^(?:leave a (?:reply|comment)|post a comment|add a comment|"
    r"join the (?:conversation|discussion)|"
    r"(?:\d+|one|two|three) (?:comments?|responses?|replies|thoughts) (?:on|to)\b.*|"
    r"related(?: posts| articles| stories| reading)?:?|you (?:might|may) also (?:like|enjoy)|"
    r"read next|more (?:posts|articles|stories) (?:from|like this).*|recommended(?: for you)?|"
    r"popular posts|recent posts|most (?:popular|read|viewed|shared|commented)(?: \w+)?|"
    r"trending(?: now| stories| posts)?|don'?t miss|in other news|editor'?s picks|"
    r"(?:top|latest|more|other|related|recommended)(?: \w+)? "
    r"(?:stories|news|articles|posts|columns|reads)|"
    r"recommended (?:reading|for you)|what to read next|"
    r"about the author|about the writer|author bio|"
    r"follow (?:this )?blog(?: via email)?|enter your email address to (?:follow|subscribe).*|"
    r"upcoming events|upcoming webinars?|events calendar"
    r")$",
    re.I,
)
# Labels of bars that may sit at the top of a post's own container (share rows, bylines,
# counts, sign-up lines, cookie notes): their widget never takes prose with it.
_BAR_LABEL = re.compile(
    r"^(?:(?:\d+|one|no|two|three) (?:comments?|responses?|replies|thoughts)|"
    r"comments?(?: \(\d+\))?|"
    r"share(?: this)?(?: post| article| story| page)?(?: on| via| with)?:?|like this:?|"
    r"spread the word:?|share on (?:facebook|twitter|linkedin)|"
    r"written by .{1,40}|published by .{1,40}|"
    r"(?:subscribe|sign up)(?: to| for)?(?: our| the)?(?: newsletter| blog| updates)?.{0,30}|"
    r"follow us.{0,20}|get (?:our|the) newsletter|"
    r"(?:we|this (?:web)?site) uses? cookies.*|by continuing to (?:browse|use) .*cookies.*"
    r")$",
    re.I,
)
_COOKIE_TEXT = re.compile(r"\b(?:we|this (?:web)?site|our site) uses? cookies\b", re.I)
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
_LABEL_TAGS = frozenset(
    ["h1", "h2", "h3", "h4", "h5", "h6", "p", "span", "strong", "b", "em", "div", "legend", "label"]
)
_MARKED = lxml.etree.XPath("//*[@class or @id or @style or @hidden or @itemprop]")
_LABELS = lxml.etree.XPath(
    "//*[" + " or ".join(f"self::{tag}" for tag in sorted(_LABEL_TAGS)) + "]"
    "[text()[normalize-space()]][count(*) <= 4]"
)
_FIRST_H1 = lxml.etree.XPath("(//h1)[1]")
# Never article text; trafilatura's fallbacks also take them for a sign of a bad extraction.
_TIMES = lxml.etree.XPath("//time")
# Beside a bar's label: buttons, a form's hint; more prose than this is an article.
_PROSE_WORDS = 20
_SECTIONS = frozenset(["nav", "aside", "footer", "form", "fieldset"])
_NEVER_TEXT = lxml.etree.XPath(
    "//button|//input|//select|//option|//label|//fieldset|//iframe|//object|//svg"
    "|//audio|//nav|//aside|//footer|//noindex|//fencedframe|//form"
)


def clean_page(tree: _Tree) -> None:
    """Remove hidden elements and boilerplate widgets from tree, sparing the article core.

    An element holding most of the page's text is never removed, whatever its class.
    Elements are found by XPath, so only those with attributes or label text become
    Python objects (most of the cost on small pages).
    """
    _unwrap_layout_tables(tree)
    marked = _select(_MARKED, tree)
    core = _core_elements(tree, marked)
    limit = 0.6 * len(tree.text_content())
    doomed: list[_Tree] = []
    for element in marked:
        if element in core or not (_is_hidden(element) or _is_boilerplate_box(element)):
            continue
        if len(element.text_content()) <= limit:
            doomed.append(element)
    for element in _select(_LABELS, tree):
        if element in core:
            continue
        label = _label_text(element)
        if not label:
            continue
        if _SECTION_LABEL.match(label):
            doomed.append(_widget_of(element, core, limit, bar=False))
        elif _BAR_LABEL.match(label) or _COOKIE_TEXT.search(label):
            doomed.append(_widget_of(element, core, limit, bar=True))
    # An ASP.NET page wraps everything in one <form>: the limit spares it.
    for element in _select(_NEVER_TEXT, tree):
        # lxml does not know SVG's "/>": an <svg> can swallow the paragraphs after it.
        small = limit if element.tag in _SECTIONS else 200
        if element not in core and len(element.text_content()) <= small:
            doomed.append(element)
    for element in doomed:
        _drop(element)
    # trafilatura takes a <time> in its result for a sign of a bad extraction and
    # runs justext again (~50 ms); the date's text is all the article needs.
    for element in _select(_TIMES, tree):
        element.drop_tag()


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
    """Tell layout from data: readability's rules, after two about the cells' content."""
    if (table.get("role") or "").lower() in ("presentation", "none"):
        return True
    if any(element.tag in _LAYOUT_INSIDE for element in table.iterdescendants()):
        return True
    if table.get("summary") or any(True for _ in table.iter(*_DATA_MARKS)):
        return False
    if any(len(cell.text_content()) > 400 for cell in table.iter("td")):
        return True
    rows = table.findall(".//tr")
    columns = max((_columns(row) for row in rows), default=0)
    if len(rows) <= 1 or columns <= 1:
        return True
    return not (len(rows) >= 10 or columns > 4 or len(rows) * columns > 10)


def _columns(row: _Tree) -> int:
    total = 0
    for cell in row.iterchildren("td", "th"):
        span = cell.get("colspan", "1")
        total += int(span) if span.isdigit() else 1
    return total


def _label_text(element: _Tree) -> str:
    """Return element's whole text when it is a short label (a few children at most)."""
    if element.tag not in _LABEL_TAGS or not (element.text or "").strip() or len(element) > 4:
        return ""
    text = element.text_content()
    return " ".join(text.split()) if len(text) <= 400 else ""


def _select(xpath: lxml.etree.XPath, tree: _Tree) -> list[_Tree]:
    found = xpath(tree)
    return (
        [e for e in found if isinstance(e, lxml.html.HtmlElement)]
        if isinstance(found, list)
        else []
    )


def _core_elements(tree: _Tree, marked: list[_Tree]) -> set[_Tree]:
    """Return the elements that may hold the article: the marked core and h1's ancestors."""
    anchors = _select(_FIRST_H1, tree)
    for element in marked:
        marks = f"{element.get('class', '')} {element.get('id', '')}"
        if element.get("itemprop") == "articleBody" or _CORE_WORDS.search(marks):
            anchors.append(element)
    core: set[_Tree] = set()
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
    like "sharing-with-a-developer", name sections, not widgets. State and layout
    classes of wrappers ("has-sidebar", "content-sidebar-wrap") name no widget.
    """
    if element.tag in ("body", "html", "main", "article", "p", "a", "span", "li", "img"):
        return False
    for name in element.get("class", "").split():
        if _BOILER_WORDS.search(name) and not _WRAPPER_CLASS.search(name):
            return True
    ident = element.get("id", "")
    return bool(ident) and _BOILER_ID.fullmatch(ident) is not None


def _widget_of(label: _Tree, core: set[_Tree], limit: float, bar: bool) -> _Tree:
    """Return the widget that label heads: climb while it opens its parent.

    Stops below the body, the article's core and any element over limit characters;
    for a bar's label also below any element with prose beside it: a share row or
    byline heading a short post's container must not take the post with it.
    """
    node = label
    while True:
        parent = node.getparent()
        if parent is None or parent in core or parent.tag in ("body", "html"):
            return node
        if not _opens(parent, node) or len(parent.text_content()) > limit:
            return node
        if bar and _prose_words(parent, node) >= _PROSE_WORDS:
            return node
        node = parent


def _prose_words(parent: _Tree, skip: _Tree) -> int:
    """Count the words of parent outside skip and outside links."""
    words = len((parent.text or "").split())
    for child in parent:
        words += len((child.tail or "").split())
        if child is skip or not isinstance(child.tag, str):
            continue
        linked = sum(len(a.text_content().split()) for a in child.iter("a"))
        words += len(child.text_content().split()) - linked
    return words


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
