"""The editor's desk (`mash desk`, see #17): curate a month in the browser, on 127.0.0.1.

Every route is in ``ROUTES``; each handler reads its input, calls one ``pipeline``
function and renders a template. The edition file stays the source of truth: each change
is written to it at once (``pipeline.change_edition``), and the page is made again from
the file, so an edit made in a text editor meanwhile shows up and is never overwritten.

Safe by default: the server listens on loopback only; every request needs the per-run
token (in the printed URL, then an HttpOnly SameSite=Strict cookie), a POST also needs
it in its form and must pass the cross-origin check; the pages carry a strict CSP, the
previews are sandboxed iframes. Text from feeds is autoescaped; their HTML is shown only
as the issue renders it, after ``mash.sanitize``. Works with JavaScript off: every action
is a plain form, and desk.js only makes them quicker and adds drag and drop.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import jinja2

from mash import pipeline
from mash.blurb import suggest_blurbs
from mash.edition import Change
from mash.errors import MashError
from mash.records import CheckReport, Config, ScoredPost
from mash.web._wsgi import Limits, Server, StartResponse, WsgiApp, cross_origin_refusal, serve

HERE = Path(__file__).resolve().parent
STATIC = {
    "desk.js": "text/javascript",
    "desk.css": "text/css",
    "Sortable.min.js": "text/javascript",
}
LIMITS = Limits(max_body=256 * 1024, threads=4)  # an essay is a few KB; one editor
_COOKIE = "mash_desk"
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
# the previews: the issue's own inline CSS, no script, no image from elsewhere (no request
# leaves the machine while the editor works), framed by the desk only
_PREVIEW_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)
FILTERS = {
    "": "all",
    "in": "in the issue",
    "out": "out",
    "flagged": "flagged dates",
    "duplicates": "duplicates",
    "promotional": "promotional",
}
_ACTIONS = ("pin", "unpin", "drop", "undrop", "order", "up", "down", "blurb", "listening")
_TEXTS = ("listening_blurb", "theme", "essay")


@dataclass
class Desk:
    """One run of the desk: its month, token, and the texts its pages were made from."""

    config: Config
    month: str
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    now: Callable[[], datetime] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    seen: OrderedDict[str, str] = field(default_factory=OrderedDict)  # version -> text
    notes: OrderedDict[str, str] = field(default_factory=OrderedDict)  # id -> message
    views: OrderedDict[str, pipeline.DeskView] = field(default_factory=OrderedDict)
    checks: OrderedDict[str, CheckReport | str] = field(default_factory=OrderedDict)

    def view(self) -> pipeline.DeskView:
        """Return the month's view of the file as it is now (made once per version)."""
        with self.lock:
            file = pipeline.read_edition_file(self.config, self.month)
            if file.version not in self.views:
                now = self.now() if self.now else None
                _remember(
                    self.views, file.version, pipeline.desk_view(self.config, self.month, now)
                )
            view = self.views[file.version]
            _remember(self.seen, view.file.version, view.file.text)
            return view

    def check(self, version: str, links: bool = False) -> CheckReport | str:
        """Return the pre-send checks of the file's version (or why they could not run);
        the links are asked only when ``links``, and that report is then kept for it."""
        key = f"{version} links" if links else version
        if key not in self.checks:
            try:
                report: CheckReport | str = pipeline.run_checks(
                    self.config, self.month, links=links
                )
            except MashError as e:  # an edition halfway through an edit: say why, go on
                report = f"The checks cannot run now: {e}"
            _remember(self.checks, key, report, size=8)
        return self.checks.get(f"{version} links") or self.checks[key]

    def change(self, change: Change, seen: str) -> pipeline.Edited:
        with self.lock:
            edited = pipeline.change_edition(
                self.config, self.month, change, seen, self.seen.get(seen)
            )
            _remember(self.seen, edited.file.version, edited.file.text)
            return edited

    def note(self, message: str) -> str:
        key = secrets.token_hex(6)
        _remember(self.notes, key, message)
        return key


def _remember(cache: OrderedDict[str, Any], key: str, value: Any, size: int = 32) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > size:
        cache.popitem(last=False)


# --- requests -------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    multi: dict[str, list[str]]  # the form's repeated fields (order: url, url, ...)


@dataclass(frozen=True)
class Response:
    status: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


Handler = Callable[[Desk, Request], Response]


def make_app(desk: Desk) -> WsgiApp:
    """Return the desk's WSGI app (see the module docstring for what it checks)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        response = _respond(desk, env, environ)
        headers = [("Content-Length", str(len(response.body))), *response.headers]
        headers += [
            ("Cache-Control", "no-store"),
            ("Referrer-Policy", "no-referrer"),
            ("X-Content-Type-Options", "nosniff"),
        ]
        start_response(response.status, headers)
        return [response.body]

    return app


def _respond(desk: Desk, env: jinja2.Environment, environ: dict[str, Any]) -> Response:
    method = environ.get("REQUEST_METHOD", "GET")
    path = environ.get("PATH_INFO", "/")
    query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    if method == "GET" and path.startswith("/static/"):
        return _static(path.removeprefix("/static/"))
    if method == "GET" and path == "/" and _same(query.get("token", ""), desk.token):
        cookie = f"{_COOKIE}={desk.token}; Path=/; HttpOnly; SameSite=Strict"
        return _redirect("/", ("Set-Cookie", cookie))
    if not (_same(_cookie(environ), desk.token) or _same(query.get("token", ""), desk.token)):
        return _text("403 Forbidden", "Open the desk with the URL `mash desk` printed.")
    multi: dict[str, list[str]] = {}
    if method == "POST":
        refusal = cross_origin_refusal(environ)
        multi = _form(environ)
        if refusal or not _same((multi.get("token") or [""])[0], desk.token):
            why = refusal or "a form without this run's token"
            return _text("403 Forbidden", f"Refused {why}: reload the desk and try again.")
    handler = ROUTES.get((method, path))
    if handler is None:
        known = any(p == path for _, p in ROUTES)
        return _text("405 Method Not Allowed" if known else "404 Not Found", "Not here.")
    form = {k: v[0] for k, v in multi.items()}
    request = Request(method, path, query, form, multi)
    response = handler(desk, request)
    if response.status == "render":  # a page: the body is its template's name
        return _page(env, desk, request, response.body.decode())
    return response


def _same(given: str, token: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), token.encode())


def _cookie(environ: dict[str, Any]) -> str:
    cookie: SimpleCookie = SimpleCookie()
    try:
        cookie.load(environ.get("HTTP_COOKIE", ""))
    except Exception:  # a malformed Cookie header from another app on 127.0.0.1
        return ""
    morsel = cookie.get(_COOKIE)
    return morsel.value if morsel else ""


def _form(environ: dict[str, Any]) -> dict[str, list[str]]:
    try:
        length = min(int(environ.get("CONTENT_LENGTH") or 0), LIMITS.max_body)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)


def _text(status: str, message: str) -> Response:
    return Response(status, message.encode(), (("Content-Type", "text/plain; charset=utf-8"),))


def _redirect(to: str, *headers: tuple[str, str]) -> Response:
    return Response("303 See Other", b"", (("Location", to), *headers))


def _static(name: str) -> Response:
    if name not in STATIC:
        return _text("404 Not Found", "Not here.")
    body = (HERE / "static" / name).read_bytes()
    return Response("200 OK", body, (("Content-Type", f"{STATIC[name]}; charset=utf-8"),))


# --- handlers -------------------------------------------------------------------------


def show_desk(desk: Desk, request: Request) -> Response:
    """The desk itself (rendered by ``_page``)."""
    return Response("render", b"desk.html")


def show_preview(desk: Desk, request: Request) -> Response:
    """One preview: the email (``mode`` light or dark) or the web page, as rendered."""
    rendered = desk.view().rendered
    if request.path == "/preview/web":
        body = rendered.web_html
    else:
        body = rendered.email_html
        if request.query.get("mode") == "dark":  # what a dark-mode mail client applies
            body = body.replace("@media (prefers-color-scheme: dark)", "@media all")
    headers = (
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Security-Policy", _PREVIEW_CSP),
        ("X-Frame-Options", "SAMEORIGIN"),
    )
    return Response("200 OK", body.encode(), headers)


def make_change(desk: Desk, request: Request) -> Response:
    """Make one change to the edition file, then show the desk again (PRG)."""
    form = request.form
    action = form.get("action", "")
    if action not in _ACTIONS + _TEXTS:
        return _text("400 Bad Request", f"Unknown action {action!r}.")
    if action in ("up", "down"):
        change = _moved(desk, form.get("url", ""), -1 if action == "up" else 1)
    else:
        urls = tuple(u for u in request.multi.get("url", []) if u) if action == "order" else ()
        change = Change(action, url=form.get("url", ""), text=form.get("text", ""), urls=urls)
    edited = desk.change(change, form.get("version", ""))
    note = edited.refused
    if note and change.text:
        note += f". Your text, to copy: {change.text}"
    elif edited.merged:
        note = f"{edited.file.path} had changed on disk: your change was made to the newer text"
    return _redirect(_back(desk, form, note))


def _moved(desk: Desk, url: str, step: int) -> Change:
    """Return the order change that moves url one place up or down the roundup."""
    order = [p.url for p in desk.view().rendered.issue.picks]
    if url in order:
        at = order.index(url)
        to = max(0, min(len(order) - 1, at + step))
        order.insert(to, order.pop(at))
    return Change("order", urls=tuple(order))


def _back(desk: Desk, form: dict[str, str], note: str = "") -> str:
    query = {k: form[k] for k in ("show", "q") if form.get(k)}
    if note:
        query["note"] = desk.note(note)
    anchor = form.get("anchor", "")
    return "/" + (f"?{urlencode(query)}" if query else "") + (f"#{anchor}" if anchor else "")


def send_proof(desk: Desk, request: Request) -> Response:
    """Build the issue and mail one [PROOF] copy (`mash send --proof`)."""
    address = request.form.get("address", "").strip()
    try:
        _, report = pipeline.send_proof(desk.config, desk.month, address)
        note = f"Built the issue and mailed a proof to {address}: " + "; ".join(report.lines())
    except MashError as e:  # the editor's to fix (a bad address, a broken edition): shown
        note = f"No proof sent: {e}"
    return _redirect(_back(desk, request.form, note))


def check_links(desk: Desk, request: Request) -> Response:
    """Run the pre-send checks with every link of the issue asked (it fetches: a button)."""
    desk.check(pipeline.read_edition_file(desk.config, desk.month).version, links=True)
    return _redirect(_back(desk, {**request.form, "anchor": "checks-heading"}))


ROUTES: dict[tuple[str, str], Handler] = {
    ("GET", "/"): show_desk,
    ("GET", "/preview/email"): show_preview,
    ("GET", "/preview/web"): show_preview,
    ("POST", "/change"): make_change,
    ("POST", "/proof"): send_proof,
    ("POST", "/check"): check_links,
}


# --- the page -------------------------------------------------------------------------


def _page(env: jinja2.Environment, desk: Desk, request: Request, name: str) -> Response:
    view = desk.view()
    show, q = request.query.get("show", ""), request.query.get("q", "").strip()
    candidates = [c for c in view.ranking.candidates if _shown(c, show, q)]
    picks = view.rendered.issue.picks
    by_url = {c.post.url: c for c in view.ranking.candidates}
    context = {
        "desk": desk,
        "view": view,
        "edition": view.edition,
        "issue": view.rendered.issue,
        "picks": picks,
        "candidates": candidates,
        "count": len(view.ranking.candidates),
        "suggestions": {
            p.url: suggest_blurbs(by_url[p.url].post.text, p.title) if p.url in by_url else []
            for p in picks
        },
        "pinned": set(view.edition.pins),
        "dropped": set(view.edition.drops),
        "house": [c for c in view.ranking.candidates if c.post.house],
        "filters": FILTERS,
        "show": show if show in FILTERS else "",
        "q": q,
        "note": desk.notes.get(request.query.get("note", ""), ""),
        "token": desk.token,
        "version": view.file.version,
        "file_label": _label(view.file.path, desk.config.path.parent),
        "essay_html": view.rendered.issue.editorial_html,
        "editor_email": desk.config.newsletter.editor_email,
        "status_of": _status_of,
        "checks": desk.check(view.file.version),
    }
    body = env.get_template(name).render(**context).encode()
    headers = (
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Security-Policy", _CSP),
        ("X-Frame-Options", "DENY"),
    )
    return Response("200 OK", body, headers)


def _label(path: Path, folder: Path) -> str:
    """Return path as the editor knows it: relative to the config's folder when inside it."""
    try:
        return str(path.resolve().relative_to(folder.resolve()))
    except ValueError:
        return str(path)


def _status_of(item: ScoredPost) -> str:
    return "in" if item.status in ("picked", "listening") else "out"


def _shown(item: ScoredPost, show: str, q: str) -> bool:
    """Return whether a candidate passes the filter and the search (title, blog, URL)."""
    reason = item.reason
    passes = {
        "in": item.status in ("picked", "listening"),
        "out": item.status not in ("picked", "listening"),
        "flagged": reason.startswith("flagged date"),
        "duplicates": reason.startswith("duplicate"),
        "promotional": reason.startswith("promotional"),
    }.get(show, True)
    haystack = f"{item.post.title} {item.post.blog} {item.post.url}".casefold()
    return passes and all(word in haystack for word in q.casefold().split())


def serve_desk(
    config: Config,
    month: str,
    *,
    port: int = 8030,
    ready: Callable[[Server, str], None] | None = None,
) -> None:
    """Serve the desk for month on 127.0.0.1 until interrupted; ``ready`` gets the server
    and the URL to open (with the token)."""
    desk = Desk(config, month)
    desk.view()  # makes the draft if missing, and fails here, not in the browser

    def started(server: Server) -> None:
        if ready is not None:
            ready(server, f"http://127.0.0.1:{server.port}/?token={desk.token}")

    serve(make_app(desk), "127.0.0.1", port, limits=LIMITS, name="desk", ready=started)
