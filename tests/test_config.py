"""feeds.yaml: validation with file and line, defaults, paths relative to the file."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from mash.cli import main
from mash.config import DEFAULT_SECTIONS, load_config
from mash.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]

GOOD = """\
newsletter:
  name: Monthly Mash
  editor: Dana
feeds:
  - url: https://example.org/feed/
    name: Example
    weight: 2
  - url: https://house.example/feed/
    house: true
paths:
  database: state/mash.db
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "feeds.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_good_config_has_defaults_and_relative_paths(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert [f.url for f in config.feeds] == [
        "https://example.org/feed/",
        "https://house.example/feed/",
    ]
    assert config.feeds[0].weight == 2.0 and config.feeds[0].name == "Example"
    assert config.feeds[1].house and config.feeds[1].weight == 1.0
    assert config.db_path == tmp_path.resolve() / "state" / "mash.db"
    assert config.output_dir == tmp_path.resolve() / "output"
    assert config.newsletter.sections == DEFAULT_SECTIONS
    assert config.newsletter.sections[3].heading == "The Month in Customer Service Blogging"


def test_the_unsubscribe_link_defaults_to_mash_server(tmp_path: Path) -> None:
    served = GOOD.replace(
        "  editor: Dana\n", "  editor: Dana\n  server_url: https://news.example/mash/\n"
    )
    assert load_config(write(tmp_path, GOOD)).smtp.unsubscribe_url == ""
    config = load_config(write(tmp_path, served))
    assert config.smtp.unsubscribe_url == "https://news.example/mash/unsubscribe"
    own = served + "smtp:\n  unsubscribe_url: https://elsewhere.example/u\n"
    assert load_config(write(tmp_path, own)).smtp.unsubscribe_url == "https://elsewhere.example/u"


def test_shipped_configs_are_valid() -> None:
    config = load_config(ROOT / "feeds.yaml")
    assert len(config.feeds) >= 10
    assert sum(f.house for f in config.feeds) == 1


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (GOOD.replace("weight: 2", "weight: heavy"), 7, "weight must be a number"),
        (GOOD.replace("https://example.org/feed/", "ftp://example.org/feed/"), 5, "http://"),
        (GOOD.replace("house: true", "house: maybe"), 9, "true or false"),
        (GOOD.replace("    name: Example\n", "    nmae: Example\n"), 6, "unknown feed key 'nmae'"),
        (GOOD.replace("  editor: Dana\n", "  editor: [Dana\n"), 3, "not valid YAML"),  # where [ is
        (GOOD.replace("paths:", "  - url: https://example.org/feed/\npaths:"), 10, "listed twice"),
        ("newsletter:\n  name: x\n", 1, "missing 'feeds:'"),
    ],
)
def test_bad_config_names_file_and_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.line == line
    assert words in str(caught.value)
    assert str(caught.value).startswith(f"{path}:{line}: ")


@pytest.mark.parametrize(
    ("line", "text"),
    [
        (2, '  name: "Monthly Mash\n'),  # the quote is noticed at the end of the file
        (2, "  name: 'Monthly Mash\n"),
        (2, "  name: [Monthly Mash\n"),
        (2, "  name: {a: Monthly Mash\n"),
        (2, "  name: Monthly: Mash\n"),
    ],
)
def test_yaml_errors_are_reported_on_the_line_to_fix(tmp_path: Path, line: int, text: str) -> None:
    feeds = "".join(f"  - url: https://example.org/{n}/feed/\n" for n in range(50))
    path = write(tmp_path, f"newsletter:\n{text}  editor: Dana's\nfeeds:\n{feeds}")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.line == line, str(caught.value)
    assert str(caught.value).startswith(f"{path}:{line}: not valid YAML: ")


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("  editor: Dana\n", "  editor: Dana\n  picks_maxx: 9\n", "did you mean 'picks_max'?"),
        ("paths:", "fetch:\n  retires: 1\npaths:", "did you mean 'retries'?"),
        ("    weight: 2", "    wieght: 2", "unknown feed key 'wieght' (did you mean 'weight'?)"),
        ("paths:", "path:", "unknown top-level key 'path' (did you mean 'paths'?)"),
        ("  database:", "  databse:", "unknown path 'databse' (did you mean 'database'?)"),
        ("  database:", "  zzz:", "unknown path 'zzz' (one of database, output, editions"),
    ],
)
def test_unknown_keys_get_did_you_mean(tmp_path: Path, old: str, new: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, GOOD.replace(old, new)))
    assert words in str(caught.value)


def test_cli_exits_2_on_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, GOOD.replace("weight: 2", "weight: -1"))
    assert main(["--config", str(path), "build", "--month", "2026-10"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:7:" in err and "weight" in err


def test_cli_exits_2_on_bad_month(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--config", str(write(tmp_path, GOOD)), "build", "--month", "2026-13"])
    assert caught.value.code == 2


def test_missing_config_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


# --- bounded input (see #21) -----------------------------------------------------------


def test_ten_thousand_big_topic_examples_by_alias_are_refused_at_load(tmp_path: Path) -> None:
    """A ~150 KB file naming one 100 KB string 10,000 times (a YAML alias each) (#21)."""
    big = '"' + "customer service " * 6_000 + '"'
    many = "[&b " + big + ", *b" * 9_999 + "]"
    path = write(tmp_path, GOOD.replace("  editor: Dana\n", f"  topic_examples: {many}\n"))
    assert path.stat().st_size < 160_000
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}:3: ")
    assert "topic_examples has 10,000 items; at most 100" in str(caught.value)
    one = write(tmp_path, GOOD.replace("  editor: Dana\n", f"  topic_examples: [{big}]\n"))
    with pytest.raises(ConfigError) as caught:
        load_config(one)
    assert str(caught.value).startswith(f"{one}:3: ")
    assert "topic_examples is 102,000 characters long; at most 20,000" in str(caught.value)


@pytest.mark.parametrize(
    ("setting", "value", "words"),
    [
        ("fetch:\n  deadline", ".inf", "fetch.deadline must be a number from 0.1 to 3600, not inf"),
        ("fetch:\n  deadline", ".nan", "not nan"),
        ("fetch:\n  deadline", "0", "not 0"),
        ("fetch:\n  read_timeout", "-1", "fetch.read_timeout must be"),
        ("fetch:\n  connect_timeout", ".inf", "fetch.connect_timeout"),
        ("fetch:\n  concurrency", "0", "fetch.concurrency must be a whole number from 1"),
        ("fetch:\n  per_host", "2.5", "fetch.per_host must be a whole number"),
        ("fetch:\n  max_bytes", "1e400", "fetch.max_bytes"),
        ("fetch:\n  max_bytes", "0", "fetch.max_bytes"),
        ("fetch:\n  retries", "1000000", "fetch.retries must be a whole number from 0 to 10"),
        ("smtp:\n  rate_per_second", "-.inf", "smtp.rate_per_second"),
        ("smtp:\n  port", "70000", "smtp.port"),
        ("smtp:\n  connections", "0", "smtp.connections must be a whole number from 1 to 16"),
        ("smtp:\n  connections", "17", "not 17"),
        ("smtp:\n  connections", "2.5", "smtp.connections must be a whole number"),
        ("newsletter:\n  picks_max", "0", "picks_max must be a whole number from 1 to 100"),
        ("newsletter:\n  blurb_chars", ".inf", "blurb_chars"),
        ("newsletter:\n  name", '"' + "x" * 10_001 + '"', "name is 10,001 characters long"),
    ],
)
def test_numbers_must_be_finite_and_in_range(
    tmp_path: Path, setting: str, value: str, words: str
) -> None:
    path = write(tmp_path, f"feeds:\n  - https://example.org/feed/\n{setting}: {value}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}:4: ") and words in str(caught.value)


def test_sensible_numbers_still_load(tmp_path: Path) -> None:
    text = (
        "feeds:\n  - url: https://example.org/feed/\n    weight: 0\n"
        "fetch: {deadline: 0.5, retries: 0, max_bytes: 1048576, concurrency: 1}\n"
        "smtp: {rate_per_second: 0, port: 465, connections: 16}\n"
    )
    config = load_config(write(tmp_path, text))
    assert config.fetch.deadline == 0.5 and config.fetch.retries == 0
    assert config.smtp.rate_per_second == 0 and config.feeds[0].weight == 0
    assert config.smtp.connections == 16


def test_too_many_feeds_and_too_large_a_file_are_refused(tmp_path: Path) -> None:
    urls = ", ".join(f"https://blog{i}.example/feed" for i in range(10_001))
    with pytest.raises(ConfigError, match="feeds has 10,001 items; at most 10,000"):
        load_config(write(tmp_path, f"feeds: [{urls}]\n"))
    big = GOOD + "# " + "x" * (4 * 1024 * 1024) + "\n"
    with pytest.raises(ConfigError, match="over 4,194,304 bytes"):
        load_config(write(tmp_path, big))


def test_cli_exits_2_on_an_infinite_deadline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, GOOD + "fetch:\n  deadline: .inf\n")
    assert main(["--config", str(path), "fetch"]) == 2
    assert f"{path}:13: fetch.deadline must be" in capsys.readouterr().err


# --- fetch.allow_private: addresses and networks mash may connect to (#21) ---------------


def test_allow_private_is_a_list_of_addresses_and_networks(tmp_path: Path) -> None:
    text = GOOD + 'fetch:\n  allow_private:\n    - 127.0.0.1\n    - 10.0.0.0/8\n    - "::1"\n'
    text += "    - fd00::/8\n"
    fetch = load_config(write(tmp_path, text)).fetch
    assert fetch.allow_private == tuple(
        ipaddress.ip_network(n) for n in ("127.0.0.1/32", "10.0.0.0/8", "::1/128", "fd00::/8")
    )
    assert load_config(write(tmp_path, GOOD)).fetch.allow_private == ()
    flow = load_config(write(tmp_path, GOOD + "fetch:\n  allow_private: [192.168.1.20]\n"))
    assert flow.fetch.allow_private == (ipaddress.ip_network("192.168.1.20"),)


def test_allow_private_false_of_old_configs_is_an_empty_list(tmp_path: Path) -> None:
    for value in ("false", "[]", ""):
        text = GOOD + f"fetch:\n  allow_private: {value}\n"
        assert load_config(write(tmp_path, text)).fetch.allow_private == ()


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ("true", "allow_private: true no longer exists: list the private addresses"),
        ("[intranet.example]", "'intranet.example' is not an IP address or CIDR network"),
        ("[10.0.0.1/8]", "has host bits set"),
        ("[127.0.0.1, 1:20]", "'1:20' is not an IP address"),  # as written, not sexagesimal 80
        ("[[10.0.0.0/8]]", "expected a single value"),
        ("10.0.0.0/8", "allow_private must be a list"),
    ],
)
def test_bad_allow_private_names_file_and_line(tmp_path: Path, entry: str, words: str) -> None:
    path = write(tmp_path, GOOD + f"fetch:\n  allow_private: {entry}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    line = GOOD.count("\n") + 2
    assert str(caught.value).startswith(f"{path}:{line}: ") and words in str(caught.value)
