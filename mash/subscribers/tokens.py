"""Signed subscriber tokens: the confirmation link of double opt-in and the VERP token.

The secret is the one that signs unsubscribe links (``smtp.secret_env``, mash.unsubscribe);
each kind of token signs a different message (a purpose word first), so one kind is never
accepted as another.

A confirmation token is ``base64url(email) "." issued "." base64url(HMAC-SHA256(secret,
"confirm" NUL list_id NUL email NUL issued))``, ``issued`` in whole seconds since the
epoch. ``read_confirm_token`` says only whether it is genuine; whether it has expired,
or was used already, is for the caller (it needs the clock and the store).

A VERP token (``bounces+TOKEN@example.org``) must fit a local part (64 characters
with ``bounces+``) and survive mail servers that lower-case it, so it cannot carry the
address: it is ``YYYYMM "-" hex(HMAC(secret, "verp" NUL month NUL address_key))[:20]``,
and ``verp_address`` finds the address among those the month's issue went to.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from mash.subscribers import address_key

_VERP = re.compile(r"^(\d{4})(\d{2})-([0-9a-f]{20})$")


@dataclass(frozen=True)
class ConfirmToken:
    """What a genuine confirmation token says: the address and when the mail was made."""

    email: str
    issued: datetime


def make_confirm_token(email: str, issued: datetime, list_id: str, secret: str) -> str:
    """Return the token of a confirmation link for an address, made at ``issued``."""
    key = address_key(email)
    seconds = int(issued.timestamp())
    mac = _mac(secret, "confirm", list_id, key, str(seconds))
    return f"{_b64(key.encode())}.{seconds}.{_b64(mac)}"


def read_confirm_token(token: str, list_id: str, secret: str) -> ConfirmToken | None:
    """Return what a confirmation token says, or None if it is not genuine."""
    parts = token.strip().split(".")
    if len(parts) != 3 or not parts[1].isdigit() or len(parts[1]) > 12:
        return None
    try:
        email = _unb64(parts[0]).decode("utf-8")
        given = _unb64(parts[2])
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not hmac.compare_digest(given, _mac(secret, "confirm", list_id, email, parts[1])):
        return None
    return ConfirmToken(email, datetime.fromtimestamp(int(parts[1]), UTC))


def make_verp_token(month: str, email: str, secret: str) -> str:
    """Return the VERP token of one issue's mail to one address (lower case, 27 chars)."""
    digest = _mac(secret, "verp", month, address_key(email)).hex()[:20]
    return f"{month.replace('-', '')}-{digest}"


def verp_month(token: str) -> str | None:
    """Return the month (YYYY-MM) a VERP token names, or None if it is not one of ours."""
    match = _VERP.match(token.strip().lower())
    return f"{match.group(1)}-{match.group(2)}" if match else None


def verp_address(token: str, candidates: Iterable[str], secret: str) -> str | None:
    """Return the address among ``candidates`` (the month's recipients) that the token
    was made for, or None: a forged or mangled token names nobody."""
    month = verp_month(token)
    if month is None:
        return None
    wanted = token.strip().lower()
    for email in candidates:
        if hmac.compare_digest(make_verp_token(month, email, secret), wanted):
            return email
    return None


def return_path(base: str, token: str) -> str:
    """Return ``local+token@domain`` of a return path ``local@domain``."""
    local, _, domain = base.rpartition("@")
    return f"{local}+{token}@{domain}"


def envelope_sender(
    return_address: str, sender: str, *, verp: bool, month: str, email: str, secret: str
) -> str:
    """Return the MAIL FROM of one issue's mail to one address: the return path
    (``smtp.return_path``), VERP-style where ``verp`` is set and a secret signs it, else
    the newsletter's sender."""
    if not return_address:
        return sender
    if verp and secret and "@" in return_address:
        return return_path(return_address, make_verp_token(month, email, secret))
    return return_address


def _mac(secret: str, *fields: str) -> bytes:
    return hmac.new(secret.encode(), "\0".join(fields).encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
