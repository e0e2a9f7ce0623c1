"""Unsubscribe tokens and the endpoint, served by wsgiref on 127.0.0.1 (mash.unsubscribe)."""

from __future__ import annotations

import http.client
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlencode
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mash.errors import ConfigError
from mash.ledger import Ledger
from mash.unsubscribe import make_app, make_token, serve, unsubscribe_link, verify_token

SECRET = "s3cret-for-tests"
LIST_ID = "Monthly Mash <monthly-mash.example.org>"


def test_token_round_trip() -> None:
    token = make_token("Ann@Example.com", LIST_ID, SECRET)
    assert verify_token(token, LIST_ID, SECRET) == "ann@example.com"


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t[:-2] + ("AA" if t[-2:] != "AA" else "BB"),  # signature altered
        lambda t: (
            make_token("bob@example.com", LIST_ID, SECRET).split(".")[0] + "." + t.split(".")[1]
        ),  # address swapped
        lambda t: t.split(".")[0],  # no signature
        lambda t: "!!!." + t.split(".")[1],  # not base64
        lambda t: "",
    ],
)
def test_tampered_tokens_are_refused(change: object) -> None:
    token = make_token("ann@example.com", LIST_ID, SECRET)
    assert callable(change)
    assert verify_token(change(token), LIST_ID, SECRET) is None


def test_token_is_bound_to_list_and_secret() -> None:
    token = make_token("ann@example.com", LIST_ID, SECRET)
    assert verify_token(token, "Other <other.example.org>", SECRET) is None
    assert verify_token(token, LIST_ID, "another-secret") is None


@given(st.emails())
def test_every_address_round_trips(address: str) -> None:
    token = make_token(address, LIST_ID, SECRET)
    assert verify_token(token, LIST_ID, SECRET) == address.strip().lower()
    assert all(c.isalnum() or c in "-_." for c in token)


def test_unsubscribe_link_keeps_an_existing_query() -> None:
    assert unsubscribe_link("https://e.org/u", "a.b") == "https://e.org/u?token=a.b"
    assert unsubscribe_link("https://e.org/u?l=1", "a.b") == "https://e.org/u?l=1&token=a.b"
    assert unsubscribe_link("", "a.b") == ""


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    db = tmp_path / "mash.db"
    app = make_app(db, SECRET, list_id=LIST_ID, name="Monthly Mash")
    httpd: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_port, db
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def request(
    port: int, method: str, path: str, body: str | None = None
) -> tuple[int, str, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode(), dict(response.getheaders())
    finally:
        conn.close()


def opted_out(db: Path) -> frozenset[str]:
    with Ledger(db) as ledger:
        return ledger.opted_out()


def path_for(address: str) -> str:
    return "/unsubscribe?token=" + quote(make_token(address, LIST_ID, SECRET), safe="")


def test_one_click_post_unsubscribes(server: tuple[int, Path]) -> None:
    port, db = server
    status, body, headers = request(
        port, "POST", path_for("ann@example.com"), "List-Unsubscribe=One-Click"
    )
    assert status == 200
    assert "ann@example.com is unsubscribed" in body
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert opted_out(db) == {"ann@example.com"}
    with Ledger(db) as ledger:
        row = ledger.db.execute("SELECT source, list_id FROM opt_outs").fetchone()
    assert row == ("one-click", LIST_ID)
    assert (
        request(port, "POST", path_for("ann@example.com"), "List-Unsubscribe=One-Click")[0] == 200
    )


def test_get_shows_a_confirmation_form_and_does_not_unsubscribe(
    server: tuple[int, Path],
) -> None:
    port, db = server
    status, body, headers = request(port, "GET", path_for("ann@example.com"))
    assert status == 200
    assert '<form method="post"' in body and "ann@example.com" in body
    assert headers["Cache-Control"] == "no-store"
    assert opted_out(db) == frozenset()
    token = make_token("ann@example.com", LIST_ID, SECRET)
    status, body, _ = request(port, "POST", "/unsubscribe", urlencode({"token": token}))
    assert status == 200 and opted_out(db) == {"ann@example.com"}
    with Ledger(db) as ledger:
        assert ledger.db.execute("SELECT source FROM opt_outs").fetchone() == ("confirm-page",)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_bad_token_is_refused(server: tuple[int, Path], method: str) -> None:
    port, db = server
    forged = make_token("ann@example.com", LIST_ID, "wrong-secret")
    body = "List-Unsubscribe=One-Click" if method == "POST" else None
    status, text, _ = request(port, method, "/u?token=" + quote(forged, safe=""), body)
    assert status == 403 and "not valid" in text
    assert request(port, method, "/u", body)[0] == 400
    assert opted_out(db) == frozenset()


def test_other_methods_are_refused(server: tuple[int, Path]) -> None:
    port, _db = server
    assert request(port, "DELETE", path_for("ann@example.com"))[0] == 405


def test_page_escapes_the_address(server: tuple[int, Path]) -> None:
    port, _db = server
    token = make_token("<script>@example.com", LIST_ID, SECRET)
    _, body, _ = request(port, "GET", "/u?token=" + quote(token, safe=""))
    assert "<script>@" not in body and "&lt;script&gt;@example.com" in body


def test_app_needs_a_secret(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        make_app(tmp_path / "mash.db", "", list_id=LIST_ID)


def test_serve_listens_on_loopback_and_keeps_tokens_out_of_the_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started: queue.Queue[WSGIServer] = queue.Queue()
    thread = threading.Thread(
        target=serve,
        args=(tmp_path / "mash.db", SECRET),
        kwargs={"list_id": LIST_ID, "port": 0, "ready": started.put},
    )
    thread.start()
    httpd = started.get(timeout=30)
    try:
        assert httpd.server_address[0] == "127.0.0.1"
        status, _, _ = request(
            httpd.server_port, "POST", path_for("ann@example.com"), "List-Unsubscribe=One-Click"
        )
    finally:
        httpd.shutdown()
        thread.join()
    assert status == 200
    assert opted_out(tmp_path / "mash.db") == {"ann@example.com"}
    log = capsys.readouterr().err
    assert '"POST /unsubscribe?… HTTP/1.1" 200' in log
    assert make_token("ann@example.com", LIST_ID, SECRET) not in log
