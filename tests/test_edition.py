"""The edition file: strict reading, problems with file, line and hint, drafts (see #20).

CLI runs use the fetched demo workspace (tests/conftest.py) and a real aiosmtpd on
127.0.0.1 for sending.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml

from mash.cli import main as mash
from mash.edition import (
    ESSAY_PLACEHOLDER,
    THEME_PLACEHOLDER,
    Change,
    apply_change,
    draft_reasons,
    edition_problems,
    field_values,
    parse_edition,
)
from mash.errors import EditionError
from mash.records import Edition
from mash.urls import url_key
from tests.test_send import Collector, smtpd  # noqa: F401 (a fixture)

MONTH = "2026-10"
POSTS = (
    "https://blog.example/2026/10/damaged-in-transit/",
    "https://blog.example/2026/10/the-callback-promise/",
    "https://other.example/2026/10/one-question/",
)


def problems_of(text: str, urls: tuple[str, ...] | None = POSTS) -> list[Any]:
    return edition_problems(text, MONTH, Path("editions/2026-10.md"), urls)


# --- the checks, one list ----------------------------------------------------------------


def test_front_matter_that_never_closes_is_a_problem_on_line_1() -> None:
    text = '---\ntheme: "the Second Answer"\npins: []\n\nThe essay starts here.\n'
    (problem,) = problems_of(text)
    assert (problem.file, problem.line) == ("editions/2026-10.md", 1)
    assert "never closed" in problem.message and "---" in problem.hint
    with pytest.raises(EditionError) as caught:
        parse_edition(text, MONTH, Path("editions/2026-10.md"))
    assert str(caught.value).startswith("editions/2026-10.md:1: ")


def test_front_matter_after_blank_lines_is_a_problem() -> None:
    (problem,) = problems_of('\n\n---\ntheme: "x"\n---\nessay\n')
    assert problem.line == 3 and "first line" in problem.message


def test_unknown_keys_get_did_you_mean() -> None:
    text = "---\ntheme: x\npinz:\n  - https://blog.example/2026/10/damaged-in-transit/\n---\nE\n"
    (problem,) = problems_of(text)
    assert problem.line == 3
    assert problem.message == "unknown key 'pinz'" and problem.hint == "did you mean 'pins'?"
    (far,) = problems_of("---\nzzz: 1\n---\nE\n")
    assert "keys: theme, pins" in far.hint  # nothing close: the list of keys


def test_wrong_types_are_problems_with_lines() -> None:
    text = (
        "---\n"
        "theme: 2026\n"  # 2
        "pins: {a: b}\n"  # 3
        "drops:\n"
        "  - not a url\n"  # 5
        "blurbs: [x]\n"  # 6
        "listening: 12\n"  # 7
        "shortlist: yes\n"  # 8
        "---\nE\n"
    )
    found = {(p.line, p.message) for p in problems_of(text)}
    assert (2, "theme must be text, not 2026") in found
    assert (3, "pins must be a list of post URLs") in found
    assert (5, "drops: 'not a url' is not a post URL") in found
    assert (6, "blurbs must map post URL: blurb") in found
    assert (7, "listening: 12 is not a post URL") in found
    assert (8, "shortlist must be a list (`mash draft` writes it)") in found
    assert len(found) == 6


def test_yaml_errors_name_the_line_in_the_file() -> None:
    text = '---\ntheme: x\npins: ["https://blog.example/a/"\ndrops: []\n---\nE\n'
    (problem,) = problems_of(text)
    assert problem.line == 3 and "not valid YAML" in problem.message


def test_entries_that_match_no_post_name_the_closest() -> None:
    text = (
        "---\n"
        "pins:\n"
        "  - https://blog.example/2026/10/damaged-in-transt/\n"  # 3: a typo
        "order: [https://nowhere.example/p]\n"  # 4: nothing like it
        "blurbs:\n"
        '  "https://blog.example/2026/10/the-callback-promise": "Mine."\n'  # 6: same post
        "listening: https://other.example/2026/10/one-questoin/\n"  # 7
        "---\nE\n"
    )
    problems = problems_of(text)
    assert [(p.line, p.hint) for p in problems] == [
        (3, f"did you mean {POSTS[0]!r}?"),
        (4, "`mash posts --month 2026-10` lists them"),
        (7, f"did you mean {POSTS[2]!r}?"),
    ]
    assert problems[0].message == (
        "pins: https://blog.example/2026/10/damaged-in-transt/ matches no post of 2026-10"
    )
    assert not problems_of(text, urls=None)  # without the month's posts: structure only


def test_a_post_both_pinned_and_dropped_is_a_problem() -> None:
    text = f"---\npins: [{POSTS[0]}]\ndrops: [{POSTS[0]}]\n---\nE\n"
    (problem,) = problems_of(text)
    assert problem.line == 2 and "also in drops" in problem.message


def test_a_good_edition_has_no_problems() -> None:
    text = (
        "---\n# my notes\ntheme: the Second Answer\npins: [" + POSTS[0] + "]\n"
        "drops: []\norder:\nblurbs:\n  " + POSTS[1] + ": Mine.\nlistening:\n"
        "shortlist:\n- url: x\n---\nThe essay.\n"
    )
    assert problems_of(text) == []
    edition = parse_edition(text, MONTH)
    assert edition.theme == "the Second Answer" and edition.pins == (POSTS[0],)
    assert edition.listening is None and edition.editorial_md == "The essay."


def test_draft_reasons() -> None:
    assert draft_reasons(Edition(MONTH, theme="x", editorial_md="An essay.")) == []
    assert draft_reasons(Edition(MONTH, theme="x")) == ["the essay is empty"]
    assert draft_reasons(
        Edition(MONTH, theme=THEME_PLACEHOLDER, editorial_md=f"{ESSAY_PLACEHOLDER}, in Markdown")
    ) == ["the theme is still the placeholder", "the essay is still the placeholder"]


# --- mash build -----------------------------------------------------------------------


def edition_path(config: Path, month: str = MONTH) -> Path:
    return config.parent / "editions" / f"{month}.md"


def run(config: Path, *args: str) -> int:
    return mash(["--config", str(config), *args])


def issue_json(config: Path, month: str = MONTH) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((config.parent / month / "issue.json").read_text())
    return data


def test_build_refuses_front_matter_without_its_closing_line(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = edition_path(workspace)
    text = path.read_text()
    head, essay = text.split("\n---\n", 1)
    path.write_text(f"{head}\n\n{essay}")  # the editor deleted the closing ---
    assert run(workspace, "build", "--month", MONTH) == 2
    err = capsys.readouterr().err
    assert f"mash: config error: {path}:1: the front matter opened here is never closed" in err
    assert not (workspace.parent / MONTH / "issue.json").exists()  # nothing published


def test_build_names_a_typo_d_pin_and_the_post_meant(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = edition_path(workspace)
    meta = yaml.safe_load(path.read_text().split("---")[1])
    (pin,) = meta["pins"]
    path.write_text(path.read_text().replace(pin, pin.replace("transit", "transt"), 1))
    assert run(workspace, "build", "--month", MONTH) == 2
    err = capsys.readouterr().err
    assert f"{path}:4: pins: {pin.replace('transit', 'transt')} matches no post of 2026-10" in err
    assert f"(did you mean {pin!r}?)" in err


def test_build_lists_every_problem_one_a_line(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = edition_path(workspace)
    path.write_text("---\nthemes: x\npins: [https://nowhere.example/p]\n---\nEssay.\n")
    assert run(workspace, "build", "--month", MONTH) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        f"mash: config error: {path}:2: unknown key 'themes' (did you mean 'theme'?)",
        f"mash: config error: {path}:3: pins: https://nowhere.example/p matches no post of "
        "2026-10 (`mash posts --month 2026-10` lists them)",
    ]


def test_a_written_edition_is_not_a_draft(workspace: Path) -> None:
    assert run(workspace, "build", "--month", MONTH) == 0
    assert issue_json(workspace)["draft"] is False


# --- mash draft -----------------------------------------------------------------------


def test_draft_of_a_new_month_is_a_draft_until_written(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = edition_path(workspace, "2026-09")
    path.unlink()
    assert run(workspace, "draft", "--month", "2026-09") == 0
    text = path.read_text()
    meta = yaml.safe_load(text.split("\n---\n")[0].removeprefix("---\n"))
    assert meta["theme"] == THEME_PLACEHOLDER  # not last month's theme
    assert meta["listening"] is None and meta["pins"] == []  # no choice made for him
    assert "Customer's Invisible Rules" not in text
    capsys.readouterr()
    assert run(workspace, "build", "--month", "2026-09") == 0
    err = capsys.readouterr().err
    assert f"warning: this issue is a draft: {path}: the theme is still the placeholder" in err
    data = issue_json(workspace, "2026-09")
    assert data["draft"] is True
    assert data["listening"]["reason"] != "the editor's pick"
    # the editor writes his theme and essay: no longer a draft
    text = text.replace(THEME_PLACEHOLDER, "the Quiet Fix").split("\n---\n")[0]
    path.write_text(text + "\n---\nMy essay.\n")
    assert run(workspace, "build", "--month", "2026-09") == 0
    assert issue_json(workspace, "2026-09")["draft"] is False


def test_site_leaves_out_an_issue_built_from_a_draft(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A draft can be built and previewed, but `mash site` does not publish it (see #20)."""
    edition_path(workspace, MONTH).unlink()
    assert run(workspace, "build", "--month", "2026-09") == 0
    assert run(workspace, "draft", "--month", MONTH) == 0
    assert run(workspace, "build", "--month", MONTH) == 0
    assert issue_json(workspace, MONTH)["draft"] is True
    capsys.readouterr()
    assert run(workspace, "site") == 0
    err = capsys.readouterr().err
    assert f"warning: {MONTH} was built from a draft edition and is not on the site" in err
    site = workspace.parent / "site"
    assert (site / "2026" / "09" / "index.html").is_file()
    assert not (site / "2026" / "10").exists()
    assert "2026/10/" not in (site / "feed.xml").read_text(encoding="utf-8")
    assert THEME_PLACEHOLDER not in (site / "index.html").read_text(encoding="utf-8")


def test_no_draft_for_a_month_without_posts(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(workspace, "draft", "--month", "2026-11") == 1
    db = sqlite3.connect(workspace.parent / "data" / "mash.db")
    counts = dict(
        db.execute(
            "SELECT substr(coalesce(published, page_published, first_seen), 1, 7), count(*) "
            "FROM posts GROUP BY 1"
        ).fetchall()
    )
    assert set(counts) == {"2026-09", "2026-10"}
    assert (
        f"no posts stored for 2026-11; months with posts: 2026-09 ({counts['2026-09']}), "
        f"2026-10 ({counts['2026-10']}); use --month"
    ) in capsys.readouterr().err
    assert not edition_path(workspace, "2026-11").exists()


EDITED = """\
---
# Dana's notes for October: keep these!
theme:   'the Second Answer'     # odd spacing, single quotes
pins: [ "{pin}" ]   # flow style, spaces inside

# a comment between keys
drops:
    - "{drop}"      # deeper indent
shortlist:
  - url: https://stale.example/old/
    title: An old shortlist entry
  # a comment inside the old shortlist
  - {{url: "https://stale.example/older/", score: 1}}
blurbs:
  "{blurb_url}": >-
     A folded blurb,
     on two lines.
# listening: not chosen yet
---

Every support conversation has a first answer.

  An indented line, and trailing spaces.   \n"""


def test_draft_keeps_everything_but_the_shortlist_byte_for_byte(workspace: Path) -> None:
    path = edition_path(workspace)
    meta = yaml.safe_load(path.read_text().split("---")[1])
    text = EDITED.format(
        pin=meta["pins"][0], drop=meta["drops"][0], blurb_url=list(meta["blurbs"])[0]
    )
    path.write_text(text)
    assert run(workspace, "draft", "--month", MONTH) == 0
    after = path.read_text()
    before_list, rest = text.split("shortlist:\n", 1)
    old_list_end = rest.index("blurbs:\n")
    assert after.startswith(before_list + "shortlist:\n")
    assert after.endswith(rest[old_list_end:])  # the rest of it, and the essay, untouched
    front = yaml.safe_load(after.split("\n---\n")[0].removeprefix("---\n"))
    assert "listening" not in front  # never chosen for him
    urls = [row["url"] for row in front["shortlist"]]
    assert len(urls) >= 8 and "https://stale.example/old/" not in urls
    keys = {"url", "title", "blog", "score", "status", "blurb", "blurb_source"}
    assert keys == set(front["shortlist"][0])
    # a second run changes nothing, and the edition builds as written
    assert run(workspace, "draft", "--month", MONTH) == 0
    assert path.read_text() == after
    assert run(workspace, "build", "--month", MONTH) == 0
    picks = issue_json(workspace)["picks"]
    blurbs = [p["blurb"] for p in picks if url_key(p["url"]) == url_key(list(meta["blurbs"])[0])]
    assert blurbs == ["A folded blurb, on two lines."]


def test_redraft_of_the_starter_keeps_it_and_listening_empty(workspace: Path) -> None:
    path = edition_path(workspace)
    path.unlink()
    assert run(workspace, "draft", "--month", MONTH) == 0
    first = path.read_text()
    assert run(workspace, "draft", "--month", MONTH) == 0
    assert path.read_text() == first
    assert re.search(r"^listening: +#", first, re.M)  # empty: the most popular post


def test_draft_of_an_essay_without_front_matter_adds_only_the_shortlist(workspace: Path) -> None:
    path = edition_path(workspace)
    path.write_text("# The Quiet Fix\n\nMy essay.\n")
    assert run(workspace, "draft", "--month", MONTH) == 0
    text = path.read_text()
    assert text.startswith("---\nshortlist:\n") and text.endswith(
        "\n---\n# The Quiet Fix\n\nMy essay.\n"
    )


def test_draft_refuses_to_splice_into_broken_front_matter(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = edition_path(workspace)
    path.write_text("---\ntheme: [x\n---\nEssay.\n")
    assert run(workspace, "draft", "--month", MONTH) == 2
    assert f"{path}:2: front matter is not valid YAML" in capsys.readouterr().err
    assert path.read_text() == "---\ntheme: [x\n---\nEssay.\n"


def test_draft_warns_of_entries_that_match_no_post(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = edition_path(workspace)
    path.write_text("---\ntheme: x\npins: [https://nowhere.example/p]\n---\nEssay.\n")
    assert run(workspace, "draft", "--month", MONTH) == 0
    assert f"warning: {path}:3: pins: https://nowhere.example/p matches no post" in (
        capsys.readouterr().err
    )


# --- pins are a status, not a score ---------------------------------------------------------


def posts_json(config: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert run(config, "posts", "--month", MONTH, "--json") == 0
    rows: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return rows


def test_a_pinned_post_shows_its_own_score(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = edition_path(workspace)
    essay = path.read_text().split("\n---\n", 1)[1]
    path.write_text(f"---\ntheme: x\n---\n{essay}")
    rows = posts_json(workspace, capsys)
    out = [r for r in rows if r["status"] == "out" and r["reason"].startswith("below the cut")]
    chosen = out[0]
    path.write_text(f"---\ntheme: x\npins: [{chosen['url']}]\n---\n{essay}")
    pinned = {r["url"]: r for r in posts_json(workspace, capsys)}[chosen["url"]]
    assert pinned["status"] == "picked" and pinned["reason"] == "pinned by the editor"
    assert pinned["score"] == chosen["score"] < 1
    assert run(workspace, "build", "--month", MONTH) == 0
    picks = issue_json(workspace)["picks"]
    assert picks[0]["url"] == chosen["url"]  # pins still lead the roundup
    assert picks[0]["score"] == chosen["score"]
    assert run(workspace, "draft", "--month", MONTH) == 0
    front = yaml.safe_load(path.read_text().split("\n---\n")[0].removeprefix("---\n"))
    row = next(r for r in front["shortlist"] if r["url"] == chosen["url"])
    assert row["score"] == round(chosen["score"], 3)


# --- mash send refuses a draft ------------------------------------------------------------


def smtp_workspace(config: Path, port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    data = yaml.safe_load(config.read_text())
    data["smtp"].update(host="127.0.0.1", port=port, security="none", rate_per_second=0)
    config.write_text(yaml.safe_dump(data))
    (config.parent / "data" / "subscribers.csv").write_text(
        "email,name,status\nreader@example.com,Reader,subscribed\n"
    )
    monkeypatch.setenv("MASH_SECRET", "test-secret-not-for-production")


def test_send_refuses_an_untouched_draft_unless_forced_or_a_proof(
    workspace: Path,
    smtpd: tuple[Collector, int],  # noqa: F811 (the fixture)
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    collector, port = smtpd
    smtp_workspace(workspace, port, monkeypatch)
    path = edition_path(workspace)
    path.unlink()
    assert run(workspace, "draft", "--month", MONTH) == 0
    assert run(workspace, "build", "--month", MONTH) == 0
    capsys.readouterr()
    for extra in ([], ["--dry-run"]):
        assert run(workspace, "send", "--month", MONTH, *extra) == 1
        err = capsys.readouterr().err
        assert f"mash: {path}: the built issue of 2026-10 is a draft" in err
        assert "the theme is still the placeholder" in err and "--force" in err
    assert collector.received == []
    assert run(workspace, "send", "--month", MONTH, "--proof", "editor@example.org") == 0
    assert collector.recipients() == ["editor@example.org"]
    assert run(workspace, "send", "--month", MONTH, "--dry-run", "--force") == 0
    assert "reader@example.com" in capsys.readouterr().out
    assert run(workspace, "send", "--month", MONTH, "--force") == 0
    assert collector.recipients() == ["editor@example.org", "reader@example.com"]


def test_send_of_a_written_edition_needs_no_force(
    workspace: Path,
    smtpd: tuple[Collector, int],  # noqa: F811 (the fixture)
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    collector, port = smtpd
    smtp_workspace(workspace, port, monkeypatch)
    assert run(workspace, "build", "--month", MONTH) == 0
    assert run(workspace, "send", "--month", MONTH) == 0
    assert collector.recipients() == ["reader@example.com"]


# --- the desk's edits (see #17) ----------------------------------------------------------

_HAND = """\
---
# my notes on this month: kept
theme: "Old"   # the title uses it
pins: ["https://a.example/1"]  # always in
drops: []
blurbs:
  "https://a.example/1": "Mine."
shortlist:
- url: https://a.example/1
  title: One
---

The essay, *as written*.
"""


def test_a_change_rewrites_its_keys_only_and_keeps_every_other_byte() -> None:
    text = apply_change(_HAND, "2026-10", Change("pin", url="https://a.example/2"))
    assert text == _HAND.replace(
        'pins: ["https://a.example/1"]  # always in',
        'pins: ["https://a.example/1", "https://a.example/2"]  # always in',
    )
    text = apply_change(text, "2026-10", Change("drop", url="https://a.example/1"))
    edition = parse_edition(text, "2026-10")
    assert edition.pins == ("https://a.example/2",) and edition.drops == ("https://a.example/1",)
    assert "# my notes on this month: kept\n" in text and "shortlist:\n- url:" in text
    assert text.endswith("---\n\nThe essay, *as written*.\n")


def test_added_keys_go_before_the_shortlist_and_read_back_exactly() -> None:
    blurb = 'He said "no" \\ then: #1 — fine'
    text = apply_change(_HAND, "2026-10", Change("order", urls=("https://a.example/2",)))
    text = apply_change(text, "2026-10", Change("blurb", url="https://a.example/2", text=blurb))
    text = apply_change(text, "2026-10", Change("listening", url="https://h.example/x"))
    text = apply_change(text, "2026-10", Change("essay", text="New essay.\r\n\r\nTwo."))
    edition = parse_edition(text, "2026-10")
    assert edition.order == ("https://a.example/2",) and edition.listening == "https://h.example/x"
    assert dict(edition.blurbs) == {"https://a.example/1": "Mine.", "https://a.example/2": blurb}
    assert edition.editorial_md == "New essay.\n\nTwo."
    assert text.index("order:") < text.index("shortlist:")
    removed = apply_change(text, "2026-10", Change("blurb", url="https://a.example/1", text=""))
    assert dict(parse_edition(removed, "2026-10").blurbs) == {"https://a.example/2": blurb}


def test_a_change_to_unreadable_front_matter_is_refused() -> None:
    with pytest.raises(EditionError):
        apply_change("---\npins: [\n---\nEssay\n", "2026-10", Change("pin", url="https://a/1"))


def test_field_values_compare_only_what_a_change_touches() -> None:
    one = parse_edition(_HAND, "2026-10")
    other = parse_edition(_HAND.replace("*as written*", "rewritten"), "2026-10")
    assert field_values(one, Change("theme", text="x")) == field_values(other, Change("theme"))
    assert field_values(one, Change("essay")) != field_values(other, Change("essay"))
