"""The send ledger and opt-outs (tables send_ledger and opt_outs).

One row per (month, recipient): ``sending`` is committed before the SMTP transaction
starts and ``sent`` after the server accepts the message, so a crash between the two
leaves the recipient "in doubt", never silently re-sent or skipped (see #6).
``deferred`` means the server surely did not take it (safe to retry); ``failed`` is a
permanent refusal. A claim takes a recipient in a committed transaction, and only if
nobody else has: safe against a second send on either engine (see #15). Each row names
the run that claimed it, so a send tells a live run's claims (left to it) from a dead
run's (in doubt); ``write_ledger`` commits many claims and marks at once, for a send's
several SMTP connections (group commit, see #16).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime

from mash.store._base import Engine, as_datetime

SENDING = "sending"
SENT = "sent"
DEFERRED = "deferred"
FAILED = "failed"


@dataclass(frozen=True)
class LedgerEntry:
    """One recipient's state for one month; made by Store.ledger_entries, used by send."""

    email: str
    state: str
    message_id: str
    attempts: int
    error: str
    updated: datetime
    run: int = 0  # the number of the send run that claimed it (0: before #15)


@dataclass(frozen=True)
class LedgerWrite:
    """One write of a batch (``write_ledger``): a claim, a later state or an in-doubt note.

    ``kind``: "claim" (commit ``sending``), SENT, DEFERRED, FAILED, or "doubt" (keep
    ``sending``, record ``error``). ``retake``/``retake_run``: for a claim, the message
    id and run number of the ``sending`` row left by a dead run that may be re-sent.
    """

    email: str
    kind: str
    message_id: str
    error: str = ""
    retake: str | None = None
    retake_run: int = 0


CLAIM = "claim"
DOUBT = "doubt"
_ORDER = {DEFERRED: 0, SENT: 0, FAILED: 0, DOUBT: 0, CLAIM: 1}

_CLAIM_SQL = """INSERT INTO send_ledger(month, email, state, message_id, attempts, error,
   updated, claimed_by) VALUES (?, ?, 'sending', ?, 1, '', ?, ?)
   ON CONFLICT(month, email) DO UPDATE SET state = 'sending',
   message_id = excluded.message_id, attempts = send_ledger.attempts + 1,
   error = '', updated = excluded.updated, claimed_by = excluded.claimed_by
   WHERE send_ledger.state = 'deferred'
      OR (send_ledger.state = 'sending' AND send_ledger.message_id = ?
          AND send_ledger.claimed_by = ?)"""

_SET_SQL = """INSERT INTO send_ledger(month, email, state, message_id, attempts, error,
   updated) VALUES (?, ?, ?, ?, 0, ?, ?)
   ON CONFLICT(month, email) DO UPDATE SET state = excluded.state,
   message_id = excluded.message_id, error = excluded.error,
   updated = excluded.updated"""

_DOUBT_SQL = "UPDATE send_ledger SET error = ?, updated = ? WHERE month = ? AND email = ?"


def _now() -> datetime:
    return datetime.now(UTC)


class SendsMixin:
    engine: Engine

    def ledger_entries(self, month: str) -> dict[str, LedgerEntry]:
        """Return every recipient recorded for a month, by address key."""
        rows = self.engine.query(
            "SELECT email, state, message_id, attempts, error, updated, claimed_by "
            "FROM send_ledger WHERE month = ?",
            (month,),
        )
        return {
            r["email"]: LedgerEntry(
                r["email"],
                r["state"],
                r["message_id"],
                r["attempts"],
                r["error"],
                as_datetime(r["updated"]) or _now(),
                int(r["claimed_by"]),
            )
            for r in rows
        }

    def send_run(self) -> AbstractContextManager[int]:
        """Hold a send run; yield its number. On PostgreSQL several runs share the
        ledger; on SQLite a second run is refused with StoreBusy (see #15)."""
        return self.engine.run("send")

    def live_send_runs(self) -> frozenset[int]:
        """Return the numbers of the send runs now live (their claims are not in doubt)."""
        return self.engine.live_runs("send")

    def write_ledger(self, month: str, writes: Sequence[LedgerWrite], run: int = 0) -> set[str]:
        """Commit a batch of ledger writes in one transaction; return the claimed addresses.

        A claim commits ``sending`` where nobody has the recipient: no row yet, or
        ``deferred`` (the server surely did not take it), or, to re-send one in doubt,
        still ``sending`` with the ``retake`` message id and run seen when planning. The
        upsert locks the row, so of two runs claiming at once exactly one wins. Rows are
        written in address order, so two runs' batches cannot deadlock. The commit is
        durable when the batch claims anyone; a later state lost to a power cut falls
        back to ``sending``, i.e. "in doubt": never a silent duplicate.
        """
        claimed: set[str] = set()
        ordered = sorted(writes, key=lambda w: (w.email, _ORDER[w.kind]))
        durable = any(w.kind == CLAIM for w in writes)
        with self.engine.transaction(durable=durable):
            for w in ordered:
                if w.kind == CLAIM:
                    claim = (month, w.email, w.message_id, _now(), run, w.retake, w.retake_run)
                    if self.engine.execute(_CLAIM_SQL, claim) == 1:
                        claimed.add(w.email)
                elif w.kind == DOUBT:
                    self.engine.execute(_DOUBT_SQL, (w.error, _now(), month, w.email))
                else:
                    state = (month, w.email, w.kind, w.message_id, w.error, _now())
                    self.engine.execute(_SET_SQL, state)
        return claimed

    def claim(
        self, month: str, email: str, message_id: str, retake: str | None = None, run: int = 0
    ) -> bool:
        """Commit ``sending`` for a recipient before its SMTP transaction; False when
        another run has it (see ``write_ledger``; ``retake`` is a run-0 row's id)."""
        write = LedgerWrite(email, CLAIM, message_id, retake=retake)
        return email in self.write_ledger(month, (write,), run)

    def mark_sent(self, month: str, email: str, message_id: str) -> None:
        """Commit that the server accepted the message."""
        self.write_ledger(month, (LedgerWrite(email, SENT, message_id),))

    def mark_deferred(self, month: str, email: str, message_id: str, error: str) -> None:
        """Commit that the server surely did not take the message (safe to send again)."""
        self.write_ledger(month, (LedgerWrite(email, DEFERRED, message_id, error),))

    def mark_failed(self, month: str, email: str, message_id: str, error: str) -> None:
        """Commit a permanent refusal (5xx); a re-run reports it and does not retry."""
        self.write_ledger(month, (LedgerWrite(email, FAILED, message_id, error),))

    def note_in_doubt(self, month: str, email: str, error: str) -> None:
        """Record why a recipient stays ``sending`` (the server may have taken it)."""
        self.write_ledger(month, (LedgerWrite(email, DOUBT, "", error),))

    # --- opt-outs --------------------------------------------------------------------------

    def add_opt_out(self, email: str, list_id: str, source: str) -> bool:
        """Record an opt-out; False when the address had already opted out."""
        with self.engine.transaction():
            added = self.engine.execute(
                "INSERT INTO opt_outs(email, list_id, source, created) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(email) DO NOTHING",
                (email, list_id, source, _now()),
            )
        return added == 1

    def remove_opt_out(self, email: str) -> bool:
        """Forget an opt-out (the person subscribed again); False when there was none."""
        with self.engine.transaction():
            return self.engine.execute("DELETE FROM opt_outs WHERE email = ?", (email,)) == 1

    def opted_out(self) -> frozenset[str]:
        """Return every opted-out address key."""
        return frozenset(r["email"] for r in self.engine.query("SELECT email FROM opt_outs"))
