"""Render an issue as email (HTML and plain text) and build the MIME messages.

The HTML is rendered once per issue; each recipient's copy only swaps the
unsubscribe link (``personalise``), so a 10,000 send renders once. Nothing
here talks to a server or reads the clock except ``build_message``'s Date.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import html as htmllib
import re
import textwrap
import traceback
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import css_inline
import jinja2

from mash.blurb import EDITOR
from mash.errors import RenderError, SendError
from mash.plaintext import essay_text
from mash.records import Issue, Listening, Newsletter, Pick, Section, SmtpSettings

GMAIL_CLIP_BYTES = 102 * 1024
TEXT_WIDTH = 72
PREVIEW_TO = "reader@example.org"
_RTL = {"ar", "dv", "fa", "he", "ku", "ps", "sd", "ug", "ur", "yi"}
# Characters that end or break a header line; stripped from anything put in a header.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s")
_A_TAG = re.compile(r"<a\b[^>]*>", re.IGNORECASE)
_HREF = re.compile(r'\bhref="[^"]*"', re.IGNORECASE)
_UNSUB_LINE = re.compile(r"^(Unsubscribe: ).*$", re.MULTILINE)
_STYLE_ATTR = re.compile(r'\sstyle="[^"]*"')
# A "word" long enough to widen a table cell past a phone's screen (a URL as link text).
_LONG_WORD = re.compile(r"\S{28,}")
_BREAK_AFTER = frozenset("/-_.?&=#")
_ZWSP = "\u200b"
# The one-word bodies of message_bytes's shell (text, HTML): letters, which
# quoted-printable leaves as they are, and no header or template holds.
_MARKS = ("MashTextPartQ7xZ", "MashHtmlPartQ7xZ")


class _HeaderClasses(HeaderRegistry):
    """The stdlib registry, made once per header name: it builds a new class per header."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        if key not in self._made:
            self._made[key] = super().__getitem__(name)
        return self._made[key]


# Long header lines are legal up to 998 octets; folding a long unsubscribe URL at 78
# would turn it into encoded-words, which List-Unsubscribe must not contain.
_POLICY = policy.SMTP.clone(max_line_length=998, header_factory=_HeaderClasses())
_MONTHS = ("January", "February", "March", "April", "May", "June") + (
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def render_email_html(
    issue: Issue, env: jinja2.Environment, *, unsubscribe_url: str | None = None
) -> str:
    """Render templates/email.html with its CSS inlined (media queries kept in one <style>).

    The unsubscribe link defaults to a mailto to the sender; ``personalise`` swaps it per
    recipient. Links are in anchors carrying ``data-unsubscribe``.
    """
    context = _html_context(issue, unsubscribe_url or default_unsubscribe_url(issue.newsletter))
    raw = _render(env, "email.html", context)
    try:
        inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
        inlined = str(inliner.inline(raw))
    except ValueError as e:
        raise RenderError("email.html", "CSS could not be inlined") from e
    return _charset_first(inlined)


def render_email_text(
    issue: Issue, env: jinja2.Environment, *, unsubscribe_url: str | None = None
) -> str:
    """Render templates/email.txt: the plain-text alternative, readable on its own.

    Paragraphs are wrapped at 72 columns here, not in the template; runs of blank
    lines are collapsed so the result does not depend on the env's whitespace options.
    """
    context = _text_context(issue, unsubscribe_url or default_unsubscribe_url(issue.newsletter))
    raw = _render(env, "email.txt", context)
    lines = [line.rstrip() for line in raw.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n"


def personalise(html: str, unsubscribe_url: str) -> str:
    """Point every ``data-unsubscribe`` anchor of rendered HTML at this recipient's URL."""
    href = f'href="{htmllib.escape(unsubscribe_url, quote=True)}"'

    def swap(match: re.Match[str]) -> str:
        tag = match.group(0)
        return _HREF.sub(lambda _m: href, tag) if "data-unsubscribe" in tag else tag

    return _A_TAG.sub(swap, html)


def personalise_text(text: str, unsubscribe_url: str) -> str:
    """Replace the URL on the text part's ``Unsubscribe:`` lines with this recipient's."""
    clean = _CONTROL.sub("", unsubscribe_url)
    return _UNSUB_LINE.sub(lambda m: m.group(1) + clean, text)


def default_unsubscribe_url(newsletter: Newsletter) -> str:
    """Return the mailto unsubscribe link used before a recipient is known."""
    return f"mailto:{newsletter.sender}?subject=unsubscribe"


def list_unsubscribe_mailto(smtp: SmtpSettings, newsletter: Newsletter) -> str:
    """Return the list's mailto unsubscribe link: ``smtp.unsubscribe_mailto`` if set.

    The built email.html and email.txt carry it (see #20: they named the sender); a
    bare address becomes ``mailto:ADDRESS?subject=unsubscribe``.
    """
    mailto = _clean(smtp.unsubscribe_mailto)
    if not mailto:
        return default_unsubscribe_url(newsletter)
    return mailto if mailto.startswith("mailto:") else f"mailto:{mailto}?subject=unsubscribe"


def email_size_warning(html: str) -> str | None:
    """Return None when the email is under Gmail's ~102 KB clipping limit, else what to cut."""
    size = len(html.encode("utf-8"))
    if size < GMAIL_CLIP_BYTES:
        return None
    styles = sum(len(m.group(0).encode("utf-8")) for m in _STYLE_ATTR.finditer(html))
    over = size - GMAIL_CLIP_BYTES
    return (
        f"email.html is {size / 1024:.1f} KB after inlining CSS; Gmail clips messages over "
        f"{GMAIL_CLIP_BYTES // 1024} KB, so cut at least {over / 1024:.1f} KB: shorten the "
        f"editorial or the blurbs, drop a pick or two, or simplify templates/email.html "
        f"(inlined style attributes take {styles / 1024:.1f} KB)."
    )


def build_message(
    issue: Issue,
    html: str,
    text: str,
    *,
    to_addr: str,
    to_name: str,
    smtp: SmtpSettings,
    unsubscribe_url: str,
    unsubscribe_mailto: str,
    message_id: str,
    proof: bool = False,
    date: datetime | None = None,
) -> EmailMessage:
    """Build one recipient's multipart/alternative message (text first, then HTML).

    Control characters are stripped from every header value, so no name, title or
    blurb can add a header. ``unsubscribe_url`` may be empty (mailto only; then no
    List-Unsubscribe-Post, which RFC 8058 allows only with an HTTPS URI).
    """
    newsletter = issue.newsletter
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = _address(newsletter.sender_name, newsletter.sender)
    msg["To"] = _address(to_name, to_addr)
    subject = _clean(issue.title)
    msg["Subject"] = f"[PROOF] {subject}" if proof else subject
    msg["Date"] = format_datetime(date or datetime.now(UTC))
    msg["Message-ID"] = _clean(message_id)
    msg["MIME-Version"] = "1.0"
    _add_list_headers(msg, smtp, newsletter, unsubscribe_url, unsubscribe_mailto)
    link = unsubscribe_url or unsubscribe_mailto or default_unsubscribe_url(newsletter)
    msg["Content-Type"] = f'multipart/alternative; boundary="{_boundary(message_id)}"'
    msg.attach(_qp_part("plain", personalise_text(text, link)))
    msg.attach(_qp_part("html", personalise(html, link)))
    return msg


def message_bytes(
    issue: Issue,
    html: str,
    text: str,
    *,
    to_addr: str,
    to_name: str,
    smtp: SmtpSettings,
    unsubscribe_url: str,
    unsubscribe_mailto: str,
    message_id: str,
    proof: bool = False,
) -> bytes:
    """Return ``build_message(...).as_bytes()`` by way of a one-off ``MessageMaker``."""
    return MessageMaker(issue, html, text, smtp).message(
        to_addr=to_addr,
        to_name=to_name,
        unsubscribe_url=unsubscribe_url,
        unsubscribe_mailto=unsubscribe_mailto,
        message_id=message_id,
        proof=proof,
    )


class MessageMaker:
    """Make the recipients' messages of one issue: ``build_message(...).as_bytes()``, byte
    for byte, in a fraction of the time (a send's CPU, see #16).

    The email package builds and flattens, once per kind of message, a shell with
    stand-in recipient headers and one-word bodies. Per recipient, only the headers
    that differ (To, Date, Message-ID, List-Unsubscribe and the boundary) are made by
    the email package's policy, as its generator would write them, and the bodies are
    quoted-printable encoded line by line, each line's encoding cached: they differ
    only in the lines holding the unsubscribe link. A body with a bare CR takes
    ``build_message``'s way. Not thread-safe while a new kind of shell is first made
    (harmless: the same bytes twice).
    """

    def __init__(self, issue: Issue, html: str, text: str, smtp: SmtpSettings) -> None:
        self.issue = issue
        self.html = html
        self.text = text
        self.smtp = smtp
        self.shells: dict[tuple[object, ...], bytes] = {}

    def message(
        self,
        *,
        to_addr: str,
        to_name: str,
        unsubscribe_url: str,
        unsubscribe_mailto: str,
        message_id: str,
        proof: bool = False,
    ) -> bytes:
        link = (
            unsubscribe_url or unsubscribe_mailto or default_unsubscribe_url(self.issue.newsletter)
        )
        bodies = (
            personalise_text(self.text, link).replace("\r\n", "\n"),
            personalise(self.html, link).replace("\r\n", "\n"),
        )
        if any("\r" in body for body in bodies):
            return build_message(
                self.issue,
                self.html,
                self.text,
                to_addr=to_addr,
                to_name=to_name,
                smtp=self.smtp,
                unsubscribe_url=unsubscribe_url,
                unsubscribe_mailto=unsubscribe_mailto,
                message_id=message_id,
                proof=proof,
            ).as_bytes()
        marks = tuple(
            word + "\n" if body.endswith("\n") else word
            for word, body in zip(_MARKS, bodies, strict=True)
        )
        url_kind = (
            "https" if unsubscribe_url.startswith("https://") else bool(_clean(unsubscribe_url))
        )
        kind = (proof, url_kind, bool(_clean(unsubscribe_mailto)), marks)
        shell = self.shells.get(kind) or self._shell(kind)
        head, _blank, rest = shell.partition(b"\r\n\r\n")
        head += b"\r\n"
        swaps = (
            ("To", _address(_STAND_IN[0], _STAND_IN[1]), _address(to_name, to_addr)),
            ("Date", _STAND_IN_DATE, format_datetime(datetime.now(UTC))),
            ("Message-ID", _STAND_IN[2], _clean(message_id)),
            (
                "List-Unsubscribe",
                _list_unsubscribe(*_stand_in_uris(kind)),
                _list_unsubscribe(unsubscribe_url, unsubscribe_mailto),
            ),
        )
        for name, stand_in, value in swaps:
            head = head.replace(_header_bytes(name, stand_in), _header_bytes(name, value), 1)
        message = (head + b"\r\n" + rest).replace(
            _boundary(_STAND_IN[2]).encode(), _boundary(message_id).encode()
        )
        for mark, body in zip(marks, bodies, strict=True):  # the bodies are last
            before, _mark, after = message.rpartition(mark.replace("\n", "\r\n").encode())
            message = before + _qp_body(body) + after
        return message

    def _shell(self, kind: tuple[object, ...]) -> bytes:
        proof, _url_kind, _has_mailto, marks = kind
        assert isinstance(marks, tuple)
        url, mailto = _stand_in_uris(kind)
        shell = build_message(
            self.issue,
            marks[1],
            marks[0],
            to_addr=_STAND_IN[1],
            to_name=_STAND_IN[0],
            smtp=self.smtp,
            unsubscribe_url=url,
            unsubscribe_mailto=mailto,
            message_id=_STAND_IN[2],
            proof=bool(proof),
            date=_STAND_IN_WHEN,
        ).as_bytes()
        self.shells[kind] = shell
        return shell


# The stand-ins of a MessageMaker's shells: letters and digits the email package keeps
# as they are, on one line each. Name, address, Message-ID:
_STAND_IN = ("Mashstandinname", "mashstandin@mashstandin.invalid", "<mashstandin@mash.invalid>")
_STAND_IN_WHEN = datetime(2000, 1, 1, tzinfo=UTC)
_STAND_IN_DATE = format_datetime(_STAND_IN_WHEN)


def _stand_in_uris(kind: tuple[object, ...]) -> tuple[str, str]:
    """Return the stand-in unsubscribe URL and mailto of a kind of shell."""
    url_kind, has_mailto = kind[1], kind[2]
    url = {"https": "https://mashstandin.invalid/u", True: "http://mashstandin.invalid/u"}
    return url.get(url_kind, ""), "mailto:mashstandin@mashstandin.invalid" if has_mailto else ""


def _list_unsubscribe(url: str, mailto: str) -> str:
    """Return the List-Unsubscribe value of build_message ("" when it has none)."""
    return ", ".join(f"<{u}>" for u in (_clean(url), _clean(mailto)) if u)


def _header_bytes(name: str, value: object) -> bytes:
    """Return a header as the generator writes it (b"" for an empty value: none)."""
    if value == "":
        return b""
    return _POLICY.fold_binary(*_POLICY.header_store_parse(name, value))


def _boundary(message_id: str) -> str:
    # A boundary from the Message-ID keeps messages reproducible; "=_" never occurs in
    # quoted-printable text, so it cannot collide with a part.
    return "=_mash_" + hashlib.sha256(message_id.encode()).hexdigest()[:32]


def _qp_body(content: str) -> bytes:
    """Return the quoted-printable of ``content`` (LF lines, no CR) with CRLF lines, as
    ``_qp_part`` and the generator make it: b2a_qp encodes each line on its own."""
    encoded = b"\n".join(_qp_line(line) for line in content.split("\n"))
    return encoded.replace(b"\n", b"\r\n")


@functools.lru_cache(maxsize=8192)
def _qp_line(line: str) -> bytes:
    return binascii.b2a_qp(line.encode("utf-8"), istext=True)


def _qp_part(subtype: str, content: str) -> EmailMessage:
    """Return a UTF-8 quoted-printable text part.

    binascii's C encoder, not set_content's pure-Python one: a 10,000 send builds
    10,000 messages (see bench/send_bench.py).
    """
    part = EmailMessage(policy=_POLICY)
    part["Content-Type"] = f'text/{subtype}; charset="utf-8"'
    part["Content-Transfer-Encoding"] = "quoted-printable"
    encoded = binascii.b2a_qp(content.replace("\r\n", "\n").encode("utf-8"), istext=True)
    part.set_payload(encoded.decode("ascii"))
    return part


def build_preview_eml(
    issue: Issue, html: str, text: str, smtp: SmtpSettings, date: datetime
) -> bytes:
    """Return output/YYYY-MM/issue.eml: the message as the editor would receive it.

    It is addressed to the editor (or reader@example.org), dated ``date`` (the build
    time: the issue goes out after its month, not on the 1st of it, see #20) and
    carries the list's unsubscribe URLs without a token.
    """
    newsletter = issue.newsletter
    msg = build_message(
        issue,
        html,
        text,
        to_addr=newsletter.editor_email or PREVIEW_TO,
        to_name=newsletter.editor if newsletter.editor_email else "Reader",
        smtp=smtp,
        unsubscribe_url=smtp.unsubscribe_url,
        unsubscribe_mailto=list_unsubscribe_mailto(smtp, newsletter),
        message_id=make_message_id(issue.month, "preview", newsletter.sender),
        date=date,
    )
    return msg.as_bytes()


def make_message_id(month: str, email: str, sender: str) -> str:
    """Return the Message-ID of an issue for one address: the same on every run."""
    digest = hashlib.sha256(f"{month}\n{email.strip().lower()}".encode()).hexdigest()[:24]
    domain = sender.rpartition("@")[2] or "mash.invalid"
    return f"<mash.{month}.{digest}@{_clean(domain)}>"


def list_id(smtp: SmtpSettings, newsletter: Newsletter) -> str:
    """Return the List-Id value (RFC 2919): the configured one or name <slug.domain>."""
    if smtp.list_id:
        return _clean(smtp.list_id)
    slug = re.sub(r"[^a-z0-9]+", "-", newsletter.name.lower()).strip("-") or "mash"
    domain = newsletter.sender.rpartition("@")[2] or "mash.invalid"
    return f"{_clean(newsletter.name)} <{slug}.{_clean(domain)}>"


# --- helpers ---------------------------------------------------------------------------


def _breakable_html(fragment: str) -> str:
    """Let long words in an HTML fragment's text break: zero-width spaces (see #20).

    Mail clients in caniemail's data do not support ``overflow-wrap``, and a long
    unbroken word (a URL as link text) widens its table cell past a phone's screen.
    Only text is changed, never an attribute such as a link's href.
    """
    if not _LONG_WORD.search(fragment):
        return fragment
    from bs4 import BeautifulSoup
    from bs4.element import NavigableString

    soup = BeautifulSoup(fragment, "html.parser")
    for text in soup.find_all(string=_LONG_WORD):
        parent = text.parent
        if type(text) is NavigableString and parent and parent.name not in ("pre", "code"):
            text.replace_with(_break_words(str(text)))
    return str(soup)


def _break_words(text: str) -> str:
    return _LONG_WORD.sub(lambda m: _break_word(m.group(0)), text)


def _break_word(word: str, every: int = 20) -> str:
    out: list[str] = []
    run = 0
    for character in word:
        out.append(character)
        run += 1
        if character in _BREAK_AFTER or run >= every:
            out.append(_ZWSP)
            run = 0
    return "".join(out).rstrip(_ZWSP)


def _charset_first(html: str) -> str:
    """Move the charset meta back to the top of <head> (css-inline puts <style> first)."""
    meta = '<meta charset="utf-8">'
    if meta not in html or "<head>" not in html:
        return html
    return html.replace(meta, "", 1).replace("<head>", "<head>" + meta, 1)


def _render(env: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateError as e:
        raise RenderError(_where(e, name), f"cannot render: {e}") from e


def _where(error: jinja2.TemplateError, name: str) -> str:
    """Return "template:line" for an error; runtime errors carry it only in the traceback."""
    line = getattr(error, "lineno", None)
    where = getattr(error, "filename", None) or getattr(error, "name", None) or name
    if line is None:
        frames = [
            f for f in traceback.extract_tb(error.__traceback__) if not f.filename.endswith(".py")
        ]
        if frames:
            where, line = frames[-1].filename, frames[-1].lineno
    return f"{where}:{line}" if line else str(where)


def _base_context(issue: Issue, unsubscribe_url: str) -> dict[str, Any]:
    lang = issue.newsletter.language or "en"
    return {
        "issue": issue,
        "newsletter": issue.newsletter,
        "sections": _sections(issue.sections),
        "lang": lang,
        "dir": "rtl" if lang.split("-")[0].lower() in _RTL else "ltr",
        "month_name": month_name(issue.month),
        "unsubscribe_url": unsubscribe_url,
        "about_paragraphs": _paragraphs(issue.newsletter.about),
    }


def _html_context(issue: Issue, unsubscribe_url: str) -> dict[str, Any]:
    context = _base_context(issue, unsubscribe_url)
    context["preheader"] = preheader(issue.editorial_text)
    context["preheader_spacer"] = "&#847;&zwnj;&nbsp;" * 60
    context["editorial_html"] = _breakable_html(issue.editorial_html)
    site_url = issue.newsletter.site_url
    context["picks"] = [_breakable_item(p) | _thumbnail(p, site_url) for p in issue.picks]
    context["listening"] = _breakable_item(issue.listening) if issue.listening else None
    context["about_paragraphs"] = [_break_words(p) for p in context["about_paragraphs"]]
    return context


def _breakable_item(post: Pick | Listening) -> dict[str, Any]:
    item = _item(post)
    broken = {key: _break_words(item[key]) for key in ("title", "byline", "blurb")}
    return item | broken | {"alt": post.title}


def _thumbnail(pick: Pick, site_url: str) -> dict[str, Any]:
    """Return the pick's image as the email shows it: the site's copy, or none (see #20).

    Never the source blog's image (an SVG mail clients do not show, or gone when the
    blog moves); with no site URL the email has no thumbnails.
    """
    thumb = pick.thumbnail
    if thumb is None or not site_url.startswith(("http://", "https://")):
        return {"image": "", "image_width": 0, "image_height": 0}
    url = f"{site_url.rstrip('/')}/{thumb.path}"
    return {"image": url, "image_width": thumb.width, "image_height": thumb.height}


def _text_context(issue: Issue, unsubscribe_url: str) -> dict[str, Any]:
    context = _base_context(issue, unsubscribe_url)
    context["welcome"] = _wrap(issue.newsletter.welcome)
    # from the HTML, not editorial_text: lists, emphasis and link URLs survive (see #20)
    context["editorial"] = essay_text(issue.editorial_html, width=TEXT_WIDTH)
    context["picks"] = [_text_item(p, f"{n}. ") for n, p in enumerate(issue.picks, 1)]
    context["listening"] = _text_item(issue.listening, "") if issue.listening else None
    context["about_paragraphs"] = [_wrap(p) for p in context["about_paragraphs"]]
    context["why_line"] = _wrap(issue.newsletter.why_line)
    context["footer_lines"] = _footer_lines(issue, context)
    context["sections"] = {
        key: Section(s.key, s.heading, _wrap(s.tagline)) for key, s in context["sections"].items()
    }
    return context


def _footer_lines(issue: Issue, context: dict[str, Any]) -> list[str]:
    """Return the text footer's lines above the unsubscribe line, empty ones left out."""
    footer = context["sections"]["footer"]
    lines = [footer.heading, _wrap(footer.tagline), context["why_line"]]
    lines.append(_wrap(issue.newsletter.postal_address))
    if issue.web_url:
        lines.append(f"View in your browser: {issue.web_url}")
    return [line for line in lines if line]


def _item(post: Pick | Listening) -> dict[str, Any]:
    """Return what the templates may show of a pick; never the listening reason."""
    return {
        "url": post.url,
        "title": post.title,
        "blog": post.blog,
        "author": post.author,
        "date": format_date(post.published),
        "byline": _byline(post),
        "blurb": post.blurb,
        # the author's words (a summary or a quote) are shown as theirs: quoted and
        # attributed; the editor's are his own voice, plain (see #20)
        "blurb_source": post.blurb_source,
        "quoted": post.blurb_source != EDITOR,
        "attribution": post.author or post.blog,
    }


def _text_item(post: Pick | Listening, number: str) -> dict[str, Any]:
    item = _item(post)
    indent = " " * 3
    title = textwrap.fill(post.title, TEXT_WIDTH, initial_indent=number, subsequent_indent=indent)
    item["title"] = title[len(number) :]
    blurb = f"“{post.blurb}”" if item["quoted"] and post.blurb else post.blurb
    item["blurb"] = textwrap.fill(
        blurb, TEXT_WIDTH, initial_indent=indent, subsequent_indent=indent
    )
    return item


def _byline(post: Pick | Listening) -> str:
    parts = [post.blog, f"by {post.author}" if post.author else "", format_date(post.published)]
    return ", ".join(p for p in parts if p)


def _sections(sections: tuple[Section, ...]) -> dict[str, Section]:
    """Return sections by key; a missing key gets an empty Section so templates stay simple."""
    by_key = {s.key: s for s in sections}
    keys = ("title", "welcome", "editorial", "picks", "listening", "about", "footer")
    return {k: by_key.get(k, Section(k, "")) for k in keys} | by_key


def _paragraphs(text: str) -> list[str]:
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]


def _wrap(text: str) -> str:
    return textwrap.fill(" ".join(text.split()), TEXT_WIDTH) if text else ""


def preheader(editorial_text: str, limit: int = 150) -> str:
    """Return the first sentence of the editorial, cut to ``limit`` characters."""
    text = " ".join(editorial_text.split())
    match = _SENTENCE_END.search(text)
    first = text[: match.start()] if match else text
    first = first.strip()
    if len(first) > limit:
        first = first[: limit - 1].rsplit(" ", 1)[0] + "…"
    return first


def month_name(month: str) -> str:
    """Return "August 2013" for "2013-08"."""
    year, _, number = month.partition("-")
    return f"{_MONTHS[int(number) - 1]} {year}"


def format_date(when: datetime | None) -> str:
    """Return "5 August 2013", or "" when the date is unknown."""
    return f"{when.day} {_MONTHS[when.month - 1]} {when.year}" if when else ""


def _clean(value: str) -> str:
    """Remove characters that could end a header line (CR, LF and other controls)."""
    return " ".join(_CONTROL.sub(" ", value).split())


def _address(name: str, addr: str) -> Address:
    clean = _clean(addr)
    try:
        address = Address(display_name=_clean(name), addr_spec=clean)
    except (ValueError, IndexError) as e:
        raise SendError(clean, "not an email address") from e
    if not address.username or not address.domain:
        raise SendError(clean, "not an email address")
    return address


def _add_list_headers(
    msg: EmailMessage,
    smtp: SmtpSettings,
    newsletter: Newsletter,
    unsubscribe_url: str,
    unsubscribe_mailto: str,
) -> None:
    if value := _list_unsubscribe(unsubscribe_url, unsubscribe_mailto):
        msg["List-Unsubscribe"] = value
    if unsubscribe_url.startswith("https://"):
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["List-Id"] = list_id(smtp, newsletter)


# --- notices: the confirmation and welcome mails of double opt-in (see #16) -------------


def render_notice(env: jinja2.Environment, name: str, context: dict[str, Any]) -> tuple[str, str]:
    """Render ``NAME.html`` (CSS inlined, the issue's look) and ``NAME.txt`` of a notice."""
    raw = _render(env, f"{name}.html", context)
    try:
        inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
        html = _charset_first(str(inliner.inline(raw)))
    except ValueError as e:
        raise RenderError(f"{name}.html", "CSS could not be inlined") from e
    lines = [line.rstrip() for line in _render(env, f"{name}.txt", context).strip().splitlines()]
    return html, re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n"


def build_notice(
    newsletter: Newsletter,
    subject: str,
    html: str,
    text: str,
    *,
    to_addr: str,
    to_name: str,
    date: datetime,
) -> EmailMessage:
    """Build a one-off multipart/alternative mail to one reader (no list headers: it is
    not a list mail, and there is nothing to unsubscribe from yet)."""
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = _address(newsletter.sender_name, newsletter.sender)
    msg["To"] = _address(to_name, to_addr)
    msg["Subject"] = _clean(subject)
    msg["Date"] = format_datetime(date)
    domain = newsletter.sender.rpartition("@")[2] or "mash.invalid"
    token = hashlib.sha256(f"{to_addr}\n{date.isoformat()}\n{subject}".encode()).hexdigest()
    msg["Message-ID"] = f"<mash.notice.{token[:24]}@{_clean(domain)}>"
    msg["MIME-Version"] = "1.0"
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to it, please
    boundary = "=_mash_" + token[24:56]
    msg["Content-Type"] = f'multipart/alternative; boundary="{boundary}"'
    msg.attach(_qp_part("plain", text))
    msg.attach(_qp_part("html", html))
    return msg
