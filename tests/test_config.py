"""feeds.yaml: validation with file and line, defaults, paths relative to the file."""

from __future__ import annotations

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
