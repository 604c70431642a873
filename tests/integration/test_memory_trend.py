"""``memory_trend`` against a real Prometheus scraping two demo services, one of them leaking."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from activities.metrics.activities import MetricProviderSpec
from activities.metrics.trend import MemoryTrendInput, MemoryTrendOutput, memory_trend
from tests.fixtures.prometheus import DemoService, PrometheusServer, StartPrometheus, http
from workflows.monitors.checks import MemoryLeak

pytestmark = pytest.mark.integration

LEAK_BYTES_PER_SECOND = 4 * 2**20
WINDOW_SECONDS = 10


def trend(prom: PrometheusServer, query: str, window: float = WINDOW_SECONDS) -> MemoryTrendOutput:
    provider = MetricProviderSpec.model_validate(
        {"prometheus": {"address": prom.url, "query": query, "timeout": 5}}
    )
    return memory_trend(
        MemoryTrendInput(provider=provider, window_seconds=window, step_seconds=1, key="it/trend")
    )


@pytest.fixture
def leaking_and_steady(
    demo_service: Callable[..., DemoService], prometheus_server: StartPrometheus
) -> tuple[PrometheusServer, DemoService, DemoService]:
    leaky, steady = demo_service("v1"), demo_service("v2")
    prom = prometheus_server([leaky.target, steady.target])
    status, body = http("POST", f"{leaky.url}/admin/leak", str(LEAK_BYTES_PER_SECOND).encode())
    assert status == 200, body
    prom.wait_for_targets_up()
    # Leaking since before the first scrape; scraped every second from now on.
    time.sleep(WINDOW_SECONDS + 1)
    return prom, leaky, steady


def test_a_leak_is_a_steep_steady_line_and_a_steady_service_is_not(leaking_and_steady):
    prom, leaky, steady = leaking_and_steady
    output = trend(prom, "process_resident_memory_bytes")
    assert output.error is None
    by_target = {s.labels["instance"]: s for s in output.series}
    assert set(by_target) == {leaky.target, steady.target}

    leak = by_target[leaky.target]
    assert leak.points >= WINDOW_SECONDS - 1
    assert leak.slope_per_second is not None
    assert leak.r2 is not None
    assert 0.7 * LEAK_BYTES_PER_SECOND < leak.slope_per_second < 1.3 * LEAK_BYTES_PER_SECOND
    assert leak.r2 > 0.95
    assert leak.last is not None
    assert leak.first is not None
    assert leak.last - leak.first > 0.5 * LEAK_BYTES_PER_SECOND * WINDOW_SECONDS

    calm = by_target[steady.target]
    assert calm.slope_per_second is not None
    assert abs(calm.slope_per_second) < 0.05 * LEAK_BYTES_PER_SECOND

    spec = MemoryLeak.model_validate(
        {"provider": {"prometheus": {"address": prom.url, "query": "x"}},
         "window": "10s", "minGrowthPerMinute": "60Mi", "minR2": 0.9}
    )  # fmt: skip
    assert spec.is_leak(leak)
    assert not spec.is_leak(calm)


def test_no_series_bad_promql_and_no_prometheus_are_errors(
    demo_service: Callable[..., DemoService], prometheus_server: StartPrometheus
):
    prom = prometheus_server([demo_service("v1").target])
    assert trend(prom, 'process_resident_memory_bytes{job="nope"}').error == (
        "query returned no data"
    )
    rejected = trend(prom, "process_resident_memory_bytes{").error
    assert rejected is not None
    assert rejected.startswith(f"prometheus at {prom.url} answered HTTP 400: bad_data")
    prom.process.terminate()
    prom.process.wait(timeout=10)
    gone = trend(prom, "process_resident_memory_bytes").error
    assert gone is not None
    assert gone.startswith(f"prometheus at {prom.url} unreachable")
