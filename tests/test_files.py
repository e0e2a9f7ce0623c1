"""The one atomic writer, and what a build leaves on disk: modes, the preview's date (#20)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from mash.cli import main as mash
from mash.files import write_atomic


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_writes_bytes_and_text_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "folder" / "a.txt"
    assert write_atomic(target, "caf\u00e9\n") == target
    assert target.read_bytes() == "caf\u00e9\n".encode()
    write_atomic(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert [p.name for p in target.parent.iterdir()] == ["a.txt"]


def test_mode_is_what_open_gives_under_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        write_atomic(tmp_path / "a", "x")
        os.umask(0o022)
        write_atomic(tmp_path / "b", "x")
        write_atomic(tmp_path / "c", "x", private=True, sync=True)
    finally:
        os.umask(old)
    assert mode(tmp_path / "a") == 0o640
    assert mode(tmp_path / "b") == 0o644
    assert mode(tmp_path / "c") == 0o600


def test_failed_check_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "feeds.yaml"
    target.write_text("old\n")
    seen: list[str] = []

    def check(tmp: Path) -> None:
        seen.append(tmp.read_text())
        raise ValueError("not valid")

    with pytest.raises(ValueError, match="not valid"):
        write_atomic(target, "new\n", check=check)
    assert seen == ["new\n"]
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["feeds.yaml"]


def test_built_and_published_files_are_readable_by_others(workspace: Path, umask_022: None) -> None:
    """A web server or another user must be able to read output/ (was 0600, see #20)."""
    assert mash(["--config", str(workspace), "build", "--month", "2026-10"]) == 0
    assert mash(["--config", str(workspace), "site"]) == 0
    built = sorted((workspace.parent / "2026-10").iterdir())
    site = sorted(p for p in (workspace.parent / "site").rglob("*") if p.is_file())
    assert {p.name for p in built} >= {"email.html", "email.txt", "issue.eml", "issue.json"}
    assert len(site) > 3
    assert {str(p): oct(mode(p)) for p in built + site if mode(p) != 0o644} == {}


def test_preview_eml_is_dated_when_built(workspace: Path) -> None:
    """issue.eml carried the 1st of the issue's month, weeks before it could go out."""
    before = datetime.now(UTC).replace(microsecond=0)
    assert mash(["--config", str(workspace), "build", "--month", "2026-09"]) == 0
    after = datetime.now(UTC) + timedelta(seconds=1)
    raw = (workspace.parent / "2026-09" / "issue.eml").read_bytes()
    date = BytesParser(policy=policy.default).parsebytes(raw)["Date"].datetime
    assert before <= date <= after
