"""The `mash` command: arguments, progress, summaries and exit codes.

Exit status: 0 done; 1 the work could not be done (an issue not built, no feed
fetched); 2 bad config or arguments. Only this module turns errors into text.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from mash import __version__, pipeline
from mash.config import load_config
from mash.errors import ConfigError, MashError
from mash.records import Config
from mash.urls import redact_url

if TYPE_CHECKING:
    from mash.records import Bounce
    from mash.store import Store
    from mash.subscribers import ImportReport
    from mash.web._wsgi import Server

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
Handler = Callable[[argparse.Namespace, Config], int]


def _month(value: str) -> str:
    if not _MONTH.match(value):
        raise argparse.ArgumentTypeError(f"month must be YYYY-MM, not {value!r}")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _count(n: int, one: str, many: str = "") -> str:
    """'1 row', '2 rows': a count with its noun."""
    return f"{n} {one if n == 1 else many or one + 's'}"


def _err(text: str) -> None:
    # every line on stderr (progress, summaries, errors) hides URL passwords (see #21)
    print(redact_url(text), file=sys.stderr, flush=True)


# --- commands ---------------------------------------------------------------------------


def cmd_fetch(args: argparse.Namespace, config: Config) -> int:
    if not config.feeds:  # as `mash init` leaves it
        raise ConfigError(
            "no feeds to fetch yet; add a blog with `mash feeds add URL`", str(config.path)
        )
    summary = pipeline.FetchSummary()
    progress = None if args.quiet else _err
    try:
        summary = pipeline.run_fetch(config, progress=progress, feeds_only=args.feeds_only)
    finally:
        _print_fetch_summary(summary)
    if summary.feeds and summary.fetched + summary.not_modified == 0:
        _err("no feed could be fetched: check the network and `mash feeds check`")
        return 1
    return 0


def _print_fetch_summary(s: pipeline.FetchSummary) -> None:
    for url, new in s.moved:
        _err(f"moved permanently: {url} -> {new} (update url: in feeds.yaml)")
    for url, problem in s.warnings:
        _err(f"warning: {url}: {problem} (some entries kept)")
    for url, kind, reason in s.failed:
        _err(f"failed: {url}: {kind}: {reason}")
    for _, reason in s.refused_pages:
        _err(f"page {reason}")
    if s.page_failures:
        _err(f"{len(s.page_failures)} article pages could not be fetched; the feed text is used")
    _err(
        f"fetched {s.fetched}, not modified {s.not_modified}, failed {len(s.failed)} "
        f"of {s.feeds} feeds; {s.new_posts} new posts; {s.pages} pages extracted; "
        f"{s.seconds:.1f} s"
    )


def cmd_build(args: argparse.Namespace, config: Config) -> int:
    month = args.month or pipeline.last_complete_month(datetime.now(UTC))
    result = pipeline.build_month(config, month)
    for warning in result.warnings:
        _err(f"warning: {warning}")
    size = len(result.files[0].read_bytes())
    from mash.mail import email_size_warning

    size_warning = email_size_warning(result.files[0].read_text(encoding="utf-8"))
    if size_warning:
        _err(f"warning: {size_warning}")
    issue = result.issue
    _err(
        f"built {issue.title} (volume {issue.volume}, {month}): {len(issue.picks)} picks, "
        f"email {size / 1024:.1f} KB"
    )
    for path in result.files:
        print(path)
    return 0


def cmd_posts(args: argparse.Namespace, config: Config) -> int:
    month = args.month or pipeline.last_complete_month(datetime.now(UTC))
    ranking = pipeline.explain(config, month)
    if args.json:
        rows = [
            {
                "url": c.post.url,
                "title": c.post.title,
                "blog": c.post.blog,
                "status": c.status,
                "score": c.score,
                "parts": dict(c.parts),
                "reason": c.reason,
                "duplicate_of": c.duplicate_of,
                "blurb": c.blurb,
                "blurb_source": c.blurb_source,
            }
            for c in ranking.candidates
        ]
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    print(f"{len(ranking.candidates)} posts in {month}; {len(ranking.picks)} picked")
    for c in ranking.candidates:
        parts = " ".join(f"{k}={v:g}" for k, v in c.parts)
        print(f"{c.status:9} {c.score:6.3f}  {c.post.title[:70]}  [{c.post.blog}]")
        print(f"          {parts}")
        print(f"          {c.reason}  {c.post.url}")
        if c.blurb:  # the issue's blurb: the editor's, the author's summary, or a quote
            print(f"          blurb ({c.blurb_source}): {c.blurb}")
    return 0


def cmd_draft(args: argparse.Namespace, config: Config) -> int:
    month = args.month or pipeline.last_complete_month(datetime.now(UTC))
    path, problems = pipeline.write_draft(config, month)
    for problem in problems:
        _err(f"warning: {problem}")
    _err(f"wrote the draft of {month}; edit it, then run `mash build --month {month}`")
    print(path)
    return 0


def cmd_check(args: argparse.Namespace, config: Config) -> int:
    month = args.month or pipeline.last_complete_month(datetime.now(UTC))
    report = pipeline.run_checks(config, month, links=not args.no_links)
    for problem in report.problems:  # one line each: problems first, then warnings
        if problem.severity != "warning":
            print(problem)
    for problem in report.warnings:
        print(problem)
    problems, warnings = len(report.problems) - len(report.warnings), len(report.warnings)
    links = f"{report.links_checked} links checked" if not args.no_links else "links not checked"
    _err(
        f"checked {month}: {problems} problem{'s' * (problems != 1)}, "
        f"{warnings} warning{'s' * (warnings != 1)}; "
        f"email {report.email_bytes / 1024:.1f} KB; {links}"
    )
    return 0 if report.ok else 1


def cmd_site(args: argparse.Namespace, config: Config) -> int:
    report = pipeline.build_site_from_output(config, Path(args.out) if args.out else None)
    for month in report.held_back:
        _err(f"warning: {month} was built from a draft edition and is not on the site")
    _err(f"wrote the site: {len(report.pages)} pages")
    print(report.out_dir if hasattr(report, "out_dir") else config.output_dir / "site")
    return 0


def cmd_serve(args: argparse.Namespace, config: Config) -> int:
    import tempfile

    from mash.site import serve_site

    month = args.month or pipeline.last_complete_month(datetime.now(UTC))
    draft = None
    try:
        draft = pipeline.draft_issue(config, month)
    except MashError as e:
        _err(f"no draft of {month} in the preview: {e}")
    out = Path(tempfile.mkdtemp(prefix="mash-preview-"))
    pipeline.build_site_from_output(config, out, draft=draft)
    _err(f"previewing on http://127.0.0.1:{args.port}/ (Ctrl-C to stop)")
    serve_site(out, port=args.port)
    return 0


def cmd_desk(args: argparse.Namespace, config: Config) -> int:
    from mash.web.desk import serve_desk

    month = args.month or pipeline.last_complete_month(datetime.now(UTC))

    def ready(server: Server, url: str) -> None:
        _err(f"the desk of {month} is at {url} (only this machine can reach it; Ctrl-C to stop)")

    serve_desk(config, month, port=args.port, ready=ready)
    return 0


def cmd_analytics_import(args: argparse.Namespace, config: Config) -> int:
    month = args.month or pipeline.last_complete_month(datetime.now(UTC))
    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise ConfigError(f"cannot read the analytics export: {e.strerror}", str(path)) from None
    report = pipeline.import_views(config, text, str(path), month)
    for line in report.skipped:
        _err(f"skipped {line}")
    for page in report.unmatched[:20]:
        _err(f"no post matches {page}")
    _err(
        f"{report.source} export: {report.matched} pages matched to posts for {month}, "
        f"{len(report.unmatched)} not matched, {_count(len(report.skipped), 'row')} skipped"
    )
    return 0


def cmd_send(args: argparse.Namespace, config: Config) -> int:
    from mash import send

    month = args.month or pipeline.last_complete_month(datetime.now(UTC))
    # a proof of a draft is how the editor reads it; a real send (or its dry run) is not
    issue = pipeline.issue_to_send(config, month, allow_draft=args.force or bool(args.proof))
    if issue.draft:
        _err(f"warning: the issue of {month} is a draft (its theme or essay is unwritten)")
    html, text = send.load_email(config.output_dir, month)
    report = send.send_issue(
        config,
        issue,
        html,
        text,
        dry_run=args.dry_run,
        proof=args.proof,
        resend_in_doubt=args.resend_in_doubt,
        progress=None if args.quiet else _err,
    )
    for line in report.lines():
        print(line)
    return 1 if report.needs_attention else 0


def cmd_subscribers(args: argparse.Namespace, config: Config) -> int:
    from mash.store import open_store

    with open_store(config) as store:
        adopted = store.adopt_subscribers_csv(config.subscribers_path)
        if adopted is not None:
            _say_import(adopted, str(config.subscribers_path))
            _err(
                f"the list now lives in the store {store.name}: {config.subscribers_path} "
                "was imported once and is left as it was; mash no longer reads it (use "
                "`mash subscribers import` and `export` to exchange CSV files)"
            )
        handler = {
            "import": _subscribers_import,
            "export": _subscribers_export,
            "add": _subscribers_add,
            "remove": _subscribers_remove,
        }.get(args.action, _subscribers_list)
        return handler(args, store)


def _say_import(report: ImportReport, source: str) -> None:
    for problem in report.problems:
        _err(f"skipped {problem}")
    _err(
        f"{report.added} added, {report.updated} updated, {report.unchanged} "
        f"unchanged, {_count(len(report.problems), 'row')} skipped: {source}"
    )


def _subscribers_import(args: argparse.Namespace, store: Store) -> int:
    from mash.subscribers.csv import load_subscribers

    listed = load_subscribers(Path(args.file))
    report = store.import_subscribers(listed.subscribers, args.file, skipped=len(listed.problems))
    _say_import(replace(report, problems=listed.problems), f"{args.file} -> {store.name}")
    return 0


def _subscribers_export(args: argparse.Namespace, store: Store) -> int:
    from mash.subscribers.csv import format_subscribers, save_subscribers

    listed = store.subscribers()
    if args.file in (None, "-"):
        sys.stdout.write(format_subscribers(listed))
    else:
        save_subscribers(Path(args.file), listed)
        _err(f"exported {len(listed)} addresses to {args.file}")
    return 0


def _subscribers_add(args: argparse.Namespace, store: Store) -> int:
    from mash.subscribers import CLI, Subscriber, clean_name, validate_email

    try:
        new = Subscriber(validate_email(args.email), clean_name(args.name or ""))
    except ValueError as e:
        raise ConfigError(f"cannot add {args.email!r}: {e}") from None
    reason = "added by the editor (mash subscribers add)"
    added = store.subscribe(replace(new, consent_source=CLI), reason)
    _err(f"subscribed {added.email}")
    return 0


def _subscribers_remove(args: argparse.Namespace, store: Store) -> int:
    from mash.subscribers import UNSUBSCRIBED

    if args.purge:
        found = store.delete_subscriber(args.email)
    else:
        reason = "removed by the editor (mash subscribers remove)"
        found = store.set_status(args.email, UNSUBSCRIBED, reason) is not None
    if not found:
        _err(f"{args.email} is not on the list")
        return 1
    _err(f"{'deleted' if args.purge else 'unsubscribed'} {args.email}")
    return 0


def _subscribers_list(args: argparse.Namespace, store: Store) -> int:
    from mash.subscribers import SUBSCRIBED
    from mash.subscribers.csv import spreadsheet_safe as safe

    listed = store.subscribers()
    for sub in listed:  # pasted into a spreadsheet: no formulas (see #21)
        print(f"{safe(sub.email)}\t{safe(sub.name)}\t{sub.status}\t{safe(sub.status_reason)}")
    subscribed = sum(s.status == SUBSCRIBED for s in listed)
    _err(f"{subscribed} subscribed of {len(listed)}")
    return 0


def cmd_bounces_import(args: argparse.Namespace, config: Config) -> int:
    from mash import mailbox
    from mash.pipeline import mailing

    if args.imap:
        mails = mailbox.read_imap(config.bounces, str(config.path))
    elif args.mbox:
        mails = mailbox.read_mbox(Path(args.mbox))
    else:
        mails = mailbox.read_maildir(Path(args.maildir))
    from mash.store import open_store

    # the secret reads VERP return paths back (smtp.verp); without it they are not used
    secret = os.environ.get(config.smtp.secret_env, "")
    changed: list[str] = []
    with open_store(config) as store:  # the mails read and the list are in the store (#15)

        def apply(record: Bounce) -> None:
            for change in mailing.apply_bounces(
                store, [record], source="mailbox", config=config, secret=secret
            ):
                changed.append(f"{change.email} is now {change.status}: {change.reason}")

        report = mailbox.import_bounces(mails, store.seen_mails(), apply)
    for r in report.records:
        verdict = r.kind if r.kind == "complaint" else ("hard" if r.hard else "soft")
        print(f"{r.recipient}\t{r.status or '-'}\t{verdict}\t{r.reason}")
    for line in changed:
        _err(line)
    hard = sum(r.hard for r in report.records)
    _err(
        f"{_count(report.messages, 'mail')}: {_count(report.bounces, 'bounce')} ({hard} hard, "
        f"{sum(r.kind == 'bounce' for r in report.records) - hard} soft), "
        f"{_count(report.complaints, 'complaint')}, {report.not_bounces} not bounces "
        f"(left alone), {report.already} read before; "
        f"{_count(len(changed), 'address', 'addresses')} suppressed"
    )
    return 0


def cmd_feeds(args: argparse.Namespace, config: Config) -> int:
    from mash import health, opml
    from mash.records import FeedSpec

    if args.action == "check":
        rows = pipeline.feeds_health(config)
        print(health.health_json(rows) if args.json else health.render_health_table(rows))
        return 1 if any(r.status in ("failing", "retired") for r in rows) else 0
    if args.action == "export":
        print(opml.write_opml(config.feeds, config.newsletter.name), end="")
        masked = sum(1 for f in config.feeds if redact_url(f.url) != f.url)
        if masked:
            _err(
                f"warning: {masked} feed URLs carry a password, exported as ***; "
                f"put it back by hand where you import this file"
            )
        return 0
    failed = 0
    if args.action == "import":
        specs = opml.read_opml(Path(args.file))
    else:
        if len(args.url) > 1 and (args.name or args.house):
            raise ConfigError("--name and --house are for one blog: add it on its own")
        specs = []
        for given in args.url:
            try:
                url, feed = pipeline.find_feed(given, config.fetch)
            except MashError as e:  # one bad URL does not lose the others (see #20)
                failed += 1
                if args.debug:
                    _err(traceback.format_exc().rstrip())  # masked too (see #21)
                _err(f"not added: {e}")
                continue
            if url != given:
                _err(f"{given} is a web page; its feed is {url}")
            name = args.name or feed.title or None
            specs.append(FeedSpec(url=url, name=name, weight=args.weight, house=args.house))
            _err(f"{feed.title or url}: {len(feed.posts)} posts in the feed now")
    added, skipped = pipeline.add_feeds(config, specs)
    for url in skipped:
        _err(f"already in {config.path.name}: {url}")
    for spec in added:
        print(redact_url(spec.url))
    _err(f"added {len(added)} feeds to {config.path}")
    if failed:
        _err(f"{failed} of {len(args.url)} URLs were not added: see above")
        return 1
    return 0


def cmd_db(args: argparse.Namespace, config: Config) -> int:
    from mash.store import admin, database_of

    if args.action == "copy":
        copied = admin.copy_database(database_of(config), args.to, replace=args.replace)
        for table, rows in copied.rows:
            print(f"{table}\t{rows}")
        emptied = sum(n for _, n in copied.replaced)
        _err(
            f"copied {sum(n for _, n in copied.rows)} rows in {len(copied.rows)} tables "
            f"from {copied.source} to {copied.target}"
            + (f", replacing its {emptied} rows" if emptied else "")
        )
        return 0
    report = admin.check_database(database_of(config))
    print(f"engine\t{report.engine}")
    print(f"store\t{report.store}")
    print(f"schema version\t{report.version} (this mash: {report.known})")
    for table, count in report.rows:
        print(f"{table}\t{'unreadable' if count is None else count}")
    for problem in report.problems:
        print(f"problem: {problem}")
    _err(f"checked {report.store}: {len(report.problems) or 'no'} problems")
    return 0 if report.ok else 1


def cmd_init(args: argparse.Namespace) -> int:
    from mash.starter import NEXT_STEPS, init_newsletter

    folder = Path(args.dir)
    written = init_newsletter(folder)
    names = ", ".join(f"{p.name}/" if p.is_dir() else p.name for p in written)
    _err(f"started a newsletter in {folder}: {names}")
    _err("edit feeds.yaml (name, editor, sender, site_url), then run:")
    if folder.resolve() != Path.cwd().resolve():
        print(f"cd {shlex.quote(str(folder))}")
    print(NEXT_STEPS)
    return 0


def cmd_unsubscribe_server(args: argparse.Namespace, config: Config) -> int:
    from mash.web.subscribe import serve_config

    if config.newsletter.server_url:  # the alias of `mash server` (see #16)
        return cmd_server(args, config)

    def ready(server: Server) -> None:
        _err(f"unsubscribe endpoint on http://{server.host}:{server.port}/ (Ctrl-C to stop)")

    serve_config(config, host="127.0.0.1", port=args.port, ready=ready)
    return 0


def cmd_server(args: argparse.Namespace, config: Config) -> int:
    from mash.web.server import serve_config

    def ready(server: Server) -> None:
        _err(
            f"mash server on http://{server.host}:{server.port}/: subscribe, confirm, "
            f"unsubscribe, webhooks; readers reach it at {config.newsletter.server_url} "
            "(Ctrl-C to stop)"
        )

    host = getattr(args, "host", "127.0.0.1")
    serve_config(config, host=host, port=args.port, ready=ready)
    return 0


# --- parser -----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of every command (tests check each has help)."""
    parser = _Parser(prog="mash", description="Turn blogs into a monthly curated newsletter.")
    parser.add_argument(
        "--config", default="feeds.yaml", help="the config file (default feeds.yaml)"
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--version", action="version", version=f"mash {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    text = "start a new newsletter in DIR: feeds.yaml, editions/, .gitignore"
    p = sub.add_parser("init", help=text, description=text)
    p.add_argument("dir", nargs="?", default=".", metavar="DIR", help="the folder (default .)")
    p.set_defaults(handler=cmd_init)

    p = sub.add_parser("fetch", help="fetch every feed, store new posts, extract full text")
    p.add_argument("--feeds-only", action="store_true", help="do not fetch article pages")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(handler=cmd_fetch)

    for name, handler, text in (
        ("build", cmd_build, "build a month's issue into output/YYYY-MM/"),
        ("posts", cmd_posts, "list the month's ranked candidates with each score's parts"),
        ("draft", cmd_draft, "write editions/YYYY-MM.md with the ranked shortlist"),
    ):
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("--month", type=_month, help="YYYY-MM (default: the last complete month)")
        if name == "posts":
            p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(handler=handler)

    text = (
        "check the month's issue before sending: email size, links, images, blurbs, picks "
        "per blog, the two parts, the edition; exit status 1 on a problem"
    )
    p = sub.add_parser(
        "check",
        help=text,
        description=_CHECK_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--month", type=_month, help="YYYY-MM (default: the last complete month)")
    p.add_argument("--no-links", action="store_true", help="do not fetch the issue's links")
    p.set_defaults(handler=cmd_check)

    p = sub.add_parser("site", help="build the static site into output/site/")
    p.add_argument("--out", help="another folder for the site")
    p.set_defaults(handler=cmd_site)

    p = sub.add_parser("serve", help="preview the site with the month's draft on 127.0.0.1")
    p.add_argument("--month", type=_month, help="the draft's month (default: last complete)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.set_defaults(handler=cmd_serve)

    text = "curate the month in the browser on 127.0.0.1 (makes the draft if missing)"
    p = sub.add_parser("desk", help=text, description=text)
    p.add_argument("--month", type=_month, help="YYYY-MM (default: the last complete month)")
    p.add_argument("--port", type=int, default=8030, help="port (default 8030)")
    p.set_defaults(handler=cmd_desk)

    feeds = sub.add_parser("feeds", help="the feeds: add, import, export, check")
    fsub = feeds.add_subparsers(dest="action", required=True, parser_class=_Parser)
    p = fsub.add_parser("add", help="add blogs by their feed or site URLs (autodiscovery)")
    p.add_argument("url", nargs="+", help="a feed URL, or a blog's home page")
    p.add_argument("--name", help="the blog's name (default: the feed's title)")
    p.add_argument("--weight", type=float, default=1.0, help="source weight (default 1.0)")
    p.add_argument("--house", action="store_true", help="the editor's own blog")
    p.set_defaults(handler=cmd_feeds)
    p = fsub.add_parser("import", help="add the feeds of an OPML file (from any feed reader)")
    p.add_argument("file", help="the .opml file")
    p.set_defaults(handler=cmd_feeds)
    p = fsub.add_parser("export", help="print the feeds as OPML 2.0 (URL passwords as ***)")
    p.set_defaults(handler=cmd_feeds)
    text = (
        "a health table of every feed, with the fix for each problem; "
        "exit status 1 when any feed is failing or retired"
    )
    p = fsub.add_parser("check", help=text, description=text)
    p.add_argument("--json", action="store_true", help="print a JSON list instead (same exit)")
    p.set_defaults(handler=cmd_feeds)

    p = sub.add_parser("send", help="email a built issue to every subscriber, exactly once")
    p.add_argument("--month", type=_month, help="YYYY-MM (default: the last complete month)")
    p.add_argument("--dry-run", action="store_true", help="print who would get mail; send none")
    p.add_argument("--proof", metavar="ADDRESS", help="send one [PROOF] copy to ADDRESS only")
    p.add_argument(
        "--resend-in-doubt",
        action="store_true",
        help="also send to recipients a crashed run may or may not have mailed",
    )
    p.add_argument(
        "--force", action="store_true", help="send (or dry-run) the issue even if it is a draft"
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(handler=cmd_send)

    subscribers = sub.add_parser("subscribers", help="the subscriber list (in the store)")
    ssub = subscribers.add_subparsers(dest="action", required=True, parser_class=_Parser)
    p = ssub.add_parser("import", help="merge a CSV of email,name[,status,...] into the list")
    p.add_argument("file", help="the CSV to import")
    p.set_defaults(handler=cmd_subscribers)
    p = ssub.add_parser(
        "export", help="write the list as CSV: email,name,status, then reason and consent"
    )
    p.add_argument("file", nargs="?", help="the CSV to write (default -, standard output)")
    p.set_defaults(handler=cmd_subscribers)
    p = ssub.add_parser("add", help="subscribe one address")
    p.add_argument("email")
    p.add_argument("--name", help="the subscriber's name")
    p.set_defaults(handler=cmd_subscribers)
    p = ssub.add_parser("remove", help="unsubscribe one address (kept as unsubscribed)")
    p.add_argument("email")
    p.add_argument("--purge", action="store_true", help="delete the row instead")
    p.set_defaults(handler=cmd_subscribers)
    p = ssub.add_parser("list", help="print every subscriber: email, name, status, why")
    p.set_defaults(handler=cmd_subscribers)

    text = (
        "serve subscribe (double opt-in), confirm, unsubscribe and the bounce webhooks "
        "on 127.0.0.1, for a reverse proxy at newsletter.server_url"
    )
    p = sub.add_parser("server", help=text, description=text)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8025, help="port (default 8025)")
    p.set_defaults(handler=cmd_server)

    p = sub.add_parser(
        "unsubscribe-server",
        help="serve the one-click unsubscribe endpoint (RFC 8058) on 127.0.0.1; with "
        "newsletter.server_url set, an alias of `mash server`",
    )
    p.add_argument("--port", type=int, default=8025, help="port (default 8025)")
    p.set_defaults(handler=cmd_unsubscribe_server)

    bounces = sub.add_parser("bounces", help="bounce and complaint mail")
    bsub = bounces.add_subparsers(dest="action", required=True, parser_class=_Parser)
    text = "read a bounce mailbox once and print each bounce and complaint found"
    p = bsub.add_parser("import", help=text, description=text)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--mbox", metavar="PATH", help="an mbox file")
    where.add_argument("--maildir", metavar="PATH", help="a Maildir folder")
    where.add_argument("--imap", action="store_true", help="the IMAP mailbox in bounces:")
    p.set_defaults(handler=cmd_bounces_import)

    db = sub.add_parser("db", help="the store: copy it to another engine, check it")
    dsub = db.add_subparsers(dest="action", required=True, parser_class=_Parser)
    text = (
        "copy every table of the store into another (SQLite file or postgresql:// URL), "
        "in one transaction; the target is migrated first and must hold no data"
    )
    p = dsub.add_parser("copy", help=text, description=text)
    p.add_argument("--to", required=True, metavar="URL_OR_PATH", help="the target store")
    p.add_argument(
        "--replace", action="store_true", help="empty the target's tables first (same transaction)"
    )
    p.set_defaults(handler=cmd_db)
    text = (
        "print the store's engine, schema version and rows per table, and check its "
        "integrity; exit status 1 on a problem"
    )
    p = dsub.add_parser("check", help=text, description=text)
    p.set_defaults(handler=cmd_db)

    analytics = sub.add_parser("analytics", help="page views from analytics exports")
    asub = analytics.add_subparsers(dest="action", required=True, parser_class=_Parser)
    p = asub.add_parser("import", help="import a Plausible, GA4 or Matomo pages CSV export")
    p.add_argument("file", help="the CSV export")
    p.add_argument("--month", type=_month, help="the month the views are for (default: last)")
    p.set_defaults(handler=cmd_analytics_import)
    return parser


_CHECK_HELP = """\
Check the month's issue before it is sent, as `mash build` would make it now (built in
memory; nothing is written). One line per finding: severity, kind, subject, message, fix.

Problems (exit status 1): the email's HTML part at or over Gmail's 102 KB clip; a dead
link (4xx, 5xx, DNS or connection failure, timeout, a reserved example domain); an image
without alt text or in SVG; a blurb over newsletter.blurb_chars; more picks from one
blog than newsletter.per_blog_cap; a pick's title or link missing from one of the two
parts; an edition entry that matches no post, or any other edition error; a draft.

Warnings (exit status 0): a link moved permanently (the fix names the new URL); a link
not checked (robots.txt, HTTP 403, 429); a WebP or AVIF image; a blurb that repeats
the title; the quoted-printable HTML part over 102 KB; a built issue that is out of
date. Temporary redirects (302, 303, 307) are not reported. Links go out a few at a
time, paced per host, HEAD first and GET where HEAD gets an error; links under
newsletter.site_url (your own site, uploaded later) and the unsubscribe link are not
fetched.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the mash command line; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "init":  # the one command with no config yet
            return cmd_init(args)
        config = load_config(args.config)
        status: int = args.handler(args, config)
        return status
    except ConfigError as e:
        for line in str(e).splitlines():  # an edition's problems: one a line
            _err(f"mash: config error: {line}")
        if args.debug:
            _err(traceback.format_exc().rstrip())  # masked too (see #21)
        return 2
    except MashError as e:
        _err(f"mash: {e}")
        if args.debug:
            _err(traceback.format_exc().rstrip())  # masked too (see #21)
        return e.exit_status
    except BrokenPipeError:  # `mash posts | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        _err("mash: interrupted; re-run to continue (nothing is lost)")
        return 130
    except ImportError as e:  # a module mash needs is missing: never a page's fault (#18)
        _err(f"mash: install is broken: {_one_line(e)}; {install_hint(e)}")
        if args.debug:
            traceback.print_exc()
        return 1
    except Exception as e:  # a bug: stop, say where, and how to see the traceback
        where = "; ".join(getattr(e, "__notes__", ()))
        _err(
            f"mash: internal error{f' {where}' if where else ''}: {type(e).__name__}: "
            f"{_one_line(e)}; this is a bug in mash: run again with --debug for the "
            "traceback, and report it"
        )
        if args.debug:
            traceback.print_exc()
        return 1


def install_hint(error: ImportError) -> str:
    """Tell how to repair the install: the missing requirement of mash, when one is named."""
    from importlib import metadata

    try:
        requires = [r for r in metadata.requires("mash") or [] if "extra ==" not in r]
    except metadata.PackageNotFoundError:
        requires = []
    tokens = re.findall(r"[A-Za-z0-9_.-]+", f"{error.name} {error}")
    words = {_dist_key(w) for t in tokens for w in (t, t.split(".")[0])}
    named = [r.split(";")[0].strip() for r in requires if _dist_key(_dist_name(r)) in words]
    if named:  # the longest name: lxml_html_clean rather than lxml
        spec = max(named, key=lambda r: len(_dist_name(r)))
        return f"run `pip install '{spec}'` in the environment mash runs in"
    return "reinstall mash with its dependencies: `pip install --force-reinstall .` in its folder"


def _dist_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~\[;(]", requirement, maxsplit=1)[0]


def _dist_key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower().strip("-")


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


if __name__ == "__main__":
    raise SystemExit(main())
