"""Sanitise untrusted HTML (nh3 allow-list) and turn sanitised HTML into plain text.

Every HTML field of mash, whatever its source (feed content, summaries, extracted
pages), goes through ``sanitize_html`` before it is stored or rendered (see #4).
"""

from __future__ import annotations

import re
from functools import lru_cache
from html import unescape
from typing import Literal
from urllib.parse import urlsplit

import lxml.etree
import lxml.html
import nh3

from mash.urls import is_web_url

# html5ever (inside nh3) takes time growing with the square of nesting depth:
# 100,000 nested <div>s take over a minute, so size and depth are capped first (#4).
MAX_HTML_CHARS = 2_000_000
# A whole page is read by lxml, not nh3 (only its article is sanitised): more room.
MAX_PAGE_CHARS = 10_000_000
MAX_DEPTH = 200

_BLOCK_TAGS = frozenset(
    [
        "p",
        "div",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "ul",
        "ol",
        "li",
        "dl",
        "dt",
        "dd",
        "blockquote",
        "pre",
        "figure",
        "figcaption",
        "table",
        "thead",
        "tbody",
        "tfoot",
        "tr",
        "caption",
        "hr",
        "section",
        "article",
        "details",
        "summary",
    ]
)
_TAGS = _BLOCK_TAGS | frozenset(
    [
        "br",
        "a",
        "img",
        "em",
        "strong",
        "b",
        "i",
        "u",
        "s",
        "del",
        "ins",
        "sub",
        "sup",
        "small",
        "mark",
        "abbr",
        "q",
        "cite",
        "code",
        "kbd",
        "samp",
        "var",
        "span",
        "th",
        "td",
        "time",
    ]
)
# Removed together with their content; everything else not allowed is unwrapped.
_DROP_WITH_CONTENT = frozenset(
    [
        "script",
        "style",
        "template",
        "noscript",
        "iframe",
        "frame",
        "frameset",
        "object",
        "embed",
        "applet",
        "svg",
        "math",
        "form",
        "select",
        "textarea",
        "button",
        "input",
        "option",
        "datalist",
        "canvas",
        "audio",
        "video",
        "head",
        "title",
        "noembed",
        "noframes",
        "xmp",
        "plaintext",
    ]
)
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height", "title"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "ol": {"start"},
    "abbr": {"title"},
    "time": {"datetime"},
}
_URL_SCHEMES = {"http", "https", "mailto"}
_LINK_REL = "noopener nofollow"

# Hosts that serve only tracking pixels, and path marks of feed tracking images.
_TRACKER_HOSTS = (
    "feeds.feedburner.com",
    "feedproxy.google.com",
    "pixel.wp.com",
    "stats.wordpress.com",
    "www.google-analytics.com",
    "google-analytics.com",
    "pixel.quantserve.com",
    "mc.yandex.ru",
    "www.facebook.com",
    "px.ads.linkedin.com",
    "ad.doubleclick.net",
    "pixel.mathtag.com",
    "sb.scorecardresearch.com",
    "b.scorecardresearch.com",
    "track.hubspot.com",
    "t.co",
    "bat.bing.com",
    "list-manage.com",
    "open.substack.com",
    "feeds.wordpress.com",
    "a.fsdn.com",
)
_TRACKER_PATHS = ("/~r/", "/~ff/", "/__utm.gif", "/pixel.gif", "/tracking/", "/open.gif")

# nh3's output is canonical: lower-case names, every value double-quoted, '"' escaped.
_IMG_RE = re.compile(r'<img((?:\s+[a-z-]+="[^"]*")*)\s*/?>')
_ATTR_RE = re.compile(r'([a-z-]+)="([^"]*)"')
_TAG_RE = re.compile(
    r"<(/?)(?!(?:br|img|hr|input|meta|link|area|base|col|embed|source|track|wbr|param)\b)"
    r"[a-zA-Z]"
)


def sanitize_html(html: str, base_url: str | None = None) -> str:
    """Return html reduced to the allow-list, safe to store and render.

    Relative URLs become absolute against base_url (left as they are without one);
    links get ``rel="noopener nofollow"``; tracking pixels go. Input past
    ``MAX_HTML_CHARS`` is cut, and nesting past ``MAX_DEPTH`` is flattened to text
    before nh3 sees it; use ``html_limits_problem`` to report such input.
    """
    if not html:
        return ""
    html = _bound_html(html[:MAX_HTML_CHARS])
    plain = _cleaner(None)
    out = plain.clean(html)
    if base_url and _has_relative_url(out) and is_web_url(base_url):
        out = _cleaner(base_url).clean(html)
    # Unwrapping a tag can leave markup that parses differently the second time
    # (e.g. nested links); one more pass reaches the fixed point. The URLs are
    # absolute by now, so the shared cleaner does. Where the parser added, moved or
    # dropped no tag and the cleaner unwrapped none (as many tags out as in, no
    # comment), the first pass is the fixed point already (see #8); but for <pre>,
    # whose first newline each parse drops.
    if "<!--" in html or "<pre" in out or html.count("<") != out.count("<"):
        out = plain.clean(out)
    # tracking pixels go last: an image gone changes nothing else a pass would see
    return _drop_tracking_images(out)


def html_limits_problem(html: str, max_chars: int = MAX_HTML_CHARS) -> str | None:
    """Return why html is over the size or depth cap, or None when it is within both.

    The cheap tag scan over-counts unclosed ``<p>`` and ``<li>``; when it says too
    deep, lxml measures the real depth before the page is refused.
    """
    if len(html) > max_chars:
        return f"HTML is {len(html):,} characters, over the cap of {max_chars:,}"
    cap = MAX_DEPTH * 5
    if estimate_depth(html) > cap:
        depth = _parsed_depth(html)
        if depth > cap:
            shown = f"{depth:,}" if depth < 2_000 else "more than 2,000"
            return f"HTML nests {shown} elements deep, over the cap of {cap:,}"
    return None


def _parsed_depth(html: str) -> int:
    """Return the nesting depth lxml builds for html (libxml2 stops near 2,048)."""
    parser = lxml.html.HTMLParser(huge_tree=True)
    try:
        root = lxml.html.document_fromstring(html, parser=parser)
    except (lxml.etree.ParserError, ValueError):
        return 0
    depth = deepest = 0
    for event, _ in lxml.etree.iterwalk(root, events=("start", "end")):
        depth += 1 if event == "start" else -1
        deepest = max(deepest, depth)
    return deepest


def estimate_depth(html: str) -> int:
    """Return an upper estimate of html's element nesting depth from a cheap tag scan.

    Unclosed optional-end tags (``<p>``, ``<li>``) count as open, so the estimate
    can exceed the real depth, never fall short of it for well-formed markup.
    """
    if html.count("<") <= MAX_DEPTH:
        return html.count("<")
    depth = deepest = 0
    for match in _TAG_RE.finditer(html):
        if match.group(1):
            depth = max(depth - 1, 0)
        else:
            depth += 1
            deepest = max(deepest, depth)
    return deepest


def _bound_html(html: str) -> str:
    """Return html without the tags nested deeper than MAX_DEPTH (their text stays).

    A tag scan, not a parser: libxml2 itself gives up past depth 2,048 and drops
    the rest of the document.
    """
    if estimate_depth(html) <= MAX_DEPTH:
        return html
    pieces: list[str] = []
    position = depth = 0
    for match in _TAG_RE.finditer(html):
        if match.group(1):
            deep = depth > MAX_DEPTH
            depth = max(depth - 1, 0)
        else:
            depth += 1
            deep = depth > MAX_DEPTH
        if deep:
            end = html.find(">", match.end())
            end = len(html) if end < 0 else end + 1
            pieces.append(html[position : match.start()])
            position = end
    pieces.append(html[position:])
    return "".join(pieces)


def _has_relative_url(html: str) -> bool:
    """Tell whether nh3's (canonical) output has an href or src without a scheme.

    Most feed content has none, so it is cleaned once with the shared cleaner, and
    again with one for its base only when this finds one: making a Cleaner per post
    costs more than cleaning the post (see #8).
    """
    for attribute in (' href="', ' src="'):
        at = html.find(attribute)
        while at >= 0:
            start = at + len(attribute)
            if not html.startswith(("http:", "https:", "mailto:"), start):
                return True
            at = html.find(attribute, start)
    return False


@lru_cache(maxsize=64)
def _cleaner(base_url: str | None) -> nh3.Cleaner:
    relative: Literal["pass_through"] | tuple[Literal["rewrite_with_base"], str]
    relative = "pass_through" if base_url is None else ("rewrite_with_base", base_url)
    return nh3.Cleaner(
        tags=set(_TAGS),
        clean_content_tags=set(_DROP_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in _ATTRIBUTES.items()},
        url_schemes=set(_URL_SCHEMES),
        link_rel=_LINK_REL,
        url_relative=relative,
        strip_comments=True,
    )


def _drop_tracking_images(html: str) -> str:
    if "<img" not in html:
        return html
    return _IMG_RE.sub(lambda m: "" if _is_tracking_image(m.group(1)) else m.group(0), html)


def _is_tracking_image(attributes: str) -> bool:
    attrs = dict(_ATTR_RE.findall(attributes))
    src = attrs.get("src", "").replace("&amp;", "&")
    if not src:
        return True
    for name in ("width", "height"):
        size = attrs.get(name, "").strip().removesuffix("px")
        if size.isdigit() and int(size) <= 1:
            return True
    parts = urlsplit(src)
    host = (parts.hostname or "").lower()
    if any(host == h or host.endswith("." + h) for h in _TRACKER_HOSTS):
        return True
    return any(mark in parts.path for mark in _TRACKER_PATHS)


# Attributes, which may quote ">"; then the markup html_to_text turns into line breaks,
# into spaces (between table cells), and drops: any tag, comment or declaration.
_ATTRS = r"""(?:[^>"']|"[^"]*"|'[^']*')*"""
_BLOCKS = "|".join(sorted(_BLOCK_TAGS, key=len, reverse=True))
_LINE_BREAK = re.compile(rf"</?(?:{_BLOCKS}|br)\b{_ATTRS}>", re.I)
_CELL_END = re.compile(rf"</t[dh]\b{_ATTRS}>", re.I)
_MARKUP = re.compile(rf"<!--.*?-->|</?[a-zA-Z][a-zA-Z0-9]*{_ATTRS}>|<![^>]*>", re.S)


def html_to_text(html: str) -> str:
    """Return the plain text of sanitised html, each block element on its own line.

    Whitespace inside a line is collapsed; blank lines are dropped. Images and
    other markup without text give nothing. Regex passes, not a parse: the input is
    nh3's well-formed output, and this runs for every post of every feed (see #8).
    """
    if not html or not html.strip():
        return ""
    if "<" in html:
        html = _MARKUP.sub("", _CELL_END.sub(" ", _LINE_BREAK.sub("\n", html)))
    lines = filter(None, map(str.strip, unescape(html).replace("\r", "\n").split("\n")))
    # a line with single spaces only (most) is kept as it is; str.split() collapses the
    # rest. Every whitespace character but the space is unprintable.
    return "\n".join(
        line if "  " not in line and line.isprintable() else " ".join(line.split())
        for line in lines
    )
