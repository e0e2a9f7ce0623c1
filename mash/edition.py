"""The editor's edition file, ``editions/YYYY-MM.md``: read it strictly, check it, draft it.

The file is YAML front matter between two ``---`` lines (theme, pins, drops, order,
blurbs, the listening pick, and the shortlist ``mash draft`` refreshes), then the essay
in Markdown. Every check is made by ``edition_problems``, one list of problems with
file, line and a hint, so that ``mash build`` and a ``mash check`` report the same.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mash.config import did_you_mean, yaml_error_at
from mash.dates import month_name
from mash.errors import ConfigError, EditionError
from mash.records import Edition, Problem, Ranking, ScoredPost
from mash.urls import url_key

KEYS = (
    "theme",
    "pins",
    "drops",
    "order",
    "blurbs",
    "listening",
    "listening_blurb",
    "shortlist",
)
_URL_LISTS = ("pins", "drops", "order")
_FENCE = "---"

# What `mash draft` writes where the editor has not written yet; `mash build` marks an
# issue with either as a draft, and `mash send` refuses it (see #20).
THEME_PLACEHOLDER = "YOUR THEME HERE"
ESSAY_PLACEHOLDER = "Write this month's essay here"

SHORTLIST_SIZE = 20


# --- reading ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    """A post URL the editor named: under which key, on which line."""

    key: str
    url: str
    line: int | None


@dataclass(frozen=True)
class _Parsed:
    edition: Edition
    entries: tuple[_Entry, ...]
    problems: tuple[Problem, ...]
    front: yaml.Node | None  # the front matter's root node, None without front matter


def edition_problems(
    text: str, month: str, path: Path | None = None, urls: Collection[str] | None = None
) -> list[Problem]:
    """Return every problem of an edition file's text.

    The front matter must close, be YAML, use only the known keys with the right types;
    given ``urls`` (the month's posts), every post URL it names must be one of them.
    """
    parsed = _parse(text, month, path)
    problems = list(parsed.problems)
    if urls is not None:
        problems += _unmatched(parsed.entries, month, _where(path, month), urls)
    return problems


def parse_edition(
    text: str, month: str, path: Path | None = None, urls: Collection[str] | None = None
) -> Edition:
    """Parse an edition file's text; raise EditionError listing every problem."""
    parsed = _parse(text, month, path)
    problems = list(parsed.problems)
    if urls is not None:
        problems += _unmatched(parsed.entries, month, _where(path, month), urls)
    if problems:
        raise EditionError(problems)
    return parsed.edition


def parse_edition_leniently(text: str, month: str, path: Path | None = None) -> Edition:
    """Return what can be read of an edition file's text, problems or not (the desk's
    preview while the editor is halfway through an edit)."""
    return _parse(text, month, path).edition


def read_edition(
    editions_dir: Path, month: str, urls: Collection[str] | None = None, strict: bool = True
) -> Edition:
    """Read editions/YYYY-MM.md strictly, or an empty edition when the editor wrote none.

    With ``urls`` (the month's posts), entries that match none of them are errors too.
    Not ``strict``: what can be read, problems or not (ranking before the full check).
    """
    path = editions_dir / f"{month}.md"
    text = edition_text(path)
    if text is None:
        return Edition(month=month)
    return parse_edition(text, month, path, urls) if strict else _parse(text, month, path).edition


def edition_text(path: Path) -> str | None:
    """Return an edition file's text, None where there is none; not UTF-8 is an error."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as e:
        raise ConfigError(f"edition is not UTF-8 text ({e.reason})", str(path)) from None


def _where(path: Path | None, month: str) -> str:
    return str(path) if path else f"editions/{month}.md"


def _split(text: str) -> tuple[list[str], int | None]:
    """Return the text's lines and the 0-based line of the closing fence.

    None when there is no front matter; -1 when it opens and never closes.
    """
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].lstrip("\ufeff").rstrip() != _FENCE:
        return lines, None
    for number in range(1, len(lines)):
        if lines[number].rstrip() == _FENCE:
            return lines, number
    return lines, -1


def _parse(text: str, month: str, path: Path | None) -> _Parsed:
    where = _where(path, month)
    problems: list[Problem] = []
    lines, fence = _split(text)
    empty = _Parsed(Edition(month=month, path=path), (), (), None)
    if fence is None:
        if text.lstrip().startswith(_FENCE + "\n") and text.strip() != _FENCE:
            first = len(text) - len(text.lstrip("\n\r\t \ufeff"))
            line = text[:first].count("\n") + 1
            problems.append(
                Problem(
                    where,
                    line,
                    "front matter must start on the first line",
                    "remove the lines before the opening ---",
                )
            )
            return _Parsed(empty.edition, (), tuple(problems), None)
        return _Parsed(Edition(month=month, editorial_md=text.strip(), path=path), (), (), None)
    if fence == -1:
        problems.append(
            Problem(
                where,
                1,
                "the front matter opened here is never closed",
                "add a line with only --- between the front matter and the essay",
            )
        )
        return _Parsed(empty.edition, (), tuple(problems), None)
    front = "".join(lines[1:fence])
    try:
        root = yaml.compose(front, Loader=_LOADER)
    except yaml.MarkedYAMLError as e:
        at, problem = yaml_error_at(e, front)
        at = at + 2 if at is not None else None  # the YAML starts on the file's line 2
        problems.append(Problem(where, at, f"front matter is not valid YAML: {problem}"))
        return _Parsed(empty.edition, (), tuple(problems), None)
    body = "".join(lines[fence + 1 :]).strip()
    if root is None:
        return _Parsed(Edition(month=month, editorial_md=body, path=path), (), (), None)
    reader = _Reader(where)
    fields = reader.fields(root)
    entries = tuple(_entries(reader, fields))
    edition = Edition(
        month=month,
        theme=reader.text(fields, "theme").strip(),
        editorial_md=body,
        pins=tuple(e.url for e in entries if e.key == "pins"),
        drops=tuple(e.url for e in entries if e.key == "drops"),
        order=tuple(e.url for e in entries if e.key == "order"),
        blurbs=reader.blurbs(fields),
        listening=next((e.url for e in entries if e.key == "listening"), None),
        listening_blurb=reader.text(fields, "listening_blurb").strip(),
        path=path,
    )
    if "shortlist" in fields and not (
        isinstance(fields["shortlist"][1], yaml.SequenceNode) or _is_null(fields["shortlist"][1])
    ):
        reader.fail(fields["shortlist"][1], "shortlist must be a list (`mash draft` writes it)")
    problems += reader.problems
    problems += _conflicts(entries, where)
    return _Parsed(edition, entries, tuple(problems), root)


# libyaml when present, as config does; marks (lines) are the same
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SCALARS = yaml.SafeLoader("")


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and _value(node) is None


def _value(node: yaml.ScalarNode) -> Any:
    try:
        return _SCALARS.construct_object(node)
    except yaml.YAMLError:  # a tag safe YAML does not know (!thing): its text
        return node.value
    finally:
        _SCALARS.constructed_objects.clear()


class _Reader:
    """Reads front-matter nodes into values, collecting a problem for each wrong one."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.problems: list[Problem] = []

    def fail(self, node: yaml.Node, message: str, hint: str = "") -> None:
        self.problems.append(Problem(self.where, node.start_mark.line + 2, message, hint))

    def fields(self, root: yaml.Node) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(root, yaml.MappingNode):
            self.fail(root, "front matter must be key: value lines", f"keys: {', '.join(KEYS)}")
            return {}
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key, value in root.value:
            name = str(key.value)
            if name in out:
                first = out[name][0].start_mark.line + 2
                self.fail(key, f"{name!r} is given twice (first on line {first})")
            elif name == "title":
                self.fail(key, "unknown key 'title'", "the title is made from theme: set that")
            elif name not in KEYS:
                hint = did_you_mean(name, KEYS) or f"keys: {', '.join(KEYS)}"
                self.fail(key, f"unknown key {name!r}", hint)
            else:
                out[name] = (key, value)
        return out

    def text(self, fields: dict[str, tuple[yaml.Node, yaml.Node]], key: str) -> str:
        if key not in fields:
            return ""
        node = fields[key][1]
        value = _value(node) if isinstance(node, yaml.ScalarNode) else node
        if value is None:
            return ""
        if not isinstance(value, str):
            shown = value if isinstance(value, int | float | bool) else "a list or mapping"
            self.fail(node, f"{key} must be text, not {shown}", 'put it in quotes: "..."')
            return ""
        return value

    def url(self, node: yaml.Node, key: str) -> str | None:
        if isinstance(node, yaml.MappingNode):  # a shortlist entry copied whole: its url
            for k, v in node.value:
                if k.value == "url":
                    return self.url(v, key)
            self.fail(node, f"{key}: an entry without url:")
            return None
        value = _value(node) if isinstance(node, yaml.ScalarNode) else None
        if not isinstance(value, str) or not value.strip().startswith(("http://", "https://")):
            shown = repr(value) if isinstance(node, yaml.ScalarNode) else "a list"
            self.fail(node, f"{key}: {shown} is not a post URL", "post URLs start with https://")
            return None
        return value.strip()

    def blurbs(self, fields: dict[str, tuple[yaml.Node, yaml.Node]]) -> tuple[tuple[str, str], ...]:
        if "blurbs" not in fields:
            return ()
        node = fields["blurbs"][1]
        if _is_null(node):
            return ()
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, "blurbs must map post URL: blurb", "'https://...': 'Your words.'")
            return ()
        out = []
        for key, value in node.value:
            url = self.url(key, "blurbs")
            text = _value(value) if isinstance(value, yaml.ScalarNode) else None
            if not isinstance(text, str) or not text.strip():
                self.fail(value, f"blurbs: the blurb of {key.value} must be text")
            elif url:
                out.append((url, " ".join(text.split())))
        return tuple(out)


def _entries(reader: _Reader, fields: dict[str, tuple[yaml.Node, yaml.Node]]) -> Iterator[_Entry]:
    """Yield every post URL the editor named, checking each list's type."""
    for key in _URL_LISTS:
        if key not in fields:
            continue
        node = fields[key][1]
        if _is_null(node):
            continue
        items = node.value if isinstance(node, yaml.SequenceNode) else [node]
        if isinstance(node, yaml.MappingNode):
            reader.fail(node, f"{key} must be a list of post URLs", f'{key}: ["https://..."]')
            continue
        for item in items:
            url = reader.url(item, key)
            if url:
                yield _Entry(key, url, item.start_mark.line + 2)
    if "blurbs" in fields and isinstance(fields["blurbs"][1], yaml.MappingNode):
        for item, _ in fields["blurbs"][1].value:
            value = _value(item) if isinstance(item, yaml.ScalarNode) else None
            if isinstance(value, str) and value.strip().startswith(("http://", "https://")):
                yield _Entry("blurbs", value.strip(), item.start_mark.line + 2)
    if "listening" in fields and not _is_null(fields["listening"][1]):
        node = fields["listening"][1]
        url = reader.url(node, "listening")
        if url:
            yield _Entry("listening", url, node.start_mark.line + 2)


def _conflicts(entries: tuple[_Entry, ...], where: str) -> Iterator[Problem]:
    dropped = {url_key(e.url) for e in entries if e.key == "drops"}
    for entry in entries:
        if entry.key in ("pins", "listening") and url_key(entry.url) in dropped:
            yield Problem(
                where, entry.line, f"{entry.key}: {entry.url} is also in drops", "keep one of them"
            )


def _unmatched(
    entries: tuple[_Entry, ...], month: str, where: str, urls: Collection[str]
) -> Iterator[Problem]:
    known = {url_key(u) for u in urls}
    for entry in entries:
        if url_key(entry.url) in known:
            continue
        # post URLs of one blog share most of their letters: only a near miss is a typo
        hint = did_you_mean(entry.url, urls, cutoff=0.85)
        yield Problem(
            where,
            entry.line,
            f"{entry.key}: {entry.url} matches no post of {month}",
            hint or f"`mash posts --month {month}` lists them",
        )


# --- drafts -----------------------------------------------------------------------------


def draft_reasons(edition: Edition) -> list[str]:
    """Return what is still unwritten in an edition: empty when it can be sent."""
    reasons = []
    if edition.theme.strip().casefold() == THEME_PLACEHOLDER.casefold():
        reasons.append("the theme is still the placeholder")
    if not edition.editorial_md.strip():
        reasons.append("the essay is empty")
    elif ESSAY_PLACEHOLDER.casefold() in edition.editorial_md.casefold():
        reasons.append("the essay is still the placeholder")
    return reasons


def shortlist_entry(item: ScoredPost) -> dict[str, Any]:
    """Return one row of the draft's shortlist: what the editor needs to choose."""
    return {
        "url": item.post.url,
        "title": item.post.title,
        "blog": item.post.blog,
        "score": round(item.score, 3),
        "status": item.status,
        "blurb": item.blurb,
        "blurb_source": item.blurb_source,
    }


def shortlist(ranking: Ranking, size: int = SHORTLIST_SIZE) -> list[dict[str, Any]]:
    """Return the draft's shortlist: the month's best candidates, as rank ordered them."""
    return [
        shortlist_entry(c)
        for c in ranking.candidates
        if c.status in ("picked", "listening", "out")
        and not c.reason.startswith(("duplicate", "promotional", "off-topic"))
    ][:size]


def shortlist_yaml(entries: list[dict[str, Any]]) -> str:
    """Return the ``shortlist:`` block of the front matter, ending in a newline."""
    dumped: str = yaml.safe_dump(
        {"shortlist": entries}, sort_keys=False, allow_unicode=True, width=100
    )
    return dumped


def draft_edition(ranking: Ranking, existing: str | None, path: Path | None = None) -> str:
    """Return the text of editions/YYYY-MM.md with a fresh shortlist.

    ``existing`` is the file's text, None when there is none: then a starter with a
    placeholder theme and essay, and no choice made for the editor. Otherwise only
    the ``shortlist:`` block changes; every other byte is kept, comments included.
    """
    block = shortlist_yaml(shortlist(ranking))
    if existing is None:
        return _STARTER.format(
            month=month_name(ranking.month),
            theme=THEME_PLACEHOLDER,
            essay=ESSAY_PLACEHOLDER,
            shortlist=block,
        )
    parsed = _parse(existing, ranking.month, path)
    lines, fence = _split(existing)
    if fence is None:  # an essay without front matter: give it one, with the shortlist only
        return f"{_FENCE}\n{block}{_FENCE}\n{existing}"
    broken = parsed.front is None and parsed.problems  # not YAML
    if fence == -1 or broken or not isinstance(parsed.front, yaml.MappingNode | None):
        raise EditionError(parsed.problems)  # no safe place for the shortlist
    front = lines[1:fence]
    start, end = _shortlist_lines(parsed.front)
    if start is None:
        if front and not front[-1].endswith(("\n", "\r")):
            front[-1] += "\n"
        front.append(block)
    else:
        front[start : end + 1] = [block]
    return "".join([lines[0], *front, *lines[fence:]])


def _shortlist_lines(root: yaml.Node | None) -> tuple[int | None, int]:
    """Return the first and last 0-based line of the shortlist key and value in the front."""
    if not isinstance(root, yaml.MappingNode):
        return None, 0
    for key, value in root.value:
        if key.value == "shortlist":
            return key.start_mark.line, max(key.start_mark.line, _last_line(value))
    return None, 0


def _last_line(node: yaml.Node) -> int:
    """Return the last 0-based line a node's own text is on (not the comments after it)."""
    if isinstance(node, yaml.ScalarNode) or getattr(node, "flow_style", False):
        end = node.end_mark
        return end.line - 1 if end.column == 0 and end.line > node.start_mark.line else end.line
    children: list[yaml.Node] = (
        [n for pair in node.value for n in pair]
        if isinstance(node, yaml.MappingNode)
        else list(node.value)
    )
    return max((_last_line(c) for c in children), default=node.start_mark.line)


# --- the desk's edits (see #17) ------------------------------------------------------------

# Changes that add or remove one URL can be applied to a file that changed on disk since
# the desk read it: nothing of the newer text is lost. The others replace a value, and
# are refused when that value changed meanwhile.
MERGEABLE = frozenset({"pin", "unpin", "drop", "undrop"})


@dataclass(frozen=True)
class Change:
    """One edit the desk makes to an edition file; made by web.desk, applied here.

    ``action`` is pin, unpin, drop, undrop (``url``), order (``urls``), blurb (``url``,
    ``text``; empty removes it), listening (``url``; empty: the most popular),
    listening_blurb, theme or essay (``text``).
    """

    action: str
    url: str = ""
    text: str = ""
    urls: tuple[str, ...] = ()


def change_fields(change: Change) -> tuple[str, ...]:
    """Return the edition fields a change reads and writes (the conflict check compares them)."""
    return {
        "pin": ("pins", "drops"),
        "unpin": ("pins",),
        "drop": ("drops", "pins", "order", "listening"),
        "undrop": ("drops",),
        "order": ("order",),
        "listening": ("listening",),
        "listening_blurb": ("listening_blurb",),
        "theme": ("theme",),
        "essay": ("editorial_md",),
    }.get(change.action, ("blurbs",))


def field_values(edition: Edition, change: Change) -> tuple[object, ...]:
    """Return what a change depends on in an edition: equal values mean no conflict."""
    if change.action == "blurb":
        return (dict(edition.blurbs).get(change.url),)
    return tuple(getattr(edition, name) for name in change_fields(change))


def apply_change(text: str, month: str, change: Change, path: Path | None = None) -> str:
    """Return the edition text with one change made, every other byte kept.

    The keys it sets are rewritten in place (a key it adds goes before ``shortlist:``);
    comments, the shortlist and the essay stay as they were, as in ``draft_edition``.
    Raises EditionError when the front matter cannot be read: no safe place to write.
    """
    edition = _readable(text, month, path)
    if change.action == "essay":
        return _with_essay(text, change.text)
    values = _changed_values(edition, change)
    for key, value in values.items():
        text = _with_key(text, month, key, value, path)
    return text


def _changed_values(edition: Edition, change: Change) -> dict[str, object]:
    url, same = change.url, _same(change.url)
    without = {
        "pins": [u for u in edition.pins if not same(u)],
        "drops": [u for u in edition.drops if not same(u)],
        "order": [u for u in edition.order if not same(u)],
    }
    if change.action == "pin":
        return {"pins": [*without["pins"], url], "drops": without["drops"]}
    if change.action == "unpin":
        return {"pins": without["pins"]}
    if change.action == "drop":
        dropped: dict[str, object] = {**without, "drops": [*without["drops"], url]}
        if edition.listening and same(edition.listening):
            dropped["listening"] = None
        return dropped
    if change.action == "undrop":
        return {"drops": without["drops"]}
    if change.action == "order":
        return {"order": list(change.urls)}
    if change.action == "blurb":
        blurbs = {u: b for u, b in edition.blurbs if not same(u)}
        if change.text.strip():
            blurbs[url] = " ".join(change.text.split())
        return {"blurbs": blurbs}
    if change.action == "listening":
        return {"listening": url or None}
    if change.action in ("theme", "listening_blurb"):
        return {change.action: " ".join(change.text.split())}
    raise ValueError(f"unknown edition change {change.action!r}")


def _same(url: str) -> Any:
    key = url_key(url)
    return lambda other: url_key(other) == key


def _readable(text: str, month: str, path: Path | None) -> Edition:
    parsed = _parse(text, month, path)
    _, fence = _split(text)
    if fence == -1 or (parsed.front is None and parsed.problems):
        raise EditionError(parsed.problems)
    if parsed.front is not None and not isinstance(parsed.front, yaml.MappingNode):
        raise EditionError(parsed.problems)
    return parsed.edition


def _with_essay(text: str, essay: str) -> str:
    lines, fence = _split(text)
    body = essay.replace("\r\n", "\n").strip()
    if fence is None:
        return f"{body}\n"
    return "".join(lines[: fence + 1]) + f"\n{body}\n"


def _with_key(text: str, month: str, key: str, value: object, path: Path | None) -> str:
    """Return text with the front matter's ``key`` set to ``value`` (written by ``_dump``).

    A value on the key's own line keeps the comment after it; a block value is replaced
    whole. A missing key is added before ``shortlist:``, or at the end of the front matter.
    """
    lines, fence = _split(text)
    if fence is None:  # an essay alone: give it front matter
        return f"{_FENCE}\n{_dump(key, value)}\n{_FENCE}\n{text}"
    parsed = _parse(text, month, path)
    front = lines[1:fence]
    found = _key_lines(parsed.front, key, front)
    if found is None:
        at = _shortlist_lines(parsed.front)[0]
        at = len(front) if at is None else at
        if at and not front[at - 1].endswith(("\n", "\r")):
            front[at - 1] += "\n"
        front.insert(at, _dump(key, value) + "\n")
    else:
        first, last, comment = found
        newline = "\r\n" if front[last].endswith("\r\n") else "\n"
        head, _, block = _dump(key, value).partition("\n")
        entry = head + comment + (f"\n{block}" if block else "")
        front[first : last + 1] = [entry.replace("\n", newline) + newline]
    return "".join([lines[0], *front, *lines[fence:]])


def _key_lines(root: yaml.Node | None, key: str, front: list[str]) -> tuple[int, int, str] | None:
    """Return the first and last 0-based front line of key's entry, and a comment to keep."""
    if not isinstance(root, yaml.MappingNode):
        return None
    for k, v in root.value:
        if k.value != key:
            continue
        first, last = k.start_mark.line, max(k.start_mark.line, _last_line(v))
        comment = ""
        if first == last:  # `pins: []   # always in the roundup`: keep the comment
            rest = front[first][v.end_mark.column :] if v.end_mark.line == first else ""
            found = re.search(r"\s+#.*$", rest.rstrip("\r\n"))
            comment = found.group(0) if found else ""
        return first, last, comment
    return None


def _quote(value: str) -> str:
    # JSON strings are YAML double-quoted scalars: every character survives the round trip
    return json.dumps(value, ensure_ascii=False)


def _dump(key: str, value: object) -> str:
    """Return ``key: value`` as the documented format writes it: quoted URLs and text."""
    if value is None or value == "":
        return f"{key}:"
    if isinstance(value, str):
        return f"{key}: {_quote(value)}"
    if isinstance(value, dict):
        if not value:
            return f"{key}: {{}}"
        return f"{key}:\n" + "\n".join(f"  {_quote(u)}: {_quote(t)}" for u, t in value.items())
    assert isinstance(value, list)
    flow = f"{key}: [{', '.join(_quote(u) for u in value)}]"
    if len(flow) <= 100:
        return flow
    return f"{key}:\n" + "\n".join(f"  - {_quote(u)}" for u in value)


_STARTER = """\
---
# The edition of {month}, started by `mash draft`. Until the theme and the essay are
# yours, `mash build` marks the issue as a draft and `mash send` refuses it.
theme: "{theme}"   # the issue's title and essay heading use it
pins: []           # post URLs always in the roundup
drops: []          # post URLs never in the roundup
order: []          # post URLs listed first, in this order
blurbs: {{}}         # post URL: your own words for it
listening:         # a house-blog post URL for Someone Was Listening (empty: the most popular)
listening_blurb:   # your words for it (empty: a sentence of the post)
# The ranking, refreshed by each `mash draft`; edits to it are not kept.
{shortlist}---

{essay}, in Markdown: a few paragraphs on one idea about the customer
that the {month} posts made you think about.

The shortlist above is the ranking: reorder it with `order:`, keep a post with `pins:`,
remove one with `drops:`, and write your own blurb under `blurbs:` (URL: text).
"""
