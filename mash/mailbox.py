"""Read a bounce mailbox (mbox, Maildir or IMAP over TLS) and parse each new mail once (#16).

Each mail is known by its Message-ID (a SHA-256 of its bytes where it has none) and is
read once: the keys of mails already read live behind ``SeenMessages`` (a set in memory,
or the store's table mails_read, ``mash.store.SeenMails``, shared by every machine on
PostgreSQL). Mails that
are not bounces are counted and left alone: never deleted, moved, or flagged seen (IMAP
is read with ``BODY.PEEK``); a bounce or complaint read over IMAP is flagged ``\\Seen``.
Nothing here changes a subscriber: each record goes to ``apply`` (the policy).
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import hashlib
import imaplib
import mailbox
import os
import re
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from mash.bounces import parse_bounce
from mash.errors import ConfigError, MailboxError
from mash.records import Bounce, BounceSettings

MAX_MESSAGE_BYTES = 25 * 1024 * 1024  # bigger mails are skipped, counted as not bounces


class SeenMessages(Protocol):
    """The keys of the mails already read (the store keeps them: mash.store.SeenMails)."""

    def __contains__(self, key: object) -> bool: ...

    def add(self, key: str) -> None: ...


@dataclass(frozen=True)
class Mail:
    """One mail of a mailbox: its key, how to read it, how to mark it read as a bounce."""

    key: str
    read: Callable[[], bytes]
    mark_bounce: Callable[[], None] = lambda: None


@dataclass
class ImportReport:
    """What one import found; made by import_bounces, printed by cli."""

    messages: int = 0  # mails in the mailbox
    already: int = 0  # ... read by an earlier run
    bounces: int = 0  # mails that were bounces (one may name several recipients)
    complaints: int = 0
    not_bounces: int = 0  # left alone
    records: list[Bounce] = field(default_factory=list)


def import_bounces(
    mails: Iterator[Mail],
    seen: SeenMessages,
    apply: Callable[[Bounce], None] = lambda _record: None,
) -> ImportReport:
    """Parse every mail not yet seen; remember each, bounce or not, so none is read twice.

    ``apply`` gets each record before its mail is remembered: a run killed in between
    reads that mail again rather than losing its bounce.
    """
    report = ImportReport()
    for mail in mails:
        report.messages += 1
        if mail.key in seen:
            report.already += 1
            continue
        records = parse_bounce(mail.read())
        if not records:
            report.not_bounces += 1
        elif any(r.kind == "complaint" for r in records):
            report.complaints += 1
        else:
            report.bounces += 1
        for record in records:
            apply(record)
        if records:
            mail.mark_bounce()
        report.records.extend(records)
        seen.add(mail.key)
    return report


def message_key(raw: bytes) -> str:
    """Return the mail's Message-ID, or ``sha256:HEX`` of its bytes where it has none."""
    head = raw.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    headers = email.message_from_bytes(head + b"\n\n", policy=email.policy.compat32)
    value = " ".join(str(headers.get("message-id", "")).split())
    return value[:500] if value else "sha256:" + hashlib.sha256(raw).hexdigest()


# --- local mailboxes --------------------------------------------------------------------


def read_mbox(path: Path) -> Iterator[Mail]:
    """Yield the mails of an mbox file; it is only read, never locked or changed."""
    if not path.is_file():
        raise MailboxError(str(path), "no mbox file there")
    try:
        box = mailbox.mbox(str(path), create=False)
    except (OSError, mailbox.Error) as e:
        raise MailboxError(str(path), f"cannot read the mbox: {e}") from e
    try:
        for key in box.iterkeys():
            raw = box.get_bytes(key)
            yield Mail(message_key(raw), _given(raw))
    except (OSError, mailbox.Error) as e:
        raise MailboxError(str(path), f"cannot read the mbox: {e}") from e
    finally:
        box.close()


def read_maildir(path: Path) -> Iterator[Mail]:
    """Yield the mails of a Maildir (new/ and cur/); files are not moved or renamed."""
    if not (path / "cur").is_dir() and not (path / "new").is_dir():
        raise MailboxError(str(path), "not a Maildir (no cur/ or new/ folder)")
    for folder in ("new", "cur"):
        try:
            names = sorted(p for p in (path / folder).iterdir() if not p.name.startswith("."))
        except FileNotFoundError:
            continue
        except OSError as e:
            raise MailboxError(str(path / folder), f"cannot list the Maildir: {e}") from e
        for file in names:
            try:
                raw = file.read_bytes()[:MAX_MESSAGE_BYTES]
            except OSError as e:
                raise MailboxError(str(file), f"cannot read the mail: {e}") from e
            yield Mail(message_key(raw), _given(raw))


# --- IMAP over TLS ------------------------------------------------------------------------


def imap_where(settings: BounceSettings) -> str:
    """Name the mailbox in messages: ``imaps://host:port/folder (user NAME)``, no password."""
    return f"imaps://{settings.host}:{settings.port}/{settings.folder} (user {settings.user})"


def read_imap(settings: BounceSettings, config_path: str = "feeds.yaml") -> Iterator[Mail]:
    """Yield the mails of an IMAP folder over TLS; the password comes from the environment.

    Only the Message-IDs are fetched for all; a mail's body only when it is new. The
    certificate is checked against the system's CAs (``SSL_CERT_FILE`` adds one).
    """
    if not settings.host or not settings.user:
        raise ConfigError(
            "set bounces.host and bounces.user to read bounces over IMAP", config_path
        )
    password = os.environ.get(settings.password_env, "")
    if not password:
        raise ConfigError(
            f"the bounce mailbox's password is read from ${settings.password_env}, "
            "which is not set (bounces.password_env names the variable)",
            config_path,
        )
    where = imap_where(settings)
    try:
        client = imaplib.IMAP4_SSL(
            settings.host, settings.port, ssl_context=ssl.create_default_context(), timeout=60
        )
    except (OSError, imaplib.IMAP4.error) as e:
        raise MailboxError(where, "cannot connect") from e
    try:
        yield from _imap_mails(client, settings, password, where)
    except (OSError, imaplib.IMAP4.error) as e:
        raise MailboxError(where, "IMAP failed") from e
    finally:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            client.logout()


def _imap_mails(
    client: imaplib.IMAP4_SSL, settings: BounceSettings, password: str, where: str
) -> Iterator[Mail]:
    try:
        client.login(settings.user, password)
    except imaplib.IMAP4.error as e:
        raise MailboxError(where, f"login refused: {_text(e.args[0] if e.args else e)}") from None
    status, data = client.select(_quote(settings.folder))
    if status != "OK":
        raise MailboxError(where, f"no such folder: {_text(data[0] if data else b'')}")
    status, data = client.uid("SEARCH", "ALL")
    found = data[0] if status == "OK" and data and isinstance(data[0], bytes) else b""
    uids = found.decode("ascii").split()
    for uid in uids:
        status, parts = client.uid("FETCH", uid, "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        header = _literal(parts)
        key = message_key(header + b"\r\n") if header.strip() else ""

        def read(uid: str = uid) -> bytes:
            status, parts = client.uid("FETCH", uid, "(BODY.PEEK[])")
            return _literal(parts)[:MAX_MESSAGE_BYTES]

        def mark(uid: str = uid) -> None:
            client.uid("STORE", uid, "+FLAGS.SILENT", "(\\Seen)")

        if not key:  # no Message-ID: its bytes name it
            raw = read()
            yield Mail(message_key(raw), _given(raw), mark)
        else:
            yield Mail(key, read, mark)


def _given(raw: bytes) -> Callable[[], bytes]:
    return lambda: raw


def _literal(parts: list[object] | list[None]) -> bytes:
    for part in parts or []:
        if isinstance(part, tuple) and len(part) > 1 and isinstance(part[1], bytes):
            return part[1]
    return b""


def _quote(folder: str) -> str:
    return '"' + re.sub(r'(["\\])', r"\\\1", folder) + '"'


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
