"""The one local HTTP server of mash: waitress, with read timeouts, a worker pool and
body caps (see #21).

``serve`` runs an app until interrupted or stopped. A client that goes quiet mid-request
is dropped after ``read_timeout`` seconds, and meanwhile holds no worker: waitress reads
requests in one loop and hands only complete ones to its ``threads``. Bodies over
``max_body`` bytes are refused with 413 before the app sees them. The only module that
turns a ``MashError`` into an HTTP status (503: try again), as only cli.py turns one into
an exit code. Put TLS in front of it (a reverse proxy): it speaks plain HTTP.
"""

from __future__ import annotations

import contextlib
import re
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from waitress import wasyncore
from waitress.server import BaseWSGIServer, create_server

from mash.errors import MashError

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


@dataclass(frozen=True)
class Limits:
    """What one server allows its clients."""

    # whole seconds a connection may stay quiet mid-request or idle (waitress counts in
    # whole seconds); a client that sends a byte now and then is bounded by the caps below
    read_timeout: int = 30
    threads: int = 8  # requests handled at once; the rest wait in a queue, connected
    max_body: int = 64 * 1024  # bytes of a request body
    max_header: int = 16 * 1024  # bytes of the request line and headers
    connections: int = 200  # open connections; more wait in the listen backlog
    # the reverse proxy's address: its X-Forwarded-For names the client (REMOTE_ADDR);
    # "" believes no header, so behind a proxy every client is the proxy (see #16)
    trusted_proxy: str = ""


class Server:
    """A listening server: ``port`` is the bound one (for port 0), ``stop()`` ends ``run()``
    from any thread."""

    def __init__(self, app: WsgiApp, host: str, port: int, limits: Limits, name: str) -> None:
        self._map: dict[int, Any] = {}
        self._stopped = threading.Event()
        proxy: dict[str, Any] = {}
        if limits.trusted_proxy:
            proxy = {
                "trusted_proxy": limits.trusted_proxy,
                "trusted_proxy_count": 1,
                "trusted_proxy_headers": {"x-forwarded-for", "x-forwarded-proto"},
                "clear_untrusted_proxy_headers": True,
            }
        server = create_server(
            _logged(_statuses(app), name),
            map=self._map,
            host=host,
            port=port,
            threads=limits.threads,
            channel_timeout=limits.read_timeout,
            # the idle check runs this often: a short timeout needs a short interval
            cleanup_interval=max(1, min(limits.read_timeout // 2, 30)),
            max_request_body_size=limits.max_body,
            max_request_header_size=limits.max_header,
            connection_limit=limits.connections,
            asyncore_use_poll=True,  # select() stops at 1024 descriptors
            ident=name,
            expose_tracebacks=False,
            **proxy,
        )
        assert isinstance(server, BaseWSGIServer)  # one host and port: one socket
        self._server = server
        host_bound, port_bound = server.getsockname()[:2]
        self.host, self.port = str(host_bound), int(port_bound)

    def run(self) -> None:
        """Serve until ``stop()`` (or an interrupt); then close every connection."""
        try:
            while not self._stopped.is_set():
                wasyncore.loop(timeout=1.0, map=self._map, use_poll=True, count=1)
        finally:
            self._server.task_dispatcher.shutdown()
            wasyncore.close_all(self._map)

    def stop(self) -> None:
        self._stopped.set()
        # wake the loop now, not at its next timeout; a loop that saw the flag first has
        # closed its trigger already (EBADF), and there is nothing left to wake
        with contextlib.suppress(OSError):
            self._server.pull_trigger()


def serve(
    app: WsgiApp,
    host: str = "127.0.0.1",
    port: int = 8025,
    *,
    limits: Limits = Limits(),
    name: str = "mash",
    ready: Callable[[Server], None] | None = None,
) -> None:
    """Serve ``app`` on ``host``:``port`` until interrupted; ``ready`` gets the server once
    it listens. Binds to loopback unless told otherwise."""
    server = Server(app, host, port, limits, name)
    if ready is not None:
        ready(server)
    server.run()


def cross_origin_refusal(environ: dict[str, Any]) -> str | None:
    """Return why a state-changing request is refused as cross-site, or None to let it in.

    As simonw/datasette's csrf.py: ``Sec-Fetch-Site`` first (every current browser sends
    it): same-origin passes, and so does none (the user typed the URL or used a bookmark);
    same-site and cross-site are refused, since another port of 127.0.0.1 is another
    origin. Without it, an ``Origin`` header must name this host. A request with neither
    did not come from a browser's page (curl): the per-run token is what guards it.
    """
    site = environ.get("HTTP_SEC_FETCH_SITE")
    if site is not None:
        return None if site in ("same-origin", "none") else f"a {site} request"
    origin = environ.get("HTTP_ORIGIN")
    if origin is None:
        return None
    host = environ.get("HTTP_HOST", "")
    if origin in (f"http://{host}", f"https://{host}"):
        return None
    return f"a request from {origin!r}, not this page"


def _statuses(app: WsgiApp) -> WsgiApp:
    """Answer a MashError (a store that stays busy, say) with 503, naming it on stderr."""

    def guarded(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            return app(environ, start_response)
        except MashError as e:
            sys.stderr.write(f"{environ.get('mash.name', 'mash')}: {e}\n")
            body = b"The server cannot do this now. Please try again in a minute.\n"
            headers = [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))),
                ("Retry-After", "60"),
            ]
            start_response("503 Service Unavailable", headers, sys.exc_info())
            return [body]

    return guarded


def _logged(app: WsgiApp, name: str) -> WsgiApp:
    """Log one line per request on stderr, without its query (it may hold a token, and
    the token an address)."""

    def logging(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        environ["mash.name"] = name

        def start(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            query = "?…" if environ.get("QUERY_STRING") else ""
            path = re.sub(r"\s", "", environ.get("PATH_INFO", ""))
            line = f'"{environ.get("REQUEST_METHOD")} {path}{query}" {status.split()[0]}'
            sys.stderr.write(f"{name}: {environ.get('REMOTE_ADDR', '-')} {line}\n")
            return start_response(status, headers, *exc)

        return app(environ, start)

    return logging
