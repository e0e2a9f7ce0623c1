"""Double opt-in: table signups (#16).

A signup is one address's open request to subscribe (from the form): its name, when
it was first asked (links made before that are refused), when the last confirmation
mail went out (for the "one mail per address per 10 minutes" rule), and where it came
from. Confirming turns it into ``subscribed`` through mash.store.subscribers and
deletes it, so a replayed link changes nothing. A new address gets a ``pending`` row in
subscribers at once; a listed one keeps its status until it confirms.

Every write for one address first takes its signup row (an UPDATE: PostgreSQL's row
lock; SQLite's write transactions are serial anyway), so of two concurrent requests for
one address one waits, and neither inserts it twice.

The bounce policy itself is mash.store.subscribers' ``apply_bounce``; this module only
finds the recipients of an issue, for VERP return paths.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from mash.store._base import as_datetime
from mash.store.subscribers import SubscribersMixin
from mash.subscribers import FORM, PENDING, SUBSCRIBED, Subscriber, address_key


@dataclass(frozen=True)
class SignupAnswer:
    """What a subscribe request did: whether to mail a confirmation, made at ``issued``."""

    mail: bool
    issued: datetime
    name: str = ""


@dataclass(frozen=True)
class Confirmation:
    """What a confirmation did: ``subscribed`` (newly: send the welcome), ``already``
    (subscribed before: nothing changed), or ``used`` (no open signup this link may
    confirm: it was used, or it is older than the request now open: nothing changed)."""

    outcome: str
    subscriber: Subscriber | None = None


class SignupsMixin(SubscribersMixin):
    def request_signup(
        self,
        email: str,
        name: str,
        *,
        origin: str,
        now: datetime,
        resend_after: timedelta,
    ) -> SignupAnswer:
        """Record a request to subscribe; say whether a confirmation mail goes out now.

        No mail for an address already subscribed, or one mailed within ``resend_after``.
        ``origin`` says where it came from (page and client address), for the history.
        """
        key = address_key(email)
        when = now.replace(microsecond=0)  # tokens carry whole seconds
        with self.engine.transaction():
            self.engine.execute(
                "INSERT INTO signups(address_key, name, requested, origin) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(address_key) DO NOTHING",
                (key, name, when, origin),
            )
            self.engine.execute(  # takes the row: one request per address at a time
                "UPDATE signups SET requests = requests + 1 WHERE address_key = ?", (key,)
            )
            row = self._row(key)
            if row is not None and row.status == SUBSCRIBED:
                self.engine.execute("DELETE FROM signups WHERE address_key = ?", (key,))
                return SignupAnswer(False, when)
            if row is None:
                pending = Subscriber(email, name, PENDING, f"asked on the form ({origin})", FORM)
                self._insert((replace(pending, consented_at=when),), when)
                self._history(key, None, PENDING, pending.status_reason, when)
            return self._mail_once(key, name, origin, when, resend_after)

    def _mail_once(
        self, key: str, name: str, origin: str, when: datetime, resend_after: timedelta
    ) -> SignupAnswer:
        signup = self.engine.one("SELECT name, mailed FROM signups WHERE address_key = ?", (key,))
        assert signup is not None  # inserted or found above, under its lock
        mailed = as_datetime(signup["mailed"])
        name = name or signup["name"]
        if mailed is not None and when - mailed < resend_after:
            return SignupAnswer(False, when, name)
        self.engine.execute(
            "UPDATE signups SET mailed = ?, name = ?, origin = ? WHERE address_key = ?",
            (when, name, origin, key),
        )
        return SignupAnswer(True, when, name)

    def confirm_signup(self, email: str, issued: datetime, *, now: datetime) -> Confirmation:
        """Subscribe an address by the link of a confirmation mail made at ``issued``.

        The caller has checked the link's signature and age. The signup is deleted in the
        same transaction, so the link works once.
        """
        key = address_key(email)
        with self.engine.transaction():
            self.engine.execute(
                "UPDATE signups SET requests = requests WHERE address_key = ?", (key,)
            )
            signup = self.engine.one(
                "SELECT name, requested, origin FROM signups WHERE address_key = ?", (key,)
            )
            requested = as_datetime(signup["requested"]) if signup else None
            if signup is None or requested is None or issued < requested:
                return Confirmation("used")
            old = self._row(key)
            mailed = f"{issued:%Y-%m-%d %H:%M} UTC"
            reason = f"confirmed by the link mailed {mailed} ({signup['origin']})"
            new = Subscriber(
                old.email if old else email,
                signup["name"],
                consent_source=FORM,
                consented_at=requested,
                confirmed_at=now,
            )
            outcome = "already" if old is not None and old.status == SUBSCRIBED else "subscribed"
            if old is None:
                row = replace(new, status=SUBSCRIBED, status_reason=reason)
                self._insert((row,), now)
                self._history(key, None, SUBSCRIBED, reason, now)
            elif outcome == "subscribed":
                self._resubscribe(key, old, new, reason, requested, now)
            self.engine.execute("DELETE FROM signups WHERE address_key = ?", (key,))
            self.engine.execute("DELETE FROM opt_outs WHERE email = ?", (key,))
        return Confirmation(outcome, self.subscriber(key))

    # --- bounces ---------------------------------------------------------------------------

    def month_recipients(self, month: str) -> tuple[str, ...]:
        """Return the addresses the month's issue went to (or is going to)."""
        rows = self.engine.query("SELECT email FROM send_ledger WHERE month = ?", (month,))
        return tuple(r["email"] for r in rows)
