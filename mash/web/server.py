"""`mash server`: everything a subscriber does, on one WSGI app served by waitress (#16).

=======================  ==========  =================================================
path                     methods     what
=======================  ==========  =================================================
/subscribe               GET, POST   the form; POST asks for a confirmation mail
/confirm?token=...       GET, POST   GET shows a button; only the POST confirms
/webhooks/<service>      POST        ses (SNS), postmark, mailgun, sendgrid: bounces
any other path           GET, POST   the unsubscribe endpoint (mash.web.subscribe)
=======================  ==========  =================================================

Forms and abuse:

- ``POST /subscribe`` answers the same page ("check your inbox") for a new, a pending
  and a subscribed address, and for a filled-in honeypot; the mail is sent by the
  outbox's thread, so the answer's timing says nothing either. A bad address, a line
  break or control character in any field, a body over 4 KB or the wrong content type
  get a clear 4xx and change nothing.
- Per client address: ``server.ip_requests`` subscribe requests per
  ``server.ip_window_minutes`` (then 429 with Retry-After); per mailbox: at most 5
  requests an hour are looked at (the rest answered alike, unread), and the store sends
  one confirmation mail per ``server.resend_minutes``. Counts live in this process.
- Cross-site: ``/subscribe`` is *meant* to be posted from other origins (the static
  site, the editor's blog), so it has no cross-origin check; it needs none: it carries
  no cookie or session to ride on, and what a forged post can do (one confirmation mail
  to an address) is what anyone may do with the form, bounded by the limits above.
  ``POST /confirm`` changes a subscription, so it must come from our own page (the
  cross-origin check of mash.web._wsgi) and carry the signed token; a cross-site post
  is refused with 403. Every page has a CSP without scripts or frames.
"""

from __future__ import annotations

import html
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from mash import mail
from mash.errors import ConfigError
from mash.pipeline import mailing
from mash.records import Config
from mash.store import database_of
from mash.subscribers import clean_name, validate_email
from mash.web._wsgi import Limits, Server, StartResponse, WsgiApp, cross_origin_refusal, serve
from mash.web.subscribe import _page, make_app
from mash.web.webhooks import Webhook, handlers

FORM_BODY = 4096  # a subscribe or confirm form is ~200 bytes
WEBHOOK_BODY = 1024 * 1024  # SNS messages are up to 256 KB; SendGrid batches events
MAX_NAME = 100
ADDRESS_REQUESTS = 5  # per mailbox per hour, looked at; more are answered alike, unread
HONEYPOT = "url"  # hidden from people by CSS; bots fill every field
Clock = Callable[[], datetime]
Handler = Callable[["_Server", dict[str, Any], StartResponse], Iterable[bytes]]


class RateLimit:
    """At most ``limit`` events per key in a sliding ``window`` of seconds (in memory)."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, now: float) -> float:
        """Count one event; return 0 if allowed, else the seconds until the next is."""
        with self._lock:
            if len(self._seen) > 100_000:  # forget quiet keys now and then
                since = now - self.window
                self._seen = {k: q for k, q in self._seen.items() if q and q[-1] > since}
            times = self._seen.setdefault(key, deque())
            while times and times[0] <= now - self.window:
                times.popleft()
            if len(times) >= self.limit:
                return times[0] + self.window - now
            times.append(now)
            return 0.0


class _Server:
    def __init__(
        self,
        lists: mailing.Lists,
        webhooks: dict[str, Webhook],
        clock: Clock,
    ) -> None:
        self.lists = lists
        self.name = lists.config.newsletter.name
        self.clock = clock
        settings = lists.config.server
        self.per_ip = RateLimit(settings.ip_requests, settings.ip_window_minutes * 60.0)
        self.per_address = RateLimit(ADDRESS_REQUESTS, 3600.0)
        self.webhooks = webhooks
        self.unsubscribe = make_app(
            lists.database, lists.secret, list_id=lists.list_id, name=self.name
        )


def make_server_app(
    lists: mailing.Lists,
    *,
    webhooks: dict[str, Webhook] | None = None,
    clock: Clock = lambda: datetime.now(UTC),
) -> WsgiApp:
    """Return the app of `mash server` (the table in this module's docstring).

    ``webhooks``: the handlers by service name (mash.web.webhooks.handlers); ``clock``
    lets tests move time (token expiry).
    """
    server = _Server(lists, webhooks or {}, clock)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/").rstrip("/") or "/"
        if path in ROUTES:
            return ROUTES[path](server, environ, start_response)
        if path.startswith("/webhooks/"):
            handler = server.webhooks.get(path.removeprefix("/webhooks/"))
            if handler is None:
                return _message(server, start_response, "404 Not Found", "No such webhook.")
            return handler(server.lists, environ, start_response)
        return server.unsubscribe(environ, start_response)

    return app


# --- subscribe -------------------------------------------------------------------------


def _subscribe(server: _Server, environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
    method = environ.get("REQUEST_METHOD", "GET")
    if method in ("GET", "HEAD"):
        return _form_page(server, start, "200 OK", "", "")
    if method != "POST":
        return _message(server, start, "405 Method Not Allowed", "Use the form to subscribe.")
    client = environ.get("REMOTE_ADDR", "")
    wait = server.per_ip.allow(client, time.monotonic())
    if wait:
        minutes = max(1, round(wait / 60))
        text = f"Too many requests from your address. Please try again in {minutes} minutes."
        return _message(
            server, start, "429 Too Many Requests", text, (("Retry-After", str(int(wait) + 1)),)
        )
    form, problem = _read_form(environ)
    if problem:
        return _message(server, start, *problem)
    if any(_has_control(v) for values in form.values() for v in values):
        text = "The form holds a line break or control character. Please type it again."
        return _message(server, start, "400 Bad Request", text)
    email_given, name_given = _field(form, "email"), _field(form, "name")
    if _field(form, HONEYPOT):
        return _check_inbox(server, environ, start, email_given)  # a bot: same page, no mail
    try:
        email = validate_email(email_given)
        name = clean_name(name_given)[:MAX_NAME]
    except ValueError as e:
        return _form_page(server, start, "400 Bad Request", email_given, str(e))
    if not server.per_address.allow(email.lower(), time.monotonic()):
        origin = f"{_page_of(environ) or 'a form'}, from {client or 'an unknown address'}"
        mailing.request(server.lists, email, name, origin, server.clock())
    return _check_inbox(server, environ, start, email)


def _read_form(environ: dict[str, Any]) -> tuple[dict[str, list[str]], tuple[str, str] | None]:
    """Return the form fields, or a (status, message) refusing the request."""
    kind = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return {}, ("415 Unsupported Media Type", "Send the form as a plain HTML form.")
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = -1
    if length < 0 or length > FORM_BODY:
        return {}, ("413 Content Too Large", "That form is too large.")
    body = environ["wsgi.input"].read(length) if length else b""
    try:
        text = body.decode("utf-8")
        return parse_qs(text, keep_blank_values=True, strict_parsing=False, max_num_fields=20), None
    except (UnicodeDecodeError, ValueError):
        return {}, ("400 Bad Request", "The form could not be read.")


def _field(form: dict[str, list[str]], name: str) -> str:
    values = form.get(name) or [""]
    return values[0]


def _has_control(value: str) -> bool:
    return any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 or c in "\u2028\u2029" for c in value)


def _page_of(environ: dict[str, Any]) -> str:
    """Return the page the form was on (its Referer), without query or fragment."""
    referer = environ.get("HTTP_REFERER", "")
    parts = urlsplit(referer)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc}{parts.path}"[:300]


def _check_inbox(
    server: _Server, environ: dict[str, Any], start: StartResponse, email: str
) -> list[bytes]:
    back = ""
    page = _page_of(environ)
    site = server.lists.config.newsletter.site_url
    if page and site and page.startswith(site):
        back = f'<p><a href="{html.escape(page, quote=True)}">Back to the page you were on</a></p>'
    body = (
        "<h2>Check your inbox</h2>"
        f"<p>If <strong>{html.escape(email)}</strong> can get mail, a message is on its way "
        "with a link to confirm your subscription. The link works for "
        f"{server.lists.config.server.confirm_days} days.</p>"
        "<p>Nothing there? Look in the spam folder, or ask again in ten minutes.</p>"
        f"{back}"
    )
    return _page(start, "200 OK", body, server.name, "check your inbox")


def _form_page(
    server: _Server, start: StartResponse, status: str, email: str, problem: str
) -> list[bytes]:
    note = f'<p role="alert"><strong>{html.escape(problem)}</strong></p>' if problem else ""
    body = (
        f"<h2>Subscribe</h2>{note}"
        '<form method="post" action="/subscribe">'
        '<label for="email">Email address</label>'
        f'<input id="email" name="email" type="email" required value="{html.escape(email)}">'
        '<label for="name">Name (optional)</label><input id="name" name="name" type="text">'
        f'<div class="hp" aria-hidden="true"><label>Leave this empty <input name="{HONEYPOT}" '
        'tabindex="-1" autocomplete="off"></label></div>'
        '<button type="submit">Subscribe</button></form>'
    )
    return _page(start, status, body, server.name, "subscribe")


# --- confirm ---------------------------------------------------------------------------


def _confirm(server: _Server, environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
    method = environ.get("REQUEST_METHOD", "GET")
    if method not in ("GET", "HEAD", "POST"):
        return _message(server, start, "405 Method Not Allowed", "Method not allowed.")
    token = _field(parse_qs(environ.get("QUERY_STRING", "")), "token")
    if method == "POST":
        if refusal := cross_origin_refusal(environ):
            sys.stderr.write(f"mash server: refused {refusal} to /confirm\n")
            return _message(server, start, "403 Forbidden", "Please use the page from your mail.")
        form, problem = _read_form(environ)
        if problem:
            return _message(server, start, *problem)
        token = _field(form, "token") or token
    if not token:
        return _message(server, start, "400 Bad Request", "This link has no token.")
    if method != "POST":
        return _confirm_page(server, start, token)
    checked, outcome = mailing.confirm(server.lists, token, server.clock())
    if checked.problem:
        return _bad_link(server, start, checked)
    if outcome == "used":
        text = "This link was used already, or a newer mail replaced it. Nothing changed."
        return _message(server, start, "409 Conflict", text)
    text = f"{checked.email} is subscribed to {server.name}. Welcome!"
    if outcome == "already":
        text = f"{checked.email} was already subscribed to {server.name}."
    return _message(server, start, "200 OK", text)


def _confirm_page(server: _Server, start: StartResponse, token: str) -> list[bytes]:
    checked = mailing.check_link(server.lists, token, server.clock())
    if checked.problem:
        return _bad_link(server, start, checked)
    body = (
        f"<p>Subscribe <strong>{html.escape(checked.email)}</strong> to "
        f"{html.escape(server.name)}?</p>"
        '<form method="post" action="/confirm">'
        f'<input type="hidden" name="token" value="{html.escape(token, quote=True)}">'
        '<button type="submit">Confirm my subscription</button></form>'
    )
    return _page(start, "200 OK", body, server.name, "confirm")


def _bad_link(server: _Server, start: StartResponse, checked: mailing.Checked) -> list[bytes]:
    if checked.problem == "expired":
        text = "This link has expired. Please subscribe again to get a new one."
        return _message(server, start, "410 Gone", text)
    return _message(server, start, "403 Forbidden", "This link is not valid.")


def _message(
    server: _Server,
    start: StartResponse,
    status: str,
    text: str,
    extra: tuple[tuple[str, str], ...] = (),
) -> list[bytes]:
    return _page(start, status, f"<p>{html.escape(text)}</p>", server.name, "subscribe", extra)


ROUTES: dict[str, Handler] = {
    "/subscribe": _subscribe,
    "/confirm": _confirm,
}


def serve_config(
    config: Config,
    *,
    host: str = "127.0.0.1",
    port: int = 8025,
    ready: Callable[[Server], None] | None = None,
) -> None:
    """Serve `mash server` for a Config until interrupted (put TLS in front of it)."""
    secret = os.environ.get(config.smtp.secret_env, "")
    if not secret:
        raise ConfigError(
            f"set {config.smtp.secret_env} to the secret that signs confirmation and "
            "unsubscribe links"
        )
    if not config.newsletter.server_url:
        raise ConfigError(
            "set newsletter.server_url in feeds.yaml to the address readers reach "
            "`mash server` at (the confirmation links point there)",
            str(config.path),
        )
    outbox = mailing.smtp_outbox(config)
    lists = mailing.Lists(
        config, database_of(config), secret, mail.list_id(config.smtp, config.newsletter), outbox
    )
    limits = Limits(max_body=WEBHOOK_BODY, trusted_proxy=config.server.trusted_proxy)
    app = make_server_app(lists, webhooks=handlers(config, os.environ))
    try:
        serve(app, host, port, limits=limits, name="mash server", ready=ready)
    finally:
        outbox.close()
        lists.close()
