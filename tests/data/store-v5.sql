-- A store and send ledger as mash wrote them before #15 (store version 5 in
-- PRAGMA user_version, ledger version 1 in ledger_meta), dumped by sqlite3's iterdump.
PRAGMA user_version = 5;
BEGIN TRANSACTION;
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
    last_attempt TEXT,
    last_success TEXT,
    next_attempt TEXT,               -- backoff after repeated failures (see #3)
    retired INTEGER NOT NULL DEFAULT 0,  -- 410 Gone: kept, no longer fetched
    moved_to TEXT,                   -- a 301/308 target the editor should copy to feeds.yaml
    discovered_url TEXT              -- the feed a web page answer links to (autodiscovery)
);
INSERT INTO "feeds" VALUES('https://blog.example/feed','https://blog.example/feed','A Blog','https://blog.example/','"e1"',NULL,200,NULL,NULL,0,'2026-10-05T08:30:00+00:00','2026-10-05T08:30:00+00:00',NULL,0,NULL,NULL);
INSERT INTO "feeds" VALUES('https://gone.example/rss','https://gone.example/rss','','',NULL,NULL,410,'HTTP 410','http-410',1,'2026-10-05T08:30:00+00:00',NULL,NULL,1,NULL,NULL);
CREATE TABLE issues (
    month TEXT PRIMARY KEY,          -- YYYY-MM
    volume INTEGER NOT NULL UNIQUE,
    title TEXT NOT NULL DEFAULT '',
    built_at TEXT NOT NULL,
    picks TEXT NOT NULL DEFAULT '[]'  -- JSON list of featured post URLs (never featured twice)
);
INSERT INTO "issues" VALUES('2026-09',7,'Monthly Mash and the First Answer','2026-10-05T08:30:00+00:00','["https://blog.example/2026/09/x/"]');
CREATE TABLE ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO "ledger_meta" VALUES('version','1');
CREATE TABLE opt_outs (
    email TEXT PRIMARY KEY,         -- address_key()
    list_id TEXT NOT NULL,
    source TEXT NOT NULL,           -- one-click | confirm-page | manual
    created TEXT NOT NULL
);
INSERT INTO "opt_outs" VALUES('cy@example.org','Monthly Mash <mm.example.org>','one-click','2026-12-06T11:59:25+00:00');
CREATE TABLE page_views (
    url_key TEXT NOT NULL,
    month TEXT NOT NULL,
    views INTEGER NOT NULL,
    source TEXT NOT NULL,            -- Plausible, GA4, Matomo
    PRIMARY KEY (url_key, month)
);
INSERT INTO "page_views" VALUES('blog.example/2026/10/first','2026-10',120,'Plausible');
CREATE TABLE posts (
    id INTEGER PRIMARY KEY,
    feed_url TEXT NOT NULL REFERENCES feeds(url),
    guid TEXT NOT NULL,
    url TEXT NOT NULL,               -- canonical: tracking parameters removed
    url_key TEXT NOT NULL,           -- url without scheme, www. and trailing slash
    title TEXT NOT NULL,
    author TEXT NOT NULL DEFAULT '',
    published TEXT,                  -- feed's published date, ISO 8601 UTC
    first_published TEXT,            -- the feed's date when first seen (re-dating, see #5)
    updated TEXT,                    -- feed's updated date
    page_published TEXT,             -- the date shown on the article page
    first_seen TEXT NOT NULL,
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
    page_attempts INTEGER NOT NULL DEFAULT 0, excerpt TEXT NOT NULL DEFAULT '', page_description TEXT NOT NULL DEFAULT '',
    UNIQUE (feed_url, guid),
    UNIQUE (feed_url, url_key)
);
INSERT INTO "posts" VALUES(1,'https://blog.example/feed','g1','https://blog.example/2026/10/first/','blog.example/2026/10/first','First post','','2026-10-05T08:30:00+00:00','2026-10-05T08:30:00+00:00',NULL,NULL,'2026-10-05T08:30:00+00:00','','<p>Full text of the first post.</p>','','','pending','',NULL,NULL,'','','',0,'["support"]',0,'The first.','');
INSERT INTO "posts" VALUES(2,'https://blog.example/feed','g2','https://blog.example/2026/10/second/','blog.example/2026/10/second','Second post','',NULL,NULL,NULL,'2026-10-07T00:00:00+00:00','2026-10-05T08:30:00+00:00','<p>Teaser…</p>','','<p>The whole second post.</p>','The whole second post.','page','page longer',NULL,NULL,'','','',0,'[]',1,'','About the second.');
CREATE TABLE send_ledger (
    month TEXT NOT NULL,            -- the issue, YYYY-MM
    email TEXT NOT NULL,            -- address_key(): trimmed, lower-cased
    state TEXT NOT NULL CHECK (state IN ('sending', 'sent', 'deferred', 'failed')),
    message_id TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,  -- transactions started for this recipient
    error TEXT NOT NULL DEFAULT '',       -- last SMTP reply or exception, for the report
    updated TEXT NOT NULL,                -- UTC ISO 8601
    PRIMARY KEY (month, email)
);
INSERT INTO "send_ledger" VALUES('2026-09','ann@example.org','sent','<m1@example.org>',1,'','2026-12-06T11:59:25+00:00');
INSERT INTO "send_ledger" VALUES('2026-09','bob@example.org','sending','<m2@example.org>',1,'','2026-12-06T11:59:25+00:00');
CREATE INDEX posts_pending ON posts(source) WHERE source = 'pending';
CREATE INDEX feeds_fetch_url ON feeds(fetch_url);
COMMIT;
