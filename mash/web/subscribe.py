"""The public unsubscribe endpoint (RFC 8058 one-click), served by mash.web._wsgi.

POST with a token (RFC 8058 one-click, body ``List-Unsubscribe=One-Click``, or the
confirmation form) records the opt-out; GET only shows a page with a confirm button,
because mail scanners follow links. Any path serves it (``?token=...``). The opt-out
and the address's new status (unsubscribed, with its history) are written to the store
in one transaction; ``mash send`` skips both. Never loads fetch, extract or rank.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from mash import mail
from mash.errors import ConfigError
from mash.records import Config
from mash.store import database_of, open_store
from mash.unsubscribe import verify_token
from mash.web._wsgi import Limits, Server, StartResponse, WsgiApp, serve

MAX_BODY = 4096  # a one-click or form body is ~100 bytes; the server caps bodies too
LIMITS = Limits(max_body=MAX_BODY)
# No scripts, no frames (clickjacking the confirm button), forms post only here.
_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def make_app(
    database: str | Path, secret: str, *, list_id: str, name: str = "Monthly Mash"
) -> WsgiApp:
    """Return the WSGI app serving the unsubscribe page at any path (``?token=...``).

    GET shows a confirmation form (it never unsubscribes); POST unsubscribes and
    returns 200; a missing or bad token is 400 or 403. ``database`` is a SQLite path or
    a PostgreSQL URL (open_store); the store is made or migrated here, once, not by
    concurrent requests.
    """
    if not secret:
        raise ConfigError("the unsubscribe server needs the secret that signed the tokens")
    with open_store(database):
        pass

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
            _opt_out(database, email, list_id, _source(environ))
            done = f"{email} is unsubscribed from {name}. You will get no more issues."
            return _reply(start_response, "200 OK", done, name)
        return _confirm_page(start_response, email, token, name)

    return app


def _opt_out(database: str | Path, email: str, list_id: str, source: str) -> None:
    """Record an opt-out and set the status. Concurrent ones wait their turn in SQLite
    (WAL, a 30 s busy timeout: 2,000 from 64 threads at once, none failed); a store
    locked for longer is a 503 with Retry-After (mash.web._wsgi), never a lost opt-out
    reported as done."""
    with open_store(database) as store:
        store.opt_out(email, list_id, source)


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


def _page(
    start_response: StartResponse,
    status: str,
    body: str,
    name: str,
    title: str = "unsubscribe",
    extra: tuple[tuple[str, str], ...] = (),
) -> list[bytes]:
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(name)}: {html.escape(title)}</title>"
        "<style>body{font-family:Arial,Helvetica,sans-serif;max-width:32em;margin:3em auto;"
        "padding:0 1em;line-height:1.5}button{font-size:1em;padding:.5em 1.2em}"
        "input{font-size:1em;padding:.3em;margin:.2em 0 .6em;width:100%;box-sizing:border-box}"
        ".hp{position:absolute;left:-10000px}</style>"
        f"</head><body><h1>{html.escape(name)}</h1>{body}</body></html>"
    ).encode()
    headers = [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", str(len(page))),
        ("Cache-Control", "no-store"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Content-Type-Options", "nosniff"),
        ("Content-Security-Policy", _CSP),
        *extra,
    ]
    start_response(status, headers)
    return [page]


def serve_config(
    config: Config,
    *,
    host: str = "127.0.0.1",
    port: int = 8025,
    limits: Limits = LIMITS,
    ready: Callable[[Server], None] | None = None,
) -> None:
    """Serve the endpoint for a Config: its database, list id and secret from the env,
    until interrupted (put TLS in front of it)."""
    secret = os.environ.get(config.smtp.secret_env, "")
    if not secret:
        raise ConfigError(
            f"set {config.smtp.secret_env} to the secret that signs unsubscribe links"
        )
    app = make_app(
        database_of(config),
        secret,
        list_id=mail.list_id(config.smtp, config.newsletter),
        name=config.newsletter.name,
    )
    serve(app, host, port, limits=limits, name="unsubscribe-server", ready=ready)
