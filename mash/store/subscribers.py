"""The subscriber list: tables subscribers, subscriber_history and subscriber_imports.

One row per address (by ``address_key``) with its status, the reason for it, and its
consent; one history row per status change (when, from, to, why). Every change of a
status goes through ``_change``, a compare-and-set: of two runs changing one address at
once, one wins and the history holds exactly the changes made, on either engine.

Opt-outs (table opt_outs, mash.store.sends) stay the record of readers' own
unsubscribes; ``opt_out`` writes one and sets the status in the same transaction, and
``subscribe`` (an explicit consent) forgets it. ``apply_bounce`` applies the bounce
policy (mash.subscribers.decide_bounce), with the soft bounces per issue (soft_bounces).
The list of a mash before #15 lives in ``paths.subscribers``: ``adopt_subscribers_csv``
imports it once, the first time a command needs the list, and never writes the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from mash.records import Bounce
from mash.store._base import Engine, Row, as_datetime
from mash.subscribers import (
    IMPORT,
    OPTING_OUT,
    SUBSCRIBED,
    UNSUBSCRIBED,
    ImportReport,
    StatusChange,
    Subscriber,
    address_key,
    bounce_month,
    decide_bounce,
    merge_import,
)
from mash.subscribers.csv import load_subscribers

FIRST_USE = "first-use"
_COLUMNS = (
    "email, name, status, status_reason, consent_source, consented_at, confirmed_at, "
    "created, updated"
)
_OPT_OUT_REASONS = {
    "one-click": "one-click unsubscribe",
    "confirm-page": "unsubscribed on the confirmation page",
}


def _now() -> datetime:
    return datetime.now(UTC)


def _subscriber(r: Row) -> Subscriber:
    return Subscriber(
        email=r["email"],
        name=r["name"],
        status=r["status"],
        status_reason=r["status_reason"],
        consent_source=r["consent_source"],
        consented_at=as_datetime(r["consented_at"]),
        confirmed_at=as_datetime(r["confirmed_at"]),
        created=as_datetime(r["created"]),
        updated=as_datetime(r["updated"]),
    )


class SubscribersMixin:
    engine: Engine

    # --- reading -------------------------------------------------------------------------

    def subscribers(self, status: str | None = None) -> tuple[Subscriber, ...]:
        """Return the list (or the addresses with one status), oldest first."""
        where, params = ("WHERE status = ?", (status,)) if status else ("", ())
        rows = self.engine.query(
            f"SELECT {_COLUMNS} FROM subscribers {where} ORDER BY created, address_key",
            params,
        )
        return tuple(_subscriber(r) for r in rows)

    def subscriber(self, email: str) -> Subscriber | None:
        """Return one address's row, or None when it is not on the list."""
        row = self.engine.one(
            f"SELECT {_COLUMNS} FROM subscribers WHERE address_key = ?", (address_key(email),)
        )
        return _subscriber(row) if row else None

    def subscriber_history(self, email: str | None = None) -> tuple[StatusChange, ...]:
        """Return every status change (of one address, or of all), oldest first."""
        where, params = ("WHERE h.address_key = ?", (address_key(email),)) if email else ("", ())
        rows = self.engine.query(
            "SELECT COALESCE(s.email, h.address_key) AS email, h.changed, h.old_status, "
            "h.new_status, h.reason FROM subscriber_history h "
            f"LEFT JOIN subscribers s ON s.address_key = h.address_key {where} ORDER BY h.id",
            params,
        )
        return tuple(
            StatusChange(
                r["email"],
                as_datetime(r["changed"]) or _now(),
                r["old_status"],
                r["new_status"],
                r["reason"],
            )
            for r in rows
        )

    # --- one address ---------------------------------------------------------------------

    def subscribe(
        self,
        new: Subscriber,
        reason: str,
        *,
        now: datetime | None = None,
    ) -> Subscriber:
        """Add an address as subscribed, or subscribe it again: an explicit consent.

        ``new`` carries the address, a name (kept from before when empty), the consent's
        source and, for a confirmed form, the confirmation time. The consent is recorded
        when the status changes (an address already subscribed keeps its first one); a
        reader's earlier opt-out is forgotten, the history keeps it.
        """
        when = now or _now()
        key = address_key(new.email)
        consented = new.consented_at or when
        with self.engine.transaction():
            old = self._row(key)
            if old is None:
                row = replace(new, status=SUBSCRIBED, status_reason=reason, consented_at=consented)
                self._insert((row,), when)
                self._history(key, None, SUBSCRIBED, reason, when)
            else:
                self._resubscribe(key, old, new, reason, consented, when)
            self.engine.execute("DELETE FROM opt_outs WHERE email = ?", (key,))
            return self._row(key) or new  # the row was just written

    def _resubscribe(
        self,
        key: str,
        old: Subscriber,
        new: Subscriber,
        reason: str,
        consented: datetime,
        when: datetime,
    ) -> None:
        if new.name and new.name != old.name:
            self.engine.execute(
                "UPDATE subscribers SET name = ?, updated = ? WHERE address_key = ?",
                (new.name, when, key),
            )
        if old.status == SUBSCRIBED:
            return
        if self._change(key, SUBSCRIBED, reason, when, frozenset({old.status})) is not None:
            self.engine.execute(
                "UPDATE subscribers SET consent_source = ?, consented_at = ?, "
                "confirmed_at = COALESCE(?, confirmed_at) WHERE address_key = ?",
                (new.consent_source, consented, new.confirmed_at, key),
            )

    def set_status(
        self, email: str, status: str, reason: str, *, now: datetime | None = None
    ) -> str | None:
        """Set an address's status with the reason, recorded in its history.

        Return the status it had (unchanged when it already had this one), or None when
        the address is not on the list.
        """
        with self.engine.transaction():
            return self._change(address_key(email), status, reason, now or _now())

    def opt_out(self, email: str, list_id: str, source: str) -> bool:
        """Record a reader's own opt-out (the unsubscribe endpoint) and, in the same
        transaction, set the address unsubscribed (a bounced or complained one keeps its
        status). False when the address had already opted out."""
        key = address_key(email)
        when = _now()
        with self.engine.transaction():
            added = self.engine.execute(
                "INSERT INTO opt_outs(email, list_id, source, created) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(email) DO NOTHING",
                (key, list_id, source, when),
            )
            reason = _OPT_OUT_REASONS.get(source, f"opted out ({source})")
            self._change(key, UNSUBSCRIBED, reason, when, OPTING_OUT)
        return added == 1

    def delete_subscriber(self, email: str) -> bool:
        """Delete an address and its history (``--purge``); False when it is not listed.

        An opt-out stays: it is the reader's wish, not a copy of the list.
        """
        key = address_key(email)
        with self.engine.transaction():
            self.engine.execute("DELETE FROM subscriber_history WHERE address_key = ?", (key,))
            return self.engine.execute("DELETE FROM subscribers WHERE address_key = ?", (key,)) == 1

    def apply_bounce(
        self,
        bounce: Bounce,
        soft_limit: int,
        *,
        month: str = "",
        now: datetime | None = None,
    ) -> tuple[str, str] | None:
        """Apply the bounce policy (``decide_bounce``) to one bounce or complaint of an
        address on the list; return the (status, reason) it set, or None.

        A bounce belongs to ``month`` when the caller knows it (a VERP return path names
        it), else to the issue its quoted Message-ID names, else to the last issue sent
        to the address (by the send ledger); a soft one is remembered per issue.
        """
        key = address_key(bounce.recipient)
        when = now or _now()
        with self.engine.transaction():
            row = self.engine.one("SELECT status FROM subscribers WHERE address_key = ?", (key,))
            if row is None:
                return None
            mailed = [
                r["month"]
                for r in self.engine.query(
                    "SELECT month FROM send_ledger WHERE email = ? AND state = 'sent' "
                    "ORDER BY month DESC",
                    (key,),
                )
            ]
            month = month or bounce_month(bounce.message_id) or (mailed[0] if mailed else "")
            if bounce.kind == "bounce" and not bounce.hard and month:
                self.engine.execute(
                    "INSERT INTO soft_bounces(address_key, month, reason, received) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT(address_key, month) DO NOTHING",
                    (key, month, bounce.reason[:500], when),
                )
            soft = {
                r["month"]
                for r in self.engine.query(
                    "SELECT month FROM soft_bounces WHERE address_key = ?", (key,)
                )
            }
            decision = decide_bounce(bounce, month, row["status"], soft, mailed, soft_limit)
            if decision is not None:
                self._change(key, *decision, when)
        return decision

    # --- many addresses ------------------------------------------------------------------

    def import_subscribers(
        self,
        rows: Sequence[Subscriber],
        source: str,
        *,
        skipped: int = 0,
        now: datetime | None = None,
    ) -> ImportReport:
        """Merge rows into the list (``merge_import``): new addresses come in with
        consent ``import`` (unless the rows carry their own, as an export does).
        ``skipped``: the file's bad rows, for the log of imports."""
        with self.engine.transaction():
            return self._import(rows, source, "import", now or _now(), skipped)

    def adopt_subscribers_csv(self, path: Path) -> ImportReport | None:
        """Import the subscribers CSV of a mash before #15 once, on first use.

        None when it was imported before (even if the file changed since: it is only an
        exchange format now) or there is no file. The file is read, never written.
        """
        if self.subscribers_adopted() or not path.is_file():
            return None
        listed = load_subscribers(path)
        when = _now()
        with self.engine.transaction():
            claimed = self.engine.execute(
                "INSERT INTO subscriber_imports(source, kind, imported) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (str(path), FIRST_USE, when),
            )
            if claimed != 1:  # another run adopted it while this one read the file
                return None
            report = self._import(
                listed.subscribers, str(path), FIRST_USE, when, len(listed.problems)
            )
        return replace(report, problems=listed.problems)

    def subscribers_adopted(self) -> bool:
        """True once the CSV at paths.subscribers was imported (adopt_subscribers_csv)."""
        found = self.engine.one(
            "SELECT 1 AS found FROM subscriber_imports WHERE kind = ?", (FIRST_USE,)
        )
        return found is not None

    # --- inside a transaction ------------------------------------------------------------

    def _row(self, key: str) -> Subscriber | None:
        row = self.engine.one(f"SELECT {_COLUMNS} FROM subscribers WHERE address_key = ?", (key,))
        return _subscriber(row) if row else None

    def _change(
        self,
        key: str,
        status: str,
        reason: str,
        when: datetime,
        only_from: frozenset[str] | None = None,
    ) -> str | None:
        """Set a status if the address is listed (and has one of ``only_from``); return
        the status it had. Compare-and-set on the old status: a lost race changes nothing."""
        row = self.engine.one("SELECT status FROM subscribers WHERE address_key = ?", (key,))
        if row is None:
            return None
        old: str = row["status"]
        if old == status or (only_from is not None and old not in only_from):
            return old
        changed = self.engine.execute(
            "UPDATE subscribers SET status = ?, status_reason = ?, updated = ? "
            "WHERE address_key = ? AND status = ?",
            (status, reason, when, key, old),
        )
        if changed == 1:
            self._history(key, old, status, reason, when)
        return old

    def _history(self, key: str, old: str | None, new: str, reason: str, when: datetime) -> None:
        self.engine.execute(
            "INSERT INTO subscriber_history(address_key, changed, old_status, new_status, "
            "reason) VALUES (?, ?, ?, ?, ?)",
            (key, when, old, new, reason),
        )

    def _insert(self, rows: Sequence[Subscriber], when: datetime) -> None:
        self.engine.executemany(
            f"INSERT INTO subscribers(address_key, {_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    address_key(s.email),
                    s.email,
                    s.name,
                    s.status,
                    s.status_reason,
                    s.consent_source,
                    s.consented_at,
                    s.confirmed_at,
                    when,
                    when,
                )
                for s in rows
            ),
        )

    def _import(
        self, rows: Sequence[Subscriber], source: str, kind: str, when: datetime, skipped: int
    ) -> ImportReport:
        existing = {address_key(s.email): s for s in self.subscribers()}
        opted_out = {r["email"] for r in self.engine.query("SELECT email FROM opt_outs")}
        added: list[Subscriber] = []
        renamed: list[Subscriber] = []
        for row in rows:
            key = address_key(row.email)
            merged = merge_import(existing.get(key), row)
            if merged is None:
                continue
            if key in existing:
                renamed.append(merged)
            else:
                added.append(_imported(merged, source, key in opted_out, when))
        self._insert(added, when)
        self.engine.executemany(
            "UPDATE subscribers SET name = ?, updated = ? WHERE address_key = ?",
            ((s.name, when, address_key(s.email)) for s in renamed),
        )
        self.engine.executemany(
            "INSERT INTO subscriber_history(address_key, changed, old_status, new_status, "
            "reason) VALUES (?, ?, NULL, ?, ?)",
            ((address_key(s.email), when, s.status, s.status_reason) for s in added),
        )
        report = ImportReport(len(added), len(renamed), len(rows) - len(added) - len(renamed))
        self._log_import(
            source, kind, (report.added, report.updated, report.unchanged, skipped), when
        )
        return report

    def _log_import(
        self, source: str, kind: str, counts: tuple[int, int, int, int], when: datetime
    ) -> None:
        if kind == FIRST_USE:  # its row was written first, to claim the import
            self.engine.execute(
                "UPDATE subscriber_imports SET added = ?, updated = ?, unchanged = ?, "
                "skipped = ? WHERE kind = ?",
                (*counts, FIRST_USE),
            )
        else:
            self.engine.execute(
                "INSERT INTO subscriber_imports(source, kind, imported, added, updated, "
                "unchanged, skipped) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (source, kind, when, *counts),
            )


def _imported(row: Subscriber, source: str, opted_out: bool, when: datetime) -> Subscriber:
    """A new address from a file: consent ``import`` unless the file says otherwise; an
    address that opted out before the import comes in unsubscribed."""
    name = Path(source).name if source != "-" else "standard input"
    reason = row.status_reason or f"imported from {name}"
    status = row.status
    if opted_out and status in OPTING_OUT:
        status, reason = UNSUBSCRIBED, f"opted out before the import from {name}"
    return replace(
        row,
        status=status,
        status_reason=reason,
        consent_source=row.consent_source or IMPORT,
        consented_at=row.consented_at or when,
    )
