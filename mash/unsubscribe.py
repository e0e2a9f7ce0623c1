"""Signed unsubscribe tokens: made by ``mash send``, checked by mash.web.subscribe.

A token is ``base64url(email) "." base64url(HMAC-SHA256(secret, list_id NUL email))``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from urllib.parse import quote

from mash.subscribers import address_key


def make_token(email: str, list_id: str, secret: str) -> str:
    """Return the unsubscribe token of an address for a list."""
    key = address_key(email)
    return f"{_b64(key.encode())}.{_b64(_mac(key, list_id, secret))}"


def verify_token(token: str, list_id: str, secret: str) -> str | None:
    """Return the address a token was made for, or None if it is not genuine."""
    encoded, dot, signature = token.strip().partition(".")
    if not dot:
        return None
    try:
        email = _unb64(encoded).decode("utf-8")
        given = _unb64(signature)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not hmac.compare_digest(given, _mac(email, list_id, secret)):
        return None
    return email


def unsubscribe_link(base_url: str, token: str) -> str:
    """Return the HTTPS unsubscribe URL carrying a token ("" when no base URL is set)."""
    if not base_url:
        return ""
    joiner = "&" if "?" in base_url else "?"
    return f"{base_url}{joiner}token={quote(token, safe='')}"


def _mac(email: str, list_id: str, secret: str) -> bytes:
    message = f"{list_id}\0{email}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
