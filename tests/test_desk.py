"""The editor's desk (`mash desk`, see #17): Playwright driving Debian's headless Chromium
against the desk served on 127.0.0.1 over a fetched demo workspace; then the edition file
and the built issue.json are read back. Plain HTTP for the token and cross-origin checks."""

from __future__ import annotations

import contextlib
import http.client
import json
import queue
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from mash import pipeline
from mash.config import load_config
from mash.edition import parse_edition
from mash.records import Config
from mash.web._wsgi import Server, serve
from mash.web.desk import LIMITS, Desk, make_app
from tests.browser import Browser, chromium_binary
from tests.test_edition import smtp_workspace
from tests.test_send import Collector, smtpd  # noqa: F401 (a fixture)

MONTH = "2026-10"


@dataclass
class Running:
    desk: Desk
    server: Server
    config: Config

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    @property
    def url(self) -> str:
        return f"{self.base}/?token={self.desk.token}"

    @property
    def edition_path(self) -> Path:
        return self.config.editions_dir / f"{MONTH}.md"

    def edition(self) -> Any:
        return parse_edition(self.edition_path.read_text(encoding="utf-8"), MONTH)


@pytest.fixture
def running(workspace: Path) -> Iterator[Running]:
    """The desk of 2026-10 served on a free port of 127.0.0.1 in a thread."""
    with _serving(load_config(workspace)) as started:
        yield started


@contextlib.contextmanager
def _serving(config: Config) -> Iterator[Running]:
    desk = Desk(config, MONTH)
    started: queue.Queue[Server] = queue.Queue()
    thread = threading.Thread(
        target=serve,
        args=(make_app(desk), "127.0.0.1", 0),
        kwargs={"limits": LIMITS, "name": "desk", "ready": started.put},
    )
    thread.start()
    server = started.get(timeout=60)
    try:
        yield Running(desk, server, config)
    finally:
        server.stop()
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Playwright's Chromium: Debian's binary, never a downloaded one; skips without either."""
    binary = chromium_binary()
    if binary is None:
        pytest.skip("no chromium binary on PATH (Debian: apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (dev)")
    flags = [f for f in Browser.FLAGS if not f.startswith(("--headless", "--remote-debugging"))]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=binary, args=flags, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def _wait(page: Any, expression: str) -> None:
    """Wait until expression is true in the page, polling over DevTools (the desk's CSP
    forbids the eval that wait_for_function uses, as it should)."""
    for _ in range(600):  # a guard against a hang, not a timed assertion
        if page.evaluate(expression):
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"never true: {expression}")


def _saved(page: Any, count: int) -> None:
    """Wait until desk.js has finished ``count`` saves since the page loaded."""
    _wait(page, f"Number(document.body.dataset.saved || 0) >= {count}")


def _pinnable(page: Any) -> Any:
    """The candidates that are out, and could be pinned (not pinned, not dropped)."""
    return page.locator("tr.out:not(:has(button[value=undrop]))", has=page.locator("[value=pin]"))


def _click(target: Any) -> None:
    """Click target once it is scrolled into view (Playwright's own scroll left the click
    on a preview frame of this tall page)."""
    target.scroll_into_view_if_needed()
    target.click()


def _drag(page: Any, item: Any, onto: Any) -> None:
    """Drag item by its handle to onto's place with the mouse, as an editor does (in a
    window tall enough to show both)."""
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": 3000})
    page.evaluate("document.getElementById('roundup').scrollIntoView()")
    start = item.locator(".handle").bounding_box()
    end = onto.bounding_box()
    page.mouse.move(start["x"] + 4, start["y"] + 4)
    page.mouse.down()
    page.mouse.move(start["x"] + 4, start["y"] - 10, steps=3)
    page.mouse.move(end["x"] + 10, end["y"] + 2, steps=12)
    # SortableJS moves the others with an animation; on a loaded machine the last move
    # can land before it settles. Let it settle, then point at the top edge once more.
    page.wait_for_timeout(400)
    page.mouse.move(end["x"] + 12, end["y"] + 1, steps=2)
    page.wait_for_timeout(100)
    page.mouse.up()
    page.set_viewport_size(size)


def _built(config: Config) -> dict[str, Any]:
    # in a thread of its own: Playwright's sync API keeps an event loop in this one
    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(pipeline.build_month, config, MONTH).result()
    data: dict[str, Any] = json.loads((result.folder / "issue.json").read_text("utf-8"))
    return data


def _picks(page: Any) -> list[str]:
    urls: list[str] = page.eval_on_selector_all("#roundup li", "els => els.map(e => e.dataset.url)")
    return urls


# --- in the browser ---------------------------------------------------------------------


def test_curating_in_the_browser_writes_the_file_and_the_issue(
    running: Running, chromium: Any, screenshots: Path
) -> None:
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(running.url, wait_until="networkidle")
    assert page.url == f"{running.base}/"  # the token went into a cookie, out of the URL
    before = _picks(page)

    # pin a post that is out
    row = _pinnable(page).first
    pinned = row.get_attribute("data-url")
    _click(row.locator("button[value=pin]"))
    assert errors == []
    _saved(page, 1)
    assert pinned in _picks(page) and pinned in running.edition().pins

    # drag the last pick to the top
    last = _picks(page)[-1]
    _drag(page, page.locator("#roundup li").last, page.locator("#roundup li").first)
    _saved(page, 2)
    assert _picks(page)[0] == last and running.edition().order[0] == last
    assert pinned in running.edition().pins

    # drop a pick the editor had not touched
    dropped = next(u for u in _picks(page) if u not in (pinned, last))
    _click(page.locator(f'#roundup li[data-url="{dropped}"] button[value=drop]'))
    _saved(page, 3)
    assert dropped not in _picks(page)
    assert pinned in running.edition().pins, (pinned, dropped)

    # take a suggested sentence as the first pick's blurb
    first = page.locator("#roundup li").first
    _click(first.locator("summary"))
    sentence = first.locator(".suggestion q").first.inner_text()
    _click(first.locator(".suggestion button").first)
    _saved(page, 4)

    # a sentence of essay, saved as it is typed
    essay = page.locator("#essay")
    _click(essay)
    essay.press("End")
    essay.press("Control+End")
    essay.type("\n\nThe desk wrote this sentence.")
    _saved(page, 5)
    _wait(page, "document.getElementById('essay-state').textContent === 'saved'")
    assert "The desk wrote this sentence." in page.locator("#essay-preview").inner_text()

    edition = running.edition()
    assert pinned in edition.pins
    assert edition.order[0] == last
    assert dropped in edition.drops and dropped not in edition.order
    assert dict(edition.blurbs)[last] == " ".join(sentence.split())
    assert edition.editorial_md.endswith("The desk wrote this sentence.")
    issue = _built(running.config)
    picks = [p["url"] for p in issue["picks"]]
    assert picks[0] == last and pinned in picks and dropped not in picks
    assert issue["picks"][0]["blurb"] == " ".join(sentence.split())
    assert "The desk wrote this sentence." in issue["editorial_html"]
    assert set(before) - {dropped} <= set(picks) | {pinned}
    assert errors == []

    # the previews are sandboxed frames of the rendered issue, reloaded after each change
    frames = page.locator(".previews iframe")
    assert frames.count() == 5
    assert all(frames.nth(i).get_attribute("sandbox") == "" for i in range(5))
    email = page.frame_locator(".previews iframe").first
    assert "The desk wrote this sentence." in email.locator("body").inner_text()
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(screenshots / "desk-1280.png"), full_page=False)
    narrow = chromium.new_page(viewport={"width": 375, "height": 800}, is_mobile=True)
    narrow.goto(running.url)
    overflow = narrow.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    narrow.screenshot(path=str(screenshots / "desk-375.png"), full_page=False)
    assert overflow <= 0


def test_a_file_edited_on_disk_meanwhile_loses_nothing(running: Running, chromium: Any) -> None:
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    page.goto(running.url, wait_until="networkidle")
    path = running.edition_path

    # the editor's text editor adds a comment, a pin and a paragraph while the page is open
    outside = running.edition().pins
    other = _pinnable(page).nth(1)
    their_pin = other.get_attribute("data-url")
    text = path.read_text(encoding="utf-8").replace("---\n", "---\n# kept by hand\n", 1)
    pins = json.dumps([*outside, their_pin])
    text = re.sub(r"^pins:.*\n(  - .*\n)*", lambda _: f"pins: {pins}\n", text, count=1, flags=re.M)
    text += "\nA paragraph written in the text editor.\n"
    path.write_text(text, encoding="utf-8")

    # a drop from the stale page is made to the newer text, and the page says so
    dropped = _picks(page)[0]
    _click(page.locator("#roundup li").first.locator("button[value=drop]"))
    page.wait_for_selector("#note")
    assert "had changed on disk" in page.locator("#note").inner_text()
    after = path.read_text(encoding="utf-8")
    assert "# kept by hand" in after and "A paragraph written in the text editor." in after
    edition = running.edition()
    assert dropped in edition.drops and their_pin in edition.pins
    assert not set(outside) - set(edition.pins) - {dropped}

    # the essay changes on disk again; the essay typed in the now stale page is refused
    path.write_text(after + "\nAnd one more from git pull.\n", encoding="utf-8")
    essay = page.locator("#essay")
    _click(essay)
    essay.press("Control+End")
    essay.type(" Typed in the desk.")
    page.wait_for_selector("#note >> text=did not save your change")
    final = path.read_text(encoding="utf-8")
    assert "And one more from git pull." in final and "Typed in the desk." not in final
    assert "Typed in the desk." in page.locator("#note").inner_text()  # the editor's copy
    assert "And one more from git pull." in page.locator("#essay").input_value()


def test_pin_drop_and_reorder_work_with_javascript_off(running: Running, chromium: Any) -> None:
    context = chromium.new_context(
        java_script_enabled=False, viewport={"width": 1280, "height": 900}
    )
    page = context.new_page()
    page.goto(running.url, wait_until="networkidle")
    row = _pinnable(page).first
    pinned = row.get_attribute("data-url")
    _click(row.locator("button[value=pin]"))
    page.wait_for_load_state()
    assert pinned in _picks(page)

    second = _picks(page)[1]
    _click(page.locator("#roundup li").nth(1).locator("button[value=up]"))
    page.wait_for_load_state()
    assert _picks(page)[0] == second

    dropped = _picks(page)[-1]
    _click(page.locator("#roundup li").last.locator("button[value=drop]"))
    page.wait_for_load_state()
    assert dropped not in _picks(page)

    edition = running.edition()
    assert pinned in edition.pins and dropped in edition.drops
    assert edition.order[0] == second
    context.close()


# --- over plain HTTP --------------------------------------------------------------------


def _request(
    running: Running, method: str, path: str, body: dict[str, str] | None = None, **headers: str
) -> tuple[int, str, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", running.server.port, timeout=60)
    try:
        sent = {k.replace("_", "-"): v for k, v in headers.items()}
        if body is not None:
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=urlencode(body) if body else None, headers=sent)
        response = conn.getresponse()
        return response.status, response.read().decode(), dict(response.getheaders())
    finally:
        conn.close()


def _form(running: Running, **fields: str) -> dict[str, str]:
    version = pipeline.read_edition_file(running.config, MONTH).version
    return {"token": running.desk.token, "version": version, **fields}


def test_every_request_needs_the_token_and_a_post_the_same_origin(running: Running) -> None:
    cookie = f"mash_desk={running.desk.token}"
    assert _request(running, "GET", "/")[0] == 403
    assert _request(running, "GET", "/preview/email")[0] == 403
    status, _, headers = _request(running, "GET", f"/?token={running.desk.token}")
    assert (
        status == 303
        and "HttpOnly" in headers["Set-Cookie"]
        and "SameSite=Strict" in headers["Set-Cookie"]
    )
    status, page, headers = _request(running, "GET", "/", Cookie=cookie)
    assert status == 200 and "script-src 'self'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]

    url = running.desk.view().rendered.issue.picks[0].url
    before = running.edition_path.read_bytes()
    no_token = {**_form(running, action="drop", url=url), "token": "wrong"}
    assert _request(running, "POST", "/change", no_token, Cookie=cookie)[0] == 403
    form = _form(running, action="drop", url=url)
    cross = _request(running, "POST", "/change", form, Cookie=cookie, Sec_Fetch_Site="cross-site")
    assert cross[0] == 403
    foreign = _request(running, "POST", "/change", form, Cookie=cookie, Origin="http://evil.test")
    assert foreign[0] == 403
    assert running.edition_path.read_bytes() == before  # nothing written
    status, _, headers = _request(
        running, "POST", "/change", form, Cookie=cookie, Sec_Fetch_Site="same-origin"
    )
    assert status == 303 and url in running.edition().drops


def test_feed_text_is_escaped_and_previews_are_locked_down(running: Running) -> None:
    cookie = f"mash_desk={running.desk.token}"
    candidate = running.desk.view().ranking.candidates[0]
    hostile = '<img src=x onerror="alert(1)">'
    running.edition_path.write_text(
        running.edition_path.read_text("utf-8").replace("---\n", f"---\n# {hostile}\n", 1),
        encoding="utf-8",
    )
    form = _form(running, action="theme", text=hostile)
    assert _request(running, "POST", "/change", form, Cookie=cookie)[0] == 303
    _, page, _ = _request(running, "GET", "/", Cookie=cookie)
    assert hostile not in page and "&lt;img src=x" in page
    assert candidate.post.title.replace("'", "&#39;") in page or candidate.post.title in page
    status, body, headers = _request(running, "GET", "/preview/email?mode=dark", Cookie=cookie)
    assert status == 200 and "@media all" in body
    assert "script-src" not in headers["Content-Security-Policy"]  # default-src 'none'
    assert "img-src 'self' data:" in headers["Content-Security-Policy"]
    assert "<script" not in body.lower()


def test_the_desk_makes_the_draft_when_there_is_none(workspace: Path) -> None:
    config = load_config(workspace)
    path = config.editions_dir / f"{MONTH}.md"
    path.unlink()
    view = Desk(config, MONTH).view()
    assert path.exists() and view.file.text == path.read_text("utf-8")
    assert "shortlist:" in view.file.text and view.rendered.issue.draft


def test_the_pre_send_checks_show_beside_the_preview(running: Running) -> None:
    cookie = f"mash_desk={running.desk.token}"
    _, page, _ = _request(running, "GET", "/", Cookie=cookie)
    assert "Pre-send checks" in page and "links not checked yet" in page
    assert "of Gmail's 102 KB" in page and 'action="/check"' in page
    # a blurb that repeats its title is a problem the checks name, shown on the next page
    pick = running.desk.view().rendered.issue.picks[0]
    form = _form(running, action="blurb", url=pick.url, text=pick.title)
    assert _request(running, "POST", "/change", form, Cookie=cookie)[0] == 303
    before = page.count("<strong>blurb-title</strong>")
    _, page, _ = _request(running, "GET", "/", Cookie=cookie)
    assert page.count("<strong>blurb-title</strong>") == before + 1
    assert pick.url in page.split('id="checks-box"')[1].split("</ul>")[0]


def test_send_proof_builds_the_issue_and_mails_one_copy(
    workspace: Path,
    smtpd: tuple[Collector, int],  # noqa: F811 (the fixture)
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    collector, port = smtpd
    smtp_workspace(workspace, port, monkeypatch)
    with _serving(load_config(workspace)) as running:
        cookie = f"mash_desk={running.desk.token}"
        form = _form(running, address="editor@example.org")
        status, _, headers = _request(running, "POST", "/proof", form, Cookie=cookie)
        assert status == 303
        _, page, _ = _request(running, "GET", headers["Location"], Cookie=cookie)
        note = re.search(r'<p class="note"[^>]*>(.*?)</p>', page, re.S)
        assert note, page[:3000]
        assert "editor@example.org" in note.group(1), note.group(1)
        assert collector.recipients() == ["editor@example.org"]
        assert b"[PROOF]" in collector.received[0][1]
        assert (running.config.output_dir / MONTH / "issue.json").exists()
        bad = _form(running, address="not an address")
        _, _, headers = _request(running, "POST", "/proof", bad, Cookie=cookie)
        _, page, _ = _request(running, "GET", headers["Location"], Cookie=cookie)
        assert "No proof sent" in page and collector.recipients() == ["editor@example.org"]
