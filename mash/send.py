"""Send an issue over SMTP, exactly once per subscriber, with a dry run and proofs.

Flow of ``send_issue``: start a send run (SQLite: the store's send lock, one send at a
time; PostgreSQL: shared, each run marked live), read the list (the CSV at ``paths.subscribers``
is imported on first use), the ledger and the opt-outs, plan who gets mail (only
``subscribed`` addresses), then send over ``smtp.connections`` connections
at once, one worker thread each; per recipient: wait for the shared rate limiter,
commit ``sending``, run MAIL/RCPT/DATA, commit ``sent``. A crash between the two
commits leaves the recipient ``sending``: the next run names it "in doubt" and does
not re-send it unless asked (``resend_in_doubt``); a recipient ``sending`` by another
run still live is left to that run (see #15, #16). It sends already-rendered HTML and
text (``load_email`` reads them from output/YYYY-MM/); it never renders.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import queue
import smtplib
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence, Set
from contextlib import suppress
from dataclasses import dataclass, field
from email.utils import make_msgid
from pathlib import Path

from mash import mail
from mash.errors import BuildError, ConfigError, SendError
from mash.records import Config, Issue, SmtpSettings
from mash.store import (
    CLAIM,
    DEFERRED,
    DOUBT,
    FAILED,
    SENDING,
    SENT,
    LedgerEntry,
    LedgerWrite,
    Store,
    open_store,
)
from mash.subscribers import (
    SUBSCRIBED,
    Subscriber,
    address_key,
    validate_email,
)
from mash.subscribers.tokens import envelope_sender
from mash.unsubscribe import make_token, unsubscribe_link

Connector = Callable[[], smtplib.SMTP]
Progress = Callable[[str], None]
RETRIES = 3
TIMEOUT = 60.0
INSECURE_SECRET_PREFIX = "mash-insecure-preview-secret:"


# --- records ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    """One message to send: who, and the per-recipient parts of the message."""

    email: str
    name: str
    message_id: str
    unsubscribe_url: str
    unsubscribe_mailto: str


@dataclass(frozen=True)
class Plan:
    """Who gets mail this run and why the others do not; made by ``plan_send`` (pure)."""

    to_send: tuple[Subscriber, ...]
    already_sent: tuple[str, ...] = ()
    in_doubt: tuple[str, ...] = ()  # marked sending by an earlier run; not re-sent
    resend: tuple[str, ...] = ()  # in doubt, but re-sent because the editor asked
    failed_before: tuple[tuple[str, str], ...] = ()
    opted_out: tuple[str, ...] = ()
    inactive: tuple[str, ...] = ()  # status is not "subscribed" (and not opted out)
    elsewhere: tuple[str, ...] = ()  # claimed by another send that is running now


@dataclass(frozen=True)
class SendReport:
    """What a send, dry run or proof did; ``lines()`` is the summary for the editor."""

    month: str
    mode: str  # send | dry-run | proof
    sent: tuple[str, ...] = ()
    would_send: tuple[Recipient, ...] = ()
    already_sent: tuple[str, ...] = ()
    in_doubt: tuple[tuple[str, str], ...] = ()  # (address, why)
    resent_in_doubt: tuple[str, ...] = ()
    failed: tuple[tuple[str, str], ...] = ()  # permanent refusals, this run or before
    deferred: tuple[tuple[str, str], ...] = ()  # not accepted; the next run retries them
    opted_out: tuple[str, ...] = ()
    inactive: tuple[str, ...] = ()
    elsewhere: tuple[str, ...] = ()  # being sent by another send running now (see #15)
    problems: tuple[str, ...] = ()  # bad rows of the CSV imported on first use
    warnings: tuple[str, ...] = ()
    stopped: str = ""  # why the run stopped before the end; the rest is untouched

    @property
    def done(self) -> bool:
        """True when nobody is left to send to (in-doubt recipients need a decision)."""
        return not self.stopped and not self.deferred

    @property
    def needs_attention(self) -> bool:
        """True when the editor must act: in doubt, failed, deferred or stopped (exit 1)."""
        return bool(self.in_doubt or self.failed or not self.done)

    def lines(self) -> list[str]:
        """Return the report as lines for the terminal, one per problem address."""
        out = list(self.warnings) + list(self.problems)
        if self.mode == "dry-run":
            out += [f"would send to {r.name} <{r.email}>" for r in self.would_send]
        out += [
            f"in doubt: {a} ({why}); re-send with --resend-in-doubt" for a, why in self.in_doubt
        ]
        out += [f"failed: {a}: {why}" for a, why in self.failed]
        out += [f"deferred: {a}: {why} (the next run retries)" for a, why in self.deferred]
        if self.stopped:
            out.append(f"stopped: {self.stopped}")
        out.append(self.summary())
        return out

    def summary(self) -> str:
        counts = (
            f"{len(self.would_send)} would be sent"
            if self.mode == "dry-run"
            else f"{len(self.sent)} sent"
        )
        if self.elsewhere:
            counts += f", {len(self.elsewhere)} left to another send running now"
        return (
            f"{self.mode} {self.month}: {counts}, {len(self.already_sent)} already sent, "
            f"{len(self.in_doubt)} in doubt, {len(self.failed)} failed, "
            f"{len(self.deferred)} deferred, {len(self.opted_out)} opted out, "
            f"{len(self.inactive)} not subscribed, {len(self.problems)} bad rows"
        )


@dataclass
class _Tally:
    sent: list[str] = field(default_factory=list)
    in_doubt: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    deferred: list[tuple[str, str]] = field(default_factory=list)
    stopped: str = ""
    warnings: list[str] = field(default_factory=list)

    def in_order(self, order: Mapping[str, int]) -> _Tally:
        """Return the tally with each list in ``order`` (the plan's), whatever thread
        finished first."""

        def first(item: tuple[str, str]) -> int:
            return order.get(item[0], 0)

        return _Tally(
            sorted(self.sent, key=lambda a: order.get(a, 0)),
            sorted(self.in_doubt, key=first),
            sorted(self.failed, key=first),
            sorted(self.deferred, key=first),
            self.stopped,
            self.warnings,
        )


# --- planning (pure) -------------------------------------------------------------------


def plan_send(
    subscribers: Sequence[Subscriber],
    entries: Mapping[str, LedgerEntry],
    opted_out: Set[str],
    *,
    resend_in_doubt: bool = False,
    live_runs: Set[int] = frozenset(),
) -> Plan:
    """Decide who gets mail: never-marked and deferred yes; sent, failed, opted out no.

    A recipient ``sending`` by one of ``live_runs`` (another send running now) is left
    to it; one left ``sending`` by a run that is gone is in doubt (see #15).
    """
    to_send: list[Subscriber] = []
    kinds = ("sent", "doubt", "resend", "out", "off", "elsewhere")
    buckets: dict[str, list[str]] = {k: [] for k in kinds}
    failed: list[tuple[str, str]] = []
    for s in subscribers:
        key = address_key(s.email)
        entry = entries.get(key)
        state = entry.state if entry else None
        if key in opted_out:  # the reader's own word, whatever the status says
            buckets["out"].append(s.email)
        elif s.status != SUBSCRIBED:
            buckets["off"].append(s.email)
        elif state == SENT:
            buckets["sent"].append(s.email)
        elif state == FAILED and entry is not None:
            failed.append((s.email, entry.error))
        elif state == SENDING and entry is not None and entry.run in live_runs:
            buckets["elsewhere"].append(s.email)
        elif state == SENDING and not resend_in_doubt:
            buckets["doubt"].append(s.email)
        else:
            if state == SENDING:
                buckets["resend"].append(s.email)
            to_send.append(s)
    return Plan(
        to_send=tuple(to_send),
        already_sent=tuple(buckets["sent"]),
        in_doubt=tuple(buckets["doubt"]),
        resend=tuple(buckets["resend"]),
        failed_before=tuple(failed),
        opted_out=tuple(buckets["out"]),
        inactive=tuple(buckets["off"]),
        elsewhere=tuple(buckets["elsewhere"]),
    )


class RateLimiter:
    """Space messages at least 1/rate seconds apart; ``rate`` <= 0 turns it off.

    Thread-safe: the SMTP connections of one send share one limiter, so the rate is
    their total (see #16). ``sleeps`` keeps every wait it asked for, so tests can count
    without timing.
    """

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.clock = clock
        self.sleep = sleep
        self.next_at: float | None = None
        self.sleeps: list[float] = []
        self.lock = threading.Lock()

    def wait(self) -> None:
        """Wait for this caller's turn; each caller books the next free slot."""
        if not self.interval:
            return
        with self.lock:
            now = self.clock()
            start = now if self.next_at is None else max(now, self.next_at)
            self.next_at = start + self.interval
            delay = start - now
            if delay > 0:
                self.sleeps.append(delay)
        if delay > 0:
            self.sleep(delay)


# --- files, secrets, lock ------------------------------------------------------------------


def load_email(output_dir: Path, month: str) -> tuple[str, str]:
    """Read output/YYYY-MM/email.html and email.txt, as ``mash build`` wrote them."""
    folder = output_dir / month
    try:
        html = (folder / "email.html").read_text(encoding="utf-8")
        text = (folder / "email.txt").read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise BuildError(f"{e.filename} is missing; run `mash build --month {month}` first") from e
    return html, text


def unsubscribe_secret(
    config: Config, environ: Mapping[str, str], *, required: bool
) -> tuple[str, str | None]:
    """Return the token secret and a warning when an insecure fallback is used.

    A real send requires the secret; a dry run or proof may use a per-install fallback.
    """
    name = config.smtp.secret_env
    secret = environ.get(name, "")
    if secret:
        return secret, None
    if required:
        raise ConfigError(
            f"set {name} in the environment: it signs the unsubscribe links "
            "(and the unsubscribe server needs the same value)"
        )
    fallback = f"{INSECURE_SECRET_PREFIX}{config.db_path.resolve()}"
    return fallback, (
        f"warning: {name} is not set; unsubscribe links use an INSECURE per-install "
        "secret (fine for a dry run or proof, never for a real send)"
    )


# --- SMTP ------------------------------------------------------------------------------------


def smtp_connector(smtp: SmtpSettings, environ: Mapping[str, str]) -> Connector:
    """Return a function opening an authenticated SMTP connection from the settings.

    The password comes only from ``environ[smtp.password_env]``, and only when a user
    is configured.
    """
    password = ""
    if smtp.user:
        password = environ.get(smtp.password_env, "")
        if not password:
            raise ConfigError(f"set {smtp.password_env} to the SMTP password of {smtp.user}")
    if smtp.security not in ("starttls", "tls", "none"):
        raise ConfigError(f"smtp.security must be starttls, tls or none, not {smtp.security!r}")

    def connect() -> smtplib.SMTP:
        context = ssl.create_default_context()
        conn: smtplib.SMTP
        if smtp.security == "tls":
            conn = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=TIMEOUT, context=context)
        else:
            conn = smtplib.SMTP(smtp.host, smtp.port, timeout=TIMEOUT)
        try:
            # the address connected to decides, not the name: nothing is sent before
            peer = conn.sock.getpeername()[0] if conn.sock else "?"
            if refusal := auth_in_clear_refusal(smtp, peer):
                raise ConfigError(refusal)
            conn.ehlo()
            if smtp.security == "starttls":
                conn.starttls(context=context)
                conn.ehlo()
            if smtp.user:
                conn.login(smtp.user, password)
        except BaseException:
            conn.close()
            raise
        return conn

    return connect


def auth_in_clear_refusal(smtp: SmtpSettings, peer: str) -> str | None:
    """Return why the login must not go to ``peer`` (an IP address), or None if it may.

    Only ``security: none`` with a user sends the password unencrypted; that is allowed
    to a loopback address alone, a relay on this machine (see #21).
    """
    if smtp.security != "none" or not smtp.user:
        return None
    try:
        address = ipaddress.ip_address(peer.partition("%")[0])
    except ValueError:
        address = None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address is not None and address.is_loopback:
        return None
    return (
        f"smtp.security is none, so the password of {smtp.user} would go to "
        f"{smtp.host} ({peer}) unencrypted; set smtp.security: starttls (usually port "
        f"587) or tls (port 465) in the config (none with a user only works with a "
        f"server on this machine, a loopback address)"
    )


class _Session:
    """One SMTP connection, opened on demand and dropped after any doubt."""

    def __init__(self, connect: Connector) -> None:
        self.connect = connect
        self.conn: smtplib.SMTP | None = None

    def get(self) -> smtplib.SMTP:
        if self.conn is None:
            self.conn = self.connect()
        return self.conn

    def drop(self) -> None:
        if self.conn is not None:
            try:
                self.conn.quit()
            except (smtplib.SMTPException, OSError):
                self.conn.close()
            self.conn = None


@dataclass(frozen=True)
class _Outcome:
    kind: str  # sent | refused | unreachable | in-doubt | claimed (by another send)
    code: int = 0
    detail: str = ""

    step: str = ""  # the SMTP command refused

    @property
    def transient(self) -> bool:
        return self.kind == "unreachable" or (self.kind == "refused" and 400 <= self.code < 500)

    @property
    def sender_refused(self) -> bool:
        """A permanent refusal of MAIL FROM: the sender, not the recipient, is wrong."""
        return self.kind == "refused" and self.step == "MAIL FROM" and not self.transient


def _transact(conn: smtplib.SMTP, sender: str, to: str, payload: bytes) -> _Outcome:
    """Run MAIL, RCPT and DATA; only a failure inside DATA can leave the message in doubt."""
    try:
        code, reply = conn.mail(sender)
        if code != 250:
            return _refused(conn, code, reply, "MAIL FROM")
        code, reply = conn.rcpt(to)
        if code not in (250, 251):
            return _refused(conn, code, reply, "RCPT TO")
    except (smtplib.SMTPException, OSError) as e:
        return _Outcome("unreachable", 0, f"{type(e).__name__}: {e}")
    try:
        code, reply = _data(conn, payload)
    except smtplib.SMTPDataError as e:
        return _refused(conn, e.smtp_code, e.smtp_error, "DATA")
    except (smtplib.SMTPException, OSError) as e:
        # The end of data may have reached the server: it may have accepted the message.
        return _Outcome("in-doubt", 0, f"{type(e).__name__} during DATA: {e}")
    if code == 250:
        return _Outcome("sent")
    if 400 <= code < 600:  # refused after the data: not taken (see #16)
        return _refused(conn, code, reply, "end of DATA")
    return _Outcome("in-doubt", 0, f"unreadable reply to the end of DATA: {code} {reply!r}")


def _data(conn: smtplib.SMTP, payload: bytes) -> tuple[int, bytes]:
    """Run DATA as ``smtplib.SMTP.data`` does and return the reply to the end of data.

    Dot-stuffing by ``bytes.replace``, not smtplib's regex: a third of a message's CPU
    in a fast send (see #16). Raises SMTPDataError when DATA itself is refused.
    """
    code, reply = conn.docmd("data")
    if code != 354:
        raise smtplib.SMTPDataError(code, reply)
    stuffed = payload.replace(b"\n.", b"\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    conn.send(stuffed + b".\r\n")
    return conn.getreply()


def _refused(conn: smtplib.SMTP, code: int, reply: bytes | str, step: str) -> _Outcome:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    with suppress(smtplib.SMTPException, OSError):
        conn.rset()
    return _Outcome("refused", code, f"{code} {text} (at {step})", step)


# --- sending -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    """Everything one send needs besides the recipients."""

    issue: Issue
    html: str
    text: str
    smtp: SmtpSettings
    secret: str
    list_id: str
    sleep: Callable[[float], None]
    progress: Progress
    messages: mail.MessageMaker  # each recipient's bytes (see #16)


def _recipient(job: _Job, subscriber: Subscriber) -> Recipient:
    """Return the per-recipient parts: Message-ID and signed unsubscribe links."""
    newsletter = job.issue.newsletter
    token = make_token(subscriber.email, job.list_id, job.secret)
    mailto = job.smtp.unsubscribe_mailto or mail.default_unsubscribe_url(newsletter)
    return Recipient(
        email=subscriber.email,
        name=subscriber.name,
        message_id=mail.make_message_id(job.issue.month, subscriber.email, newsletter.sender),
        unsubscribe_url=unsubscribe_link(job.smtp.unsubscribe_url, token),
        unsubscribe_mailto=mailto if mailto.startswith("mailto:") else f"mailto:{mailto}",
    )


def _payload(job: _Job, r: Recipient, *, proof: bool = False) -> bytes:
    return job.messages.message(
        to_addr=r.email,
        to_name=r.name,
        unsubscribe_url=r.unsubscribe_url,
        unsubscribe_mailto=r.unsubscribe_mailto,
        message_id=r.message_id,
        proof=proof,
    )


@dataclass
class _Request:
    """One ledger write a worker handed to the committer; a claim waits for ``done``."""

    write: LedgerWrite
    done: threading.Event = field(default_factory=threading.Event)
    claimed: bool = False


class _Ledger:
    """The ledger of one send run, written by its SMTP workers in batches (see #16).

    A worker's claim blocks until the batch holding it is committed (durably); its
    marks (sent, deferred, failed, in doubt) are queued and committed with the next
    batch, after the claim. One thread, the caller of ``serve``, owns the Store (which
    is not thread-safe) and commits whatever the workers handed it meanwhile in one
    transaction: group commit. It claims nobody ahead of need: a kill leaves at most
    one recipient per connection in doubt, plus those whose ``sent`` was not yet
    committed.
    """

    def __init__(self, store: Store, month: str, run: int) -> None:
        self.store = store
        self.month = month
        self.run = run
        self.requests: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self.error: BaseException | None = None

    def claim(self, key: str, message_id: str, retake: LedgerEntry | None) -> bool:
        """Commit ``sending`` for ``key``; False when another run has it."""
        request = _Request(
            LedgerWrite(
                key,
                CLAIM,
                message_id,
                retake=retake.message_id if retake else None,
                retake_run=retake.run if retake else 0,
            )
        )
        self.requests.put(request)
        while not request.done.wait(0.5) and self.error is None:
            pass
        if self.error is not None:
            raise SendError(key, f"the ledger could not be written: {self.error}")
        return request.claimed

    def mark(self, key: str, kind: str, message_id: str, error: str = "") -> None:
        """Queue a later state of a claimed recipient (committed with the next batch)."""
        self.requests.put(_Request(LedgerWrite(key, kind, message_id, error)))

    def abort(self, error: BaseException) -> None:
        """Stop: the committer is gone (Ctrl-C); every claim now fails with ``error``."""
        self.error = error

    def retire(self) -> None:
        """Tell the committer a worker has finished (its last marks are queued)."""
        self.requests.put(None)

    def serve(self, workers: int) -> None:
        """Commit batches until ``workers`` workers have retired; re-raise a store error."""
        retired = 0
        while retired < workers:
            batch = [self.requests.get()]
            with suppress(queue.Empty):
                while True:
                    batch.append(self.requests.get_nowait())
            retired += batch.count(None)
            requests = [r for r in batch if r is not None]
            if self.error is None and requests:
                try:
                    claimed = self.store.write_ledger(
                        self.month, [r.write for r in requests], self.run
                    )
                except BaseException as e:  # answered below; re-raised once all stop
                    self.error = e
                else:
                    for r in requests:
                        r.claimed = r.write.email in claimed and r.write.kind == CLAIM
            for r in requests:
                r.done.set()
        if self.error is not None:
            raise self.error


class _Marks:
    """Ledger writes for one recipient (a proof passes a _Marks that writes nothing).

    ``retake``: an earlier, dead run's ``sending`` entry this run may re-send.
    """

    def __init__(self, ledger: _Ledger | None, r: Recipient, retake: LedgerEntry | None = None):
        self.ledger = ledger
        self.key = address_key(r.email)
        self.mid = r.message_id
        self.retake = retake

    def starting(self) -> bool:
        """Claim the recipient; False when another run has it (it sends, not us)."""
        if not self.ledger:
            return True
        claimed = self.ledger.claim(self.key, self.mid, self.retake)
        self.retake = None
        return claimed

    def not_taken(self, detail: str) -> None:
        if self.ledger:
            self.ledger.mark(self.key, DEFERRED, self.mid, detail)

    def finish(self, outcome: _Outcome) -> None:
        if not self.ledger:
            return
        if outcome.kind == "sent":
            self.ledger.mark(self.key, SENT, self.mid)
        elif outcome.kind == "in-doubt":
            self.ledger.mark(self.key, DOUBT, self.mid, outcome.detail)
        elif outcome.sender_refused:  # not this recipient's fault: the next run retries
            self.ledger.mark(self.key, DEFERRED, self.mid, outcome.detail)
        elif outcome.kind == "refused" and not outcome.transient:
            self.ledger.mark(self.key, FAILED, self.mid, outcome.detail)


def _deliver(job: _Job, session: _Session, payload: bytes, to: str, marks: _Marks) -> _Outcome:
    """Send to one address, retrying transient failures with backoff.

    ``sending`` is committed before MAIL FROM; a transient failure commits ``deferred``
    at once, so a crash during the backoff cannot leave a false "in doubt".
    """
    outcome = _Outcome("unreachable", 0, "not tried")
    wait = False
    for attempt in range(RETRIES + 1):
        if wait:
            job.sleep(min(2.0**attempt, 30.0))
        reused = session.conn is not None
        try:
            conn = session.get()
        except (smtplib.SMTPException, OSError) as e:
            outcome = _Outcome("unreachable", 0, f"cannot connect: {type(e).__name__}: {e}")
            wait = True
            continue
        if not marks.starting():
            return _Outcome("claimed", 0, "claimed by another send")
        sender = envelope_sender(  # the return path bounces come back to (see #16)
            job.smtp.return_path,
            job.issue.newsletter.sender,
            verp=job.smtp.verp,
            month=job.issue.month,
            email=to,
            secret=job.secret,
        )
        outcome = _transact(conn, sender, to, payload)
        closed = outcome.kind == "unreachable" or outcome.code == 421
        if closed or outcome.kind == "in-doubt":
            session.drop()
        if not outcome.transient:
            break
        marks.not_taken(outcome.detail)
        # A kept-open connection the server closed (idle, or its per-connection limit)
        # is retried at once on a fresh one; anything else backs off.
        wait = not (reused and closed)
    marks.finish(outcome)
    return outcome


class _Work:
    """What the SMTP workers of one send share: the recipients in plan order, the
    tally, and the signal to stop taking new ones."""

    def __init__(self, job: _Job, plan: Plan, entries: Mapping[str, LedgerEntry]) -> None:
        self.job = job
        self.plan = plan
        self.entries = entries
        self.resend = {address_key(a) for a in plan.resend}
        self.todo = iter(enumerate(plan.to_send, 1))
        self.lock = threading.Lock()
        self.tally = _Tally()
        self.failure: BaseException | None = None

    def next(self) -> Subscriber | None:
        """Return the next subscriber to send to, or None when done or stopped."""
        with self.lock:
            if self.tally.stopped or self.failure is not None:
                return None
            number, subscriber = next(self.todo, (0, None))
        if number and number % 100 == 0:
            self.job.progress(f"send {self.job.issue.month}: {number}/{len(self.plan.to_send)}")
        return subscriber

    def record(self, address: str, outcome: _Outcome) -> None:
        """Tally one recipient's outcome; an unreachable server or a refused sender
        stops every worker (the rest stay untouched for the next run)."""
        tally = self.tally
        with self.lock:
            if outcome.kind == "sent":
                tally.sent.append(address)
            elif outcome.kind == "in-doubt":
                tally.in_doubt.append((address, outcome.detail))
            elif outcome.transient:
                tally.deferred.append((address, outcome.detail))
                if outcome.kind == "unreachable" and not tally.stopped:
                    smtp = self.job.smtp
                    tally.stopped = f"{smtp.host}:{smtp.port} unreachable: {outcome.detail}"
            elif outcome.sender_refused:
                tally.deferred.append((address, outcome.detail))
                if not tally.stopped:
                    tally.stopped = f"the server refused the sender: {outcome.detail}"
            elif outcome.kind != "claimed":  # claimed: another send took it; it sends
                tally.failed.append((address, outcome.detail))

    def fail(self, error: BaseException) -> None:
        with self.lock:
            self.failure = self.failure or error


def _send_one(
    work: _Work, ledger: _Ledger, session: _Session, limiter: RateLimiter, subscriber: Subscriber
) -> _Outcome:
    job = work.job
    r = _recipient(job, subscriber)
    key = address_key(r.email)
    retake = work.entries[key] if key in work.resend else None
    payload = _payload(job, r)
    limiter.wait()
    return _deliver(job, session, payload, r.email, _Marks(ledger, r, retake))


def _worker(
    work: _Work, ledger: _Ledger, session: _Session, limiter: RateLimiter, opened: bool
) -> None:
    """Send over one connection until the plan is done or the send stops.

    A connection beyond the first that cannot be opened retires its worker, with a
    warning: servers may cap connections per client, and the others carry on.
    """
    try:
        if not opened:
            try:
                session.get()
            except (smtplib.SMTPException, OSError) as e:
                with work.lock:
                    work.tally.warnings.append(
                        f"warning: an extra SMTP connection to {work.job.smtp.host} failed "
                        f"({type(e).__name__}: {e}); sending over fewer"
                    )
                return
        while (subscriber := work.next()) is not None:
            outcome = _send_one(work, ledger, session, limiter, subscriber)
            work.record(subscriber.email, outcome)
    except BaseException as e:  # re-raised by the sending thread
        work.fail(e)
    finally:
        session.drop()
        ledger.retire()


def _send_all(
    work: _Work, ledger: _Ledger, first: _Session, connect: Connector, limiter: RateLimiter
) -> _Tally:
    """Send to the planned subscribers over up to ``smtp.connections`` connections.

    Each worker thread has its own SMTP connection (``first`` is already open) and takes
    the next subscriber in plan order; this thread commits their ledger writes.
    """
    count = min(work.job.smtp.connections, len(work.plan.to_send))
    sessions = [first] + [_Session(connect) for _ in range(count - 1)]
    threads = [
        threading.Thread(
            target=_worker,
            args=(work, ledger, session, limiter, number == 0),
            name=f"mash-smtp-{number}",
            daemon=True,  # a Ctrl-C ends the run; what was claimed is then in doubt
        )
        for number, session in enumerate(sessions[:count])
    ]
    for thread in threads:
        thread.start()
    try:
        ledger.serve(len(threads))
    except BaseException as e:  # Ctrl-C: no claim waits forever; the threads die with us
        ledger.abort(e)
        raise
    for thread in threads:
        thread.join()
    if work.failure is not None:
        raise work.failure
    order = {s.email: n for n, s in enumerate(work.plan.to_send)}
    return work.tally.in_order(order)


def send_issue(
    config: Config,
    issue: Issue,
    email_html: str,
    email_text: str,
    *,
    dry_run: bool = False,
    proof: str | None = None,
    resend_in_doubt: bool = False,
    environ: Mapping[str, str] | None = None,
    connect: Connector | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    progress: Progress | None = None,
) -> SendReport:
    """Send an issue to every subscriber not yet mailed (see the module docstring).

    ``proof`` sends one "[PROOF]" copy to that address and records nothing;
    ``dry_run`` reports who would get mail and sends nothing. ``environ`` defaults to
    os.environ (SMTP password, token secret); ``connect`` replaces the SMTP connector.
    """
    env = os.environ if environ is None else environ
    say = progress or (lambda _line: None)
    real = not dry_run and proof is None
    secret, warning = unsubscribe_secret(config, env, required=real)
    job = _Job(
        issue,
        email_html,
        email_text,
        config.smtp,
        secret,
        mail.list_id(config.smtp, issue.newsletter),
        sleep,
        say,
        mail.MessageMaker(issue, email_html, email_text, config.smtp),
    )
    warnings = (warning,) if warning else ()
    if proof is not None:
        return _send_proof(job, proof, connect or smtp_connector(config.smtp, env), warnings)
    if dry_run:
        return _dry_run(job, config, warnings, resend_in_doubt)
    connector = connect or smtp_connector(config.smtp, env)
    limiter = RateLimiter(config.smtp.rate_per_second, clock, sleep)
    with open_store(config) as store, store.send_run() as run:
        problems = _adopt(store, config)
        # runs live before or after the read: a claim seen is never taken for a dead
        # run's just because its run started or ended meanwhile (see #15)
        live = store.live_send_runs()
        entries = store.ledger_entries(issue.month)
        plan = plan_send(
            store.subscribers(),
            entries,
            store.opted_out(),
            resend_in_doubt=resend_in_doubt,
            live_runs=live | store.live_send_runs(),
        )
        first = _Session(connector)
        try:
            if plan.to_send:
                _open(first, config.smtp)
        except BaseException:
            first.drop()
            raise
        work = _Work(job, plan, entries)
        tally = _send_all(work, _Ledger(store, issue.month, run), first, connector, limiter)
    return _report(issue.month, "send", plan, tally, problems, warnings)


def _adopt(store: Store, config: Config) -> tuple[str, ...]:
    """Import the CSV of a mash before #15 on first use; return its bad rows."""
    adopted = store.adopt_subscribers_csv(config.subscribers_path)
    return adopted.problems if adopted else ()


def _open(session: _Session, smtp: SmtpSettings) -> None:
    """Connect before marking anyone, so a wrong host or password marks nobody."""
    try:
        session.get()
    except smtplib.SMTPAuthenticationError as e:
        raise SendError(f"{smtp.user}@{smtp.host}", "SMTP login refused") from e
    except (smtplib.SMTPException, OSError) as e:
        raise SendError(f"{smtp.host}:{smtp.port}", "cannot connect to the SMTP server") from e


def _report(
    month: str,
    mode: str,
    plan: Plan,
    tally: _Tally,
    problems: tuple[str, ...],
    warnings: tuple[str, ...],
) -> SendReport:
    earlier_doubt = tuple((a, "marked sending by an earlier run") for a in plan.in_doubt)
    return SendReport(
        month=month,
        mode=mode,
        sent=tuple(tally.sent),
        already_sent=plan.already_sent,
        in_doubt=earlier_doubt + tuple(tally.in_doubt),
        resent_in_doubt=plan.resend,
        failed=plan.failed_before + tuple(tally.failed),
        deferred=tuple(tally.deferred),
        opted_out=plan.opted_out,
        inactive=plan.inactive,
        elsewhere=plan.elsewhere,
        problems=problems,
        warnings=warnings + tuple(tally.warnings),
        stopped=tally.stopped,
    )


def _dry_run(job: _Job, config: Config, warnings: tuple[str, ...], resend: bool) -> SendReport:
    """Plan without the lock: who would get mail, and what else. It writes nothing but
    the first-use import of the CSV at paths.subscribers."""
    with open_store(config) as ledger:
        problems = _adopt(ledger, config)
        live = ledger.live_send_runs()  # before and after the read, as send_issue does
        entries = ledger.ledger_entries(job.issue.month)
        plan = plan_send(
            ledger.subscribers(),
            entries,
            ledger.opted_out(),
            resend_in_doubt=resend,
            live_runs=live | ledger.live_send_runs(),
        )
    report = _report(job.issue.month, "dry-run", plan, _Tally(), problems, warnings)
    would = tuple(_recipient(job, s) for s in plan.to_send)
    return dataclasses.replace(report, would_send=would)


def _send_proof(
    job: _Job, address: str, connect: Connector, warnings: tuple[str, ...]
) -> SendReport:
    """Send one "[PROOF]" copy; nothing goes in the ledger, so it never counts as sent."""
    try:
        email = validate_email(address)
    except ValueError as e:
        raise SendError(address, f"proof address is not valid: {e}") from e
    subscriber = Subscriber(email, "Proof")
    domain = job.issue.newsletter.sender.rpartition("@")[2] or None
    r = dataclasses.replace(_recipient(job, subscriber), message_id=make_msgid("proof", domain))
    session = _Session(connect)
    try:
        _open(session, job.smtp)
        outcome = _deliver(job, session, _payload(job, r, proof=True), email, _Marks(None, r))
    finally:
        session.drop()
    tally = _Tally()
    if outcome.kind == "sent":
        tally.sent.append(email)
    elif outcome.kind == "in-doubt":
        tally.in_doubt.append((email, outcome.detail))
    else:
        tally.failed.append((email, outcome.detail))
    return _report(job.issue.month, "proof", Plan(()), tally, (), warnings)
