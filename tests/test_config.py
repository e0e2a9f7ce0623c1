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
        (GOOD.replace("  editor: Dana\n", "  editor: [Dana\n"), 4, "not valid YAML"),
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
