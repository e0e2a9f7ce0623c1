"""Preview a built site on 127.0.0.1 with the standard library's HTTP server."""

from __future__ import annotations

import contextlib
import functools
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def preview_server(out_dir: Path, port: int = 8000) -> ThreadingHTTPServer:
    """Return an HTTP server for out_dir bound to 127.0.0.1 (port 0 picks a free one).

    Folders are served by their index.html, as static hosts do. The caller runs
    ``serve_forever`` and closes it.
    """
    handler = functools.partial(_QuietHandler, directory=str(out_dir.resolve()))
    return ThreadingHTTPServer(("127.0.0.1", port), handler)


class _QuietHandler(SimpleHTTPRequestHandler):
    """Serve files without logging every request to stderr."""

    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".xml": "application/xml"}

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_site(out_dir: Path, port: int = 8000) -> None:
    """Serve out_dir on http://127.0.0.1:port/ until interrupted (Ctrl-C)."""
    with preview_server(out_dir, port) as server:
        bound = server.server_address[1]
        print(f"Previewing {out_dir} at http://127.0.0.1:{bound}/ (Ctrl-C to stop)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
