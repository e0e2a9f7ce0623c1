"""The pre-send checks (`mash check`, the desk; see #17): the build's path in memory."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime

from mash.errors import (
    BuildError,
)
from mash.pipeline.build import months_with_posts, rank_month, stored_thumbnail
from mash.records import (
    CheckProblem,
    CheckReport,
    Config,
    Edition,
    Issue,
)
from mash.store import open_store

# --- check (see #17) --------------------------------------------------------------------


def run_checks(config: Config, month: str, *, links: bool = True) -> CheckReport:
    """Run the pre-send checks on the month's issue as `mash build` would make it now.

    The issue is built in memory from the store and the edition, as `mash build` does,
    and nothing is written: not output/, not a thumbnail (those already stored are
    used). So a month never built is checked as it would be built, and a month built
    before the edition changed is checked as it will be rebuilt (a warning says so).
    With ``links``, every link of the email is asked politely (mash.fetch.check_links).
    Prints nothing: `mash check` and the desk show the report.
    """
    from mash import checks
    from mash.edition import draft_reasons, edition_problems
    from mash.render import make_env, render_issue

    issue, edition, text, urls = _issue_in_memory(config, month)
    path = config.editions_dir / f"{month}.md"
    rendered = render_issue(issue, make_env(config.templates_dir), config.smtp, datetime.now(UTC))
    html_bytes, encoded_bytes = _html_part_sizes(rendered.eml)
    found: list[CheckProblem] = []
    if text is not None:
        found += checks.check_edition(edition_problems(text, month, path, urls))
    found += checks.check_draft(issue, draft_reasons(edition), str(path))
    found += checks.check_email_size(html_bytes, encoded_bytes)
    found += checks.check_issue(
        issue,
        rendered.email_html,
        rendered.email_text,
        blurb_chars=config.newsletter.blurb_chars,
        per_blog_cap=config.newsletter.per_blog_cap,
    )
    found += _stale_build(config, issue)
    checked = 0
    if links:
        places = checks.issue_links(issue, rendered.email_html)
        link_found, checked = _check_links(config, places, month)
        found += link_found
    return CheckReport(month, tuple(found), links_checked=checked, email_bytes=html_bytes)


def _issue_in_memory(config: Config, month: str) -> tuple[Issue, Edition, str | None, list[str]]:
    """Compose the month's issue as `mash build` does, writing nothing.

    Return it with the edition as read, the edition file's text (None without one) and
    the month's post URLs. The edition is read as far as it can be: its problems are the checks' to
    report, not a reason to stop.
    """
    from mash.compose import compose_issue
    from mash.edition import edition_text, read_edition

    with open_store(config) as store, store.snapshot():
        ranking = rank_month(config, month, store)
        if not ranking.picks and ranking.listening is None:
            raise BuildError(
                f"no posts to check the issue of {month} with; run `mash fetch` first "
                f"(or check the month: {months_with_posts(store)})"
            )
        volume = store.volume_for(month, config.newsletter.volume_start)
    edition = read_edition(config.editions_dir, month, strict=False)
    issue, _ = compose_issue(ranking, edition, config.newsletter, volume)
    site = config.output_dir / "site"
    if config.newsletter.site_url.startswith(("http://", "https://")):
        picks = tuple(
            replace(p, thumbnail=stored_thumbnail(site, p.image) if p.image else None)
            for p in issue.picks
        )
        issue = replace(issue, picks=picks)
    text = edition_text(config.editions_dir / f"{month}.md")
    return issue, edition, text, [c.post.url for c in ranking.candidates]


def _html_part_sizes(eml: bytes) -> tuple[int, int]:
    """Return the HTML part's bytes decoded and as sent, from a message mash.mail built."""
    from email import message_from_bytes, policy

    message = message_from_bytes(eml, policy=policy.default)
    for part in message.walk():
        if part.get_content_type() == "text/html":
            decoded = part.get_payload(decode=True)
            encoded = part.get_payload()
            assert isinstance(decoded, bytes) and isinstance(encoded, str)
            return len(decoded), len(encoded.encode("ascii", "replace"))
    return 0, 0


def _stale_build(config: Config, issue: Issue) -> list[CheckProblem]:
    """Warn when output/YYYY-MM/issue.json is not the issue checked: `mash send` sends
    the built one."""
    from mash.site import issue_to_json

    path = config.output_dir / issue.month / "issue.json"
    try:
        built = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        message = "not built yet: the checks ran on the issue as `mash build` would make it"
    except ValueError:
        message = "it cannot be read: the checks ran on the issue as `mash build` makes it"
    else:
        if built == json.loads(json.dumps(issue_to_json(issue))):
            return []
        message = "the built issue differs from the store and edition now: it is out of date"
    fix = f"run `mash build --month {issue.month}` before `mash send`"
    try:  # as the editor knows it: output/YYYY-MM/issue.json beside feeds.yaml
        shown = str(path.resolve().relative_to(config.path.parent.resolve()))
    except ValueError:
        shown = str(path)
    return [CheckProblem("stale-build", shown, message, fix, "warning")]


def _check_links(
    config: Config, places: dict[str, str], month: str
) -> tuple[list[CheckProblem], int]:
    """Ask every link; a placeholder (example.org) fails without a request."""
    from mash import checks
    from mash.fetch import check_links

    found: list[CheckProblem] = []
    asked = []
    for url, place in places.items():
        placeholder = checks.check_placeholder(url, place, month)
        if placeholder is not None:
            found.append(placeholder)
        else:
            asked.append(url)
    results = asyncio.run(check_links(asked, config.fetch)) if asked else []
    return found + checks.link_problems(results, places, month), len(places)
