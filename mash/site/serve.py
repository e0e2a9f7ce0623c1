"""Preview a built site on 127.0.0.1 with the standard library's HTTP server."""

from __future__ import annotations

import contextlib
import functools
import os
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from mash.errors import BuildError


def preview_server(out_dir: Path, port: int = 8000) -> ThreadingHTTPServer:
    """Return an HTTP server for out_dir bound to 127.0.0.1 (port 0 picks a free one).

    Folders are served by their index.html, as static hosts do, and never listed.
    The caller runs ``serve_forever`` and closes it.
    """
    if not out_dir.is_dir():
        raise BuildError("no site to serve: the folder does not exist", str(out_dir))
    handler = functools.partial(_PreviewHandler, directory=str(out_dir.resolve()))
    try:
        return ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as e:
        raise BuildError(f"cannot serve on 127.0.0.1:{port}", str(out_dir)) from e


class _PreviewHandler(SimpleHTTPRequestHandler):
    """Serve files like a static host: no listings, no caching, no request log."""

    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".xml": "application/xml"}

    def list_directory(self, path: str | os.PathLike[str]) -> None:
        self.send_error(HTTPStatus.NOT_FOUND, "No index.html here")
        return None

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")  # a preview shows each rebuild
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_site(out_dir: Path, port: int = 8000) -> None:
    """Serve out_dir on http://127.0.0.1:port/ until interrupted (Ctrl-C); prints nothing."""
    with preview_server(out_dir, port) as server, contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
