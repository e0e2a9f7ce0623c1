"""Curating a month: why each post is in or out (`mash posts`), the desk's view and edits (#17)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from mash.errors import (
    BuildError,
    ConfigError,
)
from mash.files import write_atomic
from mash.pipeline.build import (
    BuildResult,
    build_month,
    rank_month,
    stored_thumbnail,
    write_draft,
)
from mash.records import (
    Config,
    Edition,
    Problem,
    Ranking,
    RenderedIssue,
)
from mash.store import open_store

if TYPE_CHECKING:
    from mash.edition import Change
    from mash.send import SendReport


def explain(config: Config, month: str) -> Ranking:
    """Return the month's ranking for `mash posts`."""
    with open_store(config) as store, store.snapshot():
        return rank_month(config, month, store)


# --- the desk (see #17) -----------------------------------------------------------------


@dataclass(frozen=True)
class EditionFile:
    """An edition file as read at one moment; ``version`` is its mtime and hash."""

    path: Path
    text: str
    version: str


@dataclass(frozen=True)
class Edited:
    """What became of one desk change: the file after it, and why it was refused if it was."""

    file: EditionFile
    refused: str = ""
    merged: bool = False  # made on a text that changed on disk after the page read it


@dataclass(frozen=True)
class DeskView:
    """The month as the desk shows it: the file, the ranking and the issue it makes."""

    file: EditionFile
    edition: Edition
    ranking: Ranking
    problems: tuple[Problem, ...]
    rendered: RenderedIssue


def read_edition_file(config: Config, month: str) -> EditionFile:
    """Read editions/YYYY-MM.md with its version; write the draft first when it is missing."""
    path = config.editions_dir / f"{month}.md"
    if not path.exists():
        write_draft(config, month)
    return _edition_file(path)


def _edition_file(path: Path) -> EditionFile:
    import hashlib

    try:
        data = path.read_bytes()
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        raise ConfigError("the edition file is gone; run `mash draft`", str(path)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"edition is not UTF-8 text ({e.reason})", str(path)) from None
    return EditionFile(path, text, f"{mtime}-{hashlib.sha256(data).hexdigest()[:20]}")


def change_edition(
    config: Config, month: str, change: Change, seen: str, seen_text: str | None = None
) -> Edited:
    """Make one change to the edition file at once, atomically; never lose a newer text.

    ``seen`` is the version the editor's page was made from (``seen_text`` its text, when
    known). If the file changed since, the change is made to the newer text when it only
    adds or removes a URL, or when what it replaces did not change; otherwise it is
    refused and the newer file is returned for the page to show. The file is compared
    again just before the replace, so a write that lands meanwhile is not overwritten.
    """
    from mash.edition import MERGEABLE, apply_change, field_values, parse_edition_leniently

    for _ in range(5):
        current = read_edition_file(config, month)
        merged = current.version != seen
        if merged and change.action not in MERGEABLE:
            now = parse_edition_leniently(current.text, month)
            if seen_text is None or field_values(
                parse_edition_leniently(seen_text, month), change
            ) != field_values(now, change):
                return Edited(current, refused=_refusal(current.path, change))
        text = apply_change(current.text, month, change, current.path)
        try:
            write_atomic(current.path, text.encode(), check=partial(_unchanged, current))
        except _ChangedMeanwhile:
            continue
        return Edited(_edition_file(current.path), merged=merged)
    raise BuildError(f"{config.editions_dir / f'{month}.md'} keeps changing; try again")


class _ChangedMeanwhile(Exception):
    """The edition file changed between reading it and replacing it."""


def _unchanged(read: EditionFile, _tmp: Path) -> None:
    if _edition_file(read.path).version != read.version:
        raise _ChangedMeanwhile(str(read.path))


def _refusal(path: Path, change: Change) -> str:
    what = "essay" if change.action == "essay" else change.action.replace("_", " ")
    return (
        f"{path} changed on disk after this page was loaded, and its {what} changed too: "
        "the desk shows the newer file now and did not save your change"
    )


def desk_view(config: Config, month: str, now: datetime | None = None) -> DeskView:
    """Rank the month with its edition file and compose and render the issue it makes.

    Nothing is written but a missing draft. The edition is read leniently, so a file the
    editor is halfway through editing still previews; its problems are returned. Uses
    only the thumbnails `mash build` stored: no network.
    """
    from mash.compose import compose_issue
    from mash.edition import edition_problems, parse_edition_leniently
    from mash.render import make_env, render_issue

    file = read_edition_file(config, month)
    now = now or datetime.now(UTC)
    with open_store(config) as store:
        ranking = rank_month(config, month, store, now)
        volume = store.volume_for(month, config.newsletter.volume_start)
    urls = [c.post.url for c in ranking.candidates]
    problems = edition_problems(file.text, month, file.path, urls)
    edition = parse_edition_leniently(file.text, month, file.path)
    issue, _ = compose_issue(ranking, edition, config.newsletter, volume)
    site = config.output_dir / "site"
    picks = tuple(replace(p, thumbnail=stored_thumbnail(site, p.image)) for p in issue.picks)
    issue = replace(issue, picks=picks)
    rendered = render_issue(issue, make_env(config.templates_dir), config.smtp, now)
    return DeskView(file, edition, ranking, tuple(problems), rendered)


def send_proof(config: Config, month: str, address: str) -> tuple[BuildResult, SendReport]:
    """Build the month, then mail one [PROOF] copy to address: `mash build` and
    `mash send --proof` in one step, so the proof is what the desk shows."""
    from mash.send import load_email, send_issue

    built = build_month(config, month)
    html, text = load_email(config.output_dir, month)
    return built, send_issue(config, built.issue, html, text, proof=address)
