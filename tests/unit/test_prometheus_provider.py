"""PrometheusProvider and the ``measure`` activity against a canned Prometheus HTTP API."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import ValidationError
from structlog.testing import capture_logs
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import ActivityEnvironment

from activities.metrics.activities import (
    MeasureInput,
    MeasureOutput,
    MetricProviderSpec,
    measure,
    provider_for,
)
from activities.metrics.base import MetricUnavailable
from activities.metrics.prometheus import PrometheusClient, PrometheusProvider
from activities.metrics.prometheus_spec import Connection, PrometheusProviderSpec
from tests.fixtures.parts import free_port

TS = 1_700_000_000.123


def vector(*values: str) -> dict[str, Any]:
    result = [{"metric": {"pod": f"p{i}"}, "value": [TS, v]} for i, v in enumerate(values)]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


SCALAR = {"status": "success", "data": {"resultType": "scalar", "result": [TS, "3"]}}
MATRIX = {
    "status": "success",
    "data": {"resultType": "matrix", "result": [{"metric": {}, "values": [[TS, "1"]]}]},
}
BAD_PROMQL = {
    "status": "error",
    "errorType": "bad_data",
    "error": "invalid parameter \"query\": 1:5: parse error: unexpected right parenthesis ')'",
}


@dataclass
class FakePrometheus:
    """Answers every ``/api/v1/query`` with ``status`` and ``body``; counts the requests."""

    port: int
    status: int = 200
    body: Any = field(default_factory=lambda: vector("0"))
    hold: bool = False  # answer only after ``release`` is set (a slow server)
    release: threading.Event = field(default_factory=threading.Event)
    queries: list[str] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)  # path, params, headers

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, status: int, body: Any) -> None:
        self.status, self.body = status, body


@pytest.fixture
def prometheus() -> Iterator[FakePrometheus]:
    fake = FakePrometheus(port=free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            assert url.path in ("/api/v1/query", "/api/v1/query_range"), url.path
            params = {k: v[0] for k, v in parse_qs(url.query).items()}
            fake.queries.append(params["query"])
            headers = {k.lower(): v for k, v in self.headers.items()}
            fake.requests.append({"path": url.path, "params": params, "headers": headers})
            if fake.hold:
                fake.release.wait(timeout=10)
            body = fake.body if isinstance(fake.body, str) else json.dumps(fake.body)
            data = body.encode()
            self.send_response(fake.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", fake.port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield fake
    fake.release.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def instant(address: str, timeout: float = 10.0, *, query: str) -> list[float]:
    return PrometheusClient(Connection(address=address, timeout=timeout)).instant(query)


def spec_error(**fields: Any) -> dict[str, Any]:
    with pytest.raises(ValidationError) as caught:
        PrometheusProviderSpec.model_validate(fields)
    errors = caught.value.errors()
    assert len(errors) == 1, errors
    return dict(errors[0])


# --- spec validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1:9090", "ftp://127.0.0.1:9090", "http://", "http://h:port", "http://h/?x=1", ""],
)
def test_spec_rejects_an_address_that_is_not_an_http_url(address: str) -> None:
    error = spec_error(address=address, query="up")
    assert error["loc"] == ("address",)
    assert "http(s) URL" in error["msg"] or "port" in error["msg"] or "query" in error["msg"]


@pytest.mark.parametrize("query", ["", "   "])
def test_spec_rejects_an_empty_query_naming_the_field(query: str) -> None:
    error = spec_error(address="http://127.0.0.1:9090", query=query)
    assert error["loc"] == ("query",)
    assert "must not be empty" in error["msg"]


def test_spec_rejects_a_timeout_that_is_not_positive() -> None:
    assert spec_error(address="http://p:9090", query="up", timeout=0)["loc"] == ("timeout",)


def test_spec_rejects_unknown_fields() -> None:
    assert spec_error(address="http://p:9090", query="up", qeury="x")["loc"] == ("qeury",)


def test_spec_normalises_the_address_and_defaults_the_timeout() -> None:
    spec = PrometheusProviderSpec(address="https://prom.example:9090/", query="up")
    assert spec.address == "https://prom.example:9090"
    assert spec.timeout == 10.0


def test_provider_spec_requires_exactly_one_provider() -> None:
    with pytest.raises(
        ValidationError, match="set exactly one of prometheus, web, judge; got none"
    ):
        MetricProviderSpec.model_validate({})


def test_provider_for_returns_the_prometheus_provider_and_its_query() -> None:
    spec = MetricProviderSpec.model_validate(
        {"prometheus": {"address": "http://p:9090", "query": "up", "timeout": 2}}
    )
    provider = provider_for(spec)
    assert isinstance(provider, PrometheusProvider)
    assert (provider.spec.address, provider.spec.timeout, provider.spec.query) == (
        "http://p:9090",
        2.0,
        "up",
    )


# --- provider --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (vector("0.02"), [0.02]),
        (vector("1", "2.5"), [1.0, 2.5]),
        (SCALAR, [3.0]),
        (vector(), []),
        (vector("+Inf"), [math.inf]),
    ],
    ids=["one-series", "two-series", "scalar", "empty", "inf"],
)
def test_provider_returns_one_float_per_series(
    prometheus: FakePrometheus, body: dict[str, Any], expected: list[float]
) -> None:
    prometheus.answer(200, body)
    assert instant(prometheus.url, query='sum(rate(x{version="v2"}[1m]))') == expected
    assert prometheus.queries == ['sum(rate(x{version="v2"}[1m]))']


def test_provider_returns_nan_as_a_float(prometheus: FakePrometheus) -> None:
    prometheus.answer(200, vector("NaN"))
    [value] = instant(prometheus.url, query="0/0")
    assert math.isnan(value)


def test_bad_promql_raises_with_prometheus_error_text(prometheus: FakePrometheus) -> None:
    prometheus.answer(400, BAD_PROMQL)
    with pytest.raises(MetricUnavailable) as caught:
        instant(prometheus.url, query="sum(up))")
    message = str(caught.value)
    assert "HTTP 400" in message
    assert "bad_data: " in message
    assert "parse error: unexpected right parenthesis" in message
    assert len(prometheus.queries) == 1


def test_server_error_is_not_retried_by_the_client(prometheus: FakePrometheus) -> None:
    # prometheus-api-client retries 503 three times by default; Temporal owns retrying.
    prometheus.answer(503, "service unavailable")
    with pytest.raises(MetricUnavailable, match="HTTP 503: service unavailable"):
        instant(prometheus.url, query="up")
    assert len(prometheus.queries) == 1


def test_slow_server_hits_the_timeout_once(prometheus: FakePrometheus) -> None:
    prometheus.hold = True  # answers 200 only at teardown: without a timeout, query() hangs
    with pytest.raises(MetricUnavailable, match=r"did not answer within 0\.5s"):
        instant(prometheus.url, timeout=0.5, query="up")
    assert len(prometheus.queries) == 1


def test_unreachable_server_raises_metric_unavailable() -> None:
    with pytest.raises(MetricUnavailable, match="unreachable"):
        instant(f"http://127.0.0.1:{free_port()}", timeout=2, query="up")


def test_messages_never_carry_credentials_from_the_address() -> None:
    address = f"http://admin:s3cret@127.0.0.1:{free_port()}"
    with pytest.raises(MetricUnavailable) as caught:
        instant(address, timeout=2, query="up")
    assert "s3cret" not in str(caught.value)
    assert "prometheus at http://127.0.0.1:" in str(caught.value)


@pytest.mark.parametrize(
    ("status", "body", "match"),
    [
        (200, MATRIX, "range vector"),
        (200, "<html>proxy login</html>", "not JSON"),
        (200, {"status": "success"}, "unexpected body"),
        (200, {"status": "success", "data": {"resultType": "string", "result": [TS, "x"]}}, "x"),
    ],
    ids=["matrix", "html", "no-data-field", "string"],
)
def test_unusable_answers_raise_metric_unavailable(
    prometheus: FakePrometheus, status: int, body: Any, match: str
) -> None:
    prometheus.answer(status, body)
    with pytest.raises(MetricUnavailable, match=match):
        instant(prometheus.url, query="up")


# --- measure activity ------------------------------------------------------------------


def run_measure(
    url: str, query: str = "up", timeout: float = 2.0, raw: bool = False
) -> MeasureOutput:
    payload = {
        "metric": "error-rate",
        "key": "rollout-checkout/analysis-1/error-rate/3",
        "provider": {"prometheus": {"address": url, "query": query, "timeout": timeout}},
        "rawValues": raw,
    }
    output: MeasureOutput = ActivityEnvironment().run(measure, MeasureInput.model_validate(payload))
    return output


def test_measure_returns_the_values(prometheus: FakePrometheus) -> None:
    prometheus.answer(200, vector("0.5", "0.25"))
    assert run_measure(prometheus.url) == MeasureOutput(
        values=[0.5, 0.25], metadata={"ResolvedPrometheusQuery": "up"}
    )


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (vector(), "query returned no data"),
        (vector("0.1", "NaN"), "query returned NaN"),
        (
            SCALAR | {"data": {"resultType": "scalar", "result": [TS, "-Inf"]}},
            "query returned -Inf",
        ),
    ],
    ids=["empty", "nan", "inf"],
)
def test_measure_reports_unusable_values_as_an_error_measurement(
    prometheus: FakePrometheus, body: dict[str, Any], error: str
) -> None:
    prometheus.answer(200, body)
    assert run_measure(prometheus.url) == MeasureOutput(values=[], error=error)


def test_measure_hands_nan_and_no_data_to_conditions_that_ask_for_them(
    prometheus: FakePrometheus,
) -> None:
    prometheus.answer(200, vector("0.1", "NaN"))
    output = run_measure(prometheus.url, raw=True)
    assert output.error is None
    assert output.values[0] == 0.1
    assert math.isnan(output.values[1])
    prometheus.answer(200, vector())
    assert run_measure(prometheus.url, raw=True).values == []


def test_measure_reports_an_outage_as_an_error_measurement_without_raising() -> None:
    output = run_measure(f"http://127.0.0.1:{free_port()}")
    assert output.values == []
    assert output.error is not None
    assert "unreachable" in output.error


def test_measure_reports_bad_promql_with_prometheus_message(prometheus: FakePrometheus) -> None:
    prometheus.answer(400, BAD_PROMQL)
    output = run_measure(prometheus.url, query="sum(up))")
    assert output.error is not None
    assert "parse error" in output.error


def test_measure_output_survives_the_pydantic_data_converter(prometheus: FakePrometheus) -> None:
    prometheus.answer(200, vector("NaN"))
    converter = pydantic_data_converter.payload_converter
    for output in (run_measure(prometheus.url), MeasureOutput(values=[0.01, 2.0])):
        [payload] = converter.to_payloads([output])
        assert converter.from_payloads([payload], [MeasureOutput]) == [output]
    prometheus.answer(200, vector("NaN", "+Inf"))
    [payload] = converter.to_payloads([run_measure(prometheus.url, raw=True)])
    [back] = converter.from_payloads([payload], [MeasureOutput])
    assert math.isnan(back.values[0])
    assert back.values[1] == math.inf


def test_measure_logs_key_and_metric_but_not_credentials() -> None:
    address = f"http://admin:s3cret@127.0.0.1:{free_port()}"
    with capture_logs() as logs:
        output = run_measure(address)
    assert output.error is not None
    assert "s3cret" not in output.error
    [entry] = logs
    assert entry["event"] == "measure_error"
    assert entry["key"] == "rollout-checkout/analysis-1/error-rate/3"
    assert entry["metric"] == "error-rate"
    assert entry["attempt"] == 1
    assert "s3cret" not in repr(entry)


# --- headers, authentication, range queries (Argo's prometheus fields) --------------------


def test_headers_and_basic_auth_are_sent(prometheus: FakePrometheus) -> None:
    spec = {
        "address": prometheus.url,
        "query": "up",
        "headers": [{"key": "X-Scope-OrgID", "value": "tenant_a"}],
        "authentication": {"basicAuth": {"username": "grafana", "password": "pw"}},
    }
    provider = provider_for(MetricProviderSpec.model_validate({"prometheus": spec}))
    assert provider.measure().values == [0.0]
    headers = prometheus.requests[0]["headers"]
    assert headers["x-scope-orgid"] == "tenant_a"
    assert headers["authorization"] == "Basic Z3JhZmFuYTpwdw=="  # grafana:pw


def test_a_bearer_token_from_a_secret_arg_is_sent_and_never_returned(
    prometheus: FakePrometheus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLOYFLOW_SECRET_PROM_TOKEN", "t0ken")
    payload = {
        "metric": "error-rate",
        "key": "k",
        "provider": {
            "prometheus": {
                "address": prometheus.url,
                "query": 'up{token="{{args.token}}"}',
                "authentication": {"bearer": {"token": "{{args.token}}"}},
            }
        },
        "secrets": {"token": {"name": "prom", "key": "token"}},
    }
    output = ActivityEnvironment().run(measure, MeasureInput.model_validate(payload))
    assert prometheus.requests[0]["headers"]["authorization"] == "Bearer t0ken"
    assert prometheus.queries == ['up{token="t0ken"}']
    assert output.metadata == {"ResolvedPrometheusQuery": 'up{token="***"}'}


def test_a_range_query_asks_for_the_window_and_returns_every_sample(
    prometheus: FakePrometheus,
) -> None:
    series = [
        {"metric": {"pod": "a"}, "values": [[TS, "1"], [TS + 60, "2"]]},
        {"metric": {"pod": "b"}, "values": [[TS, "3"]]},
    ]
    prometheus.answer(
        200, {"status": "success", "data": {"resultType": "matrix", "result": series}}
    )
    spec = PrometheusProviderSpec.model_validate(
        {
            "address": prometheus.url,
            "query": "http_latency_ms",
            "rangeQuery": {"start": 'now() - duration("5m")', "end": "now()", "step": "1m"},
        }
    )
    assert PrometheusProvider(spec).measure().values == [1.0, 2.0, 3.0]
    [request] = prometheus.requests
    params = request["params"]
    assert request["path"] == "/api/v1/query_range"
    assert params["step"] == "60s"
    assert float(params["end"]) - float(params["start"]) == pytest.approx(300, abs=1)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"rangeQuery": {"start": "yesterday", "step": "1m"}}, "only now() and now() - duration"),
        (
            {"rangeQuery": {"start": 'now() - duration("soon")', "step": "1m"}},
            "expected a duration",
        ),
        ({"authentication": {"sigv4": {"region": "eu-west-1"}}}, "not supported: SigV4"),
        ({"authentication": {"oauth2": {"tokenUrl": "https://t"}}}, "not supported: the OAuth2"),
        (
            {
                "authentication": {
                    "bearer": {"token": "a"},
                    "basicAuth": {"username": "u", "password": "p"},
                }
            },
            "set basicAuth or bearer, not both",
        ),
    ],
)
def test_argo_prometheus_fields_are_checked(fields: dict[str, Any], message: str) -> None:
    error = spec_error(address="http://p:9090", query="up", **fields)
    assert message in error["msg"]
