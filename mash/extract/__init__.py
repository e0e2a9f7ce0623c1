"""Choose each post's full text: the feed's own content when complete, else the page's article.

Pure: no network, no clock, no database. ``extract_many`` spreads the work over a
process pool (see #4).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import lru_cache
from multiprocessing import get_context
from typing import TYPE_CHECKING

from mash.errors import ExtractError
from mash.extract.meta import PageMeta
from mash.records import Article, Post
from mash.sanitize import MAX_PAGE_CHARS, html_limits_problem, html_to_text, sanitize_html

if TYPE_CHECKING:
    import lxml.html

# The page side (trafilatura, lxml.html: 0.4 s to import) is imported where it is used:
# `mash fetch --feeds-only` and the parse workers need only the feed side (see #8).

WORDS_PER_MINUTE = 230
# Starting workers costs about a second of CPU each (imports): not worth it for a few pages.
_POOL_MIN_JOBS = 4
# A feed body shorter than this is taken for a summary and checked against the page.
COMPLETE_WORDS = 150

_ELLIPSIS_RE = re.compile(r"(?:…|\[\s*…\s*\]|\[\s*\.\.\.\s*\]|\.\.\.|\[&hellip;\])\W{0,3}$")
_READ_MORE_RE = re.compile(
    r"^(?:read more|continue reading|read the (?:full|rest)|keep reading|read full)\b", re.I
)
_APPEARED_RE = re.compile(r"\n?The post .{1,400}? appeared first on [^\n]{1,200}\s*$", re.S)


def needs_full_text(post: Post) -> bool:
    """Tell whether the feed lacks the complete article of post.

    True for an empty body, a body under ``COMPLETE_WORDS`` words, or one ending in a
    truncation marker ("…", "[…]", "Read more", "Continue reading"). The WordPress
    footer "The post X appeared first on Y." is ignored when judging.
    """
    return _incomplete(_feed_text(post))


def _incomplete(text: str) -> bool:
    return not text or _truncation_marker(text) is not None or _words(text) < COMPLETE_WORDS


def feed_article(post: Post) -> Article | None:
    """Return post's article from its feed alone, or None when the feed lacks the full text.

    The fast path for parsing (see #8): post's HTML must already be sanitised (as
    every Post from ``parse_feed`` or the store is), so it is not sanitised again,
    and its text is taken once. ``extract_article(post, None, None)`` gives the same
    article for a complete post.
    """
    html = post.content_html or post.summary_html
    stripped = _strip_footer_html(html)
    if stripped != html:  # cutting the footer paragraph may leave stray tags
        stripped = sanitize_html(stripped, post.url)
    text = html_to_text(stripped)
    if _incomplete(_without_footer(text)):
        return None
    return _article(post, stripped, text, "feed", _complete_reason(text), None)


def _complete_reason(feed_text: str) -> str:
    return f"feed content complete ({_words(feed_text):,} words)"


def extract_text(html: str, url: str | None, *, summary: str = "", title: str = "") -> str:
    """Return the article's plain text from a page ("" when none is found).

    With the feed's summary (text or HTML) and title, the article must quote the
    summary's opening words (#18); "" when the page shows them and no candidate
    does. Without, a result that is mostly short link-like lines (a menu) gives
    way to trafilatura's own precision mode.
    """
    from mash.extract.evidence import evidence_of
    from mash.extract.page import body_text, extract_checked, load_page

    tree = load_page(html)
    if tree is None:
        return ""
    found = extract_checked(html, tree, url, evidence_of(summary, title), rich=False)
    if not found.accepted and summary:
        return ""
    return body_text(found.body)


def extract_article(post: Post, page_html: str | None, page_url: str | None) -> Article:
    """Return the clean article of post, from the feed when complete, else from the page.

    Raises ExtractError only for a page the caller must report (over the size or
    depth cap); a page with no article falls back to the feed's text.
    """
    url = page_url or post.url
    feed_html = sanitize_html(_strip_footer_html(post.content_html or post.summary_html), url)
    feed_text = html_to_text(feed_html)
    incomplete = needs_full_text(post)
    if incomplete and page_html:
        article = _article_from_page(post, page_html, url, feed_html, feed_text)
        if article is not None:
            return article
    if incomplete:
        reason = f"{_why_incomplete(post, feed_text)}; no page to extract: feed kept"
    else:
        reason = _complete_reason(feed_text)
    return _article(post, feed_html, feed_text, "feed", reason, None)


def _article_from_page(
    post: Post, page_html: str, url: str, feed_html: str, feed_text: str
) -> Article | None:
    """Return the article from the page, or the feed's when the page has less (None: no page)."""
    from mash.extract.meta import page_metadata
    from mash.extract.page import load_page

    problem = html_limits_problem(page_html, MAX_PAGE_CHARS)
    if problem is not None:
        raise ExtractError(url, f"page not extracted: {problem}")
    tree = load_page(page_html)
    if tree is None:
        return None
    meta = page_metadata(tree, url)
    page_html_clean, found, accepted = _extract_page(page_html, tree, url, post, feed_text)
    page_text = html_to_text(page_html_clean)
    page_words, feed_words = _words(page_text), _words(feed_text)
    why = _why_incomplete(post, feed_text)
    if accepted and page_words > feed_words:
        reason = f"{why}; page extracted ({page_words:,} words{found})"
        return _article(post, page_html_clean, page_text, "page", reason, meta)
    if page_words <= feed_words:
        reason = (
            f"{why}; page extraction ({page_words:,} words) not longer than the feed's "
            f"({feed_words:,} words): feed kept"
        )
    else:  # a menu, or a text without the summary's opening: worse than the feed's (#18)
        reason = (
            f"{why}; page extraction ({page_words:,} words) is a menu or does not quote "
            "the feed summary: feed kept"
        )
    return _article(post, feed_html, feed_text, "feed", reason, meta)


def extract_many(
    jobs: Sequence[tuple[Post, str | None, str | None]], workers: int | None = None
) -> list[Article | ExtractError]:
    """Run extract_article over jobs in a process pool; results keep the jobs' order.

    A page's own problem gives its ExtractError and the batch carries on; anything
    else (an ImportError of a broken install, a bug) is raised, with a note naming the
    page, and stops the run (see #18): a broken install must not pass for pages that
    could not be extracted. A worker that dies (out of memory) fails its page. CPU-bound and
    blocking: from async code call it as ``await asyncio.to_thread(extract_many, jobs)``
    (or ``loop.run_in_executor(None, extract_many, jobs)``) so the fetch loop keeps
    running. Workers start by forkserver, never by forking the (threaded) caller; like
    any multiprocessing pool they import the caller's main module, which must guard
    its work with ``if __name__ == "__main__"``. A batch under ``_POOL_MIN_JOBS`` jobs,
    or one where no worker can start at all, runs in this process instead.
    """
    if not jobs:
        return []
    count = max(1, min(workers or _cpu_count(), len(jobs)))
    if count == 1 or len(jobs) < _POOL_MIN_JOBS:
        return [_unpack(_run_job(job)) for job in jobs]
    with ProcessPoolExecutor(max_workers=count, mp_context=get_context("forkserver")) as pool:
        try:
            pool.submit(_ready).result()
        except BrokenProcessPool:
            return [_unpack(_run_job(job)) for job in jobs]
        futures = [pool.submit(_run_job, job) for job in jobs]
        try:
            return [_result_of(future, job) for future, job in zip(futures, jobs, strict=True)]
        except BaseException:
            pool.shutdown(cancel_futures=True)  # the run stops: don't extract the rest
            raise


# --- jobs -------------------------------------------------------------------------


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _ready() -> bool:
    """Answer from a worker, proving the pool can start."""
    return True


_Outcome = tuple[Article | None, str, str]


def _run_job(job: tuple[Post, str | None, str | None]) -> _Outcome:
    """Run one job; errors travel as (None, url, message), since ExtractError won't pickle.

    Any other exception is a bug or a broken install, not the page's fault: it is
    raised with a note naming the page (notes cross the process boundary).
    """
    post, page_html, page_url = job
    try:
        return extract_article(post, page_html, page_url), "", ""
    except ExtractError as e:
        return None, e.url, e.message
    except Exception as e:
        e.add_note(f"while extracting the page {page_url or post.url}")
        raise


def _unpack(outcome: _Outcome) -> Article | ExtractError:
    article, url, message = outcome
    return article if article is not None else ExtractError(url, message)


def _result_of(
    future: Future[_Outcome], job: tuple[Post, str | None, str | None]
) -> Article | ExtractError:
    try:
        outcome: _Outcome = future.result()
    except BrokenProcessPool as e:  # a worker died (e.g. out of memory): report the page
        return ExtractError(job[2] or job[0].url, f"extraction worker failed: {e}")
    return _unpack(outcome)


# --- page extraction -----------------------------------------------------------------


def _extract_page(
    page_html: str, tree: lxml.html.HtmlElement, url: str, post: Post, feed_text: str
) -> tuple[str, str, bool]:
    """Return the page article's sanitised HTML, how it was found and whether it passed.

    The feed's summary and title are the evidence (see ``page.extract_checked``).
    """
    import lxml.html
    from trafilatura.htmlprocessing import convert_to_html

    from mash.extract.evidence import evidence_of
    from mash.extract.page import extract_checked

    found = extract_checked(page_html, tree, url, evidence_of(feed_text, post.title), rich=True)
    if found.body is None:
        return "", found.how, False
    raw = lxml.html.tostring(convert_to_html(found.body), encoding="unicode")
    return sanitize_html(raw, url), found.how, found.accepted


# --- feed text ---------------------------------------------------------------------


def _feed_text(post: Post) -> str:
    return _without_footer(html_to_text(post.content_html or post.summary_html))


def _without_footer(text: str) -> str:
    return _APPEARED_RE.sub("", text).strip() if "appeared first on" in text else text


def _strip_footer_html(html: str) -> str:
    """Drop the WordPress "The post X appeared first on Y." footer paragraph."""
    if "appeared first on" not in html:
        return html
    return re.sub(
        r"<p>\s*(?:<[^>]+>\s*)*The post .{1,400}? appeared first on .{1,400}?</p>\s*$",
        "",
        html,
        flags=re.S,
    )


def _truncation_marker(text: str) -> str | None:
    last_line = text.rstrip().rsplit("\n", 1)[-1].strip()
    match = _ELLIPSIS_RE.search(last_line)
    if match:
        return match.group(0).strip()
    read_more = _READ_MORE_RE.match(last_line)
    if read_more and len(last_line.split()) <= 20:
        return read_more.group(0)
    return None


def _why_incomplete(post: Post, feed_text: str) -> str:
    kind = "feed content" if post.content_html else "feed summary"
    if not feed_text:
        return "feed has no content"
    marker = _truncation_marker(_feed_text(post))
    if marker is not None:
        return f"{kind} truncated ('{marker}')"
    return f"{kind} short ({_words(feed_text):,} words)"


@lru_cache(maxsize=8)  # asked three times of each feed's text (a str caches its hash)
def _words(text: str) -> int:
    """Count the words of text as html_to_text gives it (one space or newline between words).

    Counting separators is a fifth of the cost of split() over every post (see #8).
    """
    return text.count(" ") + text.count("\n") + 1 if text else 0


def _article(
    post: Post, html: str, text: str, source: str, reason: str, meta: PageMeta | None
) -> Article:
    """Return the Article: the feed's fields first, the page's where the feed is silent."""
    meta = meta or PageMeta()
    words = _words(text)
    image = meta.image or _first_image(html)
    return Article(
        html=html,
        text=text,
        source=source,
        reason=reason,
        title=post.title or meta.title,
        author=post.author or meta.author,
        published=post.published or meta.published,
        updated=post.updated or meta.updated,
        image=image,
        canonical=meta.canonical,
        language=meta.language,
        word_count=words,
        reading_minutes=max(1, round(words / WORDS_PER_MINUTE)),
        comment_count=meta.comment_count if meta.comment_count is not None else post.comments,
        description=_plain(meta.description),
    )


def _plain(text: str) -> str:
    """Return text (a page's description: plain text, but not always) without markup."""
    if "<" in text:
        text = html_to_text(sanitize_html(text))
    return " ".join(text.split())


def _first_image(html: str) -> str:
    match = re.search(r'<img[^>]*? src="(https?://[^"]+)"', html)
    return match.group(1).replace("&amp;", "&") if match else ""
