"""The one local HTTP server (mash.web._wsgi): errors to statuses, loopback, stop."""

from __future__ import annotations

import http.client
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from mash.errors import StoreError
from mash.web._wsgi import Server, StartResponse, cross_origin_refusal, serve


def _app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/busy":
        raise StoreError("database is locked", "/data/mash.db")
    if environ["PATH_INFO"] == "/bug":
        raise ValueError("a bug")
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


@pytest.fixture
def server() -> Iterator[Server]:
    started: queue.Queue[Server] = queue.Queue()
    thread = threading.Thread(target=serve, args=(_app,), kwargs={"port": 0, "ready": started.put})
    thread.start()
    running = started.get(timeout=30)
    yield running
    running.stop()
    thread.join(timeout=30)
    assert not thread.is_alive()  # stop() ends run() from another thread


def _get(server: Server, path: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_a_mash_error_is_a_503_naming_nothing_and_the_server_goes_on(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    status, headers, body = _get(server, "/busy")
    assert status == 503 and headers["Retry-After"] == "60"
    assert b"mash.db" not in body  # the client learns nothing of the server's files
    assert "database is locked: '/data/mash.db'" in capsys.readouterr().err  # the editor does
    assert _get(server, "/")[0] == 200


def test_a_bug_is_a_500_without_a_traceback(server: Server) -> None:
    status, _, body = _get(server, "/bug")
    assert status == 500 and b"ValueError" not in body
    assert _get(server, "/")[0] == 200


def test_serve_binds_loopback_by_default(server: Server) -> None:
    assert server.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("headers", "refused"),
    [
        ({"HTTP_SEC_FETCH_SITE": "same-origin"}, False),
        ({"HTTP_SEC_FETCH_SITE": "none"}, False),
        ({"HTTP_SEC_FETCH_SITE": "same-site"}, True),  # another port of 127.0.0.1
        ({"HTTP_SEC_FETCH_SITE": "cross-site", "HTTP_ORIGIN": "http://127.0.0.1:9"}, True),
        ({"HTTP_ORIGIN": "http://127.0.0.1:8030"}, False),
        ({"HTTP_ORIGIN": "http://127.0.0.1:9"}, True),
        ({"HTTP_ORIGIN": "null"}, True),  # a sandboxed frame or a data: page
        ({}, False),  # not a browser page: the token guards it
    ],
)
def test_cross_origin_refusal(headers: dict[str, str], refused: bool) -> None:
    environ = {"HTTP_HOST": "127.0.0.1:8030", **headers}
    assert (cross_origin_refusal(environ) is not None) is refused


def test_stop_after_the_loop_has_ended_is_harmless() -> None:
    """The loop may see the stop flag at its own timeout and close everything before
    stop() wakes it: waking a closed loop must not fail (it did: EBADF at teardown)."""
    started: queue.Queue[Server] = queue.Queue()
    thread = threading.Thread(target=serve, args=(_app,), kwargs={"port": 0, "ready": started.put})
    thread.start()
    running = started.get(timeout=30)
    running.stop()
    thread.join(timeout=30)
    assert not thread.is_alive()  # the loop's finally closed the trigger
    running.stop()
