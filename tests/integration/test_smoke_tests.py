"""The run_smoke_tests activity against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from structlog.testing import capture_logs
from temporalio.testing import ActivityEnvironment

from activities.health.activities import SmokeReport, SmokeTestInput, run_smoke_tests
from activities.health.smoke import SmokeResult
from tests.fixtures.parts import free_port

pytestmark = pytest.mark.integration

TOKEN = "Bearer s3cret-token"

# path -> (status, body) for GET; POST /orders answers 201.
ROUTES = {
    "/": (200, b"welcome"),
    "/checkout": (200, b"checkout ok"),
    "/broken": (500, b"internal error"),
    "/api/checkout": (200, b"api ok"),
}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/private":
            status, body = (200, b"ok") if self.headers["Authorization"] == TOKEN else (401, b"")
        else:
            status, body = ROUTES.get(path, (404, b"not found"))
        self.answer(status, body)

    def do_POST(self) -> None:
        self.answer(201 if self.path == "/orders" else 405, b"created")

    def answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def run(base_url: str, *tests: dict) -> SmokeReport:
    input = SmokeTestInput.model_validate({"tests": tests, "baseUrl": base_url, "key": "wf/smoke"})
    return ActivityEnvironment().run(run_smoke_tests, input)


def test_all_smoke_tests_pass(base_url):
    report = run(
        base_url,
        {"name": "home"},
        {"name": "checkout", "path": "/checkout", "bodyContains": "ok"},
        {"name": "order", "path": "/orders", "method": "POST", "expectedStatus": 201},
    )
    assert report == SmokeReport(
        passed=True,
        results=[
            SmokeResult(name="home", passed=True, status=200, message="GET /: HTTP 200"),
            SmokeResult(
                name="checkout", passed=True, status=200, message="GET /checkout: HTTP 200"
            ),
            SmokeResult(name="order", passed=True, status=201, message="POST /orders: HTTP 201"),
        ],
    )


def test_a_wrong_status_fails_the_report_and_the_others_still_run(base_url):
    report = run(base_url, {"name": "broken", "path": "/broken"}, {"name": "home"})
    assert not report.passed
    assert [r.passed for r in report.results] == [False, True]
    assert report.results[0] == SmokeResult(
        name="broken", passed=False, status=500, message="GET /broken: HTTP 500 (expected 200)"
    )


def test_a_body_without_the_expected_text_fails(base_url):
    report = run(base_url, {"name": "home", "bodyContains": "ok"})
    assert report.results == [
        SmokeResult(
            name="home", passed=False, status=200, message="GET /: body does not contain 'ok'"
        )
    ]


def test_an_unreachable_service_fails_without_a_status():
    report = run(f"http://127.0.0.1:{free_port()}", {"name": "home", "timeoutSeconds": 1})
    assert report.results == [
        SmokeResult(name="home", passed=False, status=None, message="GET /: connection refused")
    ]


def test_the_base_urls_path_prefixes_every_test(base_url):
    report = run(
        f"{base_url}/api/", {"name": "checkout", "path": "/checkout", "bodyContains": "api"}
    )
    assert report.results[0].message == "GET /api/checkout: HTTP 200"
    assert report.passed


def test_headers_are_sent_but_never_logged_or_reported(base_url):
    private = {
        "name": "private",
        "path": "/private?session=abc",
        "headers": {"Authorization": TOKEN},
    }
    with capture_logs() as logs:
        report = run(base_url, private, {**private, "name": "anonymous", "headers": {}})
    assert [r.status for r in report.results] == [200, 401]
    assert report.results[1].message == "GET /private?…: HTTP 401 (expected 200)"
    assert "s3cret" not in repr(logs)
    assert "session=abc" not in repr(logs)
    assert "s3cret" not in report.model_dump_json()
    assert [e["event"] for e in logs] == ["smoke_test", "smoke_test", "run_smoke_tests"]
    assert logs[-1]["failed"] == ["anonymous"]


def test_no_smoke_tests_pass_vacuously(base_url):
    assert run(base_url) == SmokeReport(passed=True, results=[])
