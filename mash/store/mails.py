"""The bounce mails already read (table mails_read), so each is read once (#16).

``SeenMails`` is mash.mailbox's ``SeenMessages`` kept in the store: on PostgreSQL every
machine reading the bounce mailbox shares it. It reads the keys once when made; each
``add`` commits at once (durably), so a run killed midway re-reads nothing it finished.
"""

from __future__ import annotations

from datetime import UTC, datetime

from mash.store._base import Engine


class MailsMixin:
    engine: Engine

    def mail_keys_read(self) -> set[str]:
        """Return the key (Message-ID or sha256:HEX) of every mail read before."""
        return {r["message_key"] for r in self.engine.query("SELECT message_key FROM mails_read")}

    def mark_mail_read(self, key: str) -> None:
        """Remember a mail as read (again is harmless)."""
        with self.engine.transaction(durable=True):
            self.engine.execute(
                "INSERT INTO mails_read(message_key, read_at) VALUES (?, ?)"
                " ON CONFLICT(message_key) DO NOTHING",
                (key, datetime.now(UTC)),
            )

    def seen_mails(self) -> SeenMails:
        """Return the mails read before, as mash.mailbox.import_bounces wants them."""
        return SeenMails(self)


class SeenMails:
    """The keys of the mails read, from the store; ``add`` writes through."""

    def __init__(self, store: MailsMixin) -> None:
        self._store = store
        self._keys = store.mail_keys_read()

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def add(self, key: str) -> None:
        if key not in self._keys:
            self._store.mark_mail_read(key)
            self._keys.add(key)
