"""`make demo`: the whole pipeline on the bundled sample blogs, offline, on 127.0.0.1.

Serves demo/site/ on a free port (replacing ``{{BASE}}`` with the server's address),
writes output/demo/feeds.yaml pointing at it, then runs fetch, build for each demo
month, and site, and stops the server. Also used by the tests as their blog server.
"""

from __future__ import annotations

import shutil
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo"
MONTHS = ("2026-09", "2026-10")
_TEXT_TYPES = (".xml", ".html", ".txt", ".json", ".md", ".css")


class _Handler(SimpleHTTPRequestHandler):
    """Serve a folder, replacing {{BASE}} in text files; quiet."""

    base = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send_head(self) -> Any:
        path = Path(self.translate_path(self.path))
        if path.is_dir():
            path = path / "index.html"
        if not path.is_file() or path.suffix not in _TEXT_TYPES:
            return super().send_head()
        body = path.read_bytes().replace(b"{{BASE}}", self.base.encode())
        self.send_response(200)
        kind = {
            ".xml": "application/xml",
            ".html": "text/html",
            ".json": "application/json",
            ".css": "text/css",
        }.get(path.suffix, "text/plain")
        if path.name == "atom.xml":
            kind = "application/atom+xml"
        elif path.name == "feed.xml":
            kind = "application/rss+xml"
        self.send_header("Content-Type", f"{kind}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        import io

        return io.BytesIO(body)


@contextmanager
def serve_folder(folder: Path, extra: dict[str, bytes] | None = None) -> Iterator[str]:
    """Serve folder on 127.0.0.1 at a free port; yield the base URL (no trailing slash)."""

    class Handler(_Handler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(folder), **kwargs)

        def send_head(self) -> Any:
            if extra and self.path in extra:
                import io

                body = extra[self.path]
                self.send_response(200)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                return io.BytesIO(body)
            return super().send_head()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    Handler.base = base
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base
    finally:
        server.shutdown()
        server.server_close()


def demo_feeds(base: str) -> list[dict[str, Any]]:
    """Return the feeds: list of the demo blogs served at base."""
    blogs = yaml.safe_load((DEMO / "blogs.yaml").read_text(encoding="utf-8"))["blogs"]
    feeds = []
    for blog in blogs:
        name = "feed.xml" if blog["feed"] == "rss" else "atom.xml"
        item: dict[str, Any] = {"url": f"{base}/{blog['slug']}/{name}", "name": blog["name"]}
        if blog.get("house"):
            item["house"] = True
        feeds.append(item)
    return feeds


def write_demo_config(folder: Path, base: str) -> Path:
    """Write folder/feeds.yaml and folder/editions/ for the demo served at base."""
    folder.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load((DEMO / "feeds.yaml").read_text(encoding="utf-8"))
    config["feeds"] = demo_feeds(base)
    # the demo blogs are served on loopback: allow exactly that address (see #21)
    config.setdefault("fetch", {})["allow_private"] = [urlsplit(base).hostname]
    config["paths"] = {
        "database": "data/mash.db",
        "output": ".",
        "editions": "editions",
        "templates": "templates",
    }
    path = folder / "feeds.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    editions = folder / "editions"
    editions.mkdir(exist_ok=True)
    for source in sorted((DEMO / "editions").glob("*.md")):
        text = source.read_text(encoding="utf-8").replace("{{BASE}}", base)
        (editions / source.name).write_text(text, encoding="utf-8")
    return path


def main() -> int:
    """Run the demo; print where the issues are."""
    from mash.cli import main as mash

    out = ROOT / "output" / "demo"
    if out.exists():
        shutil.rmtree(out)
    with serve_folder(DEMO / "site") as base:
        print(f"serving the demo blogs on {base}/", file=sys.stderr)
        config = str(write_demo_config(out, base))
        steps = [["fetch"]] + [["build", "--month", m] for m in MONTHS] + [["site"]]
        for step in steps:
            print(f"$ mash --config {config} {' '.join(step)}", file=sys.stderr)
            status = mash(["--config", config, *step])
            if status != 0:
                print(f"demo failed at `mash {' '.join(step)}` (exit {status})", file=sys.stderr)
                return status
    latest = out / MONTHS[-1]
    print("\nThe demo issue is ready:")
    for name in ("email.html", "email.txt", "issue.eml", "issue.json", "index.html"):
        print(f"  {(latest / name).relative_to(ROOT)}")
    print(f"  {(out / 'site' / 'index.html').relative_to(ROOT)}  (the static site)")
    print(f"Open {(latest / 'email.html').relative_to(ROOT)} in a browser to read it.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
