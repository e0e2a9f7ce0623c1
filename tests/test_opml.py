"""OPML import from other readers' exports, and the round trip through write_opml."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mash.errors import ConfigError
from mash.opml import read_opml, write_opml
from mash.records import FeedSpec

DATA = Path(__file__).parent / "data" / "fetch"

EXPECTED = {
    "feedly.opml": [
        ("https://servicedesk.example/feed/", "The Service Desk Diaries"),
        ("https://support-sympathy.example/rss.xml", "Support & Sympathy"),
        ("https://journeynotes.example/atom.xml", "Journey Notes"),
    ],
    "inoreader.opml": [
        ("https://journeynotes.example/atom.xml", "Journey Notes"),
        ("http://lea-helpdesk.example/feeds/posts/default", "L\u00e9a\u2019s Help Desk Log"),
        ("https://callcenter.example/feed", "Call Center Weekly"),
    ],
    "netnewswire.opml": [
        ("https://servicedesk.example/feed/", "The Service Desk Diaries"),
        ("http://queuetheory.example/index.xml", "Queue Theory"),
        ("https://daringsupport.example/feeds/main", "Daring Support"),
    ],
    "freshrss.opml": [
        ("https://journeynotes.example/atom.xml", "Journey Notes"),
        ("https://support-sympathy.example/rss.xml", "Support & Sympathy"),
        ("https://escalations.example/feed.xml", "Escalations"),
    ],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reads_reader_exports(name: str) -> None:
    """Nested categories are walked, duplicates kept once, non-feeds and bad URLs skipped."""
    feeds = read_opml(DATA / name)
    assert [(f.url, f.name) for f in feeds] == EXPECTED[name]
    assert all(f.weight == 1.0 and not f.house for f in feeds)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reads_bytes_and_str_paths_alike(name: str) -> None:
    path = DATA / name
    assert read_opml(path.read_bytes()) == read_opml(str(path)) == read_opml(path)


def test_round_trip_through_a_real_file(tmp_path: Path) -> None:
    feeds = read_opml(DATA / "feedly.opml") + [
        FeedSpec("https://house.example/feed/", "Our <own> blog", weight=2.5, house=True),
        FeedSpec("https://noname.example/rss"),
    ]
    path = tmp_path / "export.opml"
    path.write_text(write_opml(feeds, "Monthly Mash & friends"), encoding="utf-8")
    back = read_opml(path)
    assert back[:-1] == feeds[:-1]
    assert back[-1] == FeedSpec("https://noname.example/rss", "https://noname.example/rss")


def test_written_opml_is_version_2_with_a_title() -> None:
    text = write_opml([FeedSpec("https://a.example/feed", "A & B")], "Monthly Mash")
    assert '<opml version="2.0"' in text
    assert "<title>Monthly Mash</title>" in text
    assert 'text="A &amp; B"' in text and 'xmlUrl="https://a.example/feed"' in text


def test_export_of_reader_import_reads_back_the_same() -> None:
    for name in EXPECTED:
        feeds = read_opml(DATA / name)
        assert read_opml(write_opml(feeds, name).encode()) == feeds


names = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
    min_size=1,
    max_size=40,
).filter(lambda s: s.strip() == s)
specs = st.builds(
    FeedSpec,
    url=st.from_regex(r"https://[a-z]{1,12}\.example/[a-z0-9/]{0,20}", fullmatch=True),
    name=names,
    weight=st.floats(min_value=0, max_value=10, allow_nan=False),
    house=st.booleans(),
)


@given(st.lists(specs, max_size=8, unique_by=lambda f: f.url), names)
def test_round_trip_property(feeds: list[FeedSpec], title: str) -> None:
    assert read_opml(write_opml(feeds, title).encode()) == feeds


def test_not_opml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "feeds.opml"
    path.write_text("<html><body>hello</body></html>", encoding="utf-8")
    with pytest.raises(ConfigError, match="feeds.opml"):
        read_opml(path)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope.opml"):
        read_opml(tmp_path / "nope.opml")


def test_entities_are_not_expanded() -> None:
    bomb = b"""<?xml version="1.0"?>
<!DOCTYPE opml [<!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
<opml version="2.0"><body><outline text="&b;" xmlUrl="https://x.example/feed"/></body></opml>"""
    feeds = read_opml(bomb)
    assert [f.url for f in feeds] == ["https://x.example/feed"]
    assert feeds[0].name is None or len(feeds[0].name) < 100
