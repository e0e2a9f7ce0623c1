"""Subscribers: address validation, the statuses and the rules that move between them.

The list itself lives in the store (``mash.store.subscribers``: one row per address,
one history row per status change); ``mash.subscribers.csv`` is the exchange format
(``mash subscribers import`` and ``export``). Nothing here does I/O.

Statuses (#16): ``pending`` (asked to subscribe, not yet confirmed), ``subscribed``
(the only status ``mash send`` mails), ``unsubscribed`` (the reader or the editor said
so), ``bounced`` (the address is bad), ``complained`` (marked a mail as spam).
Consent (#16): where it came from (``form``, ``import``, ``cli``) and when, and when
the address was confirmed (double opt-in; empty for an import or an editor's add).
"""

from __future__ import annotations

import re
from collections.abc import Sequence, Set
from dataclasses import dataclass, replace
from datetime import datetime

from mash.records import Bounce

PENDING = "pending"
SUBSCRIBED = "subscribed"
UNSUBSCRIBED = "unsubscribed"
BOUNCED = "bounced"
COMPLAINED = "complained"
STATUSES = (PENDING, SUBSCRIBED, UNSUBSCRIBED, BOUNCED, COMPLAINED)

FORM = "form"
IMPORT = "import"
CLI = "cli"
CONSENT_SOURCES = (FORM, IMPORT, CLI)
# The statuses a reader's own opt-out changes to unsubscribed: a bounced or complained
# address keeps the status that says more (see #16).
OPTING_OUT = frozenset({PENDING, SUBSCRIBED})

# Dot-atom local part and a domain of LDH labels with a dot: what SMTP servers accept
# without SMTPUTF8 or quoting. Stricter than RFC 5321 on purpose.
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
# What a name may not hold once its whitespace is flattened: control characters (C0,
# DEL, C1) and the bidirectional overrides that make a name read backwards (see #21).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class Subscriber:
    """One address of the list: a CSV row, or a store row (which fills every field)."""

    email: str
    name: str = ""
    status: str = SUBSCRIBED
    status_reason: str = ""  # why it has its status ("one-click unsubscribe", ...)
    consent_source: str = ""  # form | import | cli ("" in a CSV that does not say)
    consented_at: datetime | None = None
    confirmed_at: datetime | None = None  # double opt-in confirmed
    created: datetime | None = None
    updated: datetime | None = None


@dataclass(frozen=True)
class StatusChange:
    """One change of an address's status (old is None for a new address); from the store."""

    email: str
    changed: datetime
    old: str | None
    new: str
    reason: str


@dataclass(frozen=True)
class SubscriberList:
    """The valid rows of a CSV, and one problem line per row skipped."""

    subscribers: tuple[Subscriber, ...]
    problems: tuple[str, ...] = ()

    @property
    def active(self) -> tuple[Subscriber, ...]:
        return tuple(s for s in self.subscribers if s.status == SUBSCRIBED)


@dataclass(frozen=True)
class ImportReport:
    """What an import of a CSV into the store did (bad rows of the file in problems)."""

    added: int
    updated: int
    unchanged: int
    problems: tuple[str, ...] = ()


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


def address_key(address: str) -> str:
    """Return the identity of an address for de-duplication, opt-outs and the ledger."""
    return address.strip().lower()


# --- the rules (pure) ------------------------------------------------------------------


def merge_import(old: Subscriber | None, new: Subscriber) -> Subscriber | None:
    """Return the row an imported row makes of an address, or None to leave it as is.

    A new address comes in as the file says. An existing one keeps its status and
    consent: an import never re-subscribes someone who unsubscribed, bounced or
    complained (see #16); only a name the file gives fills in or replaces the old one.
    """
    if old is None:
        return new
    if new.name and new.name != old.name:
        return replace(old, name=new.name)
    return None


# --- bounces and complaints (#16) ---------------------------------------------------------

_OUR_MESSAGE_ID = re.compile(r"<mash\.(\d{4}-\d{2})\.")


def bounce_month(message_id: str) -> str:
    """Return the issue (YYYY-MM) a bounced mail was, from the Message-ID mash gave it."""
    found = _OUR_MESSAGE_ID.search(message_id)
    return found.group(1) if found else ""


def decide_bounce(
    bounce: Bounce,
    month: str,
    status: str,
    soft_months: Set[str],
    mailed: Sequence[str],
    soft_limit: int,
) -> tuple[str, str] | None:
    """Return the (status, reason) a bounce or complaint of the issue ``month`` gives an
    address, or None.

    A complaint makes it ``complained`` and a hard bounce ``bounced`` at once; soft
    bounces make it ``bounced`` once each of the last ``soft_limit`` issues mailed to
    it (``mailed``, newest first) came back (``soft_months``). Only a ``subscribed`` or
    ``pending`` address changes; a complaint also overrides an opt-out. Does not look at
    when the bounce came: the issues it belongs to are what count.
    """
    issue = f"on the {month} issue" if month else "(no issue named)"
    words = f": {bounce.reason[:160]}" if bounce.reason else ""
    if bounce.kind == "complaint":
        if status in (COMPLAINED, BOUNCED):
            return None
        kind = bounce.feedback_type or "abuse"
        return COMPLAINED, f"spam complaint ({kind}) {issue}"
    if status not in OPTING_OUT:
        return None
    if bounce.hard:
        return BOUNCED, f"hard bounce {bounce.status or '5.0.0'} {issue}{words}"
    recent = list(mailed[:soft_limit])
    if len(recent) < soft_limit or not set(recent) <= soft_months:
        return None
    months = ", ".join(sorted(recent))
    return BOUNCED, f"soft bounces on {soft_limit} issues in a row ({months}){words}"
