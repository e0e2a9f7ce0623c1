"""Signed unsubscribe tokens and the unsubscribe endpoint (standard-library WSGI).

A token is ``base64url(email) "." base64url(HMAC-SHA256(secret, list_id NUL email))``.
POST with the token (RFC 8058 one-click, body ``List-Unsubscribe=One-Click``, or the
confirmation form) records the opt-out; GET only shows a page with a confirm button,
because mail scanners follow links. The server does not edit the subscribers CSV:
``mash send`` skips opted-out addresses.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import os
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from mash import mail
from mash.errors import ConfigError
from mash.ledger import Ledger
from mash.records import Config
from mash.subscribers import address_key

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
MAX_BODY = 4096
_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"


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


# --- the WSGI app -------------------------------------------------------------------------


def make_app(db_path: Path, secret: str, *, list_id: str, name: str = "Monthly Mash") -> WsgiApp:
    """Return the WSGI app serving the unsubscribe page at any path (``?token=...``).

    GET shows a confirmation form (it never unsubscribes); POST unsubscribes and
    returns 200; a missing or bad token is 400 or 403.
    """
    if not secret:
        raise ConfigError("the unsubscribe server needs the secret that signed the tokens")

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD", "POST"):
            return _reply(start_response, "405 Method Not Allowed", "Method not allowed.", name)
        token = _token(environ, method)
        if token is None:
            return _reply(start_response, "400 Bad Request", "This link has no token.", name)
        email = verify_token(token, list_id, secret)
        if email is None:
            message = "This unsubscribe link is not valid. Please use the link in your email."
            return _reply(start_response, "403 Forbidden", message, name)
        if method == "POST":
            with Ledger(db_path) as ledger:
                ledger.add_opt_out(email, list_id, _source(environ))
            done = f"{email} is unsubscribed from {name}. You will get no more issues."
            return _reply(start_response, "200 OK", done, name)
        return _confirm_page(start_response, email, token, name)

    return app


def _token(environ: dict[str, Any], method: str) -> str | None:
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if method == "POST":
        environ["mash.form"] = form = _form(environ)
        query = {**query, **{k: v for k, v in form.items() if k == "token"}}
    values = query.get("token") or []
    return values[0] if values and values[0] else None


def _form(environ: dict[str, Any]) -> dict[str, list[str]]:
    try:
        length = min(int(environ.get("CONTENT_LENGTH") or 0), MAX_BODY)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    return parse_qs(body.decode("utf-8", "replace"))


def _source(environ: dict[str, Any]) -> str:
    form: dict[str, list[str]] = environ.get("mash.form", {})
    one_click = form.get("List-Unsubscribe") == ["One-Click"]
    return "one-click" if one_click else "confirm-page"


def _confirm_page(start_response: StartResponse, email: str, token: str, name: str) -> list[bytes]:
    body = (
        f"<p>Unsubscribe <strong>{html.escape(email)}</strong> from {html.escape(name)}?</p>"
        '<form method="post" action="">'
        f'<input type="hidden" name="token" value="{html.escape(token, quote=True)}">'
        '<button type="submit">Unsubscribe</button></form>'
    )
    return _page(start_response, "200 OK", body, name)


def _reply(start_response: StartResponse, status: str, message: str, name: str) -> list[bytes]:
    return _page(start_response, status, f"<p>{html.escape(message)}</p>", name)


def _page(start_response: StartResponse, status: str, body: str, name: str) -> list[bytes]:
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(name)}: unsubscribe</title>"
        "<style>body{font-family:Arial,Helvetica,sans-serif;max-width:32em;margin:3em auto;"
        "padding:0 1em;line-height:1.5}button{font-size:1em;padding:.5em 1.2em}</style>"
        f"</head><body><h1>{html.escape(name)}</h1>{body}</body></html>"
    ).encode()
    headers = [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", str(len(page))),
        ("Cache-Control", "no-store"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Content-Type-Options", "nosniff"),
        (
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
        ),
    ]
    start_response(status, headers)
    return [page]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        # The query holds the token, and the token the address: keep both out of logs.
        line = re.sub(r"\?\S*", "?…", format % args)
        sys.stderr.write(f"unsubscribe-server: {line}\n")


def serve(
    db_path: Path,
    secret: str,
    *,
    list_id: str,
    name: str = "Monthly Mash",
    host: str = "127.0.0.1",
    port: int = 8025,
    ready: Callable[[WSGIServer], None] | None = None,
) -> None:
    """Serve the unsubscribe app with wsgiref until interrupted (put TLS in front of it).

    ``ready`` gets the server once it listens (its ``server_port`` with port 0, and
    ``shutdown()`` to stop it from another thread).
    """
    app = make_app(db_path, secret, list_id=list_id, name=name)
    with make_server(host, port, app, handler_class=_QuietHandler) as server:
        if ready is not None:
            ready(server)
        server.serve_forever()


def serve_config(config: Config, *, host: str = "127.0.0.1", port: int = 8025) -> None:
    """Serve the endpoint for a Config: its database, list id and secret from the env."""
    secret = os.environ.get(config.smtp.secret_env, "")
    if not secret:
        raise ConfigError(
            f"set {config.smtp.secret_env} to the secret that signs unsubscribe links"
        )
    serve(
        config.db_path,
        secret,
        list_id=mail.list_id(config.smtp, config.newsletter),
        name=config.newsletter.name,
        host=host,
        port=port,
    )
