"""Frozen records passed between the stages of the pipeline.

Tuples, not lists; datetimes are UTC-aware. Make changed copies with
``dataclasses.replace``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

# --- configuration (config.py makes them; every stage reads them) -----------------


@dataclass(frozen=True)
class FeedSpec:
    """One feed of feeds.yaml; made by config, used by fetch, store and rank."""

    url: str
    name: str | None = None
    weight: float = 1.0
    house: bool = False


@dataclass(frozen=True)
class Link:
    """A labelled link in the About section."""

    label: str
    url: str


@dataclass(frozen=True)
class Section:
    """One of the seven parts of an issue: key, heading and optional tagline."""

    key: str
    heading: str
    tagline: str = ""


@dataclass(frozen=True)
class Newsletter:
    """The newsletter settings of feeds.yaml (``newsletter:``)."""

    name: str = "Monthly Mash"
    editor: str = "The Editor"
    editor_email: str = ""
    sender: str = "mash@example.org"
    sender_name: str = "Monthly Mash"
    site_url: str = "https://example.org/mash/"
    # where `mash server` answers (subscribe, confirm, unsubscribe, webhooks); "" = none,
    # and then the site carries no subscribe form (see #16)
    server_url: str = ""
    language: str = "en"
    welcome: str = (
        "Welcome to the Monthly Mash, a mashup of tools, tales and tips on customer "
        "service and the customer experience."
    )
    about: str = ""
    links: tuple[Link, ...] = ()
    postal_address: str = ""
    why_line: str = "You are receiving this because you subscribed to the Monthly Mash."
    topic: str = "customer service and the customer experience"
    topic_examples: tuple[str, ...] = ()
    volume_start: int = 1
    picks_min: int = 8
    picks_max: int = 12
    per_blog_cap: int = 2
    blurb_chars: int = 280
    sections: tuple[Section, ...] = ()


@dataclass(frozen=True)
class FetchSettings:
    """How fetch behaves (``fetch:`` in feeds.yaml)."""

    concurrency: int = 32
    per_host: int = 4
    connect_timeout: float = 10.0
    read_timeout: float = 10.0
    deadline: float = 20.0
    max_bytes: int = 15 * 1024 * 1024
    retries: int = 2  # in-run retries: a short Retry-After; a flaky connection gets 1 (#18)
    user_agent: str = "mash/0.1 (+https://github.com/monthly-mash/mash; newsletter curation)"
    # non-public networks mash may connect to (everything public may be): see #21
    allow_private: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    fetch_pages: bool = True


@dataclass(frozen=True)
class SmtpSettings:
    """Mail settings (``smtp:`` in feeds.yaml); the password comes from the environment."""

    host: str = "localhost"
    port: int = 587
    security: str = "starttls"  # starttls | tls | none
    user: str = ""
    password_env: str = "MASH_SMTP_PASSWORD"
    secret_env: str = "MASH_SECRET"
    rate_per_second: float = 5.0  # across all connections; 0: no limit
    connections: int = 4  # SMTP connections a send keeps open at once (see #16)
    unsubscribe_url: str = ""
    unsubscribe_mailto: str = ""
    list_id: str = ""
    # the envelope sender (MAIL FROM) bounces go back to, e.g. bounces@example.org; ""
    # = the newsletter's sender. ``verp``: bounces+TOKEN@example.org per recipient, so a
    # bounce names the address and issue it came from (the mailbox must accept "+")
    return_path: str = ""
    verp: bool = False


@dataclass(frozen=True)
class BounceSettings:
    """The bounce mailbox (``bounces:`` in feeds.yaml); the password comes from the environment.

    IMAP over TLS only (port 993); ``mash bounces import --imap`` reads ``folder``.
    """

    host: str = ""
    port: int = 993
    user: str = ""
    password_env: str = "MASH_BOUNCES_PASSWORD"
    folder: str = "INBOX"
    soft_limit: int = 3  # soft bounces on this many consecutive issues suppress (see #16)


@dataclass(frozen=True)
class ServerSettings:
    """`mash server` (``server:`` in feeds.yaml): double opt-in, abuse limits, webhooks.

    Webhook secrets come from the environment; a service whose secret is not set has no
    webhook (404). SendGrid's key is public (it verifies, never signs), so it may be here.
    """

    confirm_days: int = 7  # a confirmation link expires after this many days
    resend_minutes: int = 10  # no second confirmation mail to one address within this
    ip_requests: int = 10  # subscribe requests one client address may make ...
    ip_window_minutes: int = 10  # ... in this many minutes (then 429)
    trusted_proxy: str = ""  # the reverse proxy's address whose X-Forwarded-For is believed
    mailgun_key_env: str = "MASH_MAILGUN_SIGNING_KEY"
    postmark_token_env: str = "MASH_POSTMARK_TOKEN"  # basic-auth password of the webhook URL
    sendgrid_public_key: str = ""  # the "Verification Key" of the signed event webhook
    sns_topic_arn: str = ""  # accept only this topic's messages ("" = any topic)


@dataclass(frozen=True)
class Config:
    """The whole of feeds.yaml, with paths resolved against its folder."""

    path: Path
    newsletter: Newsletter
    feeds: tuple[FeedSpec, ...]
    db_path: Path
    output_dir: Path
    editions_dir: Path
    templates_dir: Path
    subscribers_path: Path
    fetch: FetchSettings = field(default_factory=FetchSettings)
    database_url: str = ""  # paths.database as a postgresql:// URL (then db_path is unused)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    bounces: BounceSettings = field(default_factory=BounceSettings)
    server: ServerSettings = field(default_factory=ServerSettings)


# --- fetch -> parse / extract ---------------------------------------------------------


@dataclass(frozen=True)
class FeedState:
    """What the store knows of a feed before fetching it; made by store, used by fetch."""

    url: str
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class FetchResult:
    """One HTTP fetch; made by fetch, used by parse, extract and store.

    ``error`` is a sentence for the editor and ``error_kind`` a short category
    (timeout, too-large, redirect-loop, http-404, http-410, http-500, not-a-feed,
    malformed, encoding, connection, blocked, robots, private-address).
    """

    url: str
    final_url: str = ""
    status: int | None = None
    content: bytes = b""
    content_type: str = ""
    etag: str | None = None
    last_modified: str | None = None
    moved_to: str | None = None  # the new URL after a permanent (301/308) redirect
    error: str | None = None
    error_kind: str | None = None
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and self.status < 300

    @property
    def not_modified(self) -> bool:
        return self.status == 304


# --- parse -> extract -> store --------------------------------------------------------


@dataclass(frozen=True)
class Post:
    """One feed entry; made by parse, completed by extract, stored by store.

    HTML fields are already sanitised. ``content_html`` is empty when the feed
    carries a summary only; ``summary_html`` is empty when it carries content.
    ``excerpt`` is the plain text of a summary the feed carries beside the content
    that is not the content's opening: a hand-written excerpt (see #20).
    """

    feed_url: str
    guid: str
    url: str
    title: str
    author: str = ""
    published: datetime | None = None
    updated: datetime | None = None
    summary_html: str = ""
    content_html: str = ""
    comments: int | None = None
    categories: tuple[str, ...] = ()
    excerpt: str = ""


@dataclass(frozen=True)
class ParsedFeed:
    """A parsed feed; made by parse, used by the pipeline and store."""

    url: str
    title: str = ""
    link: str = ""
    version: str = ""
    posts: tuple[Post, ...] = ()
    error: str | None = None  # a problem that did not stop the parse (some entries kept)
    error_kind: str | None = None


@dataclass(frozen=True)
class Article:
    """The clean article of a post; made by extract, stored by store."""

    html: str
    text: str
    source: str  # "feed" | "page"
    reason: str
    title: str = ""
    author: str = ""
    published: datetime | None = None
    updated: datetime | None = None
    image: str = ""
    canonical: str = ""
    language: str = ""
    word_count: int = 0
    reading_minutes: int = 0
    comment_count: int | None = None
    description: str = ""  # the page's description or og:description, plain text


# --- store -> rank -> compose ---------------------------------------------------------


@dataclass(frozen=True)
class StoredPost:
    """A post as the store holds it, with its feed's settings; used by rank."""

    id: int
    feed_url: str
    blog: str
    guid: str
    url: str
    title: str
    author: str
    published: datetime | None
    first_seen: datetime
    summary_html: str
    html: str
    text: str
    source: str
    comments: int | None
    page_views: int | None = None
    page_views_source: str = ""
    image: str = ""
    canonical: str = ""
    categories: tuple[str, ...] = ()
    house: bool = False
    weight: float = 1.0
    feed_published: datetime | None = None  # the feed's date now
    first_published: datetime | None = None  # the feed's date when first seen
    updated: datetime | None = None
    page_published: datetime | None = None  # the date shown on the page
    source_reason: str = ""
    excerpt: str = ""  # the feed's hand-written excerpt (Post.excerpt)
    page_description: str = ""  # the page's description (Article.description)


@dataclass(frozen=True)
class ScoredPost:
    """A candidate with its score parts and decision; made by rank, used by compose and cli."""

    post: StoredPost
    score: float
    parts: tuple[tuple[str, float], ...]
    status: str  # "picked" | "listening" | "out"
    reason: str
    blurb: str = ""
    duplicate_of: str | None = None
    blurb_source: str = ""  # "editor" | "summary" | "quote"; "" while there is no blurb


@dataclass(frozen=True)
class Ranking:
    """The month's ranked candidates; made by rank, used by compose."""

    month: str
    candidates: tuple[ScoredPost, ...]
    picks: tuple[ScoredPost, ...]
    listening: ScoredPost | None
    listening_reason: str = ""


@dataclass(frozen=True)
class Edition:
    """The editor's editions/YYYY-MM.md; made by edition.read_edition, used by rank/compose."""

    month: str
    theme: str = ""
    editorial_md: str = ""
    pins: tuple[str, ...] = ()
    drops: tuple[str, ...] = ()
    order: tuple[str, ...] = ()
    blurbs: tuple[tuple[str, str], ...] = ()
    listening: str | None = None
    listening_blurb: str = ""
    path: Path | None = None


@dataclass(frozen=True)
class Thumbnail:
    """A pick's lead image as `mash build` stored it under output/site/ (see #20).

    ``path`` is relative to the site's root ("images/<hash>.jpg"); ``width`` and
    ``height`` are the CSS pixels the email shows it at (the file has twice as many).
    """

    path: str
    width: int
    height: int


@dataclass(frozen=True)
class Pick:
    """One post in the roundup of an issue."""

    url: str
    title: str
    blog: str
    author: str
    published: datetime | None
    blurb: str
    score: float
    image: str = ""
    thumbnail: Thumbnail | None = None
    # "editor": the editor's words, shown plain; "summary" or "quote": the author's, shown
    # quoted. issue.json files from before #20 read as "editor": shown as they were sent.
    blurb_source: str = "editor"


@dataclass(frozen=True)
class Listening:
    """The "Someone Was Listening" post and why it was chosen."""

    url: str
    title: str
    blog: str
    author: str
    published: datetime | None
    blurb: str
    reason: str
    blurb_source: str = "editor"  # as Pick.blurb_source


@dataclass(frozen=True)
class Issue:
    """A whole issue; made by compose, used by render, send and site."""

    newsletter: Newsletter
    month: str  # YYYY-MM
    volume: int
    title: str
    theme: str
    editorial_html: str
    editorial_text: str
    picks: tuple[Pick, ...]
    listening: Listening | None
    sections: tuple[Section, ...]
    web_url: str = ""
    draft: bool = False  # the edition's theme or essay is still mash draft's placeholder


@dataclass(frozen=True)
class RenderedIssue:
    """An issue rendered to its files; made by render, used by send and site."""

    issue: Issue
    email_html: str
    email_text: str
    web_html: str
    eml: bytes


# --- checks (edition.edition_problems makes them; cli shows them) ------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a file the editor writes: where it is, what, and what may fix it."""

    file: str
    line: int | None
    message: str
    hint: str = ""  # e.g. "did you mean 'pins'?"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}" + (f" ({self.hint})" if self.hint else "")


# --- pre-send checks (checks.py makes them; `mash check` and the desk show them, #17) --

PROBLEM, WARNING = "problem", "warning"


@dataclass(frozen=True)
class CheckProblem:
    """One finding of the pre-send checks; made by mash.checks, shown by cli and the desk.

    ``kind`` is a short category ("dead-link", "email-size" ...), ``subject`` what it is
    about (a link or post URL, "file:line", "email.html"), ``fix`` what to do where one
    is known. Only a ``severity`` of "problem" makes ``mash check`` exit 1.
    """

    kind: str
    subject: str
    message: str
    fix: str = ""
    severity: str = PROBLEM  # PROBLEM | WARNING

    def __str__(self) -> str:
        fix = f" (fix: {self.fix})" if self.fix else ""
        return f"{self.severity}: {self.kind}: {self.subject}: {self.message}{fix}"


@dataclass(frozen=True)
class CheckReport:
    """The pre-send checks of a month's issue; made by pipeline.run_checks."""

    month: str
    problems: tuple[CheckProblem, ...]
    links_checked: int = 0
    email_bytes: int = 0  # the HTML part's bytes, as Gmail measures them

    @property
    def ok(self) -> bool:
        """True when nothing would stop the send: warnings allowed."""
        return not any(p.severity == PROBLEM for p in self.problems)

    @property
    def warnings(self) -> tuple[CheckProblem, ...]:
        return tuple(p for p in self.problems if p.severity == WARNING)


# --- bounces (bounces.parse_bounce makes them; `mash bounces import` prints them) -------


@dataclass(frozen=True)
class Bounce:
    """One failed recipient of a bounce, or one complaint; made by bounces, used by the policy.

    ``hard`` says the address itself is permanently bad (unknown user or domain, moved);
    a complaint is never hard: the policy suppresses it for being a complaint (see #16).
    """

    recipient: str  # lower-cased address
    status: str  # DSN status, e.g. "5.1.1"; "" for a complaint
    hard: bool
    reason: str  # the server's diagnostic, or the complaint's type, on one line
    kind: str = "bounce"  # "bounce" | "complaint"
    category: str = ""  # user-unknown, mailbox-full, policy ... (bounces' docstring)
    smtp_code: str = ""  # the server's reply code, e.g. "550", where it gave one
    feedback_type: str = ""  # a complaint's Feedback-Type: abuse, fraud, opt-out ...
    message_id: str = ""  # the Message-ID of the mail that bounced, where quoted
    list_id: str = ""  # ... and its List-Id
    verp: str = ""  # the token after "+" in the return path the bounce came back to
    source: str = ""  # what read it: dsn, arf, or flufl.bounce's detector, or text
