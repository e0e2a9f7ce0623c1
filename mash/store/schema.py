"""The store's schema: one numbered list of migrations for both engines.

Migration N brings a store from version N-1 to N, in one transaction with its version
(``Engine.migrate``). The DDL is written once; the words that differ between the
engines are ``{names}`` each engine fills (``Engine.types``): ``{id}`` an integer key
(SQLite's rowid, PostgreSQL's identity), ``{timestamp}`` (ISO text, ``timestamptz``),
``{bool}``/``{false}``, and ``{deferrable}`` foreign keys. A new table is a new
migration at the end of the list, never an edit of an old one: files made by every
earlier mash open through the same list.
"""

from __future__ import annotations

from mash.store._base import Engine, Migration
from mash.urls import redact_url

TABLES = """
CREATE TABLE feeds (
    url TEXT PRIMARY KEY,            -- as in feeds.yaml, any password masked (see #21)
    fetch_url TEXT,                  -- where it now lives after a permanent redirect
    title TEXT NOT NULL DEFAULT '',  -- the feed's own title
    link TEXT NOT NULL DEFAULT '',   -- the blog's home page
    etag TEXT,
    last_modified TEXT,
    last_status INTEGER,
    last_error TEXT,
    last_error_kind TEXT,            -- timeout, http-404, not-a-feed, ...
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    last_attempt {timestamp},
    last_success {timestamp},
    next_attempt {timestamp},        -- backoff after repeated failures (see #3)
    retired {bool} NOT NULL DEFAULT {false},  -- 410 Gone: kept, no longer fetched
    moved_to TEXT,                   -- a 301/308 target the editor should copy to feeds.yaml
    discovered_url TEXT              -- the feed a web page answer links to (autodiscovery)
);
CREATE TABLE posts (
    id {id},
    feed_url TEXT NOT NULL REFERENCES feeds(url) {deferrable},
    guid TEXT NOT NULL,
    url TEXT NOT NULL,               -- canonical: tracking parameters removed
    url_key TEXT NOT NULL,           -- url without scheme, www. and trailing slash
    title TEXT NOT NULL,
    author TEXT NOT NULL DEFAULT '',
    published {timestamp},           -- feed's published date, UTC
    first_published {timestamp},     -- the feed's date when first seen (re-dating, see #5)
    updated {timestamp},             -- feed's updated date
    page_published {timestamp},      -- the date shown on the article page
    first_seen {timestamp} NOT NULL,
    summary_html TEXT NOT NULL DEFAULT '',
    content_html TEXT NOT NULL DEFAULT '',  -- the feed's full content, sanitised
    html TEXT NOT NULL DEFAULT '',   -- the chosen article, sanitised ('': the feed's HTML)
    text TEXT NOT NULL DEFAULT '',   -- plain text of html, for ranking and blurbs
    source TEXT NOT NULL DEFAULT 'pending',  -- feed | page | pending | failed
    source_reason TEXT NOT NULL DEFAULT '',
    comments INTEGER,                -- from the feed (slash:comments, thr:total)
    page_comments INTEGER,           -- shown on the page ("4 replies")
    image TEXT NOT NULL DEFAULT '',
    canonical TEXT NOT NULL DEFAULT '',  -- rel=canonical of the page
    language TEXT NOT NULL DEFAULT '',
    word_count INTEGER NOT NULL DEFAULT 0,
    categories TEXT NOT NULL DEFAULT '[]',  -- JSON list
    page_attempts INTEGER NOT NULL DEFAULT 0,
    UNIQUE (feed_url, guid),
    UNIQUE (feed_url, url_key)
);
CREATE INDEX posts_published ON posts(published);
CREATE INDEX posts_pending ON posts(source) WHERE source = 'pending';
CREATE TABLE issues (
    month TEXT PRIMARY KEY,          -- YYYY-MM
    volume INTEGER NOT NULL UNIQUE,
    title TEXT NOT NULL DEFAULT '',
    built_at {timestamp} NOT NULL,
    picks TEXT NOT NULL DEFAULT '[]'  -- JSON list of featured post URLs (never featured twice)
);
CREATE TABLE page_views (
    url_key TEXT NOT NULL,
    month TEXT NOT NULL,
    views INTEGER NOT NULL,
    source TEXT NOT NULL,            -- Plausible, GA4, Matomo
    PRIMARY KEY (url_key, month)
)
"""

# Until #15 the send ledger and opt-outs were made by mash/ledger.py, versioned apart in
# ledger_meta: IF NOT EXISTS keeps the tables of a store that already has them.
SEND_TABLES = """
CREATE TABLE IF NOT EXISTS send_ledger (
    month TEXT NOT NULL,            -- the issue, YYYY-MM
    email TEXT NOT NULL,            -- address_key(): trimmed, lower-cased
    state TEXT NOT NULL CHECK (state IN ('sending', 'sent', 'deferred', 'failed')),
    message_id TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,  -- transactions started for this recipient
    error TEXT NOT NULL DEFAULT '',       -- last SMTP reply or exception, for the report
    updated {timestamp} NOT NULL,
    PRIMARY KEY (month, email)
);
CREATE TABLE IF NOT EXISTS opt_outs (
    email TEXT PRIMARY KEY,         -- address_key()
    list_id TEXT NOT NULL,
    source TEXT NOT NULL,           -- one-click | confirm-page | manual
    created {timestamp} NOT NULL
)
"""


def run_script(db: Engine, script: str) -> None:
    """Run DDL statements one by one, with the engine's words filled in."""
    for statement in script.format_map(db.types).split(";"):
        if statement.strip():
            db.execute(statement)


def _migrate_1(db: Engine) -> None:
    run_script(db, TABLES)


def _migrate_2(db: Engine) -> None:
    # feed_key looks a feed up by where it is fetched, once per feed per run: without an
    # index that is a scan of every feed each time (see #8)
    db.execute("CREATE INDEX feeds_fetch_url ON feeds(fetch_url)")


def _migrate_3(db: Engine) -> None:
    # no query used posts_published: the month's posts are chosen by
    # COALESCE(published, page_published, first_seen), which an index on published
    # cannot serve (EXPLAIN QUERY PLAN: SCAN). Each new post still updated it, at a
    # random place: a fifth of the store's CPU in a first run of 1000 feeds (#8).
    db.execute("DROP INDEX IF EXISTS posts_published")


_URL_COLUMNS = ("url", "fetch_url", "link", "last_error", "moved_to", "discovered_url")


def _migrate_4(db: Engine) -> None:
    # A password in a feed's URL was stored in clear in every column that quotes the URL
    # (see #21). Mask it in place; on SQLite the old bytes are zeroed, not left in free
    # pages. posts.feed_url follows feeds.url, so the key check waits for the commit.
    if db.kind == "sqlite":
        db.execute("PRAGMA secure_delete = ON")
        db.execute("PRAGMA defer_foreign_keys = ON")
    else:
        db.execute("SET CONSTRAINTS ALL DEFERRED")
    columns = ", ".join(_URL_COLUMNS)
    where = " OR ".join(f"{c} LIKE '%@%'" for c in _URL_COLUMNS)
    assign = ", ".join(f"{c} = ?" for c in _URL_COLUMNS)
    for row in db.query(f"SELECT {columns} FROM feeds WHERE {where}"):
        masked = [row[c] and redact_url(row[c]) for c in _URL_COLUMNS]
        db.execute(f"UPDATE feeds SET {assign} WHERE url = ?", (*masked, row["url"]))
    for row in db.query("SELECT DISTINCT feed_url FROM posts WHERE feed_url LIKE '%@%'"):
        old = row["feed_url"]
        db.execute("UPDATE posts SET feed_url = ? WHERE feed_url = ?", (redact_url(old), old))


def _migrate_5(db: Engine) -> None:
    # the author's own summary, for blurbs (#20): a hand-written excerpt the feed gives
    # beside the full content, and the page's description (both plain text)
    db.execute("ALTER TABLE posts ADD COLUMN excerpt TEXT NOT NULL DEFAULT ''")
    db.execute("ALTER TABLE posts ADD COLUMN page_description TEXT NOT NULL DEFAULT ''")


def _migrate_6(db: Engine) -> None:
    # the send ledger and opt-outs join the store's one migration list (see #15)
    run_script(db, SEND_TABLES)


# The subscriber list, its history, the bounce mails already read and the soft bounces
# per issue (see #15, #16).
SUBSCRIBER_TABLES = """
CREATE TABLE subscribers (
    address_key TEXT PRIMARY KEY,    -- address_key(): trimmed, lower-cased
    email TEXT NOT NULL,             -- as given (validated)
    name TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL CHECK (status IN
        ('pending', 'subscribed', 'unsubscribed', 'bounced', 'complained')),
    status_reason TEXT NOT NULL DEFAULT '',  -- "one-click unsubscribe", "hard bounce 5.1.1 ..."
    consent_source TEXT NOT NULL DEFAULT '' CHECK (consent_source IN
        ('', 'form', 'import', 'cli')),
    consented_at {timestamp},
    confirmed_at {timestamp},        -- double opt-in confirmed
    created {timestamp} NOT NULL,
    updated {timestamp} NOT NULL
);
CREATE INDEX subscribers_status ON subscribers(status);
CREATE TABLE subscriber_history (
    id {id},
    address_key TEXT NOT NULL,       -- no foreign key: --purge deletes both
    changed {timestamp} NOT NULL,
    old_status TEXT,                 -- NULL: the address was new
    new_status TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX subscriber_history_address ON subscriber_history(address_key);
CREATE TABLE subscriber_imports (
    id {id},
    source TEXT NOT NULL,            -- the CSV imported
    kind TEXT NOT NULL,              -- first-use (paths.subscribers, once) | import
    imported {timestamp} NOT NULL,
    added INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL DEFAULT 0,
    unchanged INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX subscriber_imports_first_use ON subscriber_imports(kind)
    WHERE kind = 'first-use';
CREATE TABLE mails_read (
    message_key TEXT PRIMARY KEY,    -- Message-ID, or sha256:HEX of a mail without one
    read_at {timestamp} NOT NULL
);
CREATE TABLE soft_bounces (
    address_key TEXT NOT NULL,
    month TEXT NOT NULL,             -- the issue that came back, YYYY-MM
    reason TEXT NOT NULL DEFAULT '',
    received {timestamp} NOT NULL,
    PRIMARY KEY (address_key, month)
)
"""

FETCH_RUN_TABLES = """
CREATE TABLE IF NOT EXISTS fetch_runs (
    id {id},                         -- grows only: a round is the runs from one id on
    who TEXT NOT NULL DEFAULT '',    -- pid N on host, for messages
    started DOUBLE PRECISION NOT NULL,    -- seconds since the epoch, the store's clock
    heartbeat DOUBLE PRECISION NOT NULL,  -- alive while this is recent (leases.LEASE_SECONDS)
    ended DOUBLE PRECISION
);
CREATE TABLE IF NOT EXISTS leases (
    kind TEXT NOT NULL,              -- feed | page
    item TEXT NOT NULL,              -- feeds.url, or the post's id
    run_id BIGINT NOT NULL,          -- the fetch run that claimed it last (0: none)
    done {bool} NOT NULL,
    PRIMARY KEY (kind, item)
)
"""


def _migrate_7(db: Engine) -> None:
    # the subscriber list moves from data/subscribers.csv into the store; the CSV is
    # imported once by Store.adopt_subscribers_csv, which needs the config (see #15)
    run_script(db, SUBSCRIBER_TABLES)


def _migrate_8(db: Engine) -> None:
    # several fetch runs share the feeds and pages through leases (see #15); IF NOT
    # EXISTS, as SEND_TABLES: a store whose version was set back keeps its tables
    run_script(db, FETCH_RUN_TABLES)


def _migrate_9(db: Engine) -> None:
    # the send run that claimed each recipient: a claim of a live run is left to it, one
    # of a dead run is "in doubt"; two sends share one PostgreSQL ledger (see #15)
    db.execute("ALTER TABLE send_ledger ADD COLUMN claimed_by INTEGER NOT NULL DEFAULT 0")


# Double opt-in's open requests (see #16); IF NOT EXISTS as FETCH_RUN_TABLES.
SIGNUP_TABLES = """
CREATE TABLE IF NOT EXISTS signups (
    address_key TEXT PRIMARY KEY,    -- address_key(), deleted once confirmed
    name TEXT NOT NULL DEFAULT '',
    requested {timestamp} NOT NULL,  -- first request: links made before it are refused
    mailed {timestamp},              -- the last confirmation mail (one per 10 minutes)
    requests INTEGER NOT NULL DEFAULT 0,
    origin TEXT NOT NULL DEFAULT ''  -- the page and client address of the request
)
"""


def _migrate_10(db: Engine) -> None:
    run_script(db, SIGNUP_TABLES)


MIGRATIONS: tuple[Migration, ...] = (
    _migrate_1,
    _migrate_2,
    _migrate_3,
    _migrate_4,
    _migrate_5,
    _migrate_6,
    _migrate_7,
    _migrate_8,
    _migrate_9,
    _migrate_10,
)
