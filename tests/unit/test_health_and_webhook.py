"""The health check and the webhook against a local HTTP server."""

import http.server
import threading

import pytest

from operations.live import Health
from operations.states.health import check, check_once
from operations.states.notify import post


class _Server(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        status = 500 if "bad" in self.path else 200
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"all ok")

    def do_POST(self):  # noqa: N802
        self.send_response(500)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Server)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_health_check_status_body_and_retries(server):
    health = Health(url="", status=200, contains="ok", retries=2, delay=0.5, timeout=2)
    assert check_once(health, f"{server}/good") is None
    nope = Health(url="", status=200, contains="nope", retries=3, delay=1, timeout=5)
    assert check_once(nope, f"{server}/good").endswith("does not contain 'nope'")
    sleeps = []
    problem = check(health, f"{server}/bad", sleep=sleeps.append)
    assert problem == f"GET {server}/bad: status 500, expected 200 (3 attempts)"
    assert sleeps == [0.5, 0.5]
    assert "refused" in check_once(health, "http://127.0.0.1:9/").lower()


def test_webhook_failure_is_a_message_not_an_exception(server):
    assert "500" in post(f"{server}/hook", {"a": 1})
    assert post("http://127.0.0.1:9/hook", {"a": 1}, timeout=1)
