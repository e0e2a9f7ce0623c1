"""The pre-send checks of an issue (see #17): pure functions of the issue and its rendering.

Each check returns ``CheckProblem`` records, a "problem" (``mash check`` exits 1) or a
"warning" (shown, exit 0). A problem is what a reader would see broken, or what the
newsletter's own settings forbid: an email Gmail clips, a dead link, an image that does
not show or has no alt text, a blurb over ``blurb_chars``, picks from one blog over
``per_blog_cap``, plain-text and HTML parts that disagree, edition entries that match no
post, an unwritten (draft) edition. A warning still works for the reader: a link that
moved permanently (with the new URL), a link that could not be checked (robots.txt,
bot protection, rate limits), a WebP or AVIF image, a blurb that repeats the title.

Nothing here renders, fetches or reads a file: ``mash.pipeline.run_checks`` does, and
passes the results in. Temporary redirects (302, 303, 307) are not reported: they are
how sites route a visitor (a locale, a login, a tracker), and the linked URL is still
the one to keep.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import urlsplit

from bs4 import BeautifulSoup
from bs4.element import Tag

from mash.records import (
    PROBLEM,
    WARNING,
    CheckProblem,
    FetchResult,
    Issue,
    Listening,
    Pick,
    Problem,
)

GMAIL_CLIP_BYTES = 102 * 1024  # as mash.mail: Gmail shows "[Message clipped]" past it

# Where a link of the issue comes from, which says where to fix it.
PICK, LISTENING, ESSAY, ABOUT, TEMPLATE = "pick", "listening", "essay", "about", "template"

# RFC 2606 / 6761 names that never resolve: a placeholder left in, dead for every reader.
_RESERVED_NAMES = ("example.com", "example.net", "example.org", "localhost")
_RESERVED_SUFFIXES = (".example", ".invalid", ".test", ".localhost") + tuple(
    f".{name}" for name in _RESERVED_NAMES
)
_ZWSP = "\u200b"  # mash.mail breaks long words with it; never part of a title
_WORD = re.compile(r"\w+")
# image formats by how mail clients show them (caniemail): SVG almost nowhere, WebP and
# AVIF not in Outlook for Windows
_HIDDEN_FORMATS = {".svg": PROBLEM, ".svgz": PROBLEM, ".webp": WARNING, ".avif": WARNING}
# link fetch failures that say nothing of the link: the site would not be asked
_UNCHECKED = {
    "robots": "not checked: robots.txt disallows it for mash",
    "http-403-blocked": "not checked: the site refuses non-browser clients (HTTP 403)",
    "http-429": "not checked: the site answered 429 Too Many Requests; try again later",
}


def _problem(kind: str, subject: str, message: str, fix: str = "") -> CheckProblem:
    return CheckProblem(kind, subject, message, fix, PROBLEM)


def _warning(kind: str, subject: str, message: str, fix: str = "") -> CheckProblem:
    return CheckProblem(kind, subject, message, fix, WARNING)


# --- size ----------------------------------------------------------------------------


def check_email_size(html_bytes: int, encoded_bytes: int) -> list[CheckProblem]:
    """Check the HTML part against Gmail's 102 KB clip.

    ``html_bytes`` is the part's decoded size (UTF-8, after css-inline), the figure the
    102 KB is usually stated for; ``encoded_bytes`` its quoted-printable size in the
    message. Gmail's exact rule is not published, and tests have seen clipping depend on
    the encoding (hteumeuleu/email-bugs#41; spamresource.com, January 2022), so an
    encoded part over the limit is a warning.
    """
    over = html_bytes - GMAIL_CLIP_BYTES
    if over >= 0:
        return [
            _problem(
                "email-size",
                "email.html",
                f"the HTML part is {html_bytes / 1024:.1f} KB after inlining CSS; Gmail clips "
                f"messages over {GMAIL_CLIP_BYTES // 1024} KB",
                f"cut at least {over / 1024 + 0.1:.1f} KB: shorten the essay or the blurbs, "
                "drop a pick, or simplify templates/email.html",
            )
        ]
    if encoded_bytes >= GMAIL_CLIP_BYTES:
        return [
            _warning(
                "email-size",
                "email.html",
                f"the HTML part is {html_bytes / 1024:.1f} KB, {encoded_bytes / 1024:.1f} KB "
                f"as sent (quoted-printable); Gmail may clip it past {GMAIL_CLIP_BYTES // 1024} KB",
                "shorten the essay or the blurbs to be safe",
            )
        ]
    return []


# --- links ---------------------------------------------------------------------------


def issue_links(issue: Issue, html: str) -> dict[str, str]:
    """Return every http(s) link and image of the email HTML to check, with its place.

    The place (PICK, LISTENING, ESSAY, ABOUT or TEMPLATE) says where to fix it. Left
    out: the unsubscribe link (each reader gets their own), mailto: and other schemes,
    and links under ``site_url``: the newsletter's own site, which exists once
    output/site/ is uploaded (after the check, before the send).
    """
    places = {p.url: PICK for p in issue.picks}
    if issue.listening:
        places[issue.listening.url] = LISTENING
    places.update({link.url: ABOUT for link in issue.newsletter.links})
    places.update({url: ESSAY for url in _hrefs(_soup(issue.editorial_html))})
    site = issue.newsletter.site_url.rstrip("/") + "/"
    found: dict[str, str] = {}
    soup = _soup(html)
    for tag in soup.find_all(["a", "img"]):
        if not isinstance(tag, Tag) or tag.has_attr("data-unsubscribe"):
            continue
        url = str(tag.get("href" if tag.name == "a" else "src") or "").strip()
        if not url.startswith(("http://", "https://")) or url.startswith(site):
            continue
        found.setdefault(url, places.get(url, TEMPLATE))
    return found


def placeholder_link(url: str) -> str | None:
    """Return why ``url`` can never work (a reserved example domain), or None."""
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    if host in _RESERVED_NAMES or host.endswith(_RESERVED_SUFFIXES):
        return f"{host} is a reserved example name (RFC 2606): the link is a placeholder"
    return None


def check_placeholder(url: str, place: str, month: str) -> CheckProblem | None:
    """Return a problem for a link to a reserved example domain, without the network."""
    why = placeholder_link(url)
    return _problem("dead-link", url, why, _fix_where(place, month)) if why else None


def check_link(result: FetchResult, place: str, month: str) -> CheckProblem | None:
    """Judge one link from its fetch result (mash.fetch.check_links); None when it works."""
    url = result.url
    kind = result.error_kind or ""
    if kind == "too-large":  # a GET got 2xx and more body than wanted: it answered
        return None
    if kind in _UNCHECKED or (kind == "http-403"):
        message = _UNCHECKED.get(kind, "not checked: the site answered 403 Forbidden")
        return _warning("unchecked-link", url, message, f"open it in a browser ({_place(place)})")
    if result.error:
        where = _fix_where(place, month)
        return _problem("dead-link", url, f"{_place(place)}: {result.error}", where)
    if result.moved_to:
        return _warning(
            "moved-link",
            url,
            f"{_place(place)}: moved permanently to {result.moved_to}",
            f"link {result.moved_to} instead" + _where_suffix(place, month),
        )
    return None


def _place(place: str) -> str:
    return {
        PICK: "a pick's link",
        LISTENING: "the listening post's link",
        ESSAY: "a link in the essay",
        ABOUT: "an About link",
    }.get(place, "a link of the email template")


def _fix_where(place: str, month: str) -> str:
    if place in (PICK, LISTENING):
        return f"drop the post (drops: in editions/{month}.md) or pick another"
    return f"fix or remove the link{_where_suffix(place, month)}"


def _where_suffix(place: str, month: str) -> str:
    return {
        ESSAY: f" in editions/{month}.md",
        ABOUT: " in newsletter.links of feeds.yaml",
        TEMPLATE: " in templates/email.html",
    }.get(place, " (the feed gives the old URL; the reader is still sent on)")


# --- images --------------------------------------------------------------------------


def check_images(html: str) -> list[CheckProblem]:
    """Check every <img>: alt text, and a format mail clients show."""
    found = []
    for tag in _soup(html).find_all("img"):
        if not isinstance(tag, Tag):
            continue
        src = str(tag.get("src") or "")
        if not str(tag.get("alt") or "").strip():
            found.append(
                _problem(
                    "image-alt",
                    src or "<img>",
                    "an image without alt text: readers who block images (Outlook's default) "
                    "or use a screen reader get nothing",
                    "give it alt text (Markdown: ![what it shows](url))",
                )
            )
        extension = _extension(src)
        if extension in _HIDDEN_FORMATS:
            make = _problem if _HIDDEN_FORMATS[extension] == PROBLEM else _warning
            clients = "most mail clients" if make is _problem else "Outlook for Windows"
            found.append(
                make(
                    "image-format",
                    src,
                    f"a {extension[1:].upper()} image, which {clients} do not show",
                    "use a PNG or JPEG",
                )
            )
    return found


def _extension(src: str) -> str:
    if src.startswith("data:image/svg"):
        return ".svg"
    path = urlsplit(src).path.lower()
    dot = path.rfind(".")
    return path[dot:] if dot > path.rfind("/") else ""


# --- blurbs and picks ----------------------------------------------------------------


def check_blurbs(issue: Issue, blurb_chars: int) -> list[CheckProblem]:
    """Check each blurb: within ``blurb_chars``, and not the title over again."""
    found = []
    posts = _posts(issue)
    for post in posts:
        mine = post.blurb_source == "editor"
        where = f"blurbs: in editions/{issue.month}.md" if mine else "newsletter.blurb_chars"
        if len(post.blurb) > blurb_chars:
            found.append(
                _problem(
                    "blurb-length",
                    post.url,
                    f"the blurb is {len(post.blurb)} characters, over the "
                    f"{blurb_chars} of newsletter.blurb_chars",
                    f"shorten it ({where})" if mine else f"raise {where} or write one",
                )
            )
        if post.blurb and repeats_title(post.blurb, post.title):
            found.append(
                _warning(
                    "blurb-title",
                    post.url,
                    f"the blurb repeats the title {post.title!r}",
                    f"write one that says more, under blurbs: in editions/{issue.month}.md",
                )
            )
    return found


def repeats_title(blurb: str, title: str) -> bool:
    """Tell whether a blurb is its title again: the same words, or the title then more,
    or a piece of the title (case and punctuation aside)."""
    words, heading = _words(blurb), _words(title)
    if not words or not heading:
        return False
    if words == heading or " ".join(words) in " ".join(heading):
        return True
    return len(heading) >= 3 and words[: len(heading)] == heading


def _words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def check_blog_cap(issue: Issue, cap: int) -> list[CheckProblem]:
    """Check that no blog has more picks than ``per_blog_cap`` (pins can pass it)."""
    counts = Counter(p.blog for p in issue.picks)
    found = []
    for blog, count in counts.items():
        if count > cap:
            urls = ", ".join(p.url for p in issue.picks if p.blog == blog)
            found.append(
                _problem(
                    "blog-cap",
                    blog,
                    f"{count} picks from one blog, over newsletter.per_blog_cap ({cap}): {urls}",
                    f"unpin or drop {count - cap} of them in editions/{issue.month}.md, "
                    "or raise newsletter.per_blog_cap",
                )
            )
    return found


# --- the two parts -------------------------------------------------------------------


def check_parts(issue: Issue, html: str, text: str) -> list[CheckProblem]:
    """Check that both parts carry every pick's (and the listening post's) title and link,
    and every About link."""
    anchors = [(str(a.get("href") or ""), _flat(a.get_text())) for a in _soup(html).find_all("a")]
    hrefs = {href for href, _ in anchors}
    # the text part wraps titles at 72 columns, also after a hyphen ("customer-" /
    # "service"): compare with no whitespace at all
    bare_text = "".join(text.split())
    tokens = set(text.split())
    found = []
    posts = _posts(issue)
    for post in posts:
        missing = []
        if (post.url, _flat(post.title)) not in anchors:
            linked = post.url in hrefs
            missing.append("the HTML part lacks its " + ("title" if linked else "link"))
        if post.url not in tokens:
            missing.append("the plain-text part lacks its link")
        if "".join(post.title.split()) not in bare_text:
            missing.append("the plain-text part lacks its title")
        found += [_parts_problem(post.url, m) for m in missing]
    for link in issue.newsletter.links:
        if link.url not in hrefs:
            found.append(_parts_problem(link.url, "the HTML part lacks this About link"))
        if link.url not in tokens:
            found.append(_parts_problem(link.url, "the plain-text part lacks this About link"))
    return found


def _parts_problem(subject: str, message: str) -> CheckProblem:
    return _problem(
        "parts-disagree",
        subject,
        message,
        "templates/email.html and templates/email.txt must both show it",
    )


def _flat(text: str) -> str:
    return " ".join(text.replace(_ZWSP, "").split())


# --- the edition ---------------------------------------------------------------------


def check_edition(problems: Iterable[Problem]) -> list[CheckProblem]:
    """Turn the edition file's problems (mash.edition.edition_problems) into findings:
    entries that match no post, and everything else that stops `mash build`."""
    found = []
    for p in problems:
        kind = "unmatched-entry" if "matches no post" in p.message else "edition"
        where = f"{p.file}:{p.line}" if p.line else p.file
        found.append(_problem(kind, where, p.message, p.hint))
    return found


def check_draft(issue: Issue, reasons: Sequence[str], path: str) -> list[CheckProblem]:
    """A draft (the theme or essay unwritten) is refused by `mash send`: a problem."""
    if not issue.draft:
        return []
    return [
        _problem(
            "draft",
            path,
            f"the issue is a draft: {'; '.join(reasons) or 'the theme or essay is unwritten'}",
            "write the theme and the essay there",
        )
    ]


def check_issue(
    issue: Issue,
    html: str,
    text: str,
    *,
    blurb_chars: int,
    per_blog_cap: int,
) -> list[CheckProblem]:
    """Run every check that needs nothing but the issue and its two parts."""
    return [
        *check_images(html),
        *check_blurbs(issue, blurb_chars),
        *check_blog_cap(issue, per_blog_cap),
        *check_parts(issue, html, text),
    ]


def link_problems(
    results: Sequence[FetchResult], places: Mapping[str, str], month: str
) -> list[CheckProblem]:
    """Judge every fetched link (``places`` from ``issue_links``)."""
    found = []
    for result in results:
        problem = check_link(result, places.get(result.url, TEMPLATE), month)
        if problem is not None:
            found.append(problem)
    return found


def _posts(issue: Issue) -> list[Pick | Listening]:
    return [*issue.picks, *([issue.listening] if issue.listening else [])]


def _soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def _hrefs(soup: BeautifulSoup) -> list[str]:
    return [str(a.get("href") or "") for a in soup.find_all("a") if isinstance(a, Tag)]
