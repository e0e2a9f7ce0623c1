"""The subscribers CSV, the list's exchange format: read (import) and write (export).

Columns ``email,name,status`` first (the contract of ``mash subscribers export``, #15),
then ``status_reason,consent_source,consented_at,confirmed_at`` (times in ISO 8601,
UTC). A file may have only some of them, with a header row in any order, or no header
and ``email[,name[,status]]``. Since #15 the list lives in the store; the file at
``paths.subscribers`` is read once, on first use, and never written.

Names hold no control characters; a cell a spreadsheet would run as a formula is
written with a leading ``'`` and read back without it (see #21). A bad row is reported
as ``file:line: problem`` and skipped.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from mash.errors import ConfigError
from mash.files import write_atomic
from mash.subscribers import (
    CONSENT_SOURCES,
    STATUSES,
    SUBSCRIBED,
    Subscriber,
    SubscriberList,
    address_key,
    clean_name,
    validate_email,
)

FIELDS = ("email", "name", "status")
EXPORT_FIELDS = (*FIELDS, "status_reason", "consent_source", "consented_at", "confirmed_at")
_STATUS_ALIASES = {"": SUBSCRIBED, "active": SUBSCRIBED, "yes": SUBSCRIBED}
# A cell starting with one of these is a formula to a spreadsheet (OWASP, CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


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


def load_subscribers(path: Path) -> SubscriberList:
    """Read a CSV file; a missing file is a ConfigError, a bad row a problem (skipped)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as e:
        raise ConfigError("no such subscribers file", str(path)) from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read the subscribers file: {e}", str(path)) from e
    return parse_subscribers(text, str(path))


def parse_subscribers(text: str, source: str) -> SubscriberList:
    """Parse CSV text with or without a header row (see the module docstring)."""
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
        return {f: header.index(f) for f in EXPORT_FIELDS if f in header}, 1
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
    source = cell("consent_source").lower()
    if source and source not in CONSENT_SOURCES:
        raise ValueError(f"unknown consent_source {source!r} (use {', '.join(CONSENT_SOURCES)})")
    return Subscriber(
        email=email,
        name=clean_name(cell("name")),
        status=status,
        status_reason=clean_name(cell("status_reason")),
        consent_source=source,
        consented_at=_time(cell("consented_at"), "consented_at"),
        confirmed_at=_time(cell("confirmed_at"), "confirmed_at"),
    )


def _time(text: str, field: str) -> datetime | None:
    """Read an ISO 8601 time (UTC when it names no offset); ValueError naming the column."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{field} is not an ISO 8601 time: {text!r}") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def format_subscribers(subscribers: Iterable[Subscriber]) -> str:
    """Return the CSV text of a list: every export column, cells spreadsheet-safe."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_FIELDS)
    for s in subscribers:
        writer.writerow(
            [
                spreadsheet_safe(s.email),
                spreadsheet_safe(s.name),
                s.status,
                spreadsheet_safe(s.status_reason),
                s.consent_source,
                _iso(s.consented_at),
                _iso(s.confirmed_at),
            ]
        )
    return out.getvalue()


def save_subscribers(path: Path, subscribers: Iterable[Subscriber]) -> None:
    """Write a CSV file atomically (temporary file in the same folder, then os.replace)."""
    text = format_subscribers(subscribers)
    write_atomic(path, text, private=True, sync=True)  # addresses: owner only


def _iso(when: datetime | None) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds") if when else ""
