"""extract: feed or page, boilerplate gone, article kept, metadata read (#4)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from mash.errors import ExtractError
from mash.extract import (
    extract_article,
    extract_many,
    extract_text,
    feed_article,
    needs_full_text,
)
from mash.extract.evidence import evidence_of, is_menu_like, is_suspect, quotes
from mash.records import Article, Post
from mash.sanitize import sanitize_html
from tests.conftest import SHARED, feed_farm

DATA = Path(__file__).parent / "data" / "extract"
MANIFEST: dict[str, dict[str, Any]] = json.loads((DATA / "pages.json").read_text("utf-8"))

LONG_TEXT = " ".join(
    f"Sentence {i} says something useful about customers and the people who serve them."
    for i in range(30)
)


def page(name: str) -> tuple[str, str]:
    """Return the fixture page's HTML and URL."""
    return (DATA / name).read_text("utf-8"), MANIFEST[name]["url"]


def post(url: str = "https://blog.example/p/1", **fields: Any) -> Post:
    fields.setdefault("title", "")
    return Post(feed_url="https://blog.example/feed", guid=url, url=url, **fields)


BOILERPLATE = [
    (name, kind, phrase)
    for name, item in MANIFEST.items()
    for kind, phrase in item["boilerplate"].items()
]
ARTICLE = [(name, sentence) for name, item in MANIFEST.items() for sentence in item["article"]]


# --- boilerplate removed, article kept ------------------------------------------------------


@pytest.mark.parametrize(("name", "kind", "phrase"), BOILERPLATE)
def test_boilerplate_is_removed(name: str, kind: str, phrase: str) -> None:
    html, url = page(name)
    text = extract_text(html, url)
    assert phrase not in text, f"{kind} kept in {name}"
    assert MANIFEST[name]["article"][0] in text


@pytest.mark.parametrize(("name", "sentence"), ARTICLE)
def test_article_is_kept(name: str, sentence: str) -> None:
    html, url = page(name)
    assert sentence in extract_text(html, url)


def test_short_post_is_exactly_its_sentences() -> None:
    html, url = page("short-post-widgets.html")
    assert extract_text(html, url).splitlines() == MANIFEST["short-post-widgets.html"]["article"]


@pytest.mark.parametrize("name", MANIFEST)
def test_title_and_byline_are_not_repeated_in_the_text(name: str) -> None:
    html, url = page(name)
    text = extract_text(html, url)
    assert not text.startswith(MANIFEST[name]["meta"]["title"])
    assert text.startswith(MANIFEST[name]["article"][0])


def test_extract_text_of_nothing() -> None:
    assert extract_text("", None) == ""
    assert extract_text("<html><body></body></html>", None) == ""
    assert isinstance(extract_text("\x00\x01 not html <<<>>>", "https://x.example/"), str)


# --- needs_full_text ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "summary",
    [
        "<p>Our agents answered 4,000 calls last week and learned that …</p>",
        "<p>Our agents answered 4,000 calls last week and learned [&#8230;]</p>",
        "<p>Our agents answered 4,000 calls last week and learned [...]</p>",
        "<p>Our agents answered 4,000 calls last week and learned...</p>",
        '<p>Our agents answered calls. <a href="https://blog.example/p/1">Read more</a></p>',
        "<p>Our agents answered calls.</p><p>Continue reading →</p>",
        '<p>Our agents answered calls. <a href="/p/1">Continue reading <span>Calls</span></a></p>',
        "<p>Our agents answered calls.</p><p>The post The Calls appeared first on Blog.</p>",
        "<p>A short plain summary with no marker at all.</p>",
        "",
    ],
)
def test_truncated_or_short_feeds_need_the_page(summary: str) -> None:
    assert needs_full_text(post(summary_html=summary))


@pytest.mark.parametrize(
    "fields",
    [
        {"content_html": f"<p>{LONG_TEXT}</p>"},
        {"summary_html": f"<p>{LONG_TEXT}</p>"},
        {"content_html": f"<p>{LONG_TEXT}</p><p>The post Calls appeared first on Blog.</p>"},
        {"content_html": f"<p>{LONG_TEXT} Prices fell by 20%...</p><p>{LONG_TEXT}</p>"},
    ],
)
def test_complete_feeds_do_not_need_the_page(fields: dict[str, str]) -> None:
    assert not needs_full_text(post(**fields))


def test_truncated_long_content_still_needs_the_page() -> None:
    assert needs_full_text(post(content_html=f"<p>{LONG_TEXT} and so [&#8230;]</p>"))


# --- feed_article: the parse workers' fast path (see #8) -----------------------------------

_FEED_BODIES = [
    {"content_html": f"<p>{LONG_TEXT}</p>"},
    {"summary_html": f"<p>{LONG_TEXT}</p>"},
    {"content_html": f"<p>{LONG_TEXT}</p><p>The post <a href='https://b.example/'>Calls</a> "
     "appeared first on <a href='https://b.example/'>Blog</a>.</p>"},
    {"content_html": f"<h2>Why</h2>\n<p>{LONG_TEXT}\u00a0and\ttabs</p><ul><li>one</li></ul>"},
    {"content_html": f"<p>{LONG_TEXT} and so [&#8230;]</p>"},
    {"summary_html": "<p>Just a teaser …</p>"},
    {"content_html": ""},
]  # fmt: skip


@pytest.mark.parametrize("fields", _FEED_BODIES)
def test_feed_article_is_extract_article_without_a_page(fields: dict[str, str]) -> None:
    feed_post = post(**{k: sanitize_html(v) for k, v in fields.items()})
    fast = feed_article(feed_post)
    if needs_full_text(feed_post):
        assert fast is None
    else:
        assert fast == extract_article(feed_post, None, None)


@pytest.mark.parametrize("fields", _FEED_BODIES)
def test_word_count_counts_the_words_of_the_text(fields: dict[str, str]) -> None:
    article = extract_article(post(**fields), None, None)
    assert article.word_count == len(article.text.split())


# --- extract_article: choosing the source -------------------------------------------------


def test_complete_feed_content_is_used() -> None:
    html, url = page("wordpress-comments.html")
    article = extract_article(post(url, content_html=f"<p>{LONG_TEXT}</p>"), html, url)
    assert article.source == "feed"
    assert article.reason == "feed content complete (390 words)"
    assert article.text == LONG_TEXT


def test_truncated_summary_uses_the_page() -> None:
    html, url = page("wordpress-comments.html")
    summary = (
        "<p>Most companies write their refund policy as if a lawyer were the only [&#8230;]</p>"
    )
    article = extract_article(post(url, summary_html=summary), html, url)
    assert article.source == "page"
    assert article.reason.startswith("feed summary truncated ('[…]'); page extracted (")
    for sentence in MANIFEST["wordpress-comments.html"]["article"]:
        assert sentence in article.text
    for phrase in MANIFEST["wordpress-comments.html"]["boilerplate"].values():
        assert phrase not in article.text
    assert article.word_count == len(article.text.split())
    assert article.reading_minutes == max(1, round(article.word_count / 230))


def test_page_html_is_sanitised_with_absolute_links() -> None:
    html, url = page("wordpress-comments.html")
    article = extract_article(post(url, summary_html="<p>Short […]</p>"), html, url)
    assert "<script" not in article.html and "onclick" not in article.html
    assert "<h2>Read it the way a worried customer does</h2>" in article.html
    assert "<li>" in article.html and "<blockquote>" in article.html
    assert 'src="https://servicenotes.example/wp-content/uploads/2024/05/policy-markup.jpg"' in (
        article.html
    )
    assert "pixel.wp.com" not in article.html


def test_feed_kept_when_page_extraction_is_shorter() -> None:
    content = f"<p>{' '.join(['word'] * 120)} …</p>"
    html = "<html><body><article><p>Only a stub of a page.</p></article></body></html>"
    article = extract_article(post(content_html=content), html, "https://blog.example/p/1")
    assert article.source == "feed"
    assert "not longer than the feed's (121 words): feed kept" in article.reason


def test_no_page_keeps_the_summary() -> None:
    article = extract_article(post(summary_html="<p>Just a teaser …</p>"), None, None)
    assert article.source == "feed"
    assert article.reason == "feed summary truncated ('…'); no page to extract: feed kept"
    assert article.text == "Just a teaser …"


def test_appeared_first_on_footer_is_dropped_from_feed_content() -> None:
    content = f"<p>{LONG_TEXT}</p><p>The post <a href='/x'>Calls</a> appeared first on Blog.</p>"
    article = extract_article(post(content_html=content), None, None)
    assert "appeared first on" not in article.text


def test_feed_html_is_sanitised_too() -> None:
    content = f"<p onclick='x()'>{LONG_TEXT}</p><script>alert(1)</script><img src=x onerror=y>"
    article = extract_article(post(content_html=content), None, None)
    assert "<script" not in article.html and "onclick" not in article.html
    assert "onerror" not in article.html


# --- metadata -----------------------------------------------------------------------------


def _expected_meta(name: str) -> dict[str, Any]:
    meta = dict(MANIFEST[name]["meta"])
    for key in ("published", "updated"):
        if meta[key] is not None:
            meta[key] = datetime.fromisoformat(meta[key])
    return meta


@pytest.mark.parametrize("name", MANIFEST)
def test_metadata_comes_from_the_page_when_the_feed_lacks_it(name: str) -> None:
    html, url = page(name)
    article = extract_article(post(url, summary_html="<p>Teaser […]</p>"), html, url)
    expected = _expected_meta(name)
    got = {key: getattr(article, key) for key in expected}
    assert got == expected


def test_feed_metadata_wins_over_the_page() -> None:
    html, url = page("wordpress-comments.html")
    when = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    feed_post = post(
        url, title="Feed Title", author="Feed Author", published=when, summary_html="<p>T …</p>"
    )
    article = extract_article(feed_post, html, url)
    assert (article.title, article.author, article.published) == ("Feed Title", "Feed Author", when)
    assert article.updated == datetime(2024, 5, 15, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        ('<meta name="description" content="Written  for\n it.">', "Written for it."),
        ('<meta property="og:description" content="From Open Graph.">', "From Open Graph."),
        ('<meta name="description" content="&lt;b&gt;Bold&lt;/b&gt; words.">', "Bold words."),
        ("", ""),
    ],
)
def test_the_pages_description_is_kept_as_plain_text(head: str, expected: str) -> None:
    """The page's description is a candidate for the author's own summary (see #20)."""
    html = f"<html><head>{head}</head><body><article><p>{LONG_TEXT}</p></article></body></html>"
    article = extract_article(post(summary_html="<p>T …</p>"), html, "https://blog.example/p/1")
    assert article.description == expected


def test_feed_comment_count_is_used_without_a_page() -> None:
    article = extract_article(post(summary_html="<p>T …</p>", comments=7), None, None)
    assert article.comment_count == 7


def test_page_without_comment_label_has_no_count() -> None:
    html = f"<html><body><article><h1>T</h1><p>{LONG_TEXT}</p></article></body></html>"
    article = extract_article(post(summary_html="<p>T …</p>"), html, "https://blog.example/p/1")
    assert article.comment_count is None
    assert article.source == "page"


# --- errors and batches -------------------------------------------------------------------


def _too_deep() -> str:
    return "<html><body>" + "<div>" * 50_000 + "x" + "</div>" * 50_000 + "</body></html>"


def test_page_over_the_depth_cap_is_reported() -> None:
    with pytest.raises(ExtractError) as caught:
        extract_article(post(summary_html="<p>T …</p>"), _too_deep(), "https://blog.example/deep")
    assert caught.value.url == "https://blog.example/deep"
    assert "deep" in str(caught.value)


@pytest.mark.parametrize("junk", ["", "<<<", "\x00" * 10, "<html><p>unclosed", "<?xml?><x/>"])
def test_bad_html_never_raises(junk: str) -> None:
    article = extract_article(post(summary_html="<p>Teaser …</p>"), junk, "https://b.example/x")
    assert isinstance(article, Article)


def _jobs() -> list[tuple[Post, str | None, str | None]]:
    jobs: list[tuple[Post, str | None, str | None]] = []
    for name in MANIFEST:
        html, url = page(name)
        jobs.append((post(url, summary_html="<p>Teaser […]</p>"), html, url))
    jobs.insert(
        2, (post("https://blog.example/deep", summary_html="<p>T …</p>"), _too_deep(), None)
    )
    jobs.append((post(content_html=f"<p>{LONG_TEXT}</p>"), None, None))
    return jobs


def _check_batch(results: list[Article | ExtractError]) -> None:
    names = list(MANIFEST)
    assert len(results) == len(names) + 2
    error = results[2]
    assert isinstance(error, ExtractError) and error.url == "https://blog.example/deep"
    pages = [r for i, r in enumerate(results) if i not in (2, len(results) - 1)]
    for name, result in zip(names, pages, strict=True):
        assert isinstance(result, Article) and result.source == "page"
        assert MANIFEST[name]["article"][0] in result.text
    last = results[-1]
    assert isinstance(last, Article) and last.source == "feed"


def test_extract_many_keeps_order_and_reports_failures_in_a_pool() -> None:
    _check_batch(extract_many(_jobs(), workers=2))


def test_extract_many_in_process() -> None:
    _check_batch(extract_many(_jobs(), workers=1))
    assert extract_many([]) == []


def test_extract_many_runs_off_the_event_loop() -> None:
    async def main() -> tuple[list[Article | ExtractError], int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        ticker = asyncio.create_task(tick())
        results = await asyncio.to_thread(extract_many, _jobs(), 2)
        ticker.cancel()
        return results, ticks

    results, ticks = asyncio.run(main())
    _check_batch(results)
    assert ticks > 1  # the loop kept running while the pool worked


def test_extract_article_result_is_a_record() -> None:
    html, url = page("blogger-follow.html")
    article = extract_article(post(url, summary_html="<p>T …</p>"), html, url)
    assert replace(article, source="feed").source == "feed"


# --- shared corpora (skipped when ../shared is absent) ------------------------------------


def test_readability_sample_extracts_text() -> None:
    corpus = SHARED / "corpora" / "readability-pages"
    if not corpus.is_dir():
        pytest.skip(f"shared corpus not found at {corpus}")
    for name in ("wordpress", "blogger", "medium-1"):
        html = (corpus / name / "source.html").read_text("utf-8")
        expected = (corpus / name / "expected.txt").read_text("utf-8").split()
        words = extract_text(html, None).split()
        assert len(set(words) & set(expected)) > 0.8 * len(set(expected)), name


# --- the feed summary finds and verifies the article ---------------------------------------

GUIDED_URL = "https://counter.example/small-print"
GUIDED_SUMMARY = (
    "<p>We rewrote the small print on our delivery notes this month, and complaints [&#8230;]</p>"
)


def test_summary_finds_an_article_the_extractor_missed() -> None:
    html = (DATA / "summary-guided.html").read_text("utf-8")
    assert "We rewrote the small print" not in extract_text(html, GUIDED_URL)
    article = extract_article(post(GUIDED_URL, summary_html=GUIDED_SUMMARY), html, GUIDED_URL)
    assert article.source == "page"
    assert article.reason.endswith("page extracted (55 words, found by the feed summary)")
    assert article.text.startswith("We rewrote the small print on our delivery notes")
    assert article.text.endswith("but only on the worst day they have with you.")
    assert "archive" not in article.text


def test_summary_verifies_the_extracted_article() -> None:
    html, url = page("blogger-follow.html")
    summary = "<p>Every support team has a queue on the wall screen, and every team […]</p>"
    article = extract_article(post(url, summary_html=summary), html, url)
    assert "matches the feed summary" in article.reason


def test_a_summary_the_page_does_not_quote_is_reported() -> None:
    html, url = page("blogger-follow.html")
    summary = "<p>A custom excerpt written for the feed that the page never shows […]</p>"
    article = extract_article(post(url, summary_html=summary), html, url)
    assert article.source == "page"
    assert "does not quote the feed summary" in article.reason


def test_a_page_wrapped_in_one_form_keeps_its_article() -> None:
    paragraphs = "".join(f"<p>{LONG_TEXT} Part {i}.</p>" for i in range(3))
    html = (
        '<html><body><form id="aspnetForm" action="/"><div class="hd">Site name</div>'
        f'<div class="story">{paragraphs}</div><div class="ft">Footer</div></form></body></html>'
    )
    assert "Sentence 0 says something useful" in extract_text(html, "https://b.example/p")


def test_extract_many_runs_in_process_when_no_worker_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    import mash.extract

    class BrokenPool:
        def __init__(self, **_: Any) -> None: ...
        def __enter__(self) -> BrokenPool:
            return self

        def __exit__(self, *_: object) -> None: ...
        def submit(self, *_: object) -> Future[Any]:
            future: Future[Any] = Future()
            future.set_exception(BrokenProcessPool("no worker could start"))
            return future

    monkeypatch.setattr(mash.extract, "ProcessPoolExecutor", BrokenPool)
    _check_batch(extract_many(_jobs(), workers=2))


def test_a_large_page_is_read_and_an_oversized_one_reported() -> None:
    html, url = page("wordpress-comments.html")
    padded = html.replace("</body>", f"<!-- {'x' * 3_000_000} --></body>")
    summary = "<p>Most companies write their refund policy as if a lawyer […]</p>"
    article = extract_article(post(url, summary_html=summary), padded, url)
    assert article.source == "page"
    huge = html.replace("</body>", f"<!-- {'x' * 10_000_001} --></body>")
    with pytest.raises(ExtractError, match="characters, over the cap"):
        extract_article(post(url, summary_html=summary), huge, url)


def _page_of(*paragraphs: str) -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return f"<html><head><title>T</title></head><body><article>{body}</article></body></html>"


def test_a_teaser_cut_from_the_opening_is_dropped() -> None:
    opening = "The escalation desk documents customer effort in every channel we run today."
    rest = [f"{LONG_TEXT} Paragraph {i}." for i in range(3)]
    text = extract_text(_page_of(opening[:50], opening + " " + rest[0], *rest[1:]), None)
    assert text.startswith(opening)


def test_paragraphs_repeated_whole_are_kept() -> None:
    from lxml import etree

    from mash.extract.trim import text_of, trim_body

    same = " ".join(["Lorem ipsum dolor sit amet, consectetur adipisicing elit."] * 4)
    body = etree.fromstring(f"<body><p>{same}</p><p>{same}</p><p>{LONG_TEXT}</p></body>")
    trim_body(body, "Title")
    assert [text_of(p) for p in body] == [same, same, LONG_TEXT]


# --- end to end against the shared feed farm (127.0.0.1) -----------------------------------


@pytest.fixture(scope="module")
def small_farm() -> Iterator[str]:
    """A small feed farm (8 blogs x 3 entries) for this module; yields its base URL."""
    with feed_farm(feeds=8, entries=3, seed=4, now="2024-06-30") as base:
        yield base


def test_farm_posts_are_completed_from_their_pages(small_farm: str) -> None:
    from mash.parse import parse_feed

    manifest = {e["url"]: e for e in httpx.get(f"{small_farm}_farm/manifest.json").json()}
    jobs: list[tuple[Post, str | None, str | None]] = []
    with httpx.Client() as client:
        for feed_url in client.get(f"{small_farm}_farm/feeds.txt").text.split():
            feed = client.get(feed_url)
            for item in parse_feed(feed.content, feed_url, feed.headers["content-type"]).posts:
                assert needs_full_text(item) is not manifest[item.url]["full_content"]
                if needs_full_text(item):
                    page_response = client.get(item.url)
                    jobs.append((item, page_response.text, str(page_response.url)))
    assert jobs
    for (item, _, _), article in zip(jobs, extract_many(jobs, workers=2), strict=True):
        truth = manifest[item.url]
        assert isinstance(article, Article) and article.source == "page"
        assert article.text.startswith(truth["first_sentence"])
        assert article.text.endswith(truth["last_sentence"])
        assert article.comment_count == truth["comments"]
        assert "matches the feed summary" in article.reason


def test_breadcrumb_title_and_byline_above_the_article_go() -> None:
    html = (
        "<html><head><title>The Callback Promise :: Queue</title>"
        '<meta property="og:title" content="The Callback Promise"></head><body><div>'
        "<p>Home &gt; Articles &gt; The Callback Promise</p><p>The Callback Promise</p>"
        "<p>by Gerald O'Hara · <time datetime='2026-10-07'>7/10/2026</time> · Comments (4)</p>"
        f"<p>{LONG_TEXT}</p><p>{LONG_TEXT}</p></div></body></html>"
    )
    assert extract_text(html, None).startswith("Sentence 0 says something useful")


@pytest.mark.parametrize(
    "bar",
    [
        "<div><span>Share this:</span> <a href='#'>Twitter</a> <a href='#'>Facebook</a></div>",
        "<p>Written by Jane Doe</p>",
        "<p>We use cookies to make this site work. <a href='#'>OK</a></p>",
        "<p>No comments</p>",
    ],
)
def test_a_bar_atop_a_short_post_does_not_take_the_post(bar: str) -> None:
    sentences = [
        f"Short post sentence {i} tells readers how support teams answer." for i in range(4)
    ]
    post_html = "".join(f"<p>{s}</p>" for s in sentences)
    links = "".join(f"<li><a href='/{i}'>Month {i}</a></li>" for i in range(12))
    side = f"<div><h3>Archives</h3><ul>{links}</ul><p>{'Sidebar words. ' * 60}</p></div>"
    html = (
        "<html><head><title>T</title></head><body><div>"
        f"<div>{bar}{post_html}</div>{side}</div></body></html>"
    )
    text = extract_text(html, None)
    assert all(sentence in text for sentence in sentences)


@pytest.mark.parametrize("wrapper", ["has-sidebar", "content-sidebar-wrap", "with-comments"])
def test_a_wrapper_named_after_its_widgets_keeps_the_article(wrapper: str) -> None:
    sentences = [f"Short post sentence {i} tells readers how teams answer." for i in range(4)]
    post_html = "<h2>A short post</h2>" + "".join(f"<p>{s}</p>" for s in sentences)
    side = "<div class='sidebar'><h3>Archives</h3><ul><li><a href='/1'>May</a></li></ul></div>"
    comments = f"<div class='comments'><p>{LONG_TEXT}</p></div>"
    directory = "".join(f"<a href='/t/{i}'>Topic number {i}</a> " for i in range(300))
    html = (
        f"<html><body><div class='{wrapper}'><div class='entry'>{post_html}</div>"
        f"{comments}{side}</div><div class='directory'>{directory}</div></body></html>"
    )
    text = extract_text(html, None)
    assert all(sentence in text for sentence in sentences)
    assert "Archives" not in text and "Sentence 0 says" not in text


# --- the evidence: the feed's summary and title (#18) ---------------------------------------

MENU_URL = "https://helpdesk.example/hold-music"
MENU_ARTICLE = (
    "Hold music is a promise. Every second of it tells the caller that somebody is coming"
)


@pytest.mark.parametrize(
    ("summary", "probe"),
    [
        ("Hold Music, is a PROMISE: every second of it", "hold music is a promise every second of"),
        (
            "<p>We&#8217;re   cutting the queue in half this year [&#8230;]</p>",
            "we re cutting the queue in half this",
        ),
        (
            "<p>The small print on our delivery notes was rewritten, and compl&hellip;</p>",
            "the small print on our delivery notes was",
        ),
        ("We rewrote the small print on our deliv…", "we rewrote the small print on our"),
        ("Short summary here. Read more", ""),
        ("", ""),
    ],
)
def test_the_probe_is_the_summarys_normalised_opening(summary: str, probe: str) -> None:
    assert evidence_of(summary).probe == probe


def test_a_summary_cut_mid_word_is_still_quoted_by_its_article() -> None:
    evidence = evidence_of("<p>Hold music is a prom&hellip;</p>")
    assert quotes("HOLD MUSIC\nis a promise. Every second", evidence)
    assert not quotes("Log in\nSubscribe", evidence)


@pytest.mark.parametrize(
    ("text", "menu"),
    [
        ("Log in\nSubscribe\nMy account\nQueues and waiting\nChat and messaging", True),
        ("- Molly Sims introduces her son, and what she says about it — People\n" * 6, True),
        ("", True),
        (LONG_TEXT, False),
        ("Our steps:\n- " + LONG_TEXT + "\n- Call back within the hour.", False),
    ],
)
def test_a_text_of_short_lines_or_list_items_is_a_menu(text: str, menu: bool) -> None:
    assert is_menu_like(text) is menu


def test_a_menu_gives_way_to_trafilaturas_precision_mode() -> None:
    html = (DATA / "menu-instead-of-article.html").read_text("utf-8")
    text = extract_text(html, MENU_URL)
    assert text.startswith(MENU_ARTICLE)
    assert "Log in" not in text and "My account" not in text


def test_a_candidate_without_the_summarys_opening_gives_way_to_the_baseline() -> None:
    html = (DATA / "menu-instead-of-article.html").read_text("utf-8")
    summary = "<p>Hold music is a promise. Every second of it tells the caller [&#8230;]</p>"
    article = extract_article(post(MENU_URL, summary_html=summary), html, MENU_URL)
    assert article.source == "page"
    assert "trafilatura's precision mode" in article.reason
    assert article.text.startswith(MENU_ARTICLE)
    assert "Subscribe" not in article.text
    assert extract_text(html, MENU_URL, summary=summary).startswith(MENU_ARTICLE)


def test_a_page_of_menus_never_replaces_the_feed_text() -> None:
    menu = "".join(f'<p><a href="/t/{i}">Topic number {i}</a></p>' for i in range(40))
    html = f"<html><body><div class='nav-links'>{menu}</div><div>{menu}</div></body></html>"
    summary = "<p>Hold music is a promise, and callers hear it [&#8230;]</p>"
    article = extract_article(post(MENU_URL, summary_html=summary), html, MENU_URL)
    assert article.source == "feed"
    assert "is a menu or does not quote the feed summary: feed kept" in article.reason
    assert article.text == "Hold music is a promise, and callers hear it […]"
    assert extract_text(html, MENU_URL, summary=summary) == ""


def test_a_page_quoting_the_summary_nowhere_in_its_article_keeps_the_feed() -> None:
    html, url = page("wordpress-comments.html")
    # The page shows these words only in a comment, which no candidate keeps.
    summary = "<p>We moved our return window to start at delivery last year [&#8230;]</p>"
    article = extract_article(post(url, summary_html=summary), html, url)
    assert article.source == "feed"
    assert "does not quote the feed summary: feed kept" in article.reason


# --- short WordPress posts: title, byline and event sidebar at the edges (#18) -------------


def test_a_short_wordpress_post_is_exactly_its_sentences() -> None:
    html, url = page("wordpress-short-events.html")
    expected = MANIFEST["wordpress-short-events.html"]["article"]
    assert extract_text(html, url).splitlines() == expected
    summary = f"<p>{expected[0][:60]} [&#8230;]</p>"
    feed_post = post(url, summary_html=summary, title="The Queue Nobody Sees")
    assert extract_article(feed_post, html, url).text.splitlines() == expected


def test_the_feed_title_is_dropped_when_the_page_names_the_post_otherwise() -> None:
    html, url = page("wordpress-short-events.html")
    html = html.replace('content="The Queue Nobody Sees"', 'content="Counter Culture"')
    html = html.replace("The Queue Nobody Sees &#8211; Counter Culture", "Counter Culture")
    opening = "Every contact centre has a second queue"
    assert extract_text(html, url).startswith(opening)  # the byline marks the heading
    html = html.replace("<p>October 28, 2026 by Jo Park &middot; No comments</p>", "")
    assert extract_text(html, url).startswith("Queues\nThe Queue Nobody Sees\n")
    assert extract_text(html, url, title="The Queue Nobody Sees").startswith(opening)


@pytest.mark.parametrize(
    "listing",
    [
        "<p>Event Organiser: Service Guild</p><p>Virtual/Online</p>",
        "<p>Complaints Clinic<br>November 12, 2026 @ 2:00 pm<br>Free</p>",
        "<p>Venue: The Old Exchange</p><p>$25</p>",
    ],
)
def test_event_listings_at_either_edge_go(listing: str) -> None:
    body = "".join(f"<p>{LONG_TEXT} Part {i}.</p>" for i in range(2))
    for html in (
        f"<div>{body}</div><div>{listing}</div>",
        f"<div>{listing}</div><div>{body}</div>",
    ):
        text = extract_text(f"<html><body><article>{html}</article></body></html>", None)
        assert text.startswith("Sentence 0") and text.endswith("Part 1.")


def test_short_lines_without_an_event_mark_stay() -> None:
    body = "".join(f"<p>{LONG_TEXT} Part {i}.</p>" for i in range(2))
    ending = "<p>Further reading</p><p>Queues in practice</p>"
    text = extract_text(f"<html><body><article>{body}{ending}</article></body></html>", None)
    assert text.endswith("Queues in practice")


def test_a_page_without_html_head_or_body_tags_keeps_its_article() -> None:
    """HTML lets a page leave them out; one wrapper and no head was "not HTML" to trafilatura."""
    paragraphs = "".join(f"<p>{LONG_TEXT} Part {i}.</p>" for i in range(3))
    menu = '<div class="menu"><a href="/">Home</a></div>'
    bare = f'<div id="page"><div id="main">{menu}{paragraphs}</div></div>'
    text = extract_text(bare, "https://old.example/page.html")
    assert "Part 0." in text and "Part 2." in text
    article = extract_article(post(summary_html="<p>Teaser …</p>"), bare, "https://old.example/p")
    assert article.source == "page" and "Part 1." in article.text


@pytest.mark.parametrize(
    "not_a_page",
    [
        f"{LONG_TEXT} A plain text answer, no markup at all.",
        f'<?xml version="1.0"?><rss version="2.0"><channel><item><description>{LONG_TEXT}'
        "</description></item></channel></rss>",
    ],
)
def test_plain_text_or_a_feed_served_for_a_page_is_no_article(not_a_page: str) -> None:
    assert extract_text(not_a_page, "https://old.example/page") == ""


# --- the safety net: a suspect article of ours against trafilatura's own (#18) -------------

MARSH = (
    "The marsh keeps its secrets from the road, and only the walker who leaves the car "
    "behind sees the herons lift from the creeks at dusk while the tide comes in."
)


def _article_under_a_section_label() -> str:
    """An old layout page whose article table opens with a "More articles" label.

    The label heads the table holding the article, so the cleaning takes the whole
    table for a related-posts widget; a jump menu (a select, text nobody extracts)
    keeps that table under the share of the page the cleaning spares.
    """
    article = "".join(f"<p>{MARSH} {MARSH} Paragraph {i} ends here.</p>" for i in range(5))
    options = "".join(
        f'<option value="/a{i}">Another story, number {i}</option>' for i in range(80)
    )
    return (
        "<html><head><title>The marsh</title></head><body>"
        f"<table><tr><td>Site home</td><td>In Animals:</td><td><select>{options}</select></td>"
        "<td>Contact us. Like this page? Send it to a friend!</td></tr></table>"
        f"<table><tr><td><b>More articles</b></td></tr><tr><td>{article}</td></tr></table>"
        "</body></html>"
    )


def _products_in_layout_cells() -> str:
    """A shop page: product text loose in nested table cells, link bars split by "|"."""
    rows = "".join(
        f'<tr><td><img src="/p{i}.gif"></td><td><b>Model {i} scale</b><br>A sturdy platform '
        f"scale, number {i}, with a large display, a steel frame and a battery that lasts "
        f"for months of daily weighing in a busy clinic.</td><td>{100 + i} lbs</td>"
        f"<td>${200 + i}.95</td></tr>"
        for i in range(8)
    )
    categories = " | ".join(f'<a href="/c{i}">Category {i} scales</a>' for i in range(25))
    brands = " | ".join(f'<a href="/b{i}">Brand{i}</a>' for i in range(20))
    return (
        "<html><head><title>Scales</title></head><body>"
        f"<table><tr><td><table>{rows}</table></td></tr></table>"
        f"<p>{categories}</p><p>{brands}</p>"
        "<p>Copyright the shop, all rights reserved; write to us about anything on this site.</p>"
        "</body></html>"
    )


def test_an_article_the_cleaning_took_for_a_widget_is_recovered() -> None:
    text = extract_text(_article_under_a_section_label(), "https://old.example/marsh.shtml")
    assert all(f"Paragraph {i} ends here." in text for i in range(5))  # 14 words of menu before


def test_an_article_read_as_its_link_bars_gives_way_to_trafilaturas() -> None:
    text = extract_text(_products_in_layout_cells(), "https://shop.example/scales.htm")
    assert all(f"Model {i} scale" in text for i in range(8))  # the link bars alone before


def test_the_safety_net_also_guards_a_page_that_never_shows_the_summary() -> None:
    url = "https://old.example/marsh.shtml"
    summary = "<p>Our own excerpt for the feed, which the page never shows anywhere [&#8230;]</p>"
    article = extract_article(
        post(url, summary_html=summary), _article_under_a_section_label(), url
    )
    assert article.source == "page"
    assert "ours was short or links" in article.reason
    assert "Paragraph 4 ends here." in article.text


def test_a_short_article_the_summary_vouches_for_is_not_second_guessed() -> None:
    html, url = page("wordpress-short-events.html")
    expected = MANIFEST["wordpress-short-events.html"]["article"]
    summary = f"<p>{expected[0][:60]} [&#8230;]</p>"
    article = extract_article(post(url, summary_html=summary), html, url)
    assert "matches the feed summary" in article.reason
    assert "ours was short" not in article.reason


@pytest.mark.parametrize(
    ("text", "suspect"),
    [
        ("Site home\nIn Animals:\nContact us. Like this page? Send it to a friend!", True),
        (LONG_TEXT, False),
        ("Intro line of the page, long enough.\n" + " | ".join(["Category scales"] * 30), True),
        (LONG_TEXT + "\n" + " | ".join(["Category scales"] * 30), False),
    ],
)
def test_a_short_text_or_one_mostly_of_the_pages_links_is_suspect(text: str, suspect: bool) -> None:
    assert is_suspect(text, frozenset(["category scales"])) is suspect
