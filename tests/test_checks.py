"""The pre-send checks (see #17): each pure check, then `mash check` against 127.0.0.1."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from mash import checks
from mash.cli import main as mash
from mash.config import load_config
from mash.mail import render_email_html, render_email_text
from mash.pipeline import run_checks
from mash.records import (
    PROBLEM,
    WARNING,
    CheckProblem,
    CheckReport,
    FetchResult,
    Issue,
    Link,
    Listening,
    Newsletter,
    Pick,
    Problem,
)
from mash.render import make_env

MONTH = "2026-10"


def pick(
    n: int,
    blog: str = "Queue and Cue",
    title: str = "",
    blurb: str = "Callbacks break when nobody owns the promise.",
    source: str = "quote",
) -> Pick:
    return Pick(
        url=f"https://blog{n}.example.net/2026/10/post-{n}/",
        title=title or f"Post {n} about keeping small promises",
        blog=blog,
        author="Gerald",
        published=None,
        blurb=blurb,
        score=1.0,
        blurb_source=source,
    )


def issue_of(
    *picks: Pick,
    listening: Listening | None = None,
    essay: str = "",
    links: tuple[Link, ...] = (),
) -> Issue:
    newsletter = Newsletter(links=links, site_url="https://news.example.net/mash/")
    return Issue(
        newsletter=newsletter,
        month=MONTH,
        volume=3,
        title="Monthly Mash and the Second Answer",
        theme="the Second Answer",
        editorial_html=essay,
        editorial_text="",
        picks=picks,
        listening=listening,
        sections=(),
        web_url="https://news.example.net/mash/2026/10/",
    )


def kinds(found: list[CheckProblem]) -> list[tuple[str, str, str]]:
    return [(p.severity, p.kind, p.subject) for p in found]


# --- size ------------------------------------------------------------------------------


def test_size_under_the_clip_passes() -> None:
    assert checks.check_email_size(40_000, 45_000) == []


def test_size_at_the_clip_is_a_problem_saying_how_much_to_cut() -> None:
    (found,) = checks.check_email_size(102 * 1024 + 2048, 120_000)
    assert (found.severity, found.kind) == (PROBLEM, "email-size")
    assert "104.0 KB" in found.message and "cut at least 2.1 KB" in found.fix


def test_size_over_the_clip_only_as_sent_is_a_warning() -> None:
    (found,) = checks.check_email_size(100 * 1024, 103 * 1024)
    assert (found.severity, found.kind) == (WARNING, "email-size")
    assert "quoted-printable" in found.message


# --- images ----------------------------------------------------------------------------


def test_images_need_alt_text_and_a_format_mail_clients_show() -> None:
    html = (
        '<img src="https://a.example.net/chart.png">'
        '<img src="https://a.example.net/chart.svg" alt="Calls per hour">'
        '<img src="https://a.example.net/photo.webp?w=300" alt="The team">'
        '<img src="data:image/svg+xml;base64,PHN2Zz4=" alt="logo">'
        '<img src="https://a.example.net/ok.jpg" alt="A kettle">'
        '<img src="https://a.example.net/blank.png" alt="  ">'
    )
    assert kinds(checks.check_images(html)) == [
        (PROBLEM, "image-alt", "https://a.example.net/chart.png"),
        (PROBLEM, "image-format", "https://a.example.net/chart.svg"),
        (WARNING, "image-format", "https://a.example.net/photo.webp?w=300"),
        (PROBLEM, "image-format", "data:image/svg+xml;base64,PHN2Zz4="),
        (PROBLEM, "image-alt", "https://a.example.net/blank.png"),
    ]


# --- blurbs, picks per blog ------------------------------------------------------------


def test_an_editor_blurb_over_the_limit_is_a_problem_naming_the_edition() -> None:
    long = pick(1, blurb="word " * 70, source="editor")
    (found,) = checks.check_blurbs(issue_of(long, pick(2)), blurb_chars=280)
    assert (found.kind, found.subject) == ("blurb-length", long.url)
    assert "350 characters, over the 280" in found.message
    assert f"editions/{MONTH}.md" in found.fix


@pytest.mark.parametrize(
    ("blurb", "title", "repeats"),
    [
        ("The Callback Promise", "The callback promise!", True),
        ("The callback promise: why it fails and how to keep it.", "The Callback Promise", True),
        ("callback promise", "The Callback Promise", True),
        ("Gerald on the four rules that make a callback safe.", "The Callback Promise", False),
        ("Returns, again: the form went from eleven questions to one.", "Returns", False),
        ("", "The Callback Promise", False),
    ],
)
def test_repeats_title(blurb: str, title: str, repeats: bool) -> None:
    assert checks.repeats_title(blurb, title) is repeats


def test_a_blurb_that_repeats_the_title_is_a_warning() -> None:
    same = pick(1, title="Damaged in transit", blurb="Damaged in Transit.")
    listening = Listening(
        url="https://house.example.net/best/",
        title="Best of the month",
        blog="The Customer Side",
        author="Dana",
        published=None,
        blurb="Best of the month",
        reason="most comments: 3",
    )
    found = checks.check_blurbs(issue_of(same, pick(2), listening=listening), blurb_chars=280)
    assert kinds(found) == [
        (WARNING, "blurb-title", same.url),
        (WARNING, "blurb-title", listening.url),
    ]


def test_picks_over_the_per_blog_cap_are_a_problem() -> None:
    issue = issue_of(pick(1), pick(2), pick(3), pick(4, blog="Happy Returns"))
    (found,) = checks.check_blog_cap(issue, cap=2)
    assert (found.kind, found.subject) == ("blog-cap", "Queue and Cue")
    assert all(p.url in found.message for p in issue.picks[:3])
    assert "unpin or drop 1" in found.fix
    assert checks.check_blog_cap(issue, cap=3) == []


# --- the two parts ---------------------------------------------------------------------


def rendered(issue: Issue) -> tuple[str, str]:
    env = make_env()
    return render_email_html(issue, env), render_email_text(issue, env)


def test_the_parts_of_a_rendered_issue_agree() -> None:
    long_title = "A title long enough that the plain-text part wraps it over two lines, or more"
    # textwrap breaks this one after "customer-": the text part still carries the title
    hyphenated = "Why the first week of onboarding decides x everything about customer-service"
    issue = issue_of(
        pick(1, title=long_title),
        pick(3, title=hyphenated),
        pick(2),
        links=(Link("My blog", "https://house.example.net/"),),
    )
    html, text = rendered(issue)
    assert checks.check_parts(issue, html, text) == []


def test_parts_that_disagree_name_the_post_and_the_part() -> None:
    issue = issue_of(pick(1), pick(2), links=(Link("My blog", "https://house.example.net/"),))
    html, text = rendered(issue)
    first, second = issue.picks
    text = text.replace(first.url, "").replace("My blog: https://house.example.net/", "")
    html = html.replace(f">{second.title}<", ">Another title<")
    assert [(p.subject, p.message) for p in checks.check_parts(issue, html, text)] == [
        (first.url, "the plain-text part lacks its link"),
        (second.url, "the HTML part lacks its title"),
        ("https://house.example.net/", "the plain-text part lacks this About link"),
    ]


# --- links -----------------------------------------------------------------------------


def test_issue_links_have_places_and_leave_out_the_own_site_and_unsubscribe() -> None:
    listening = Listening(
        url="https://house.example.net/best/",
        title="Best",
        blog="House",
        author="",
        published=None,
        blurb="",
        reason="",
    )
    issue = issue_of(
        pick(1),
        listening=listening,
        essay='<p>See <a href="https://essay.example.net/a">this</a>.</p>',
        links=(Link("Blog", "https://house.example.net/"),),
    )
    html = render_email_html(issue, make_env(), unsubscribe_url="https://u.example.net/x")
    html += '<a href="https://news.example.net/mash/2026/10/">site</a><a href="mailto:x@y">m</a>'
    html += '<a href="https://template.example.net/">sponsor</a>'
    assert checks.issue_links(issue, html) == {
        issue.picks[0].url: checks.PICK,
        "https://essay.example.net/a": checks.ESSAY,
        listening.url: checks.LISTENING,
        "https://house.example.net/": checks.ABOUT,
        "https://template.example.net/": checks.TEMPLATE,
    }


@pytest.mark.parametrize(
    ("result", "place", "expected"),
    [
        (FetchResult("https://a.net/x", status=200), checks.PICK, None),
        (
            FetchResult("https://a.net/x", status=200, final_url="https://a.net/login"),
            checks.ESSAY,
            None,  # a temporary redirect: not reported
        ),
        (FetchResult("https://a.net/x", error="too large", error_kind="too-large"), "", None),
        (
            FetchResult("https://a.net/x", status=404, error="HTTP 404", error_kind="http-404"),
            checks.PICK,
            (PROBLEM, "dead-link", "drop the post (drops: in editions/2026-10.md)"),
        ),
        (
            FetchResult("https://a.net/x", error="connection failed", error_kind="connection"),
            checks.ABOUT,
            (PROBLEM, "dead-link", "fix or remove the link in newsletter.links of feeds.yaml"),
        ),
        (
            FetchResult("https://a.net/x", status=200, moved_to="https://b.net/x"),
            checks.ESSAY,
            (WARNING, "moved-link", "link https://b.net/x instead in editions/2026-10.md"),
        ),
        (
            FetchResult("https://a.net/x", error="disallowed", error_kind="robots"),
            checks.PICK,
            (WARNING, "unchecked-link", "open it in a browser"),
        ),
    ],
)
def test_check_link(result: FetchResult, place: str, expected: tuple[str, str, str] | None) -> None:
    found = checks.check_link(result, place, MONTH)
    if expected is None:
        assert found is None
    else:
        assert found is not None
        assert (found.severity, found.kind, found.subject) == (*expected[:2], result.url)
        assert found.fix.startswith(expected[2])


@pytest.mark.parametrize(
    ("url", "placeholder"),
    [
        ("https://example.org/", True),
        ("https://www.example.com/a", True),
        ("https://customer-side.example/", True),
        ("http://blog.test/a", True),
        ("https://nope.invalid/", True),
        ("https://example.organic/", False),
        ("https://blog.example.net.au/", False),
    ],
)
def test_links_to_reserved_example_names_are_dead_without_a_request(
    url: str, placeholder: bool
) -> None:
    found = checks.check_placeholder(url, checks.ABOUT, MONTH)
    assert (found is not None) is placeholder
    if found:
        assert (found.severity, found.kind) == (PROBLEM, "dead-link")


# --- the edition, the report -----------------------------------------------------------


def test_edition_problems_become_findings_with_their_line_and_hint() -> None:
    found = checks.check_edition(
        [
            Problem(
                "editions/2026-10.md", 4, "pins: https://a/x matches no post of 2026-10", "hint"
            ),
            Problem("editions/2026-10.md", None, "the front matter opened here is never closed"),
        ]
    )
    assert kinds(found) == [
        (PROBLEM, "unmatched-entry", "editions/2026-10.md:4"),
        (PROBLEM, "edition", "editions/2026-10.md"),
    ]
    assert found[0].fix == "hint"


def test_a_report_with_only_warnings_is_ok() -> None:
    warning = CheckProblem("moved-link", "https://a", "moved", severity=WARNING)
    assert CheckReport(MONTH, (warning,)).ok
    assert not CheckReport(MONTH, (warning, CheckProblem("dead-link", "https://b", "x"))).ok
    assert str(warning) == "warning: moved-link: https://a: moved"


# --- `mash check` against 127.0.0.1 ----------------------------------------------------


class _Links(BaseHTTPRequestHandler):
    """/good and /about answer 200, /moved is 301 to /new (200); the rest 404."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path == "/moved":
            self._answer(301, {"Location": "/new"})
        elif self.path in ("/good", "/about", "/new"):
            self._answer(200, {"Content-Type": "text/html"}, b"<p>here</p>")
        else:
            self._answer(404, {"Content-Type": "text/html"}, b"<p>gone</p>")

    do_HEAD = do_GET  # noqa: N815 (http.server's name)

    def _answer(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command == "GET":
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def links_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Links)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _essay_links(config: Path, base: str, *paths: str) -> None:
    """Point the config's About link at base/about and add links to the essay."""
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["newsletter"]["links"] = [{"label": "About me", "url": f"{base}/about"}]
    config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    edition = config.parent / "editions" / f"{MONTH}.md"
    text = edition.read_text(encoding="utf-8")
    more = " ".join(f"[link {n}]({base}{path})" for n, path in enumerate(paths, 1))
    edition.write_text(text + f"\nFurther reading: {more}.\n", encoding="utf-8")


def test_check_names_a_dead_and_a_moved_link_with_their_fixes(
    workspace: Path, links_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _essay_links(workspace, links_server, "/good", "/dead", "/moved")
    status = mash(["--config", str(workspace), "check", "--month", MONTH])
    out, err = capsys.readouterr()
    lines = out.splitlines()
    dead = f"{links_server}/dead"
    assert status == 1
    assert lines[0].startswith(f"problem: dead-link: {dead}: a link in the essay: HTTP 404")
    assert lines[0].endswith(f"(fix: fix or remove the link in editions/{MONTH}.md)")
    assert (
        f"warning: moved-link: {links_server}/moved: a link in the essay: moved permanently to "
        f"{links_server}/new (fix: link {links_server}/new instead in editions/{MONTH}.md)"
    ) in lines
    assert not [line for line in lines if f"{links_server}/good" in line or "/about" in line]
    assert "1 problem, " in err and "links checked" in err
    assert not (workspace.parent / MONTH).exists()  # nothing built, nothing written

    # the dead link removed: what is left is warnings, exit 0
    edition = workspace.parent / "editions" / f"{MONTH}.md"
    edition.write_text(edition.read_text(encoding="utf-8").replace(dead, f"{links_server}/good"))
    assert mash(["--config", str(workspace), "check", "--month", MONTH]) == 0
    out, _ = capsys.readouterr()
    assert all(line.startswith("warning: ") for line in out.splitlines())


def test_run_checks_reports_edition_errors_that_stop_build(workspace: Path) -> None:
    """An unmatched entry and pins over the cap are findings, not exit 2 (see #17)."""
    config = load_config(workspace)
    edition = workspace.parent / "editions" / f"{MONTH}.md"
    text = edition.read_text(encoding="utf-8")
    base = text.split('pins:\n  - "')[1].split("/happy-returns/")[0]
    same_blog = [
        f"{base}/happy-returns/2026/10/{slug}/"
        for slug in ("damaged-in-transit", "exchange-before-refund", "holiday-returns-prep")
    ]
    typo = f"{base}/happy-returns/2026/10/holiday-retruns-prep/"
    pins = "".join(f'  - "{url}"\n' for url in [*same_blog, typo])
    edition.write_text(text.replace(f'  - "{same_blog[0]}"\n', pins), encoding="utf-8")
    report = run_checks(config, MONTH, links=False)
    assert not report.ok
    assert kinds(list(report.problems))[:2] == [
        (PROBLEM, "unmatched-entry", f"{edition}:7"),
        (PROBLEM, "blog-cap", "Happy Returns"),
    ]
    assert report.problems[0].fix == f"did you mean {same_blog[2]!r}?"
    assert report.links_checked == 0
    # `mash build` stops at the same entry, with exit status 2
    assert mash(["--config", str(workspace), "build", "--month", MONTH]) == 2


def test_check_on_the_demo_month_without_links(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert mash(["--config", str(workspace), "check", "--month", MONTH, "--no-links"]) == 0
    out, err = capsys.readouterr()
    # not built yet: said, as a warning; the demo issue has nothing else to fix
    assert out.splitlines() == [
        f"warning: stale-build: {MONTH}/issue.json: not built yet: "
        "the checks ran on the issue as `mash build` would make it "
        f"(fix: run `mash build --month {MONTH}` before `mash send`)"
    ]
    assert "0 problems, 1 warning;" in err and "links not checked" in err
    assert mash(["--config", str(workspace), "build", "--month", MONTH]) == 0
    capsys.readouterr()
    assert mash(["--config", str(workspace), "check", "--month", MONTH, "--no-links"]) == 0
    assert capsys.readouterr().out == ""  # built: the same issue, nothing to say
