"""Read and validate feeds.yaml into a Config record.

Every problem is reported as ``file:line: problem`` (a ConfigError, exit status 2)
before any work is done. Relative paths resolve against the config file's folder.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from mash.errors import ConfigError
from mash.files import write_atomic
from mash.records import (
    BounceSettings,
    Config,
    FeedSpec,
    FetchSettings,
    Link,
    Newsletter,
    Section,
    ServerSettings,
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


def did_you_mean(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str:
    """Return "did you mean 'x'?" for the choice closest to word, or "" when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=cutoff)
    return f"did you mean {close[0]!r}?" if close else ""


def _unknown(what: str, key: str, known: Iterable[str]) -> str:
    """Return the message for an unknown key, with the closest known one where it fits."""
    known = list(known)
    hint = did_you_mean(key, known) or f"one of {', '.join(known)}"
    return f"unknown {what} {key!r} ({hint})"


def _field_names(record: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(record)]


def yaml_error_at(e: yaml.MarkedYAMLError, source: str = "") -> tuple[int | None, str]:
    """Return the 0-based line to fix for a YAML error in source, and the error in words.

    An unclosed quote or bracket is noticed only where the file ends or the next token
    is, many lines later: the line to fix is where it opened (see #20).
    """
    problem = e.problem or "not valid YAML"
    context = e.context or ""
    if e.context_mark and context.startswith(("while scanning", "while parsing a flow")):
        if "end of stream" in problem:
            problem = f"{context}, {problem} (the end of the file)"
        elif e.problem_mark and e.problem_mark.line != e.context_mark.line:
            problem = f"{context}, {problem} (on line {e.problem_mark.line + 1})"
        return e.context_mark.line, problem
    if e.problem_mark is None:
        return None, problem
    quote = _quote_before(source, e.problem_mark.index)
    if quote is not None:  # 'Monthly Mash ... editor's: the quote closed lines later
        end = quote.end_mark.line + 1
        return quote.start_mark.line, f"{problem} (the quote opened here closes on line {end})"
    return e.problem_mark.line, problem


def _quote_before(source: str, index: int) -> yaml.Token | None:
    """Return the token before index when it is a quoted text over several lines."""
    last = None
    try:
        for token in yaml.scan(source, Loader=yaml.SafeLoader):
            if token.end_mark.index > index:
                break
            last = token
    except yaml.YAMLError:
        pass
    if (
        isinstance(last, yaml.ScalarToken)
        and last.style in ("'", '"')
        and last.end_mark.line > last.start_mark.line
    ):
        return last
    return None


# Bounds on what feeds.yaml may ask for (see #21): a few kilobytes of YAML (aliases
# repeat a node without repeating its bytes) must not make a run take gigabytes.
MAX_CONFIG_BYTES = 4 * 1024 * 1024
MAX_FEEDS = 10_000
MAX_TEXT = 10_000  # characters of any one setting
MAX_URL = 4_096
MAX_LINKS = 100
MAX_TOPIC_EXAMPLES = 100
MAX_TOPIC_EXAMPLE = 20_000  # characters: a long post

# (smallest, largest) of each number setting; all must be finite.
_NUMBERS: dict[str, tuple[float, float]] = {
    "weight": (0, 100),
    "volume_start": (1, 1_000_000),
    "picks_min": (1, 100),
    "picks_max": (1, 100),
    "per_blog_cap": (1, 100),
    "blurb_chars": (20, 5_000),
    "fetch.concurrency": (1, 1_000),
    "fetch.per_host": (1, 100),
    "fetch.connect_timeout": (0.1, 300),
    "fetch.read_timeout": (0.1, 600),
    "fetch.deadline": (0.1, 3_600),
    "fetch.max_bytes": (1_024, 1 << 30),
    "fetch.retries": (0, 10),
    "smtp.port": (1, 65_535),
    "smtp.rate_per_second": (0, 10_000),  # 0: no limit
    "smtp.connections": (1, 16),
    "bounces.port": (1, 65_535),
    "bounces.soft_limit": (1, 100),
    "server.confirm_days": (1, 365),
    "server.resend_minutes": (0, 10_080),
    "server.ip_requests": (1, 1_000_000),
    "server.ip_window_minutes": (1, 10_080),
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

    def text(self, what: str, limit: int = MAX_TEXT) -> str:
        value = self.scalar()
        if value is None:
            return ""
        if not isinstance(value, str | int | float):
            raise self.fail(f"{what} must be text")
        text = str(value)
        if len(text) > limit:
            raise self.fail(f"{what} is {len(text):,} characters long; at most {limit:,}")
        return text

    def number(self, what: str, whole: bool = False) -> float:
        """Return a finite number within the bounds _NUMBERS gives ``what``."""
        low, high = _NUMBERS.get(what, (0, math.inf))
        value = self.scalar()
        kind = "a whole number" if whole else "a number"
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not low <= value <= high
            or (whole and value != int(value))
        ):
            raise self.fail(f"{what} must be {kind} from {low:g} to {high:g}, not {value!r}")
        return float(value)

    def items(self, what: str, limit: int) -> list[_Doc]:
        """Return the items of a list of at most ``limit``."""
        items = self.sequence(what)
        if len(items) > limit:
            raise self.fail(f"{what} has {len(items):,} items; at most {limit:,}")
        return items

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
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError(f"the config file is over {MAX_CONFIG_BYTES:,} bytes", str(path))
        source = data.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError("config file not found; pass --config PATH", str(path)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config: {e}", str(path)) from None
    try:
        node = yaml.compose(source, Loader=_LOADER)
    except yaml.MarkedYAMLError as e:
        at, problem = yaml_error_at(e, source)
        line = at + 1 if at is not None else None
        raise ConfigError(f"not valid YAML: {problem}", str(path), line) from None
    if node is None:
        raise ConfigError("the config file is empty", str(path), 1)
    return _build_config(_Doc(node, str(path)), path.resolve())


def _build_config(doc: _Doc, path: Path) -> Config:
    top = doc.mapping("the config file")
    sections = ("newsletter", "feeds", "paths", "fetch", "smtp", "bounces", "server")
    unknown = set(top) - set(sections)
    if unknown:
        key = sorted(unknown)[0]
        raise top[key].fail(_unknown("top-level key", key, sections))
    if "feeds" not in top:
        raise doc.fail("missing 'feeds:' (the list of blogs to read)")
    newsletter = _newsletter(top["newsletter"]) if "newsletter" in top else Newsletter()
    if not newsletter.sections:
        newsletter = dataclasses.replace(newsletter, sections=DEFAULT_SECTIONS)
    paths = _paths(top.get("paths"), path.parent)
    smtp = _settings(top.get("smtp"), SmtpSettings, "smtp")
    if not smtp.unsubscribe_url and newsletter.server_url:
        # `mash server` answers unsubscribes at any path of server_url (see #16)
        smtp = dataclasses.replace(
            smtp, unsubscribe_url=newsletter.server_url.rstrip("/") + "/unsubscribe"
        )
    return Config(
        path=path,
        newsletter=newsletter,
        feeds=_feeds(top["feeds"]),
        fetch=_settings(top.get("fetch"), FetchSettings, "fetch"),
        smtp=smtp,
        bounces=_settings(top.get("bounces"), BounceSettings, "bounces"),
        server=_settings(top.get("server"), ServerSettings, "server"),
        **paths,
    )


def _feeds(doc: _Doc) -> tuple[FeedSpec, ...]:
    feeds: list[FeedSpec] = []
    seen: dict[str, int] = {}
    if _is_empty_list(doc.node):
        return ()  # none yet: `mash feeds add URL` adds them (see #20)
    for item in doc.items("feeds", MAX_FEEDS):
        if isinstance(item.node, yaml.ScalarNode):
            fields: dict[str, _Doc] = {"url": item}
        else:
            fields = item.mapping("a feed")
        unknown = set(fields) - {"url", "name", "weight", "house", "retired"}
        if unknown:
            key = sorted(unknown)[0]
            raise fields[key].fail(_unknown("feed key", key, ("url", "name", "weight", "house")))
        if "url" not in fields:
            raise item.fail("a feed needs a 'url:'")
        url = fields["url"].text("url", MAX_URL).strip()
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
    return tuple(feeds)


def _newsletter(doc: _Doc) -> Newsletter:
    fields = doc.mapping("newsletter")
    defaults = Newsletter()
    values: dict[str, Any] = {}
    for key, value in fields.items():
        if key == "links":
            values["links"] = tuple(_link(item) for item in value.items("links", MAX_LINKS))
        elif key == "sections":
            values["sections"] = _sections(value)
        elif key == "topic_examples":
            examples = value.items(key, MAX_TOPIC_EXAMPLES)
            values[key] = tuple(item.text(key, MAX_TOPIC_EXAMPLE) for item in examples)
        elif key in ("volume_start", "picks_min", "picks_max", "per_blog_cap", "blurb_chars"):
            values[key] = int(value.number(key, whole=True))
        elif hasattr(defaults, key):
            values[key] = value.text(key).strip()
        else:
            raise value.fail(_unknown("newsletter key", key, _field_names(defaults)))
    newsletter = Newsletter(**values)
    if newsletter.picks_min > newsletter.picks_max:
        raise doc.fail("newsletter picks_min is larger than picks_max")
    return newsletter


def _link(doc: _Doc) -> Link:
    fields = doc.mapping("a link")
    if "url" not in fields:
        raise doc.fail("a link needs 'label:' and 'url:'")
    url = fields["url"].text("url", MAX_URL)
    label = fields["label"].text("label") if "label" in fields else url
    return Link(label=label, url=url)


def _sections(doc: _Doc) -> tuple[Section, ...]:
    fields = doc.mapping("sections")
    for key, value in fields.items():
        if key not in SECTION_KEYS:
            raise value.fail(_unknown("section", key, SECTION_KEYS))
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


def _paths(doc: _Doc | None, base: Path) -> dict[str, Any]:
    given = doc.mapping("paths") if doc is not None else {}
    for key, value in given.items():
        if key not in _PATH_KEYS:
            raise value.fail(_unknown("path", key, _PATH_KEYS))
    url = _database_url(given["database"]) if "database" in given else ""
    resolved = {
        key: base
        / (given[key].text(key) if key in given and not (url and key == "database") else default)
        for key, default in _PATH_KEYS.items()
    }
    return {
        "db_path": resolved["database"],
        "database_url": url,
        "output_dir": resolved["output"],
        "editions_dir": resolved["editions"],
        "templates_dir": resolved["templates"],
        "subscribers_path": resolved["subscribers"],
    }


def _database_url(doc: _Doc) -> str:
    """Return paths.database when it is a PostgreSQL URL ("" for a file path); refuse a
    password in it: feeds.yaml is shared, the password comes from the environment."""
    value = doc.text("database")
    if not value.startswith(("postgresql://", "postgres://")):
        return ""
    parts = urlsplit(value)
    if parts.password is not None or "password=" in parts.query.lower():
        raise doc.fail(
            "paths.database holds a password; keep it out of feeds.yaml: put the whole URL "
            "in MASH_DATABASE_URL, or the password in PGPASSWORD or ~/.pgpass"
        )
    return value


def _settings(doc: _Doc | None, kind: type[Any], what: str) -> Any:
    if doc is None:
        return kind()
    defaults = kind()
    values: dict[str, Any] = {}
    for key, value in doc.mapping(what).items():
        if not hasattr(defaults, key):
            raise value.fail(_unknown(f"{what} setting", key, _field_names(defaults)))
        current = getattr(defaults, key)
        if key == "allow_private":
            values[key] = _networks(value)
        elif isinstance(current, bool):
            values[key] = value.flag(key)
        elif isinstance(current, int):
            values[key] = int(value.number(f"{what}.{key}", whole=True))
        elif isinstance(current, float):
            values[key] = value.number(f"{what}.{key}")
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

    The list may be empty (``feeds: []``, as ``mash init`` writes it). New feeds go
    after the last one, before any comments that follow the list. Writes a temp file,
    re-reads it to be sure it is still valid, then replaces the original; does not
    check for duplicates (the caller does).
    """
    source = path.read_text(encoding="utf-8")
    node = yaml.compose(source, Loader=yaml.SafeLoader)
    if node is None:
        raise ConfigError("the config file is empty", str(path), 1)
    doc = _Doc(node, str(path)).mapping("the config file")
    if "feeds" not in doc:
        raise ConfigError("missing 'feeds:' (the list of blogs to read)", str(path), 1)
    seq = doc["feeds"].node
    lines = source.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    if _is_empty_list(seq) and seq.start_mark.line == seq.end_mark.line:
        at, indent = _open_empty_list(lines, seq), "  "
    elif isinstance(seq, yaml.SequenceNode) and not seq.flow_style and seq.value:
        indent = " " * max(seq.value[0].start_mark.column - 2, 0)
        at = _after_last_item(lines, seq, len(indent))
    else:
        raise ConfigError(
            "cannot add to 'feeds:' here; write the list one item a line",
            str(path),
            doc["feeds"].line,
        )
    lines[at:at] = [_feed_lines(feed, indent) for feed in feeds]
    write_atomic(path, "".join(lines), check=load_config)  # still valid, or left as it was


def _is_empty_list(node: yaml.Node) -> bool:
    """Tell whether node is ``[]`` or nothing at all (``feeds:`` with no value)."""
    if isinstance(node, yaml.SequenceNode):
        return not node.value
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _open_empty_list(lines: list[str], node: yaml.Node) -> int:
    """Cut ``[]`` (or ``~``) from its line, keeping any comment; return the next line."""
    row = node.start_mark.line
    line = lines[row]
    line = line[: node.start_mark.column] + line[node.end_mark.column :]
    lines[row] = line.rstrip() + "\n"
    return row + 1


def _after_last_item(lines: list[str], seq: yaml.Node, dash_column: int) -> int:
    """Return the line after the list's last item, before blank lines and the comments
    (less indented than the items) that follow the list and belong to what comes next."""
    at = seq.end_mark.line if seq.end_mark.column == 0 else seq.end_mark.line + 1
    while at > 0:
        text = lines[at - 1]
        stripped = text.lstrip()
        is_outer_comment = stripped.startswith("#") and len(text) - len(stripped) < dash_column
        if stripped and not is_outer_comment:
            break
        at -= 1
    return at


def _feed_lines(feed: FeedSpec, indent: str) -> str:
    text = f"{indent}- url: {json.dumps(feed.url)}\n"
    if feed.name:
        text += f"{indent}  name: {json.dumps(feed.name, ensure_ascii=False)}\n"
    if feed.weight != 1.0:
        text += f"{indent}  weight: {feed.weight:g}\n"
    if feed.house:
        text += f"{indent}  house: true\n"
    return text
