"""The send ledger and opt-outs (tables send_ledger and opt_outs).

One row per (month, recipient): ``sending`` is committed before the SMTP transaction
starts and ``sent`` after the server accepts the message, so a crash between the two
leaves the recipient "in doubt", never silently re-sent or skipped (see #6).
``deferred`` means the server surely did not take it (safe to retry); ``failed`` is a
permanent refusal. ``claim`` takes a recipient in its own committed transaction, and
only if nobody else has: safe against a second send on either engine (see #15).
"""

from __future__ import annotations

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


def _now() -> datetime:
    return datetime.now(UTC)


class SendsMixin:
    engine: Engine

    def ledger_entries(self, month: str) -> dict[str, LedgerEntry]:
        """Return every recipient recorded for a month, by address key."""
        rows = self.engine.query(
            "SELECT email, state, message_id, attempts, error, updated FROM send_ledger "
            "WHERE month = ?",
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
            )
            for r in rows
        }

    def claim(self, month: str, email: str, message_id: str, retake: str | None = None) -> bool:
        """Commit ``sending`` for a recipient before its SMTP transaction; False when
        another run has it.

        A recipient is claimed when it has no row yet or is ``deferred`` (the server
        surely did not take it), or, to re-send one in doubt, when it is still ``sending``
        with the message id ``retake`` seen when planning. The row is locked by the
        upsert, so of two runs claiming at once exactly one wins. The commit is durable.
        """
        with self.engine.transaction(durable=True):
            changed = self.engine.execute(
                """INSERT INTO send_ledger(month, email, state, message_id, attempts, error,
                   updated) VALUES (?, ?, 'sending', ?, 1, '', ?)
                   ON CONFLICT(month, email) DO UPDATE SET state = 'sending',
                   message_id = excluded.message_id, attempts = send_ledger.attempts + 1,
                   error = '', updated = excluded.updated
                   WHERE send_ledger.state = 'deferred'
                      OR (send_ledger.state = 'sending' AND send_ledger.message_id = ?)""",
                (month, email, message_id, _now(), retake),
            )
        return changed == 1

    def mark_sent(self, month: str, email: str, message_id: str) -> None:
        """Commit that the server accepted the message."""
        self._set(month, email, SENT, message_id, "")

    def mark_deferred(self, month: str, email: str, message_id: str, error: str) -> None:
        """Commit that the server surely did not take the message (safe to send again)."""
        self._set(month, email, DEFERRED, message_id, error)

    def mark_failed(self, month: str, email: str, message_id: str, error: str) -> None:
        """Commit a permanent refusal (5xx); a re-run reports it and does not retry."""
        self._set(month, email, FAILED, message_id, error)

    def note_in_doubt(self, month: str, email: str, error: str) -> None:
        """Record why a recipient stays ``sending`` (the server may have taken it)."""
        with self.engine.transaction():
            self.engine.execute(
                "UPDATE send_ledger SET error = ?, updated = ? WHERE month = ? AND email = ?",
                (error, _now(), month, email),
            )

    def _set(self, month: str, email: str, state: str, message_id: str, error: str) -> None:
        # Only 'sending' must survive a power cut. Any later state lost to one falls back
        # to 'sending', i.e. "in doubt": never a silent duplicate. Halves the fsyncs.
        with self.engine.transaction():
            self.engine.execute(
                """INSERT INTO send_ledger(month, email, state, message_id, attempts, error,
                   updated) VALUES (?, ?, ?, ?, 0, ?, ?)
                   ON CONFLICT(month, email) DO UPDATE SET state = excluded.state,
                   message_id = excluded.message_id, error = excluded.error,
                   updated = excluded.updated""",
                (month, email, state, message_id, error, _now()),
            )

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
