"""Every CLI command has help and appears in the README."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from mash.cli import build_parser

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def commands(parser: argparse.ArgumentParser, prefix: str = "mash") -> list[str]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append(f"{prefix} {name}")
                found += commands(sub, f"{prefix} {name}")
    return found


ALL = commands(build_parser())


def test_there_are_commands() -> None:
    assert {"mash fetch", "mash build", "mash posts", "mash draft"} <= set(ALL)


@pytest.mark.parametrize("command", ALL)
def test_command_has_help_and_is_documented(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args([*command.split()[1:], "--help"])
    assert caught.value.code == 0
    assert "usage: mash" in capsys.readouterr().out
    assert f"`{command}" in README, f"{command} is not in the README's CLI reference"
