"""The whole pipeline on the demo blogs, served on 127.0.0.1, into a real SQLite file
(and the main fetch, build and send tests on PostgreSQL too: `database_env`)."""

from __future__ import annotations

import json
import re
import sqlite3
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from bs4 import BeautifulSoup

from mash.blurb import split_sentences, stands_alone
from mash.cli import main as mash
from mash.demo import DEMO, serve_folder
from mash.records import Newsletter
from mash.store import is_database_url, open_store
from mash.urls import url_key
from tests.conftest import LOOPBACK, fetch_section

BOILERPLATE = (
    "Leave a Reply",
    "Share this",
    "Like this",
    "Enter your email address",
    "Register now",
    "cookies",
    "About the author",
    "Related posts",
    "Post a Comment",
    "Subscribe",
    "Recent posts",
    "Archives",
    "Skip to content",
    "Posted by",
)


def build(config: Path, month: str) -> dict[str, Any]:
    assert mash(["--config", str(config), "build", "--month", month]) == 0
    data: dict[str, Any] = json.loads((config.parent / month / "issue.json").read_text())
    return data


def set_edition(config: Path, month: str, front: dict[str, Any], body: str = "An essay.") -> None:
    text = f"---\n{yaml.safe_dump(front)}---\n{body}\n"
    (config.parent / "editions" / f"{month}.md").write_text(text, encoding="utf-8")


def keys(urls: list[str]) -> set[str]:
    return {url_key(u) for u in urls}


def test_issue_json_contract(workspace: Path) -> None:
    issue = build(workspace, "2026-10")
    for field in (
        "month",
        "volume",
        "title",
        "theme",
        "editorial_html",
        "picks",
        "listening",
        "sections",
    ):
        assert field in issue
    assert issue["month"] == "2026-10"
    assert issue["title"] == "Monthly Mash and the Second Answer"
    assert 6 <= len(issue["picks"]) <= 10
    for pick in issue["picks"]:
        for field in ("url", "title", "blog", "author", "published", "blurb", "score"):
            assert field in pick, field
        assert re.match(r"\d{4}-\d\d-\d\dT", pick["published"])
    for field in ("url", "title", "blurb", "reason"):
        assert issue["listening"][field]
    assert [s["key"] for s in issue["sections"]] == [
        "title",
        "welcome",
        "editorial",
        "picks",
        "listening",
        "about",
        "footer",
    ]


def test_all_seven_parts_in_html_and_text(workspace: Path) -> None:
    issue = build(workspace, "2026-10")
    folder = workspace.parent / "2026-10"
    html = (folder / "email.html").read_text()
    text = (folder / "email.txt").read_text()
    web = (folder / "index.html").read_text()
    headings = [s["heading"] for s in issue["sections"] if s["key"] != "welcome"]
    headings.append("Welcome to the Monthly Mash")
    headings.append(f"Volume {issue['volume']}: October 2026")
    for heading in headings:
        escaped = heading.replace("'", "&#39;").replace("&", "&amp;")
        assert heading in html or escaped in html, heading
        assert heading.lower() in text.lower(), heading
        if heading != "Why you are getting this":  # the footer is the email's alone (#20)
            assert heading in web or escaped in web, heading
    for pick in issue["picks"]:
        assert pick["url"] in text and pick["url"] in html
    assert (folder / "issue.eml").read_bytes().startswith(b"")


def test_no_boilerplate_in_extracted_text_or_blurbs(
    workspace: Path, truth: list[dict[str, Any]]
) -> None:
    expected = {url_key(t["url"]): t["expected_text"].lower() for t in truth}
    db = sqlite3.connect(workspace.parent / "data" / "mash.db")
    rows = db.execute("SELECT url, text, source FROM posts").fetchall()
    assert len(rows) == 40
    assert {r[2] for r in rows} <= {"feed", "page"}
    assert any(r[2] == "page" for r in rows)
    for url, text, _ in rows:
        for phrase in BOILERPLATE:
            if phrase.lower() not in expected[url_key(url)]:  # the article's own words
                assert phrase.lower() not in text.lower(), (url, phrase)
    for month in ("2026-09", "2026-10"):
        issue = build(workspace, month)
        blurbs = [p["blurb"] for p in issue["picks"]] + [issue["listening"]["blurb"]]
        assert all(blurbs)
        for blurb in blurbs:
            for phrase in BOILERPLATE:
                assert phrase.lower() not in blurb.lower(), (blurb, phrase)


@pytest.mark.parametrize("month", ["2026-09", "2026-10"])
def test_off_topic_promotional_and_duplicates_not_picked(
    workspace: Path, truth: list[dict[str, Any]], month: str
) -> None:
    issue = build(workspace, month)
    picked = keys([p["url"] for p in issue["picks"]])
    bad = [
        t
        for t in truth
        if t["month"] == month and (not t["on_topic"] or t["promotional"] or t["duplicate_of"])
    ]
    assert bad
    assert not picked & keys([t["url"] for t in bad])
    house = keys([t["url"] for t in truth if t["house"]])
    assert not picked & house  # the house blog feeds Someone Was Listening only


def test_duplicate_collapsed_to_original(workspace: Path, truth: list[dict[str, Any]]) -> None:
    (copy,) = [t for t in truth if t["duplicate_of"]]
    ranking = posts_json(workspace, copy["month"])
    row = next(r for r in ranking if url_key(r["url"]) == url_key(copy["url"]))
    assert row["status"] == "out"
    assert url_key(row["duplicate_of"]) == url_key(copy["duplicate_of"])


def posts_json(config: Path, month: str) -> list[dict[str, Any]]:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert mash(["--config", str(config), "posts", "--month", month, "--json"]) == 0
    rows: list[dict[str, Any]] = json.loads(out.getvalue())
    return rows


@pytest.mark.parametrize("month", ["2026-09", "2026-10"])
def test_listening_is_the_house_post_with_most_comments(
    workspace: Path, truth: list[dict[str, Any]], month: str
) -> None:
    house = [t for t in truth if t["house"] and t["month"] == month]
    best = max(house, key=lambda t: t["comments"])
    issue = build(workspace, month)
    assert url_key(issue["listening"]["url"]) == url_key(best["url"])
    assert issue["listening"]["reason"] == f"most comments: {best['comments']}"


def test_editor_pick_overrides_listening(workspace: Path, truth: list[dict[str, Any]]) -> None:
    house = [t for t in truth if t["house"] and t["month"] == "2026-10"]
    least = min(house, key=lambda t: t["comments"])
    set_edition(workspace, "2026-10", {"theme": "x", "listening": least["url"]})
    issue = build(workspace, "2026-10")
    assert url_key(issue["listening"]["url"]) == url_key(least["url"])
    assert issue["listening"]["reason"] == "the editor's pick"


def test_pins_drops_and_blurbs_are_honoured(workspace: Path, demo_base: str) -> None:
    edition = (DEMO / "editions" / "2026-10.md").read_text().replace("{{BASE}}", demo_base)
    front = yaml.safe_load(edition.split("---")[1])
    issue = build(workspace, "2026-10")
    picked = keys([p["url"] for p in issue["picks"]])
    assert keys(front["pins"]) <= picked
    assert not keys(front["drops"]) & picked
    ((url, blurb),) = front["blurbs"].items()
    mine = [p for p in issue["picks"] if url_key(p["url"]) == url_key(url)]
    assert mine and mine[0]["blurb"] == blurb
    # the dropped post would be picked without the editor
    set_edition(workspace, "2026-10", {"theme": "x"})
    plain = build(workspace, "2026-10")
    assert keys(front["drops"]) & keys([p["url"] for p in plain["picks"]])


def test_order_puts_posts_first(workspace: Path) -> None:
    set_edition(workspace, "2026-10", {"theme": "x"})
    issue = build(workspace, "2026-10")
    last = issue["picks"][-1]["url"]
    set_edition(workspace, "2026-10", {"theme": "x", "order": [last]})
    again = build(workspace, "2026-10")
    assert again["picks"][0]["url"] == last


def test_unmatched_front_matter_is_reported(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_edition(workspace, "2026-10", {"theme": "x", "pins": ["https://nowhere.example/p"]})
    # an error, not a warning: the issue would go out without the editor's pin (see #20)
    assert mash(["--config", str(workspace), "build", "--month", "2026-10"]) == 2
    assert "pins: https://nowhere.example/p matches no post of 2026-10" in capsys.readouterr().err


@pytest.fixture
def any_workspace(workspace: Path, database_env: str | Path) -> Path:
    """The fetched demo workspace with its store on each engine: on PostgreSQL the demo is
    fetched again into the test's database (MASH_DATABASE_URL wins over the SQLite file)."""
    if is_database_url(database_env):
        assert mash(["--config", str(workspace), "fetch", "--quiet"]) == 0
    return workspace


def test_volume_goes_up_by_one(any_workspace: Path) -> None:
    first = build(any_workspace, "2026-09")
    second = build(any_workspace, "2026-10")
    assert second["volume"] == first["volume"] + 1
    assert build(any_workspace, "2026-09")["volume"] == first["volume"]  # a rebuild keeps it
    assert len(second["picks"]) >= 6  # the month's posts were read from this engine


def test_second_fetch_stores_nothing_new(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = workspace.parent / "data" / "mash.db"
    before = sqlite3.connect(db).execute("SELECT count(*), max(id) FROM posts").fetchone()
    assert mash(["--config", str(workspace), "fetch", "--quiet"]) == 0
    assert "; 0 new posts;" in capsys.readouterr().err
    after = sqlite3.connect(db).execute("SELECT count(*), max(id) FROM posts").fetchone()
    assert after == before


def test_draft_writes_shortlist_and_keeps_editor_choices(workspace: Path) -> None:
    path = workspace.parent / "editions" / "2026-10.md"
    original = yaml.safe_load(path.read_text().split("---")[1])
    assert mash(["--config", str(workspace), "draft", "--month", "2026-10"]) == 0
    text = path.read_text()
    front = yaml.safe_load(text.split("---")[1])
    assert front["pins"] == original["pins"] and front["drops"] == original["drops"]
    assert front["blurbs"] == original["blurbs"] and front["theme"] == original["theme"]
    assert len(front["shortlist"]) >= 8
    assert {"url", "title", "score", "blurb"} <= set(front["shortlist"][0])
    assert "Every support conversation has a first answer" in text
    build(workspace, "2026-10")  # the draft is a valid edition


def test_draft_for_a_new_month_has_a_starter(workspace: Path) -> None:
    (workspace.parent / "editions" / "2026-09.md").unlink()
    assert mash(["--config", str(workspace), "draft", "--month", "2026-09"]) == 0
    text = (workspace.parent / "editions" / "2026-09.md").read_text()
    assert "Write this month's essay here" in text
    assert build(workspace, "2026-09")["picks"]


def test_build_of_an_empty_month_exits_1(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert mash(["--config", str(workspace), "build", "--month", "2020-01"]) == 1
    assert "no posts to build the issue of 2020-01" in capsys.readouterr().err


MALFORMED = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Broken</title>
<item><title>Cut & off &nbsp; here"""


def test_bad_feeds_are_reported_by_name_and_the_run_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with serve_folder(DEMO / "site", extra={"/broken/feed.xml": MALFORMED}) as base:
        good = f"{base}/frontline-notes/atom.xml"
        broken = f"{base}/broken/feed.xml"
        missing = f"{base}/nowhere/feed.xml"
        dead = "http://127.0.0.1:9/feed.xml"
        config = tmp_path / "feeds.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "feeds": [{"url": u} for u in (good, broken, missing, dead)],
                    "fetch": {"deadline": 5, "retries": 0, "allow_private": LOOPBACK},
                }
            )
        )
        assert mash(["--config", str(config), "fetch", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert f"failed: {broken}: malformed" in err
    assert f"failed: {missing}: http-404" in err
    assert f"failed: {dead}: connection" in err
    assert "fetched 1, not modified 0, failed 3 of 4 feeds" in err
    count = (
        sqlite3.connect(tmp_path / "data" / "mash.db")
        .execute("SELECT count(*) FROM posts")
        .fetchone()[0]
    )
    assert count == len([p for p in (DEMO / "posts" / "frontline-notes").glob("*.md")])


def test_fetch_exits_1_when_no_feed_could_be_fetched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "feeds": [{"url": "http://127.0.0.1:9/feed.xml"}],
                "fetch": {"deadline": 5, "retries": 0, "allow_private": LOOPBACK},
            }
        )
    )
    assert mash(["--config", str(config), "fetch", "--quiet"]) == 1
    assert "no feed could be fetched" in capsys.readouterr().err


def test_config_from_another_folder_keeps_state_beside_it(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    build(workspace, "2026-10")
    assert (workspace.parent / "2026-10" / "issue.json").exists()
    assert list(elsewhere.iterdir()) == []


def test_fetch_of_the_farm_stores_every_post_once(
    farm: str, tmp_path: Path, database_env: str | Path
) -> None:
    """60 feeds: parsing runs in worker processes; a second run is all 304 (both engines)."""
    with urllib.request.urlopen(f"{farm}_farm/feeds.yaml") as response:
        feeds = response.read().decode()
    with urllib.request.urlopen(f"{farm}_farm/manifest.json") as response:
        manifest = json.loads(response.read())
    config = tmp_path / "feeds.yaml"
    config.write_text(fetch_section(per_host=16) + feeds)
    assert mash(["--config", str(config), "fetch", "--feeds-only", "--quiet"]) == 0
    assert mash(["--config", str(config), "fetch", "--feeds-only", "--quiet"]) == 0
    with open_store(database_env) as store:
        count = store.count_posts()
        posts = store.posts_between(datetime(1970, 1, 1, tzinfo=UTC), datetime.now(UTC), [])
        statuses = {row.last_status for row in store.feed_rows()}
    stored = {(url_key(p.url), p.title) for p in posts}
    expected = {(url_key(m["feed_link"]), m["title"]) for m in manifest}
    assert count == len(posts) == len(manifest) == 1200
    assert stored == expected
    assert statuses == {304}


def test_send_through_the_cli_mails_everyone_once(
    any_workspace: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    from aiosmtpd.controller import Controller

    from tests.test_send import Collector, free_port

    collector = Collector()
    port = free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        config = yaml.safe_load(any_workspace.read_text())
        config["smtp"].update({"port": port, "rate_per_second": 0})
        any_workspace.write_text(yaml.safe_dump(config))
        monkeypatch.setenv("MASH_SECRET", "test-secret-for-tokens")
        people = tmp_path / "people.csv"
        people.write_text(
            "email,name\nann@example.org,Ann\nbob@example.org,Bob\nnot-an-address,X\n"
        )
        run = ["--config", str(any_workspace)]
        assert mash([*run, "subscribers", "import", str(people)]) == 0
        assert mash([*run, "subscribers", "add", "cy@example.org", "--name", "Cy"]) == 0
        assert mash([*run, "subscribers", "remove", "bob@example.org"]) == 0
        build(any_workspace, "2026-10")
        assert mash([*run, "send", "--month", "2026-10", "--dry-run", "--quiet"]) == 0
        assert collector.received == []
        assert (
            mash([*run, "send", "--month", "2026-10", "--proof", "ed@example.org", "--quiet"]) == 0
        )
        assert collector.recipients() == ["ed@example.org"]
        assert collector.messages()[0]["Subject"].startswith("[PROOF] ")
        assert mash([*run, "send", "--month", "2026-10", "--quiet"]) == 0
        assert mash([*run, "send", "--month", "2026-10", "--quiet"]) == 0  # a re-run: none
    finally:
        controller.stop()
    err = capsys.readouterr().err
    assert "not-an-address" in err
    assert sorted(collector.recipients()) == ["ann@example.org", "cy@example.org", "ed@example.org"]
    message = collector.messages()[-1]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Subject"] == "Monthly Mash and the Second Answer"


def test_a_dead_parse_worker_fails_its_feed_and_new_workers_take_the_rest() -> None:
    """A worker killed mid-job (a crash in a C parser, the OOM killer) fails that feed only."""
    import os

    from mash.parse import parse_job
    from mash.pipeline.fetch import _LazyPool, _parsed
    from mash.records import FetchResult

    feed = (Path(__file__).parent / "data" / "fetch" / "feed.xml").read_bytes()
    fetched = FetchResult(url="https://blog.example/feed", status=200, content=feed)
    with _LazyPool(2) as pool:
        dead = pool.submit(os._exit, 1)  # type: ignore[arg-type]
        record, rows, problem = _parsed(dead)
        assert record is None and rows == []
        assert problem is not None and problem[1] == "unexpected"
        assert "parse worker failed" in problem[0]
        record, rows, problem = _parsed(pool.submit(parse_job, fetched))
    assert problem is None and record is not None and len(rows) > 0


def test_a_feed_that_breaks_the_parser_fails_alone(
    farm: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception nothing foresaw, in one feed's parse: that feed fails, named; the rest store."""
    from mash import parse

    real = parse.parse_feed

    def parse_or_break(content: bytes, url: str, *args: Any) -> Any:
        if "/b3-" in url:
            raise RecursionError("maximum recursion depth exceeded")
        return real(content, url, *args)

    monkeypatch.setattr(parse, "parse_feed", parse_or_break)
    with urllib.request.urlopen(f"{farm}_farm/feeds.yaml") as response:
        feeds = yaml.safe_load(response.read())["feeds"][:12]  # under the pool's size: inline
    config = tmp_path / "feeds.yaml"
    config.write_text(yaml.safe_dump({"fetch": {"allow_private": LOOPBACK}, "feeds": feeds}))
    assert mash(["--config", str(config), "fetch", "--feeds-only", "--quiet"]) == 0
    db = sqlite3.connect(tmp_path / "data" / "mash.db")
    failed = db.execute(
        "SELECT url, last_error, last_error_kind FROM feeds WHERE last_error IS NOT NULL"
    ).fetchall()
    assert len(failed) == 1 and "/b3-" in failed[0][0]
    assert failed[0][2] == "unexpected" and "RecursionError" in failed[0][1]
    stored = db.execute("SELECT count(DISTINCT feed_url) FROM posts").fetchone()[0]
    assert stored == 11


def test_a_refresh_stores_nothing_new_and_records_304_for_every_feed(
    farm: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with urllib.request.urlopen(f"{farm}_farm/feeds.yaml") as response:
        feeds = response.read().decode()
    config = tmp_path / "feeds.yaml"
    config.write_text(fetch_section(per_host=8) + feeds)
    assert mash(["--config", str(config), "fetch", "--feeds-only", "--quiet"]) == 0
    db = sqlite3.connect(tmp_path / "data" / "mash.db")
    before = db.execute("SELECT * FROM posts ORDER BY id").fetchall()
    capsys.readouterr()
    assert mash(["--config", str(config), "fetch", "--feeds-only"]) == 0
    assert "not modified 60" in capsys.readouterr().err
    assert db.execute("SELECT * FROM posts ORDER BY id").fetchall() == before
    statuses = db.execute("SELECT last_status, count(*) FROM feeds GROUP BY 1").fetchall()
    assert statuses == [(304, 60)]


def test_built_text_part_unsubscribes_at_unsubscribe_mailto(workspace: Path) -> None:
    """The demo sets smtp.unsubscribe_mailto; the built parts named the sender (see #20)."""
    config = yaml.safe_load(workspace.read_text(encoding="utf-8"))
    mailto = config["smtp"]["unsubscribe_mailto"]
    sender = config["newsletter"]["sender"]
    build(workspace, "2026-10")
    folder = workspace.parent / "2026-10"
    text = (folder / "email.txt").read_text(encoding="utf-8")
    expected = f"mailto:{mailto}?subject=unsubscribe"
    assert text.splitlines()[-1] == f"Unsubscribe: {expected}"
    assert sender not in text
    html = (folder / "email.html").read_text(encoding="utf-8")
    links = re.findall(r"<a [^>]*data-unsubscribe[^>]*>", html)
    assert links and all(f'href="{expected}"' in link for link in links)


def test_site_pages_carry_no_email_only_text(workspace: Path) -> None:
    """Why-line, unsubscribe and view-in-browser are the email's; the site has none (#20)."""
    build(workspace, "2026-10")
    assert mash(["--config", str(workspace), "site"]) == 0
    why = Newsletter.why_line  # the demo keeps the default
    assert why.startswith("You are receiving this")
    site = workspace.parent / "site"
    pages = [p for p in site.rglob("*") if p.suffix in (".html", ".xml", ".txt", ".json")]
    assert len(pages) >= 4
    for page in pages:
        content = page.read_text(encoding="utf-8")
        for email_only in ("You are receiving this", "Unsubscribe", "in your browser"):
            assert email_only not in content, (page, email_only)
    email = (workspace.parent / "2026-10" / "email.html").read_text(encoding="utf-8")
    assert why in email and "Unsubscribe</a>" in email and "in your browser" in email


# --- blurbs that read as curation (see #20) ----------------------------------------------

LIFTED_OPENINGS = ("Its job is triage", "The trick is", "Five from the lowest scores")


def _blurbed(issue: dict[str, Any]) -> list[dict[str, Any]]:
    return [*issue["picks"], issue["listening"]]


def test_blurbs_are_the_editors_the_authors_summary_or_a_quote_that_stands_alone(
    workspace: Path, truth: list[dict[str, Any]], demo_base: str
) -> None:
    for month in ("2026-09", "2026-10"):
        issue = build(workspace, month)
        items = _blurbed(issue)
        assert {item["blurb_source"] for item in items} <= {"editor", "summary", "quote"}
        for item in items:
            assert not item["blurb"].startswith(LIFTED_OPENINGS), item["blurb"]
            if item["blurb_source"] == "quote":
                first, *rest = split_sentences(item["blurb"])
                assert stands_alone(first) and len(rest) <= 1, item["blurb"]
    # the editor's own blurb, from the edition file
    edition = (DEMO / "editions" / "2026-10.md").read_text().replace("{{BASE}}", demo_base)
    ((url, mine),) = yaml.safe_load(edition.split("---")[1])["blurbs"].items()
    editor = [i for i in items if url_key(i["url"]) == url_key(url)]
    assert [(i["blurb"], i["blurb_source"]) for i in editor] == [(mine, "editor")]
    # a post whose feed or page carries a summary its author wrote gets that summary
    written = {url_key(t["url"]): t["author_summary"] for t in truth if t["author_summary"]}
    summarised = [i for i in items if url_key(i["url"]) in written]
    assert len(summarised) >= 2 and issue["listening"] in summarised
    for item in summarised:
        assert (item["blurb"], item["blurb_source"]) == (written[url_key(item["url"])], "summary")
    assert all(i["blurb_source"] != "summary" for i in items if i not in summarised)


def test_the_authors_words_are_shown_quoted_and_the_editors_plain(workspace: Path) -> None:
    issue = build(workspace, "2026-10")
    folder = workspace.parent / "2026-10"
    email = BeautifulSoup((folder / "email.html").read_text(), "html.parser")
    web = BeautifulSoup((folder / "index.html").read_text(), "html.parser")
    text = " ".join((folder / "email.txt").read_text().split())
    email_blurbs = [p.get_text() for p in email.select("p.blurb")]
    web_quotes = [" ".join(q.get_text(" ").split()) for q in web.select("blockquote.pick__quote")]
    web_plain = [p.get_text() for p in web.select("p.pick__blurb")]
    items = _blurbed(issue)
    assert {i["blurb_source"] for i in items} == {"editor", "summary", "quote"}
    for item in items:
        blurb, who = item["blurb"], item["author"] or item["blog"]
        if item["blurb_source"] == "editor":
            assert blurb in email_blurbs and blurb in web_plain
            assert blurb in text and f"“{blurb}”" not in text
        else:
            assert f"“{blurb}” — {who}" in email_blurbs
            assert f"“{blurb}” — {who}" in web_quotes
            assert f"“{blurb}” — {who}" in text  # the text part, reflowed
    assert len(email_blurbs) == len(items)
    assert len(web_quotes) + len(web_plain) == len(items)


def test_posts_and_the_draft_show_the_issues_blurbs(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    issue = build(workspace, "2026-10")
    capsys.readouterr()
    shown = {url_key(i["url"]): (i["blurb"], i["blurb_source"]) for i in _blurbed(issue)}
    assert mash(["--config", str(workspace), "posts", "--month", "2026-10", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    listed = {url_key(r["url"]): (r["blurb"], r["blurb_source"]) for r in rows}
    assert {k: listed[k] for k in shown} == shown
    assert mash(["--config", str(workspace), "posts", "--month", "2026-10"]) == 0
    out = capsys.readouterr().out
    for blurb, source in shown.values():
        assert f"blurb ({source}): {blurb}" in out
    assert mash(["--config", str(workspace), "draft", "--month", "2026-10"]) == 0
    path = workspace.parent / "editions" / "2026-10.md"
    shortlist = yaml.safe_load(path.read_text().split("---")[1])["shortlist"]
    drafted = {url_key(s["url"]): (s["blurb"], s["blurb_source"]) for s in shortlist}
    assert {k: drafted[k] for k in shown} == shown


MENU_PAGE = Path(__file__).parent / "data" / "extract" / "menu-instead-of-article.html"


def test_a_page_whose_article_our_extraction_misses_stores_the_article(tmp_path: Path) -> None:
    """The page's own extraction is its menu; the stored text is the article (#18)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "hold-music.html").write_bytes(MENU_PAGE.read_bytes())
    with serve_folder(site) as base:
        rss = f"""<?xml version="1.0"?><rss version="2.0"><channel><title>Help Desk Weekly</title>
<link>{base}/</link><item><title>Hold music is a promise</title>
<link>{base}/hold-music.html</link><guid>{base}/hold-music.html</guid>
<pubDate>Wed, 28 Oct 2026 09:00:00 GMT</pubDate>
<description>Hold music is a promise. Every second of it tells the caller [&#8230;]</description>
</item></channel></rss>"""
        (site / "feed.xml").write_text(rss, encoding="utf-8")
        config = tmp_path / "feeds.yaml"
        config.write_text(fetch_section() + f"feeds:\n  - url: {base}/feed.xml\n")
        assert mash(["--config", str(config), "fetch", "--quiet"]) == 0
    db = sqlite3.connect(tmp_path / "data" / "mash.db")
    source, text = db.execute("SELECT source, text FROM posts").fetchone()
    assert source == "page"
    assert text.startswith("Hold music is a promise. Every second of it tells the caller")
    assert text.endswith("start calmer than they used to.")
    assert "Log in" not in text and "My account" not in text
