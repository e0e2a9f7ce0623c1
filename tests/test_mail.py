"""Email rendering and message building (mash.mail), and the email in headless Chromium."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from html import unescape as html_unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jinja2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mash import mail
from mash.errors import RenderError, SendError
from mash.records import (
    Issue,
    Link,
    Listening,
    Newsletter,
    Pick,
    Section,
    SmtpSettings,
    Thumbnail,
)
from tests.browser import Browser, Page

REPO = Path(__file__).resolve().parents[1]

SECTIONS = (
    Section("title", "Monthly Mash and the Customer's Invisible Rules", "Volume 22: August 2013"),
    Section("welcome", "Welcome"),
    Section("editorial", "Thoughts on the Customer: the Customer's Invisible Rules"),
    Section(
        "picks",
        "The Month in Customer Service Blogging",
        "A collection of the best posts about customer service and the customer "
        "experience we read this past month.",
    ),
    Section(
        "listening",
        "Someone Was Listening",
        "Sometimes the most popular post from the previous month; sometimes just the "
        "one I liked best.",
    ),
    Section("about", "About the Monthly Mash"),
    Section("footer", "Why you are getting this"),
)

EDITORIAL_TEXT = (
    "Every customer carries a set of rules they never tell you about. They expect you "
    "to know them anyway.\n\nThis month the bloggers asked how to find those rules "
    "before they are broken."
)
EDITORIAL_HTML = (
    "<p>Every customer carries a set of rules they never tell you about. They expect "
    "you to know them anyway.</p>\n<p>This month the bloggers asked how to find those "
    '<a href="https://example.org/rules">rules</a> before they are broken.</p>'
)


def make_issue(n_picks: int = 3, **changes: Any) -> Issue:
    """Build a realistic issue by hand (no compose needed)."""
    newsletter = Newsletter(
        editor="Jo Editor",
        editor_email="jo@example.org",
        about="Jo writes about service.\n\nShe has run support teams for 20 years.",
        links=(Link("Blog", "https://jo.example.org/"), Link("Twitter", "https://t.example/jo")),
        postal_address="1 High Street, Springfield",
    )
    picks = tuple(
        Pick(
            url=f"https://blog{i}.example.com/2013/08/post-{i}?utm=x&ref=y",
            title=f"Post number {i + 1}: what <customers> & agents learn",
            blog=f"Service Blog {i + 1}",
            author=f"Author {i + 1}",
            published=datetime(2013, 8, i % 28 + 1, tzinfo=UTC),
            blurb="A short blurb about the post, in one or two sentences. " * 3,
            score=10.0 - i,
        )
        for i in range(n_picks)
    )
    listening = Listening(
        url="https://jo.example.org/2013/07/popular",
        title="The most popular post",
        blog="Jo's Blog",
        author="Jo Editor",
        published=datetime(2013, 7, 20, tzinfo=UTC),
        blurb="Readers liked this one best.",
        reason="EDITOR-ONLY-REASON: 42 comments",
    )
    issue = Issue(
        newsletter=newsletter,
        month="2013-08",
        volume=22,
        title=SECTIONS[0].heading,
        theme="the Customer's Invisible Rules",
        editorial_html=EDITORIAL_HTML,
        editorial_text=EDITORIAL_TEXT,
        picks=picks,
        listening=listening,
        sections=SECTIONS,
        web_url="https://example.org/mash/2013-08/",
    )
    return replace(issue, **changes)


@pytest.fixture(params=["plain", "strict"])
def env(request: pytest.FixtureRequest) -> jinja2.Environment:
    """The brief's plain env, and one set up like mash.render.make_env (strict, trimmed)."""
    loader = jinja2.FileSystemLoader(REPO / "mash" / "templates")
    if request.param == "plain":
        return jinja2.Environment(loader=loader, autoescape=True)
    return jinja2.Environment(
        loader=loader,
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def test_template_error_names_template_and_line(tmp_path: Path) -> None:
    (tmp_path / "email.html").write_text("line one\n{{ nope.missing }}\n")
    strict = jinja2.Environment(
        loader=jinja2.FileSystemLoader(tmp_path),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    with pytest.raises(RenderError, match=r"email.html:2"):
        mail.render_email_html(make_issue(), strict)


SMTP = SmtpSettings(
    unsubscribe_url="https://example.org/unsubscribe",
    unsubscribe_mailto="mailto:unsubscribe@example.org",
)


def parse(msg: EmailMessage) -> EmailMessage:
    """Round-trip a message through bytes as a server would receive it."""
    parsed = BytesParser(policy=policy.default).parsebytes(msg.as_bytes())
    assert isinstance(parsed, EmailMessage)
    return parsed


# --- HTML ------------------------------------------------------------------------------


def test_html_has_every_part_in_order(env: jinja2.Environment) -> None:
    html = mail.render_email_html(make_issue(), env)
    order = [
        "<title>Monthly Mash and the Customer's Invisible Rules",
        "Monthly Mash and the Customer's Invisible Rules</h1>",
        "Volume 22: August 2013",
        "Welcome to the Monthly Mash",
        "Thoughts on the Customer",
        "The Month in Customer Service Blogging",
        "A collection of the best posts",
        "Post number 1",
        "Someone Was Listening",
        "The most popular post",
        "About the Monthly Mash",
        "Jo writes about service.",
        "1 High Street, Springfield",
        "https://example.org/mash/2013-08/",
        "Unsubscribe",
    ]
    positions = [html.find(s) for s in order]
    assert -1 not in positions, [s for s, p in zip(order, positions, strict=True) if p == -1]
    assert positions == sorted(positions)


def test_html_escapes_titles_but_keeps_editorial_html(env: jinja2.Environment) -> None:
    html = mail.render_email_html(make_issue(), env)
    assert "what &lt;customers&gt; &amp; agents learn" in html
    assert '<a href="https://example.org/rules"' in html
    assert "utm=x&amp;ref=y" in html


def test_listening_reason_is_never_shown(env: jinja2.Environment) -> None:
    issue = make_issue()
    assert "EDITOR-ONLY-REASON" not in mail.render_email_html(issue, env)
    assert "EDITOR-ONLY-REASON" not in mail.render_email_text(issue, env)


def test_headings_come_from_sections(env: jinja2.Environment) -> None:
    sections = tuple(replace(s, heading=f"H-{s.key}", tagline=f"T-{s.key}") for s in SECTIONS)
    issue = make_issue(sections=sections, title="H-title")
    html = mail.render_email_html(issue, env)
    text = mail.render_email_text(issue, env)
    for key in ("editorial", "picks", "listening", "about"):
        assert f"H-{key}" in html and f"T-{key}" in html
        assert f"H-{key}".upper() in text
    assert "The Month in Customer Service Blogging" not in html + text


def test_css_is_inlined_and_only_media_queries_stay(env: jinja2.Environment) -> None:
    html = mail.render_email_html(make_issue(), env)
    styles = re.findall(r"<style[^>]*>(.*?)</style>", html, re.S)
    outside_mso = [s for s in styles if "@media" in s]
    assert len(outside_mso) == 1
    stripped = re.sub(r"@media[^{]*\{(?:[^{}]*\{[^{}]*\})*\s*\}", "", outside_mso[0])
    assert stripped.strip() == ""
    assert "prefers-color-scheme: dark" in outside_mso[0]
    assert "[data-ogsc] .container" in outside_mso[0]
    assert re.search(r'<table[^>]*class="container"[^>]*style="[^"]*max-width: 600px', html)
    assert '<!--[if mso]><table role="presentation" width="600"' in html


def test_html_head_has_lang_dir_color_scheme_and_charset(env: jinja2.Environment) -> None:
    html = mail.render_email_html(make_issue(), env)
    assert html.startswith('<!DOCTYPE html><html lang="en" dir="ltr"')
    assert html.index('<meta charset="utf-8">') < 100
    assert '<meta name="color-scheme" content="light dark">' in html
    rtl = make_issue(newsletter=replace(make_issue().newsletter, language="he"))
    assert 'dir="rtl"' in mail.render_email_html(rtl, env)


def test_preheader_is_first_sentence_and_hidden(env: jinja2.Environment) -> None:
    html = mail.render_email_html(make_issue(), env)
    match = re.search(r'<div class="preheader" style="([^"]*)">([^<]*)</div>', html)
    assert match is not None
    assert "display: none" in match.group(1)
    first = "Every customer carries a set of rules they never tell you about."
    shown = html_unescape(match.group(2))
    assert shown.startswith(first)
    assert set(shown[len(first) :]) <= {"\u034f", "\u200c", "\xa0"}


class _ImageTags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.found.append(dict(attrs))


def test_images_are_the_sites_thumbnails_with_width_height_and_alt(
    env: jinja2.Environment,
) -> None:
    issue = make_issue()
    first = replace(
        issue.picks[0],
        image="https://img.example/a.svg",
        thumbnail=Thumbnail("images/0123abcd.png", 96, 48),
    )
    second = replace(issue.picks[1], image="https://img.example/b.jpg")  # not stored: none
    issue = replace(issue, picks=(first, second, *issue.picks[2:]))
    images = _ImageTags()
    images.feed(mail.render_email_html(issue, env))
    assert images.found == [
        images.found[0] | {"src": "https://example.org/mash/images/0123abcd.png"}
    ]
    attrs = images.found[0]
    assert (attrs.get("width"), attrs.get("height")) == ("96", "48")
    assert attrs.get("alt") == "Post number 1: what <customers> & agents learn"
    no_site = replace(issue, newsletter=replace(issue.newsletter, site_url=""))
    assert "<img" not in mail.render_email_html(no_site, env)


def test_fonts_are_web_safe(env: jinja2.Environment) -> None:
    html = mail.render_email_html(make_issue(), env)
    families = set(re.findall(r"font-family:\s*([^;\"]+)", html))
    assert families
    for family in families:
        last = family.replace("!important", "").split(",")[-1].strip()
        assert last in {"serif", "sans-serif", "monospace"}, family


def test_personalise_swaps_only_unsubscribe_links(env: jinja2.Environment) -> None:
    html = mail.render_email_html(make_issue(), env)
    url = "https://example.org/unsubscribe?t=abc&x=1"
    out = mail.personalise(html, url)
    assert 'href="https://example.org/unsubscribe?t=abc&amp;x=1"' in out
    assert "mailto:mash@example.org?subject=unsubscribe" not in out
    assert out.count("https://example.org/mash/2013-08/") == html.count(
        "https://example.org/mash/2013-08/"
    )
    assert mail.personalise(out, "https://other/").count('href="https://other/"') == 1


def test_size_warning() -> None:
    assert mail.email_size_warning("x" * 1000) is None
    big = '<td style="color: red">' + "x" * (110 * 1024) + "</td>"
    warning = mail.email_size_warning(big)
    assert warning is not None
    assert "110.0 KB" in warning and "102 KB" in warning and "editorial" in warning


def test_twelve_pick_issue_is_under_gmail_clip(env: jinja2.Environment) -> None:
    html = mail.render_email_html(make_issue(12), env)
    assert mail.email_size_warning(html) is None


# --- text ------------------------------------------------------------------------------


def test_text_is_readable_alone(env: jinja2.Environment) -> None:
    text = mail.render_email_text(make_issue(), env)
    assert text.startswith("MONTHLY MASH AND THE CUSTOMER'S INVISIBLE RULES\n")
    assert "THOUGHTS ON THE CUSTOMER" in text
    assert "1. Post number 1: what <customers> & agents learn" in text
    assert "https://blog0.example.com/2013/08/post-0?utm=x&ref=y" in text
    assert "3. Post number 3" in text
    assert "Unsubscribe: mailto:mash@example.org?subject=unsubscribe" in text
    assert "&amp;" not in text and "&#39;" not in text
    assert max(len(line) for line in text.splitlines()) <= 72
    assert "\n\n\n" not in text


def test_personalise_text() -> None:
    text = "Hello\nUnsubscribe: mailto:x\n"
    assert mail.personalise_text(text, "https://u/?t=1\r\nBcc: y") == (
        "Hello\nUnsubscribe: https://u/?t=1Bcc: y\n"
    )


# --- messages --------------------------------------------------------------------------


def build(issue: Issue, env: jinja2.Environment, **changes: Any) -> EmailMessage:
    args: dict[str, Any] = {
        "to_addr": "ann@example.com",
        "to_name": "Ann Reader",
        "smtp": SMTP,
        "unsubscribe_url": "https://example.org/unsubscribe?t=TOKEN",
        "unsubscribe_mailto": "mailto:unsubscribe@example.org?subject=unsubscribe",
        "message_id": mail.make_message_id(issue.month, "ann@example.com", "mash@example.org"),
    } | changes
    html = mail.render_email_html(issue, env)
    text = mail.render_email_text(issue, env)
    return parse(mail.build_message(issue, html, text, **args))


def test_message_headers_and_parts(env: jinja2.Environment) -> None:
    msg = build(make_issue(), env)
    assert msg["From"] == "Monthly Mash <mash@example.org>"
    assert msg["To"] == "Ann Reader <ann@example.com>"
    assert msg["Subject"] == "Monthly Mash and the Customer's Invisible Rules"
    assert msg["Date"] and msg["MIME-Version"] == "1.0"
    assert re.fullmatch(r"<mash\.2013-08\.[0-9a-f]{24}@example\.org>", msg["Message-ID"])
    assert msg["List-Unsubscribe"] == (
        "<https://example.org/unsubscribe?t=TOKEN>, "
        "<mailto:unsubscribe@example.org?subject=unsubscribe>"
    )
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["List-Id"] == "Monthly Mash <monthly-mash.example.org>"
    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    assert "https://example.org/unsubscribe?t=TOKEN" in parts[0].get_content()
    assert 'href="https://example.org/unsubscribe?t=TOKEN"' in parts[1].get_content()


def test_proof_subject_and_mailto_only(env: jinja2.Environment) -> None:
    msg = build(make_issue(), env, proof=True, unsubscribe_url="")
    assert msg["Subject"].startswith("[PROOF] Monthly Mash")
    assert msg["List-Unsubscribe"] == "<mailto:unsubscribe@example.org?subject=unsubscribe>"
    assert msg["List-Unsubscribe-Post"] is None


def test_message_ids_are_deterministic_and_distinct() -> None:
    a = mail.make_message_id("2013-08", "Ann@Example.com", "mash@example.org")
    assert a == mail.make_message_id("2013-08", "ann@example.com ", "mash@example.org")
    assert a != mail.make_message_id("2013-09", "ann@example.com", "mash@example.org")
    assert a != mail.make_message_id("2013-08", "bob@example.com", "mash@example.org")


@pytest.mark.parametrize("evil", ["\r\nBcc: victim@evil.example", "\nX-Injected: 1", "\u2028X: 1"])
def test_header_injection_is_neutralised(env: jinja2.Environment, evil: str) -> None:
    issue = make_issue()
    newsletter = replace(issue.newsletter, sender_name="Mash" + evil)
    picks = (replace(issue.picks[0], title="T" + evil, blurb="B" + evil), *issue.picks[1:])
    issue = replace(issue, title="Title" + evil, newsletter=newsletter, picks=picks)
    msg = build(issue, env, to_name="Ann" + evil, message_id="<id@x>" + evil)
    assert msg["Bcc"] is None and msg["X-Injected"] is None and msg["X"] is None
    keys = [k.lower() for k in msg]
    assert len(keys) == len(set(keys))
    assert "Title" in msg["Subject"] and "\n" not in msg["Subject"]
    assert msg["To"].addresses[0].addr_spec == "ann@example.com"


def test_bad_address_names_it(env: jinja2.Environment) -> None:
    with pytest.raises(SendError, match="not-an-address"):
        build(make_issue(), env, to_addr="not-an-address")


def test_preview_eml_opens_as_a_message(env: jinja2.Environment) -> None:
    issue = make_issue()
    html = mail.render_email_html(issue, env)
    text = mail.render_email_text(issue, env)
    built = datetime(2026, 11, 3, 8, 30, tzinfo=UTC)
    raw = mail.build_preview_eml(issue, html, text, SMTP, built)
    assert raw == mail.build_preview_eml(issue, html, text, SMTP, built)
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    assert msg["To"] == "Jo Editor <jo@example.org>"
    assert msg["List-Unsubscribe"].startswith("<https://example.org/unsubscribe>")
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]


# --- headless Chromium -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "media_queries"),
    [(600, True), (375, True), (375, False)],
    ids=["600", "375", "375-no-media-queries"],
)
def test_email_does_not_overflow_in_chromium(
    browser: Browser,
    env: jinja2.Environment,
    tmp_path: Path,
    screenshots: Path,
    width: int,
    media_queries: bool,
) -> None:
    """Also without the <style> block, as Gmail's apps show mail of non-Google accounts.

    Two picks have thumbnails, served from a local "site" as `mash build` stores them.
    """
    from mash.demo import DEMO, serve_folder
    from mash.images import display_size, make_thumbnail

    chart = (DEMO / "site" / "helpdesk-diaries" / "images" / "fcr-vs-repeat.svg").read_bytes()
    made = make_thumbnail(chart, "https://blog.example/chart.svg")
    (tmp_path / "site" / "images").mkdir(parents=True)
    (tmp_path / "site" / "images" / f"chart{made.extension}").write_bytes(made.content)
    thumb = Thumbnail(f"images/chart{made.extension}", *display_size(made.width, made.height))
    issue = make_issue(12)
    picks = tuple(
        replace(p, thumbnail=thumb if i in (0, 2) else None) for i, p in enumerate(issue.picks)
    )
    long_url = "https://example.org/" + "averyveryverylongpathsegment" * 6
    editorial = EDITORIAL_HTML + f'<p>See <a href="{long_url}">{long_url}</a>.</p>'
    with serve_folder(tmp_path / "site") as base:
        newsletter = replace(issue.newsletter, site_url=f"{base}/")
        issue = replace(issue, editorial_html=editorial, picks=picks, newsletter=newsletter)
        html = mail.render_email_html(issue, env)
        if not media_queries:
            html = re.sub(r"<style>.*?</style>", "", html, count=1, flags=re.S)
        email = tmp_path / "email.html"
        email.write_text(html, encoding="utf-8")
        page = Page(browser, email.as_uri(), width)
    try:
        scroll_width, inner_width, loaded = page.evaluate(
            "[document.documentElement.scrollWidth, window.innerWidth,"
            " [...document.images].filter(i => i.complete && i.naturalWidth > 0).length]"
        )
        assert inner_width == width
        assert scroll_width <= inner_width
        assert loaded == 2
        if media_queries:
            page.screenshot(screenshots / f"email-{width}.png")
        else:
            page.screenshot(tmp_path / f"email-{width}-no-media-queries.png")
    finally:
        page.close()


def test_non_ascii_round_trips_through_quoted_printable(env: jinja2.Environment) -> None:
    issue = make_issue()
    picks = (replace(issue.picks[0], title="Zoë’s “quiet” rules — 😀", blurb="Ünïcödé " * 30),)
    issue = replace(issue, picks=picks, title="Mash — “Zoë”")
    msg = build(issue, env, to_name="Zoë Ångström")
    assert msg["Subject"] == "Mash — “Zoë”"
    assert msg["To"].addresses[0].display_name == "Zoë Ångström"
    text, html = (p.get_content() for p in msg.iter_parts())
    assert "Zoë’s “quiet” rules — 😀" in text and "Zoë’s “quiet” rules — 😀" in html
    assert text.replace("\r\n", "\n") == mail.personalise_text(
        mail.render_email_text(issue, env), "https://example.org/unsubscribe?t=TOKEN"
    )
    raw = mail.build_message(
        issue,
        mail.render_email_html(issue, env),
        mail.render_email_text(issue, env),
        to_addr="a@example.com",
        to_name="A",
        smtp=SMTP,
        unsubscribe_url="https://example.org/u",
        unsubscribe_mailto="mailto:u@example.org",
        message_id="<m@example.org>",
    ).as_bytes()
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert all(b < 128 for b in raw)


def test_text_is_the_same_with_and_without_trim_blocks() -> None:
    loader = jinja2.FileSystemLoader(REPO / "mash" / "templates")
    plain = jinja2.Environment(loader=loader, autoescape=True)
    trimmed = jinja2.Environment(
        loader=loader,
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    for issue in (make_issue(), make_issue(0, listening=None, editorial_text="")):
        assert mail.render_email_text(issue, plain) == mail.render_email_text(issue, trimmed)
    text = mail.render_email_text(make_issue(), trimmed)
    assert "Volume 22: August 2013\n\nWelcome to the Monthly Mash" in text
    assert text.endswith(
        "View in your browser: https://example.org/mash/2013-08/\n"
        "Unsubscribe: mailto:mash@example.org?subject=unsubscribe\n"
    )


_PLAIN_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(REPO / "mash" / "templates"), autoescape=True
)
_ISSUE = make_issue(1)
_HTML = mail.render_email_html(_ISSUE, _PLAIN_ENV)
_TEXT = mail.render_email_text(_ISSUE, _PLAIN_ENV)
_HEADERS = {
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "list-id",
    "content-type",
}
_NASTY = st.text(
    alphabet=st.sampled_from(list("aZ :;,<>@\"'\\=?\r\n\t\x00\x0b\x0c\x85\u2028é😀")), max_size=40
)


@settings(max_examples=200, deadline=None)
@given(name=_NASTY, title=_NASTY, sender_name=_NASTY)
def test_no_header_can_be_injected(name: str, title: str, sender_name: str) -> None:
    issue = replace(
        _ISSUE, title=title, newsletter=replace(_ISSUE.newsletter, sender_name=sender_name)
    )
    msg = mail.build_message(
        issue,
        _HTML,
        _TEXT,
        to_addr="ann@example.com",
        to_name=name,
        smtp=SMTP,
        unsubscribe_url="https://example.org/u?token=t",
        unsubscribe_mailto="mailto:u@example.org",
        message_id="<m@example.org>",
    )
    parsed = parse(msg)
    assert {k.lower() for k in parsed} == _HEADERS
    assert len(list(parsed)) == len(_HEADERS)
    assert parsed["To"].addresses[0].addr_spec == "ann@example.com"
    assert parsed["From"].addresses[0].addr_spec == "mash@example.org"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]


# --- the essay in the text part (see #20) -----------------------------------------------

HARD_WRAPPED_ESSAY = """\
Every customer carries a set of rules they never tell you
about. They expect you to know them anyway, and they are
*right* to.

What the posts asked:

- how to find the rules before they
  are broken
- who writes them down

1. Listen first.
2. Then [read the post](https://example.org/x) again.
"""


def test_text_part_keeps_the_essays_paragraphs_lists_emphasis_and_links(
    env: jinja2.Environment,
) -> None:
    from mash.compose import render_editorial

    html = render_editorial(HARD_WRAPPED_ESSAY)
    text = mail.render_email_text(make_issue(editorial_html=html), env)
    essay = text.split("=\n\n", 1)[1].split("\n\nTHE MONTH IN", 1)[0]
    paragraphs = essay.split("\n\n")
    # one paragraph, reflowed at 72 columns: not one paragraph per source line
    assert paragraphs[0] == (
        "Every customer carries a set of rules they never tell you about. They\n"
        "expect you to know them anyway, and they are *right* to."
    )
    assert "What the posts asked:" in paragraphs
    assert "  * how to find the rules before they are broken\n  * who writes them down" in essay
    assert "  1. Listen first.\n  2. Then [read the post][1] again." in essay
    assert re.search(r"^ *\[1\]: https://example\.org/x$", essay, re.MULTILINE)
    assert max(len(line) for line in text.splitlines()) <= 72


def test_editorial_text_is_one_line_per_paragraph_without_marks() -> None:
    from mash.compose import _paragraph_text, render_editorial

    text = _paragraph_text(render_editorial(HARD_WRAPPED_ESSAY))
    first = text.split("\n\n")[0]
    assert first == (
        "Every customer carries a set of rules they never tell you about. They expect "
        "you to know them anyway, and they are right to."
    )
    assert "https://" not in text and "*right*" not in text
    assert "Then read the post again." in text


# --- caniemail: what Gmail, Apple Mail, Outlook and Yahoo do not support (see #20) -------

JS = REPO / "tests" / "js"
EMAIL_CLIENTS = ("gmail.*", "apple-mail.*", "outlook.*", "yahoo.*")
# Every feature caniemail flags for those clients is here, with where the email keeps
# working without it; test_flagged_features_fall_back_* check each fallback.
ENHANCEMENTS = {
    "@media": "narrow-screen and dark-mode rules only; inlined styles give the light, fluid email",
    "<body> element": "the 100% wrapper table repeats the body's background",
    "display:none": "the preheader is also 1px text in the background colour",
    "role attribute": "role=presentation on layout tables is for screen readers only",
}


@pytest.fixture(scope="session")
def doiuse_email() -> Path:
    """tests/js with @jsx-email/doiuse-email installed from its lock file (npm ci)."""
    import shutil
    import subprocess

    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are absent: the caniemail check needs them")
    if not (JS / "node_modules" / "@jsx-email" / "doiuse-email").is_dir():
        command = ["npm", "ci", "--prefix", str(JS), "--no-audit", "--no-fund", "--quiet"]
        subprocess.run(command, check=True, capture_output=True, timeout=300)
    return JS / "doiuse.mjs"


def caniemail_errors(script: Path, email: Path) -> dict[str, set[str]]:
    """Return {feature: {client, ...}} for each feature caniemail says a client lacks."""
    import json
    import subprocess

    run = subprocess.run(
        ["node", str(script), str(email), *EMAIL_CLIENTS],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    errors: dict[str, set[str]] = {}
    for line in json.loads(run.stdout)["errors"]:
        match = re.fullmatch(r"`(.+)` is not supported by `(.+)`", line)
        assert match, line
        errors.setdefault(match.group(1), set()).add(match.group(2))
    return errors


@pytest.fixture
def built_email(workspace: Path) -> Path:
    """The demo's October email.html as `mash build` writes it (with a thumbnail)."""
    from mash.cli import main as mash

    assert mash(["--config", str(workspace), "build", "--month", "2026-10"]) == 0
    return workspace.parent / "2026-10" / "email.html"


def test_every_feature_caniemail_flags_is_a_known_enhancement(
    doiuse_email: Path, built_email: Path
) -> None:
    errors = caniemail_errors(doiuse_email, built_email)
    assert errors, "the check found nothing at all: is it running?"
    unexpected = {f: sorted(c) for f, c in errors.items() if f not in ENHANCEMENTS}
    assert not unexpected, f"remove these or make them enhancements with a fallback: {unexpected}"


def test_flagged_features_fall_back_in_the_markup(built_email: Path) -> None:
    """<body>, display:none and role: each has its fallback in the inlined markup."""
    html = built_email.read_text(encoding="utf-8")
    styles = re.search(r"<style>(.*?)</style>", html, re.S)
    assert styles and html.count("<style>") == 1 + html.count("<!--[if mso]>\n<style>")
    # @media: the only rules left in <style> are @media blocks (all else is inlined)
    outside = re.sub(r"@media[^{]*\{(?:[^{}]*\{[^{}]*\})*\s*\}", "", styles.group(1))
    assert outside.strip() == "", outside
    body = re.search(r'<body[^>]*style="([^"]*)"', html)
    wrapper = re.search(r'<table[^>]*class="wrapper"[^>]*style="([^"]*)"', html)
    assert body and wrapper
    background = re.search(r"background-color:\s*(#\w+)", body.group(1))
    assert background and f"background-color: {background.group(1)}" in wrapper.group(1)
    # display:none: inline only on the preheader, which is also invisible without it
    hidden = re.findall(r'<(\w+)[^>]*style="[^"]*display:\s*none[^"]*"[^>]*>', html)
    assert hidden == ["div"]
    preheader = re.search(r'<div class="preheader" style="([^"]*)"', html)
    assert preheader
    for rule in ("font-size: 1px", "line-height: 1px", "max-height: 0", "mso-hide: all"):
        assert rule in preheader.group(1)
    assert f"color: {background.group(1)}" in preheader.group(1)
    # role: only role="presentation", only on tables, where it changes no layout
    roles = re.findall(r"<(\w+)[^>]*\brole=\"([^\"]*)\"", html)
    assert roles and set(roles) == {("table", "presentation")}


@pytest.mark.parametrize("width", [600, 375])
def test_flagged_features_fall_back_in_chromium(
    browser: Browser, built_email: Path, tmp_path: Path, width: int
) -> None:
    """Without its <style> (@media: Outlook, Gmail's mobile web), the email is light and fits;
    with it, dark mode turns it dark (the enhancement works where it is supported)."""
    html = built_email.read_text(encoding="utf-8")
    bare = tmp_path / "no-style.html"
    bare.write_text(re.sub(r"<style>.*?</style>", "", html, count=1, flags=re.S), "utf-8")
    probe = (
        "[document.documentElement.scrollWidth, window.innerWidth,"
        " getComputedStyle(document.querySelector('.container')).backgroundColor,"
        " getComputedStyle(document.querySelector('.pick-body')).color,"
        " document.querySelectorAll('img.thumb').length]"
    )
    for path, scheme, background, text in (
        (bare, "dark", "rgb(255, 255, 255)", "rgb(34, 34, 34)"),
        (built_email, "light", "rgb(255, 255, 255)", "rgb(34, 34, 34)"),
        (built_email, "dark", "rgb(27, 31, 36)", "rgb(230, 230, 230)"),
    ):
        page = Page(browser, path.as_uri(), width)
        try:
            browser.call(
                "Emulation.setEmulatedMedia",
                page.session,
                features=[{"name": "prefers-color-scheme", "value": scheme}],
            )
            scroll, inner, container, colour, thumbs = page.evaluate(probe)
            assert scroll <= inner == width, (path.name, scheme)
            assert (container, colour) == (background, text), (path.name, scheme)
            assert thumbs >= 1
        finally:
            page.close()


def test_long_words_break_in_text_but_never_in_links(env: jinja2.Environment) -> None:
    """overflow-wrap is gone (caniemail): zero-width spaces let a long URL text wrap."""
    url = "https://example.org/" + "averyveryverylongpathsegment" * 3
    editorial = f'<p>See <a href="{url}">{url}</a> and <code>{url}</code>.</p>'
    html = mail.render_email_html(make_issue(editorial_html=editorial), env)
    assert f'href="{url}"' in html
    shown = re.search(r'<a href="https://example.org/a[^"]*"[^>]*>([^<]*)</a>', html)
    assert shown and "\u200b" in shown.group(1) and shown.group(1).replace("\u200b", "") == url
    assert max(len(part) for part in shown.group(1).split("\u200b")) <= 20
    assert f"{url}</code>" in html  # code is left as written


# --- message_bytes: build_message's bytes, faster (see #16) -----------------------------------

_DATE = re.compile(rb"^Date: [^\r]*\r\n", re.MULTILINE)


def _both(issue: Issue, html: str, text: str, **changes: Any) -> tuple[bytes, bytes]:
    args: dict[str, Any] = {
        "to_addr": "ann@example.com",
        "to_name": "Ann Reader",
        "smtp": SmtpSettings(list_id=""),
        "unsubscribe_url": "https://example.org/unsubscribe?t=TOKEN",
        "unsubscribe_mailto": "mailto:unsubscribe@example.org?subject=unsubscribe",
        "message_id": "<mash.2013-08.abc@example.org>",
        **changes,
    }
    slow = mail.build_message(issue, html, text, **args).as_bytes()
    fast = mail.message_bytes(issue, html, text, **args)
    return _DATE.sub(b"", slow), _DATE.sub(b"", fast)  # the Date is the clock's


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"to_name": "Zoë Ångström-Brønsted 测试", "to_addr": "zoe@example.com"},
        {"unsubscribe_url": "https://example.org/unsubscribe?t=" + "x" * 300},
        {"unsubscribe_url": "", "proof": True},
        {"to_name": "Ann\r\nBcc: victim@evil.example", "message_id": "<id@x>\nX-Injected: 1"},
    ],
)
def test_message_bytes_are_build_messages_bytes(
    env: jinja2.Environment, changes: dict[str, Any]
) -> None:
    issue = make_issue()
    html, text = mail.render_email_html(issue, env), mail.render_email_text(issue, env)
    slow, fast = _both(issue, html, text, **changes)
    assert fast == slow


@settings(max_examples=150, deadline=None)
@given(
    text=st.lists(
        st.sampled_from(
            ["Unsubscribe: u", "a", " ", "\t", ".", "=", "é", "\n", "\r", "\r\n", "x" * 90]
        )
    ),
    html=st.lists(st.sampled_from(['<a data-unsubscribe href="x">u</a>', "\n", " ", ".", "ü"])),
)
def test_message_bytes_match_for_any_body(text: list[str], html: list[str]) -> None:
    """Line ends, trailing blanks, lone dots, long lines, bare CRs: the same bytes."""
    slow, fast = _both(make_issue(), "".join(html), "".join(text))
    assert fast == slow


def test_one_message_maker_makes_each_recipients_bytes(env: jinja2.Environment) -> None:
    """One maker, its shells reused: every recipient's bytes are build_message's."""
    issue = make_issue()
    html, text = mail.render_email_html(issue, env), mail.render_email_text(issue, env)
    maker = mail.MessageMaker(issue, html, text, SMTP)
    recipients: list[dict[str, Any]] = [
        {"to_addr": f"r{i}@example.com", "to_name": name, "message_id": f"<m{i}@example.org>"}
        for i, name in enumerate(["Ann", "", "Zoë Ångström 测试", "O'Brien, Pat", "x" * 200])
    ]
    links = [
        ("https://example.org/unsubscribe?t=" + "a" * 40, "mailto:u@example.org"),
        ("https://example.org/unsubscribe?t=" + "b" * 300, ""),
        ("", "mailto:u@example.org?subject=unsubscribe"),
        ("http://plain.example.org/u?t=c", "mailto:u@example.org"),
    ]
    for number, person in enumerate(recipients * 2):
        url, mailto = links[number % len(links)]
        args = {**person, "unsubscribe_url": url, "unsubscribe_mailto": mailto}
        args["proof"] = number % 3 == 0
        slow = mail.build_message(issue, html, text, smtp=SMTP, **args).as_bytes()
        assert _DATE.sub(b"", maker.message(**args)) == _DATE.sub(b"", slow), args
    assert len(maker.shells) <= 8  # a few kinds of message, not one per recipient
