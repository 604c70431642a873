"""The ``web`` provider through the ``measure`` activity, against a real HTTP(S) server on
127.0.0.1: JSON bodies and JSONPath, headers and bodies sent, secrets filled in on the
worker and kept out of what comes back, timeouts, 5xx, invalid JSON, no match."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.testing import ActivityEnvironment

from activities.metrics.activities import MeasureInput, MeasureOutput, measure
from activities.metrics.web import WebProviderSpec
from activities.notify.local_http import TlsCert


@dataclass
class Answer:
    status: int = 200
    body: bytes = b'{"data": {"ok": true, "successPercent": 0.95, "latency": 12}}'
    delay: float = 0.0


@dataclass
class WebServer:
    """Answers every request with ``answer``; records method, path, headers and body."""

    url: str = ""
    answer: Answer = field(default_factory=Answer)
    seen: list[dict[str, Any]] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)


def serve(tls: ssl.SSLContext | None = None) -> Iterator[WebServer]:
    web = WebServer()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else None
            headers = {k.lower(): v for k, v in self.headers.items()}
            web.seen.append(
                {"method": self.command, "path": self.path, "headers": headers, "body": body}
            )
            if web.answer.delay:
                web.released.wait(web.answer.delay)
            self.send_response(web.answer.status)
            self.send_header("Content-Length", str(len(web.answer.body)))
            self.end_headers()
            self.wfile.write(web.answer.body)

        do_GET = do_POST = do_PUT = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    scheme = "https" if tls else "http"
    web.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield web
    web.released.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def web() -> Iterator[WebServer]:
    yield from serve()


def run(web_spec: dict[str, Any], secrets: dict[str, Any] | None = None) -> MeasureOutput:
    request = MeasureInput.model_validate(
        {
            "metric": "webmetric",
            "key": "rollout-checkout-production/step-2/webmetric/1",
            "provider": {"web": web_spec},
            "secrets": secrets or {},
        }
    )
    output: MeasureOutput = ActivityEnvironment().run(measure, request)
    return output


def test_json_path_picks_the_value_from_the_answer(web: WebServer):
    assert run({"url": f"{web.url}/m", "jsonPath": "{$.data.ok}"}).result is True
    output = run({"url": f"{web.url}/m", "jsonPath": "{$.data}"})
    assert output.result == {"ok": True, "successPercent": 0.95, "latency": 12}
    output = run({"url": f"{web.url}/m", "jsonPath": "$.data.latency"})
    assert (output.result, output.values) == (12, [12.0])  # a number is also a value
    whole = run({"url": f"{web.url}/m"})
    assert whole.result == {"data": {"ok": True, "successPercent": 0.95, "latency": 12}}


def test_plain_text_answer_is_the_result_without_a_json_path(web: WebServer):
    web.answer = Answer(body=b"I am OK")
    assert run({"url": f"{web.url}/health"}).result == "I am OK"
    web.answer = Answer(body=b"")
    assert run({"url": f"{web.url}/health"}).result == ""


def test_method_headers_and_json_body_are_sent(web: WebServer):
    spec = {
        "url": f"{web.url}/api/v1/measurement?service=checkout",
        "method": "POST",
        "headers": [{"key": "X-Scope-OrgID", "value": "tenant_a"}],
        "jsonBody": {"key1": "value_1", "key2": {"nestedObj": "nested value"}},
        "jsonPath": "{$.data.ok}",
    }
    assert run(spec).error is None
    [seen] = web.seen
    assert (seen["method"], seen["path"]) == ("POST", "/api/v1/measurement?service=checkout")
    assert seen["headers"]["x-scope-orgid"] == "tenant_a"
    assert seen["headers"]["content-type"] == "application/json"
    assert json.loads(seen["body"]) == spec["jsonBody"]
    run({"url": web.url, "method": "PUT", "body": "string value"})
    assert (web.seen[1]["method"], web.seen[1]["body"]) == ("PUT", "string value")


def test_secret_args_are_filled_in_on_the_worker_and_never_returned(web, monkeypatch):
    monkeypatch.setenv("DEPLOYFLOW_SECRET_TOKEN_SECRET_APITOKEN", "s3cr3t-token")
    spec = {
        "url": f"{web.url}/m?token={{{{args.api-token}}}}",
        "headers": [{"key": "Authorization", "value": "Bearer {{ args.api-token }}"}],
    }
    secrets = {"api-token": {"name": "token-secret", "key": "apiToken"}}
    web.answer = Answer(body=b'{"echo": "s3cr3t-token"}')
    output = run(spec, secrets)
    assert web.seen[0]["headers"]["authorization"] == "Bearer s3cr3t-token"
    assert web.seen[0]["path"] == "/m?token=s3cr3t-token"
    assert output.result == {"echo": "***"}
    web.answer = Answer(status=503, body=b"down")
    failed = run(spec, secrets)
    assert failed.error is not None
    assert "s3cr3t" not in failed.error
    assert "token=***" in failed.error


def test_a_secret_the_worker_lacks_is_an_error_measurement_saying_where_it_looked(
    web, tmp_path, monkeypatch
):
    monkeypatch.setenv("DEPLOYFLOW_SECRETS_DIR", str(tmp_path))
    spec = {"url": web.url, "headers": [{"key": "Authorization", "value": "{{args.t}}"}]}
    output = run(spec, {"t": {"name": "token-secret", "key": "apiToken"}})
    assert output.error == (
        "secret token-secret/apiToken is not on this worker: set "
        f"DEPLOYFLOW_SECRET_TOKEN_SECRET_APITOKEN or write {tmp_path}/token-secret/apiToken"
    )
    assert web.seen == []
    (tmp_path / "token-secret").mkdir()
    (tmp_path / "token-secret" / "apiToken").write_text("from-a-file\n")
    assert run(spec, {"t": {"name": "token-secret", "key": "apiToken"}}).error is None
    assert web.seen[0]["headers"]["authorization"] == "from-a-file"


@pytest.mark.parametrize(
    ("answer", "spec", "error"),
    [
        (Answer(status=500, body=b"boom"), {}, "answered HTTP 500: boom"),
        (Answer(status=404, body=b""), {}, "answered HTTP 404: Not Found"),
        (
            Answer(body=b"<html>login</html>"),
            {"jsonPath": "{$.data.ok}"},
            "is not JSON, so jsonPath",
        ),
        (Answer(), {"jsonPath": "{$.data.missing}"}, "jsonPath {$.data.missing} matched nothing"),
        (Answer(), {"jsonPath": "$.items[*].v"}, "matched nothing"),
    ],
    ids=["5xx", "4xx", "invalid-json", "no-match", "no-match-list"],
)
def test_unusable_answers_are_error_measurements(web: WebServer, answer, spec, error):
    web.answer = answer
    output = run({"url": f"{web.url}/m", **spec})
    assert output.error is not None
    assert error in output.error
    assert output.result is None


def test_a_slow_server_hits_timeout_seconds_once(web: WebServer):
    web.answer = Answer(delay=5)
    output = run({"url": f"{web.url}/slow", "timeoutSeconds": 1})
    assert output.error == f"{web.url}/slow did not answer within 1s"
    assert len(web.seen) == 1  # no retries by the HTTP client


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_insecure_skips_certificate_verification(tmp_path: Path):
    cert = TlsCert.generate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert.cert_file, cert.key_file)
    for web in serve(context):
        refused = run({"url": web.url})
        assert refused.error is not None
        assert "CERTIFICATE_VERIFY_FAILED" in refused.error
        assert run({"url": web.url, "insecure": True}).error is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"url": "ftp://x"}, "must be an http(s) URL"),
        ({"url": "http://x", "body": "a"}, "body and jsonBody need method POST or PUT"),
        (
            {"url": "http://x", "method": "POST", "body": "a", "jsonBody": {}},
            "set body or jsonBody, not both",
        ),
        ({"url": "http://x", "jsonPath": "{$.[[}"}, "not a JSONPath"),
        ({"url": "http://x", "method": "DELETE"}, "Input should be 'GET', 'POST' or 'PUT'"),
    ],
)
def test_bad_web_specs_are_refused(spec, message):
    with pytest.raises(ValidationError) as refused:
        WebProviderSpec.model_validate(spec)
    assert message in str(refused.value)
