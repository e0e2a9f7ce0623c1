"""The subscriber flows (#16): double opt-in and the bounce policy, store and mail together.

- ``request``: a form's subscribe request: the store decides (``request_signup``) and a
  confirmation mail goes to the outbox, or nothing does; the caller answers the same
  page either way, so nobody learns whether an address is on the list.
- ``confirm``: a confirmation link pressed (POST): signature and age checked here, the
  signup used once by the store, then the welcome mail with a link to the latest issue.
- ``apply_bounces``: bounce records (a mailbox or a webhook) through the policy
  (mash.subscribers.policy), each recorded once, with the mail that caused it.

Mail goes through an ``Outbox``: the web answer never waits for SMTP, so its timing
does not tell a new address from a known one either. ``SmtpOutbox`` sends from one
thread, in order; a mail it cannot send is named on stderr and dropped (the reader can
ask again). It never loads fetch, extract or rank.
"""

from __future__ import annotations

import contextlib
import functools
import os
import queue
import smtplib
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

import jinja2

from mash import mail
from mash.errors import MashError, StoreError
from mash.records import Bounce, Config
from mash.render import make_env
from mash.store import Store, is_database_url, open_store
from mash.subscribers import address_key
from mash.subscribers.tokens import (
    make_confirm_token,
    read_confirm_token,
    verp_address,
    verp_month,
)
from mash.unsubscribe import make_token, unsubscribe_link


class Outbox(Protocol):
    """Where the flows put a mail to send (a function making it, and its envelope
    sender): the mail is made and sent later, away from the request."""

    def put(self, make: Callable[[], EmailMessage], sender: str) -> None: ...


@dataclass(frozen=True)
class Lists:
    """What the flows need: the config, the store, the signing secret, the outbox."""

    config: Config
    database: str | Path
    secret: str
    list_id: str
    outbox: Outbox
    _kept: _KeptStores = field(default_factory=lambda: _KeptStores(), compare=False)

    @contextlib.contextmanager
    def open(self) -> Iterator[Store]:
        """Lend a store for one request.

        On PostgreSQL each worker thread keeps its connection between requests (a Store
        is one connection, for one thread) instead of connecting and checking the schema
        each time; one that fails is closed, and the next request connects again. A
        SQLite store is opened per request: that is cheap, and its connection may only
        ever be closed by the thread that made it.
        """
        if not is_database_url(self.database):
            with open_store(self.database) as store:
                yield store
            return
        kept = self._kept.take()
        store = kept if kept is not None else self._kept.keep(open_store(self.database))
        try:
            yield store
        except StoreError:
            self._kept.drop(store)
            raise

    def close(self) -> None:
        """Close every kept store (the server has stopped: no thread uses them)."""
        self._kept.close()


class _KeptStores:
    """The PostgreSQL stores of a server's worker threads, one per thread."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._all: list[Store] = []
        self._lock = threading.Lock()

    def take(self) -> Store | None:
        store: Store | None = getattr(self._local, "store", None)
        return store

    def keep(self, store: Store) -> Store:
        self._local.store = store
        with self._lock:
            self._all.append(store)
        return store

    def drop(self, store: Store) -> None:
        self._local.store = None
        with self._lock:
            if store in self._all:
                self._all.remove(store)
        with contextlib.suppress(MashError):
            store.close()

    def close(self) -> None:
        with self._lock:
            kept, self._all = self._all, []
        for store in kept:
            with contextlib.suppress(MashError):
                store.close()


# --- double opt-in ---------------------------------------------------------------------


def request(lists: Lists, email: str, name: str, origin: str, now: datetime) -> bool:
    """Record a subscribe request; return whether a confirmation mail went out.

    ``email`` and ``name`` are validated by the caller. The caller must not tell the
    reader what this returns.
    """
    resend = timedelta(minutes=lists.config.server.resend_minutes)
    with lists.open() as store:
        answer = store.request_signup(email, name, origin=origin, now=now, resend_after=resend)
    if answer.mail:
        token = make_confirm_token(email, answer.issued, lists.list_id, lists.secret)
        name = answer.name
        lists.outbox.put(lambda: _confirmation(lists, email, name, token, now), _sender(lists))
    return answer.mail


@dataclass(frozen=True)
class Checked:
    """A confirmation link read: ``problem`` is "" for a genuine one that has not
    expired, else "forged" or "expired"."""

    email: str = ""
    issued: datetime | None = None
    problem: str = ""


def check_link(lists: Lists, token: str, now: datetime) -> Checked:
    """Read a confirmation link's token: genuine, and younger than server.confirm_days?"""
    read = read_confirm_token(token, lists.list_id, lists.secret)
    if read is None:
        return Checked(problem="forged")
    if now - read.issued > timedelta(days=lists.config.server.confirm_days):
        return Checked(read.email, read.issued, "expired")
    return Checked(read.email, read.issued)


def confirm(lists: Lists, token: str, now: datetime) -> tuple[Checked, str]:
    """Confirm by a link's token: (what the link says, the outcome).

    The outcome is "" for a bad link, else the store's (subscribed, already, used).
    Only a new subscription gets the welcome mail.
    """
    checked = check_link(lists, token, now)
    if checked.problem or checked.issued is None:
        return checked, ""
    with lists.open() as store:
        done = store.confirm_signup(checked.email, checked.issued, now=now)
        latest = store.built_months()
    if done.outcome == "subscribed" and done.subscriber is not None:
        who, month = done.subscriber, latest[-1] if latest else ""
        lists.outbox.put(lambda: _welcome(lists, who.email, who.name, month, now), _sender(lists))
    return checked, done.outcome


def confirm_url(lists: Lists, token: str) -> str:
    """Return the link of a confirmation mail: ``<server_url>/confirm?token=...``."""
    base = lists.config.newsletter.server_url.rstrip("/")
    return f"{base}/confirm?token={token}"


def _sender(lists: Lists) -> str:
    smtp = lists.config.smtp
    return smtp.return_path or lists.config.newsletter.sender


def _context(lists: Lists, email: str, name: str, subject: str) -> dict[str, object]:
    newsletter = lists.config.newsletter
    return {
        "newsletter": newsletter,
        "lang": newsletter.language or "en",
        "subject": subject,
        "email": email,
        "name": name,
        "days": lists.config.server.confirm_days,
    }


def _confirmation(lists: Lists, email: str, name: str, token: str, now: datetime) -> EmailMessage:
    newsletter = lists.config.newsletter
    subject = f"Please confirm your subscription to {newsletter.name}"
    context = _context(lists, email, name, subject)
    context["confirm_url"] = confirm_url(lists, token)
    html, text = mail.render_notice(_env(lists.config.templates_dir), "confirm", context)
    return mail.build_notice(newsletter, subject, html, text, to_addr=email, to_name=name, date=now)


def _welcome(lists: Lists, email: str, name: str, month: str, now: datetime) -> EmailMessage:
    newsletter = lists.config.newsletter
    subject = f"Welcome to {newsletter.name}"
    context = _context(lists, email, name, subject)
    site = newsletter.site_url.rstrip("/") + "/"
    context["latest_month"] = mail.month_name(month) if month else ""
    context["latest_url"] = f"{site}{month.replace('-', '/')}/" if month else site
    unsubscribe = make_token(email, lists.list_id, lists.secret)
    context["unsubscribe_url"] = unsubscribe_link(lists.config.smtp.unsubscribe_url, unsubscribe)
    html, text = mail.render_notice(_env(lists.config.templates_dir), "welcome", context)
    return mail.build_notice(newsletter, subject, html, text, to_addr=email, to_name=name, date=now)


@functools.lru_cache(maxsize=4)
def _env(templates_dir: Path) -> jinja2.Environment:
    return make_env(templates_dir)  # compiled templates are kept: the outbox renders often


class SmtpOutbox:
    """Send mails from one thread through the configured SMTP server, in order.

    A transient failure (no connection, a 4xx reply) is tried again after each of
    ``retry_delays`` seconds, holding the queue meanwhile; a permanent one (5xx) is
    named on stderr and the mail dropped: the reader may ask again.
    """

    def __init__(
        self,
        connect: Callable[[], smtplib.SMTP],
        name: str = "mash server",
        retry_delays: tuple[float, ...] = (2.0, 10.0, 60.0),
    ) -> None:
        self._connect = connect
        self._name = name
        self._delays = retry_delays
        self._queue: queue.Queue[tuple[Callable[[], EmailMessage], str] | None]
        self._queue = queue.Queue(maxsize=10_000)
        self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)
        self._thread.start()

    def put(self, make: Callable[[], EmailMessage], sender: str) -> None:
        try:
            self._queue.put_nowait((make, sender))
        except queue.Full:
            sys.stderr.write(f"{self._name}: the outbox is full; dropped a mail\n")

    def close(self, timeout: float = 30.0) -> None:
        """Send what is queued, then stop."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            make, sender = item
            try:
                message = make()
            except MashError as e:  # a broken template override: say which
                sys.stderr.write(f"{self._name}: cannot make a mail: {e}\n")
                continue
            for delay in (*self._delays, None):
                problem = self._send(message, sender)
                if problem is None or delay is None or not _transient(problem):
                    break
                time.sleep(delay)
            if problem is not None:
                sys.stderr.write(
                    f"{self._name}: cannot mail {message['To']}: "
                    f"{type(problem).__name__}: {problem}\n"
                )

    def _send(self, message: EmailMessage, sender: str) -> Exception | None:
        try:
            conn = self._connect()
        except (smtplib.SMTPException, OSError) as e:
            return e
        try:
            conn.send_message(message, from_addr=sender)
        except (smtplib.SMTPException, OSError) as e:
            return e
        finally:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                conn.quit()
        return None


def _transient(problem: Exception) -> bool:
    """Tell whether trying again later may succeed: no connection, or a 4xx reply."""
    if isinstance(problem, smtplib.SMTPRecipientsRefused):
        return all(400 <= code < 500 for code, _ in problem.recipients.values())
    if isinstance(problem, smtplib.SMTPResponseException):
        return 400 <= problem.smtp_code < 500
    return True  # disconnected, refused connection, timeout


def smtp_outbox(config: Config) -> SmtpOutbox:
    """Return the outbox sending through ``smtp:`` (the password from the environment)."""
    from mash.send import smtp_connector

    return SmtpOutbox(smtp_connector(config.smtp, os.environ))


# --- bounces ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Applied:
    """One status change the policy made: the address, its new status, why."""

    email: str
    status: str
    reason: str


def apply_bounces(
    store: Store,
    records: Iterable[Bounce],
    *,
    source: str,
    config: Config,
    secret: str,
    now: datetime | None = None,
) -> list[Applied]:
    """Apply the bounce policy (``Store.apply_bounce``) to the records of one bounce
    mail or webhook event (``source``, for the log: mailbox, ses, mailgun ...).

    Where the bounce came back to a VERP return path of ours, its token names the
    address and the issue for sure (a relay may have rewritten the recipient); else the
    record's recipient and the store's way of finding the issue. Applying a record again
    changes nothing (the status has changed, or the issue's soft bounce is known).
    """
    changes = []
    for record in records:
        email, month = _where_from(store, record, secret)
        if email != record.recipient:
            record = replace(record, recipient=email)
        decision = store.apply_bounce(record, config.bounces.soft_limit, month=month, now=now)
        if decision is not None:
            changes.append(Applied(email, *decision))
    return changes


def _where_from(store: Store, record: Bounce, secret: str) -> tuple[str, str]:
    """Return the address and issue month a VERP token names, else (recipient, "")."""
    month = verp_month(record.verp) if record.verp else None
    if month and secret:
        found = verp_address(record.verp, store.month_recipients(month), secret)
        if found is not None:
            return found, month
    return address_key(record.recipient), ""
