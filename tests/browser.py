"""Headless Chromium for the browser tests, driven over the DevTools protocol with websockets.

No browser download: this runs the chromium on PATH (Debian: `make browser`); the `browser`
fixture in conftest.py skips where there is none.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any


def chromium_binary() -> str | None:
    """Return the path of the first Chromium on PATH, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


class Browser:
    """One headless Chromium; each `Page` is a tab of it with its own DevTools session."""

    FLAGS = (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--hide-scrollbars",
        "--remote-debugging-port=0",
    )

    def __init__(self, binary: str, profile: Path) -> None:
        from websockets.sync.client import connect

        args = [binary, *self.FLAGS, f"--user-data-dir={profile}", "about:blank"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port, path = self._devtools_address(profile / "DevToolsActivePort")
        self.stack = contextlib.ExitStack()
        address = f"ws://127.0.0.1:{port}{path}"
        self.socket = self.stack.enter_context(connect(address, max_size=None, open_timeout=30))
        self.events: list[dict[str, Any]] = []
        self.last_id = 0

    def _devtools_address(self, port_file: Path) -> tuple[str, str]:
        for _ in range(600):  # a start-up guard, not a timed assertion
            if self.process.poll() is not None:
                raise RuntimeError(f"chromium exited with status {self.process.returncode}")
            lines = port_file.read_text().split() if port_file.exists() else []
            if len(lines) == 2:
                return lines[0], lines[1]
            threading.Event().wait(0.1)
        raise RuntimeError("chromium did not open its DevTools port")

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Send one DevTools command and return its result; events read meanwhile are kept."""
        self.last_id += 1
        message: dict[str, Any] = {"id": self.last_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        self.socket.send(json.dumps(message))
        while True:
            reply = json.loads(self.socket.recv(timeout=60))
            if reply.get("id") != self.last_id:
                self.events.append(reply)
                continue
            if "error" in reply:
                raise RuntimeError(f"{method}: {reply['error']}")
            result: dict[str, Any] = reply["result"]
            return result

    def wait_for(self, method: str, session: str) -> dict[str, Any]:
        while True:
            for event in self.events:
                if event.get("method") == method and event.get("sessionId") == session:
                    self.events.remove(event)
                    return event
            self.events.append(json.loads(self.socket.recv(timeout=60)))

    def evaluate(self, session: str, expression: str) -> Any:
        result = self.call("Runtime.evaluate", session, expression=expression, returnByValue=True)
        return result["result"]["value"]

    def errors(self, session: str) -> list[str]:
        """Return the console errors, uncaught exceptions and failed loads of a session."""
        found = []
        for event in self.events:
            if event.get("sessionId") != session:
                continue
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(f"console: {params.get('args')}")
            elif method == "Runtime.exceptionThrown":
                found.append(f"exception: {params.get('exceptionDetails')}")
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                found.append(f"log: {params['entry'].get('text')} {params['entry'].get('url')}")
        return found

    def close(self) -> None:
        self.stack.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Page:
    """A URL loaded in a new tab `width` CSS pixels wide (mobile below 600), 900 high."""

    def __init__(self, browser: Browser, url: str, width: int) -> None:
        self.browser = browser
        self.target = browser.call("Target.createTarget", url="about:blank")["targetId"]
        attached = browser.call("Target.attachToTarget", targetId=self.target, flatten=True)
        self.session: str = attached["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            browser.call(f"{domain}.enable", self.session)
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            self.session,
            width=width,
            height=900,
            deviceScaleFactor=1,
            mobile=width < 600,
        )
        browser.events = [e for e in browser.events if e.get("sessionId") != self.session]
        browser.call("Page.navigate", self.session, url=url)
        for _ in range(5):  # a late load event of about:blank must not count as ours
            browser.wait_for("Page.loadEventFired", self.session)
            if self.evaluate("location.href + ' ' + document.readyState") == f"{url} complete":
                break
        self.width = width

    def evaluate(self, expression: str) -> Any:
        return self.browser.evaluate(self.session, expression)

    def press_tab(self) -> None:
        for kind in ("keyDown", "keyUp"):
            self.browser.call(
                "Input.dispatchKeyEvent",
                self.session,
                type=kind,
                key="Tab",
                code="Tab",
                windowsVirtualKeyCode=9,
            )

    def screenshot(self, path: Path, max_height: int | None = None) -> None:
        """Save the page as a PNG, the whole page or its top `max_height` pixels.

        Written to a temporary file and renamed, as the target may be a tracked docs/ file.
        """
        height = int(self.evaluate("document.documentElement.scrollHeight"))
        if max_height is not None:
            height = min(height, max_height)
        clip = {"x": 0, "y": 0, "width": self.width, "height": height, "scale": 1}
        shot = self.browser.call(
            "Page.captureScreenshot",
            self.session,
            format="png",
            captureBeyondViewport=True,
            clip=clip,
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        partial.write_bytes(base64.b64decode(shot["data"]))
        partial.replace(path)

    def close(self) -> None:
        self.browser.call("Target.closeTarget", targetId=self.target)
