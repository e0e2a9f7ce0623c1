"""Read and validate feeds.yaml into a Config record.

Every problem is reported as ``file:line: problem`` (a ConfigError, exit status 2)
before any work is done. Relative paths resolve against the config file's folder.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from mash.errors import ConfigError
from mash.records import (
    Config,
    FeedSpec,
    FetchSettings,
    Link,
    Newsletter,
    Section,
    SmtpSettings,
)

DEFAULT_SECTIONS: tuple[Section, ...] = (
    Section("title", "Monthly Mash and {theme}", "Volume {volume}: {month_name}"),
    Section("welcome", "Welcome"),
    Section("editorial", "Thoughts on the Customer: {Theme}"),
    Section(
        "picks",
        "The Month in Customer Service Blogging",
        "A collection of the best posts about customer service and the customer "
        "experience we read this past month.",
    ),
    Section(
        "listening",
        "Someone Was Listening",
        "Sometimes the most popular post from the previous month; sometimes just the "
        "one I liked best.",
    ),
    Section("about", "About the Monthly Mash"),
    Section("footer", "Why you are getting this"),
)
SECTION_KEYS = tuple(s.key for s in DEFAULT_SECTIONS)

_PATH_KEYS = {
    "database": "data/mash.db",
    "output": "output",
    "editions": "editions",
    "templates": "templates",
    "subscribers": "data/subscribers.csv",
}


class _Doc:
    """A YAML node with the file name, so every check can say where it failed."""

    def __init__(self, node: yaml.Node, path: str) -> None:
        self.node = node
        self.path = path

    @property
    def line(self) -> int:
        return self.node.start_mark.line + 1

    def fail(self, message: str) -> ConfigError:
        return ConfigError(message, self.path, self.line)

    def mapping(self, what: str) -> dict[str, _Doc]:
        if not isinstance(self.node, yaml.MappingNode):
            raise self.fail(f"{what} must be a mapping (key: value lines)")
        out: dict[str, _Doc] = {}
        for key, value in self.node.value:
            name = str(key.value)
            if name in out:
                raise ConfigError(
                    f"duplicate key {name!r} in {what}", self.path, key.start_mark.line + 1
                )
            out[name] = _Doc(value, self.path)
        return out

    def sequence(self, what: str) -> list[_Doc]:
        if not isinstance(self.node, yaml.SequenceNode):
            raise self.fail(f"{what} must be a list (lines starting with '- ')")
        return [_Doc(item, self.path) for item in self.node.value]

    def scalar(self) -> Any:
        if not isinstance(self.node, yaml.ScalarNode):
            raise self.fail("expected a single value, not a list or mapping")
        try:
            return _SCALARS.construct_object(self.node)
        finally:
            _SCALARS.constructed_objects.clear()  # its cache would keep every node alive

    def text(self, what: str) -> str:
        value = self.scalar()
        if value is None:
            return ""
        if not isinstance(value, str | int | float):
            raise self.fail(f"{what} must be text")
        return str(value)

    def number(self, what: str, minimum: float = 0) -> float:
        value = self.scalar()
        if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
            raise self.fail(f"{what} must be a number of at least {minimum:g}, not {value!r}")
        return float(value)

    def flag(self, what: str) -> bool:
        value = self.scalar()
        if not isinstance(value, bool):
            raise self.fail(f"{what} must be true or false, not {value!r}")
        return value


# libyaml when present: a thousand feeds take 0.05 s to read, not 1 s (see #8).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Turns one scalar node into its value (str, int, float, bool or None) by the YAML rules.
_SCALARS = yaml.SafeLoader("")


def load_config(path: Path | str) -> Config:
    """Read feeds.yaml; raise ConfigError naming file and line on any problem."""
    path = Path(path)
    try:
        source = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("config file not found; pass --config PATH", str(path)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config: {e}", str(path)) from None
    try:
        node = yaml.compose(source, Loader=_LOADER)
    except yaml.MarkedYAMLError as e:
        line = e.problem_mark.line + 1 if e.problem_mark else None
        raise ConfigError(f"not valid YAML: {e.problem}", str(path), line) from None
    if node is None:
        raise ConfigError("the config file is empty", str(path), 1)
    return _build_config(_Doc(node, str(path)), path.resolve())


def _build_config(doc: _Doc, path: Path) -> Config:
    top = doc.mapping("the config file")
    unknown = set(top) - {"newsletter", "feeds", "paths", "fetch", "smtp"}
    if unknown:
        key = sorted(unknown)[0]
        raise top[key].fail(f"unknown top-level key {key!r}")
    if "feeds" not in top:
        raise doc.fail("missing 'feeds:' (the list of blogs to read)")
    newsletter = _newsletter(top["newsletter"]) if "newsletter" in top else Newsletter()
    if not newsletter.sections:
        from dataclasses import replace

        newsletter = replace(newsletter, sections=DEFAULT_SECTIONS)
    paths = _paths(top.get("paths"), path.parent)
    return Config(
        path=path,
        newsletter=newsletter,
        feeds=_feeds(top["feeds"]),
        fetch=_settings(top.get("fetch"), FetchSettings, "fetch"),
        smtp=_settings(top.get("smtp"), SmtpSettings, "smtp"),
        **paths,
    )


def _feeds(doc: _Doc) -> tuple[FeedSpec, ...]:
    feeds: list[FeedSpec] = []
    seen: dict[str, int] = {}
    for item in doc.sequence("feeds"):
        if isinstance(item.node, yaml.ScalarNode):
            fields: dict[str, _Doc] = {"url": item}
        else:
            fields = item.mapping("a feed")
        unknown = set(fields) - {"url", "name", "weight", "house", "retired"}
        if unknown:
            key = sorted(unknown)[0]
            raise fields[key].fail(f"unknown feed key {key!r} (use url, name, weight, house)")
        if "url" not in fields:
            raise item.fail("a feed needs a 'url:'")
        url = fields["url"].text("url").strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise fields["url"].fail(f"feed url must start with http:// or https://, not {url!r}")
        if url in seen:
            raise fields["url"].fail(f"feed {url!r} is listed twice (first on line {seen[url]})")
        seen[url] = fields["url"].line
        feeds.append(
            FeedSpec(
                url=url,
                name=fields["name"].text("name") or None if "name" in fields else None,
                weight=fields["weight"].number("weight") if "weight" in fields else 1.0,
                house=fields["house"].flag("house") if "house" in fields else False,
            )
        )
    if not feeds:
        raise doc.fail("'feeds:' is empty; add at least one blog feed")
    return tuple(feeds)


def _newsletter(doc: _Doc) -> Newsletter:
    fields = doc.mapping("newsletter")
    defaults = Newsletter()
    values: dict[str, Any] = {}
    for key, value in fields.items():
        if key == "links":
            values["links"] = tuple(_link(item) for item in value.sequence("links"))
        elif key == "sections":
            values["sections"] = _sections(value)
        elif key == "topic_examples":
            values[key] = tuple(item.text(key) for item in value.sequence(key))
        elif key in ("volume_start", "picks_min", "picks_max", "per_blog_cap", "blurb_chars"):
            values[key] = int(value.number(key, minimum=1))
        elif hasattr(defaults, key):
            values[key] = value.text(key).strip()
        else:
            raise value.fail(f"unknown newsletter key {key!r}")
    newsletter = Newsletter(**values)
    if newsletter.picks_min > newsletter.picks_max:
        raise doc.fail("newsletter picks_min is larger than picks_max")
    return newsletter


def _link(doc: _Doc) -> Link:
    fields = doc.mapping("a link")
    if "url" not in fields:
        raise doc.fail("a link needs 'label:' and 'url:'")
    url = fields["url"].text("url")
    label = fields["label"].text("label") if "label" in fields else url
    return Link(label=label, url=url)


def _sections(doc: _Doc) -> tuple[Section, ...]:
    fields = doc.mapping("sections")
    for key, value in fields.items():
        if key not in SECTION_KEYS:
            raise value.fail(f"unknown section {key!r} (one of {', '.join(SECTION_KEYS)})")
    sections = []
    for default in DEFAULT_SECTIONS:
        if default.key not in fields:
            sections.append(default)
            continue
        parts = fields[default.key].mapping(f"section {default.key}")
        heading = parts["heading"].text("heading") if "heading" in parts else default.heading
        tagline = parts["tagline"].text("tagline") if "tagline" in parts else default.tagline
        sections.append(Section(default.key, heading, tagline))
    return tuple(sections)


def _paths(doc: _Doc | None, base: Path) -> dict[str, Path]:
    given = doc.mapping("paths") if doc is not None else {}
    for key, value in given.items():
        if key not in _PATH_KEYS:
            raise value.fail(f"unknown path {key!r} (one of {', '.join(_PATH_KEYS)})")
    resolved = {
        key: base / (given[key].text(key) if key in given else default)
        for key, default in _PATH_KEYS.items()
    }
    return {
        "db_path": resolved["database"],
        "output_dir": resolved["output"],
        "editions_dir": resolved["editions"],
        "templates_dir": resolved["templates"],
        "subscribers_path": resolved["subscribers"],
    }


def _settings(doc: _Doc | None, kind: type[Any], what: str) -> Any:
    if doc is None:
        return kind()
    defaults = kind()
    values: dict[str, Any] = {}
    for key, value in doc.mapping(what).items():
        if not hasattr(defaults, key):
            raise value.fail(f"unknown {what} setting {key!r}")
        current = getattr(defaults, key)
        if key == "allow_private":
            values[key] = _networks(value)
        elif isinstance(current, bool):
            values[key] = value.flag(key)
        elif isinstance(current, int):
            values[key] = int(value.number(key))
        elif isinstance(current, float):
            values[key] = value.number(key)
        else:
            values[key] = value.text(key)
    return kind(**values)


def _networks(doc: _Doc) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Read fetch.allow_private: a list of addresses or CIDR networks (see #21)."""
    example = 'allow_private: [192.168.1.20, 10.0.0.0/8, "fd00::/8"]'
    if isinstance(doc.node, yaml.ScalarNode):
        value = doc.scalar()
        if value is False or value is None:
            return ()  # the old "no" of allow_private: false
        if value is True:
            raise doc.fail(
                "allow_private: true no longer exists: list the private addresses or "
                f"networks mash may connect to (everything public always may), e.g. {example}"
            )
    networks = []
    for item in doc.sequence("allow_private"):
        item.scalar()  # fails on a list or mapping
        text = str(item.node.value).strip()  # as written: YAML 1.1 reads 1:20 as 80
        try:
            networks.append(ipaddress.ip_network(text))
        except ValueError as e:
            raise item.fail(
                f"allow_private: {text!r} is not an IP address or CIDR network ({e}); "
                f"e.g. {example}"
            ) from None
    return tuple(networks)


def add_feeds_to_file(path: Path, feeds: Sequence[FeedSpec]) -> None:
    """Append feeds to the ``feeds:`` list of a config file, keeping its comments.

    Writes a temp file and replaces the original, then re-reads it to be sure it is
    still valid; does not check for duplicates (the caller does).
    """
    source = path.read_text(encoding="utf-8")
    node = yaml.compose(source, Loader=yaml.SafeLoader)
    if node is None:
        raise ConfigError("the config file is empty", str(path), 1)
    doc = _Doc(node, str(path)).mapping("the config file")
    if "feeds" not in doc:
        raise ConfigError("missing 'feeds:' (the list of blogs to read)", str(path), 1)
    seq = doc["feeds"].node
    if not isinstance(seq, yaml.SequenceNode) or seq.flow_style or not seq.value:
        raise ConfigError(
            "cannot add to 'feeds:' here; write the list one item a line",
            str(path),
            doc["feeds"].line,
        )
    indent = " " * max(seq.value[0].start_mark.column - 2, 0)
    lines = source.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    at = seq.end_mark.line if seq.end_mark.column == 0 else seq.end_mark.line + 1
    while at > 0 and not lines[at - 1].strip():
        at -= 1  # keep blank lines after the list where they were
    lines[at:at] = [_feed_lines(feed, indent) for feed in feeds]
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(lines), encoding="utf-8")
    try:
        load_config(tmp)
    except ConfigError:
        tmp.unlink()
        raise
    os.replace(tmp, path)


def _feed_lines(feed: FeedSpec, indent: str) -> str:
    text = f"{indent}- url: {json.dumps(feed.url)}\n"
    if feed.name:
        text += f"{indent}  name: {json.dumps(feed.name, ensure_ascii=False)}\n"
    if feed.weight != 1.0:
        text += f"{indent}  weight: {feed.weight:g}\n"
    if feed.house:
        text += f"{indent}  house: true\n"
    return text
