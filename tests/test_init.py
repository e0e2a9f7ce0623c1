"""`mash init [DIR]` starts a newsletter that `mash feeds add` then fills (#20)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mash.cli import main as mash
from mash.config import add_feeds_to_file, load_config
from mash.records import FeedSpec
from tests.conftest import fetch_section


def comment_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.lstrip().startswith("#")]


def test_init_writes_a_newsletter_that_feeds_add_fills(
    tmp_path: Path, demo_base: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "new" / "letter"
    assert mash(["init", str(folder)]) == 0
    out = capsys.readouterr().out
    steps = [line.split("#")[0].strip() for line in out.splitlines()]
    assert steps[0] == f"cd {folder}"
    assert steps[1].startswith("mash feeds add ")
    assert steps[2:] == ["mash fetch", "mash draft && mash build"]
    config = folder / "feeds.yaml"
    started = config.read_text()
    loaded = load_config(config)
    assert loaded.feeds == ()
    assert loaded.newsletter.editor == "Your Name" and loaded.newsletter.site_url
    assert loaded.output_dir == folder.resolve() / "output"
    assert (folder / "editions").is_dir()
    assert (folder / ".gitignore").read_text().split() == ["output/", "data/"]

    one, two, three = (
        f"{demo_base}/{blog}/feed.xml"
        for blog in ("happy-returns", "service-loop", "customer-side")
    )
    with config.open("a", encoding="utf-8") as handle:  # the demo blogs are on loopback (#21)
        handle.write(fetch_section())
    assert mash(["--config", str(config), "feeds", "add", one, two]) == 0
    assert mash(["--config", str(config), "feeds", "add", three, "--house"]) == 0
    text = config.read_text()
    assert comment_lines(text) == comment_lines(started)  # every comment kept, in order
    feeds = load_config(config).feeds
    assert [f.url for f in feeds] == [one, two, three]
    assert [f.house for f in feeds] == [False, False, True]
    assert feeds[0].name == "Happy Returns"
    # the feeds sit under `feeds:`, not after the commented smtp: block that follows it
    assert text.index(three) < text.index("# Sending")


def test_init_in_the_current_folder_keeps_its_gitignore(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".gitignore").write_text("*.pyc\ndata")
    monkeypatch.chdir(tmp_path)
    assert mash(["init"]) == 0
    assert "cd " not in capsys.readouterr().out
    assert (tmp_path / ".gitignore").read_text() == "*.pyc\ndata\noutput/\n"
    assert load_config(tmp_path / "feeds.yaml").feeds == ()


def test_init_refuses_to_overwrite_a_feeds_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "feeds.yaml").write_text("feeds:\n  - https://mine.example/feed\n")
    assert mash(["init", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "not overwriting its feeds.yaml" in err and str(tmp_path / "feeds.yaml") in err
    assert (tmp_path / "feeds.yaml").read_text() == "feeds:\n  - https://mine.example/feed\n"
    assert not (tmp_path / "editions").exists()


def test_fetch_with_no_feeds_says_how_to_add_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert mash(["init", str(tmp_path)]) == 0
    assert mash(["--config", str(tmp_path / "feeds.yaml"), "fetch"]) == 2
    err = capsys.readouterr().err
    assert re.search(
        r"feeds\.yaml: no feeds to fetch yet; add a blog with `mash feeds add URL`", err
    )


@pytest.mark.parametrize(
    ("empty", "kept"),
    [
        ("feeds: []  # none yet\n", "feeds:   # none yet\n"),  # the comment stays put
        ("feeds:\n", "feeds:\n"),
        ("feeds: ~\n", "feeds:\n"),
    ],
)
def test_feeds_are_added_to_an_empty_list(tmp_path: Path, empty: str, kept: str) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text(f"newsletter:\n  name: N\n{empty}# smtp:\n#   host: x\n")
    assert load_config(config).feeds == ()
    add_feeds_to_file(config, [FeedSpec(url="https://a.example/feed", name="A")])
    assert config.read_text() == (
        f'newsletter:\n  name: N\n{kept}  - url: "https://a.example/feed"\n    name: "A"\n'
        "# smtp:\n#   host: x\n"
    )
    assert [f.url for f in load_config(config).feeds] == ["https://a.example/feed"]


def test_name_and_house_are_for_one_feed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert mash(["init", str(tmp_path)]) == 0
    config = str(tmp_path / "feeds.yaml")
    urls = ["https://a.example/feed", "https://b.example/feed"]
    assert mash(["--config", config, "feeds", "add", *urls, "--name", "A"]) == 2
    assert "--name and --house are for one blog" in capsys.readouterr().err
