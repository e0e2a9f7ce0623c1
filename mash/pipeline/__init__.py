"""Wire the stages; the only package that calls them. One module per flow: fetch,
feeds (the list's health), build (and the site, drafts), check, curate (`mash posts`,
the desk), mailing (the subscriber flows of `mash server` and `mash bounces import`).

fetch:  config -> store.feed_states -> fetch.fetch_feeds -> parse.parse_feed
        -> extract (feeds with full text) -> store.save_feed (one transaction per feed)
        -> fetch.fetch_pages (truncated feeds) -> extract.extract_many -> store.save_article
build:  store.posts_between -> rank.rank_posts (+ edition) -> compose.compose_issue
        -> render.render_issue -> output/YYYY-MM/ (atomic writes) -> store.save_issue
site:   output/*/issue.json -> site.build_site -> output/site/
check:  the build's path in memory (nothing written) -> checks.check_issue
        + fetch.check_links -> CheckReport (`mash check`, the desk; see #17)
curate: the build's ranking + the edition file -> the desk's view; a change -> the file
mailing: a form's request -> store.request_signup -> a confirmation mail; a confirmation
        -> store (subscribed) -> a welcome mail; bounces -> the policy -> store (#16)

Reads everything, then writes: an issue is fully built before any file is written.
"""

from __future__ import annotations

from mash.dates import last_complete_month, month_bounds
from mash.pipeline.build import (
    BuildResult,
    ViewsReport,
    build_month,
    build_site_from_output,
    built_issue,
    built_issues,
    draft_issue,
    import_views,
    issue_to_send,
    rank_month,
    write_draft,
)
from mash.pipeline.check import run_checks
from mash.pipeline.curate import (
    DeskView,
    Edited,
    EditionFile,
    change_edition,
    desk_view,
    explain,
    read_edition_file,
    send_proof,
)
from mash.pipeline.feeds import add_feeds, feeds_health, find_feed
from mash.pipeline.fetch import FetchSummary, Progress, run_fetch

__all__ = [
    "BuildResult",
    "DeskView",
    "Edited",
    "EditionFile",
    "FetchSummary",
    "Progress",
    "ViewsReport",
    "add_feeds",
    "build_month",
    "build_site_from_output",
    "built_issue",
    "built_issues",
    "change_edition",
    "desk_view",
    "draft_issue",
    "explain",
    "feeds_health",
    "find_feed",
    "import_views",
    "issue_to_send",
    "last_complete_month",
    "month_bounds",
    "rank_month",
    "read_edition_file",
    "run_checks",
    "run_fetch",
    "send_proof",
    "write_draft",
]
