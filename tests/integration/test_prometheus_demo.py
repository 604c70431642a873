"""A real Prometheus scraping two demo-service versions; errors injected into the canary.

Prometheus 2.42 first scrapes ~6 s after it starts (target discovery updates go out on a
5 s ticker), so the file starts it once.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.client import HTTPConnection, HTTPException
from types import TracebackType
from urllib.parse import urlsplit

import pytest

from activities.metrics.activities import MeasureInput, MeasureOutput, measure
from activities.metrics.base import MetricUnavailable
from activities.metrics.prometheus import PrometheusClient
from activities.metrics.prometheus_spec import Connection
from tests.fixtures.prometheus import DemoService, PrometheusServer, http, wait_until

pytestmark = pytest.mark.integration

StartDemo = Callable[..., DemoService]
StartPrometheus = Callable[[list[str]], PrometheusServer]


def error_ratio(version: str, window: str = "10s", function: str = "rate") -> str:
    """The analysis query: share of the version's requests answered with 5xx."""
    selector = f'http_requests_total{{version="{version}"'
    errors = f'sum({function}({selector},code=~"5.."}}[{window}]))'
    return f"{errors} / sum({function}({selector}}}[{window}]))"


class LoadLoop:
    """Sends ``GET /`` round-robin to ``urls`` at about ``per_second``, at most ``limit``."""

    def __init__(self, urls: list[str], per_second: float, limit: int) -> None:
        self.urls, self.interval, self.limit = urls, 1.0 / per_second, limit
        self.answers: Counter[tuple[str, int]] = Counter()  # (url, status) -> count
        self.failures = 0  # connection errors, not HTTP 500s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LoadLoop:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    @property
    def sent(self) -> int:
        return sum(self.answers.values()) + self.failures

    def _run(self) -> None:
        connections = {url: HTTPConnection(urlsplit(url).netloc) for url in self.urls}
        next_at = time.monotonic()
        while self.sent < self.limit and not self._stop.is_set():
            url = self.urls[self.sent % len(self.urls)]
            try:
                connections[url].request("GET", "/")
                response = connections[url].getresponse()
                response.read()
                self.answers[url, response.status] += 1
            except (OSError, HTTPException):
                self.failures += 1
                connections[url].close()  # HTTPConnection reconnects on the next request
            next_at += self.interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))
        for connection in connections.values():
            connection.close()


def check_measure_turns_problems_into_error_measurements(address: str) -> None:
    """The ``measure`` activity against real Prometheus answers (done while history fills)."""

    def run(query: str) -> MeasureOutput:
        provider = {"prometheus": {"address": address, "query": query, "timeout": 2}}
        payload = {"metric": "error-rate", "key": "wf-1/analysis-1/0", "provider": provider}
        return measure(MeasureInput.model_validate(payload))

    assert run('up{job="demo"}').values == [1.0, 1.0]
    assert run('http_requests_total{version="v9"}').error == "query returned no data"
    assert run("vector(0) / 0").error == "query returned NaN"
    bad = run("sum(http_requests_total))").error
    assert bad is not None
    assert "HTTP 400" in bad
    assert "parse error" in bad


def test_error_ratio_of_the_canary_rises_to_one_after_errors_are_injected(
    demo_service: StartDemo, prometheus_server: StartPrometheus
) -> None:
    stable, canary = demo_service("v1"), demo_service("v2")
    # Errors show only as fast as the windows fill with them; the team's query is rate[10s].
    queries = {
        "rate[10s]": error_ratio("v2", "10s"),
        "rate[3s]": error_ratio("v2", "3s"),
        "irate[3s]": error_ratio("v2", "3s", "irate"),
    }
    with LoadLoop([stable.url, canary.url], per_second=40, limit=1200) as load:
        prometheus = prometheus_server([stable.target, canary.target])
        prometheus.wait_for_targets_up()
        client = PrometheusClient(Connection(address=prometheus.url, timeout=2))

        def read(query: str) -> list[float]:
            try:
                return client.instant(query)
            except MetricUnavailable:
                return []

        check_measure_turns_problems_into_error_measurements(prometheus.url)
        # Steady state first: the longest window must hold 10 s of healthy traffic, or
        # the canary looks bad sooner than it would in a real rollout.
        history = 'count_over_time(http_requests_total{version="v2",code="500"}[10s])'
        wait_until(lambda: read(history) >= [10.0], 20, "10 s of v2 history", poll_s=0.1)
        for name, query in queries.items():
            assert read(query) == [0.0], f"healthy v2 by {name}"

        canary.set_error_rate(1.0)
        injected = time.monotonic()
        crossed: dict[str, float] = {}

        def saturated() -> bool:
            for name, query in queries.items():
                values = read(query)
                if name not in crossed and values and values[0] > 0.5:
                    crossed[name] = time.monotonic() - injected
            return read(queries["rate[10s]"]) == pytest.approx([1.0], abs=0.01)

        wait_until(saturated, 20, "v2 error ratio rate[10s] ≈ 1.0", poll_s=0.05)
        saturated_after = time.monotonic() - injected
        stable_ratio = read(error_ratio("v1"))

    print(
        "\nerror ratio > 0.5 after injecting errors: "
        + ", ".join(f"{name} {crossed.get(name, math.nan):.2f}s" for name in queries)
        + f"; rate[10s] ≈ 1.0 after {saturated_after:.2f}s; {load.sent} requests sent"
    )
    assert set(crossed) == set(queries)
    assert crossed["irate[3s]"] <= crossed["rate[3s]"] < crossed["rate[10s]"] <= saturated_after
    assert stable_ratio == [0.0]
    assert load.failures == 0
    assert load.answers[stable.url, 500] == 0
    assert load.answers[canary.url, 500] > 0
    assert load.sent <= 1200


def test_demo_service_counts_answers_takes_the_error_knob_and_stops_on_sigterm(
    demo_service: StartDemo,
) -> None:
    service = demo_service("v3", error_rate=0.0, service="cart")
    assert http("GET", service.url) == (200, "cart v3\n")
    assert http("GET", f"{service.url}/healthz")[0] == 200
    assert http("POST", f"{service.url}/admin/error-rate", b"1.5")[0] == 400
    assert http("POST", f"{service.url}/admin/error-rate?value=1")[0] == 200
    assert http("GET", service.url) == (500, "cart v3 error\n")

    started = time.monotonic()
    with LoadLoop([service.url], per_second=10_000, limit=300) as load:
        wait_until(lambda: load.sent >= 300, 10, "300 requests answered")
    print(f"\ndemo service: 300 keep-alive requests in {time.monotonic() - started:.2f}s")
    assert load.answers[service.url, 500] == 300

    status, metrics = http("GET", f"{service.url}/metrics")
    assert status == 200
    labels = 'service="cart",version="v3"'
    assert f'http_requests_total{{{labels},code="200"}} 1\n' in metrics
    assert f'http_requests_total{{{labels},code="500"}} 301\n' in metrics
    assert f"http_request_duration_seconds_count{{{labels}}} 302\n" in metrics
    assert f'http_request_duration_seconds_bucket{{{labels},le="+Inf"}} 302\n' in metrics

    service.process.send_signal(signal.SIGTERM)
    assert service.process.wait(timeout=5) == 0
