"""The subscribers CSV (email, name, status): read, validate, import, add, remove, list.

Names hold no control characters; a cell a spreadsheet would run as a formula is
written with a leading ``'`` and read back without it (see #21).

The file lives outside the repo by default (data/subscribers.csv, git-ignored). A bad
row is reported as ``file:line: problem`` and skipped; it never stops a send. Writes go
to a temporary file in the same folder, then ``os.replace``. Opt-outs recorded by the
unsubscribe endpoint live in the database, not here; ``mash send`` honours both.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from mash.errors import ConfigError
from mash.files import write_atomic

SUBSCRIBED = "subscribed"
UNSUBSCRIBED = "unsubscribed"
BOUNCED = "bounced"
STATUSES = (SUBSCRIBED, UNSUBSCRIBED, BOUNCED)
_STATUS_ALIASES = {"": SUBSCRIBED, "active": SUBSCRIBED, "yes": SUBSCRIBED}
FIELDS = ("email", "name", "status")
# Dot-atom local part and a domain of LDH labels with a dot: what SMTP servers accept
# without SMTPUTF8 or quoting. Stricter than RFC 5321 on purpose.
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
# What a name may not hold once its whitespace is flattened: control characters (C0,
# DEL, C1) and the bidirectional overrides that make a name read backwards (see #21).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# A cell starting with one of these is a formula to a spreadsheet (OWASP, CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Subscriber:
    """One row of the subscribers CSV."""

    email: str
    name: str = ""
    status: str = SUBSCRIBED


@dataclass(frozen=True)
class SubscriberList:
    """The valid rows of a CSV, and one problem line per row skipped."""

    subscribers: tuple[Subscriber, ...]
    problems: tuple[str, ...] = ()

    @property
    def active(self) -> tuple[Subscriber, ...]:
        return tuple(s for s in self.subscribers if s.status == SUBSCRIBED)


def validate_email(address: str) -> str:
    """Return the address normalised (trimmed, domain lower-cased) or raise ValueError."""
    text = address.strip()
    if not text:
        raise ValueError("empty address")
    if len(text) > 254 or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in text):
        raise ValueError(f"not an email address: {text!r}")
    local, at, domain = text.rpartition("@")
    labels = domain.split(".")
    if not at or not _LOCAL.match(local) or len(local) > 64:
        raise ValueError(f"not an email address: {text!r}")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise ValueError(f"not an email address (bad domain): {text!r}")
    if labels[-1].isdigit():
        raise ValueError(f"not an email address (numeric domain): {text!r}")
    return f"{local}@{domain.lower()}"


def clean_name(name: str) -> str:
    """Return name with its whitespace flattened; ValueError if a control character is left."""
    flat = " ".join(name.split())
    if control := _CONTROL.search(flat):
        raise ValueError(f"the name has a control character (U+{ord(control.group()):04X})")
    return flat


def spreadsheet_safe(value: str) -> str:
    """Return value so that a spreadsheet shows it as text, never runs it as a formula.

    A leading ``'`` goes before ``=``, ``+``, ``-``, ``@``, tab or CR (OWASP's advice), and
    before a value that already starts with quotes and then one of those, so that
    ``_from_cell`` gives back exactly the value (see #21).
    """
    return "'" + value if value.lstrip("'").startswith(_FORMULA_START) else value


def _from_cell(value: str) -> str:
    """Undo spreadsheet_safe."""
    return (
        value[1:]
        if value.startswith("'") and value.lstrip("'").startswith(_FORMULA_START)
        else value
    )


def address_key(address: str) -> str:
    """Return the identity of an address for de-duplication, opt-outs and the ledger."""
    return address.strip().lower()


def load_subscribers(path: Path) -> SubscriberList:
    """Read the CSV; a missing file is a ConfigError, a bad row a problem (skipped)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as e:
        raise ConfigError(
            "no subscribers file; create it with `mash subscribers add EMAIL`", str(path)
        ) from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read the subscribers file: {e}", str(path)) from e
    return parse_subscribers(text, str(path))


def parse_subscribers(text: str, source: str) -> SubscriberList:
    """Parse CSV text with or without a header row (email, name, status)."""
    rows = list(csv.reader(io.StringIO(text)))
    columns, start = _columns(rows)
    seen: set[str] = set()
    subscribers: list[Subscriber] = []
    problems: list[str] = []
    for number, row in enumerate(rows[start:], start + 1):
        if not any(cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
            continue
        try:
            subscriber = _row(row, columns)
        except ValueError as e:
            problems.append(f"{source}:{number}: {e}; row skipped")
            continue
        key = address_key(subscriber.email)
        if key in seen:
            problems.append(f"{source}:{number}: duplicate of an earlier row: {subscriber.email}")
            continue
        seen.add(key)
        subscribers.append(subscriber)
    return SubscriberList(tuple(subscribers), tuple(problems))


def _columns(rows: list[list[str]]) -> tuple[dict[str, int], int]:
    """Return the column of each field and the index of the first data row."""
    if rows and "email" in [cell.strip().lower() for cell in rows[0]]:
        header = [cell.strip().lower() for cell in rows[0]]
        return {f: header.index(f) for f in FIELDS if f in header}, 1
    return {f: i for i, f in enumerate(FIELDS)}, 0


def _row(row: list[str], columns: dict[str, int]) -> Subscriber:
    def cell(field: str) -> str:
        index = columns.get(field)
        return _from_cell(row[index].strip()) if index is not None and index < len(row) else ""

    email = validate_email(cell("email"))
    status = cell("status").lower()
    status = _STATUS_ALIASES.get(status, status)
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r} (use {', '.join(STATUSES)})")
    return Subscriber(email=email, name=clean_name(cell("name")), status=status)


def save_subscribers(path: Path, subscribers: Iterable[Subscriber]) -> None:
    """Write the CSV atomically (temporary file in the same folder, then os.replace)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FIELDS)
    for s in subscribers:
        writer.writerow([spreadsheet_safe(s.email), spreadsheet_safe(s.name), s.status])
    write_atomic(path, out.getvalue(), private=True, sync=True)  # addresses: owner only


def _existing(path: Path) -> SubscriberList:
    """Read the list before rewriting it; refuse if a bad row would be lost by the rewrite."""
    if not path.exists():
        return SubscriberList(())
    current = load_subscribers(path)
    if current.problems:
        raise ConfigError(
            "fix or delete these rows first; rewriting the file would drop them:\n  "
            + "\n  ".join(current.problems),
            str(path),
        )
    return current


def add_subscriber(path: Path, email: str, name: str = "") -> Subscriber:
    """Add an address, or re-subscribe it (an explicit add is consent); ValueError if bad."""
    new = Subscriber(validate_email(email), clean_name(name), SUBSCRIBED)
    current = list(_existing(path).subscribers)
    for i, s in enumerate(current):
        if address_key(s.email) == address_key(new.email):
            current[i] = replace(s, status=SUBSCRIBED, name=new.name or s.name)
            save_subscribers(path, current)
            return current[i]
    save_subscribers(path, [*current, new])
    return new


def remove_subscriber(path: Path, email: str, *, purge: bool = False) -> bool:
    """Mark an address unsubscribed (or delete its row with ``purge``); False if absent.

    Marking keeps the opt-out, so a later import of an old list cannot re-subscribe it.
    """
    current = list(_existing(path).subscribers)
    key = address_key(email)
    kept = [s for s in current if address_key(s.email) != key]
    if len(kept) == len(current):
        return False
    if not purge:
        kept = [
            replace(s, status=UNSUBSCRIBED) if address_key(s.email) == key else s for s in current
        ]
    save_subscribers(path, kept)
    return True


@dataclass(frozen=True)
class ImportReport:
    """What ``import_subscribers`` did."""

    added: int
    updated: int
    unchanged: int
    problems: tuple[str, ...]


def import_subscribers(path: Path, source: Path) -> ImportReport:
    """Merge another CSV into the list: new addresses are added, names filled in.

    An existing address keeps its status: an import never re-subscribes someone who
    unsubscribed. Bad rows of ``source`` are reported by line and skipped.
    """
    incoming = load_subscribers(source)
    existing = _existing(path)
    by_key = {address_key(s.email): s for s in existing.subscribers}
    added = updated = unchanged = 0
    for s in incoming.subscribers:
        key = address_key(s.email)
        old = by_key.get(key)
        if old is None:
            by_key[key] = s
            added += 1
        elif s.name and s.name != old.name:
            by_key[key] = replace(old, name=s.name)
            updated += 1
        else:
            unchanged += 1
    save_subscribers(path, by_key.values())
    return ImportReport(added, updated, unchanged, incoming.problems)


def list_subscribers(path: Path) -> SubscriberList:
    """Return every row of the list (all statuses), with the problems of bad rows."""
    return load_subscribers(path)
