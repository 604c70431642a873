"""Real Alertmanager → webhook: the notifications incident intake receives.

The chain: the demo service answers 500s → Prometheus (1 s scrape, 1 s rule evaluation)
fires ``CheckoutHighErrorRate`` → Alertmanager (group_wait 1 s) posts a version-4 webhook
with a Bearer token to a recording receiver in this file; the errors stop → a "resolved"
one follows. A second test drives Alertmanager directly (``post_alert``) to show repeated
notifications of one group and a resolution posted by hand.

``DEPLOYFLOW_RECORD_WEBHOOKS=1`` rewrites ``tests/data/alertmanager/{firing,resolved}.json``
(the intake's unit-test fixtures) from the bodies captured here; otherwise the test checks
that those files still have the shape the real Alertmanager sends.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.client import HTTPConnection, HTTPException
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.fixtures.alertmanager import StartAlertmanager
from tests.fixtures.prometheus import DemoService, StartPrometheus, http, wait_until

pytestmark = pytest.mark.integration


DATA = Path(__file__).resolve().parents[1] / "data" / "alertmanager"
TOKEN = "intake-test-token"
RATIO = (
    'sum(rate(http_requests_total{service="checkout",code="500"}[10s]))'
    ' / sum(rate(http_requests_total{service="checkout"}[10s]))'
)
RULES = f"""
groups:
  - name: checkout
    rules:
      - alert: CheckoutHighErrorRate
        expr: '{RATIO} > 0.5'
        for: 0s
        labels:
          severity: critical
          service: checkout
        annotations:
          summary: checkout answers more than half of its requests with 500
          runbook: restart-checkout
"""


@dataclass
class Notification:
    at: float  # time.monotonic() on arrival
    wall: float  # time.time() on arrival
    path: str
    authorization: str | None
    body: dict[str, Any]


@dataclass
class Receiver:
    """A webhook endpoint that records every POST and answers 200."""

    url: str
    notifications: list[Notification] = field(default_factory=list)

    def with_status(self, status: str) -> list[Notification]:
        return [n for n in self.notifications if n.body.get("status") == status]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    recorded: list[Notification] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length))
            authorization = self.headers.get("Authorization")
            arrived = time.monotonic(), time.time()
            recorded.append(Notification(*arrived, self.path, authorization, body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield Receiver(f"http://127.0.0.1:{server.server_address[1]}/alertmanager", recorded)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class Load:
    """``GET /`` on one keep-alive connection at about ``per_second``, at most ``limit``."""

    def __init__(self, url: str, per_second: float, limit: int) -> None:
        self.netloc, self.interval, self.limit = url.removeprefix("http://"), 1 / per_second, limit
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        connection = HTTPConnection(self.netloc, timeout=2)
        next_at = time.monotonic()
        while self.sent < self.limit and not self._stop.is_set():
            try:
                connection.request("GET", "/")
                connection.getresponse().read()
            except (OSError, HTTPException):
                connection.close()  # reconnects on the next request
            self.sent += 1
            next_at += self.interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))
        connection.close()


def query(prometheus_url: str, expr: str) -> list[float]:
    status, body = http("GET", f"{prometheus_url}/api/v1/query?query={quote(expr)}")
    assert status == 200, body
    return [float(sample["value"][1]) for sample in json.loads(body)["data"]["result"]]


def shape(value: Any) -> Any:
    """The keys of a JSON value, recursively (the first element stands for a list)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in sorted(value.items())}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def check_webhook(notification: Notification, status: str) -> dict[str, Any]:
    """The Alertmanager webhook (version 4) for one CheckoutHighErrorRate alert."""
    body = notification.body
    assert notification.authorization == f"Bearer {TOKEN}"
    assert notification.path == "/alertmanager"
    assert body["version"] == "4"
    assert body["status"] == status
    assert body["receiver"] == "webhook"
    assert body["groupKey"] == '{}:{alertname="CheckoutHighErrorRate", service="checkout"}'
    assert body["truncatedAlerts"] == 0
    assert body["groupLabels"] == {"alertname": "CheckoutHighErrorRate", "service": "checkout"}
    assert body["commonLabels"] == {
        "alertname": "CheckoutHighErrorRate",
        "service": "checkout",
        "severity": "critical",
    }
    assert body["commonAnnotations"]["runbook"] == "restart-checkout"
    assert body["externalURL"].startswith("http://127.0.0.1:")
    [alert] = body["alerts"]
    assert alert["status"] == status
    assert alert["labels"] == body["commonLabels"]
    assert alert["fingerprint"]
    assert alert["generatorURL"].startswith("http://127.0.0.1:")
    assert "/graph?g0.expr=" in alert["generatorURL"]
    alert_: dict[str, Any] = alert
    return alert_


def check_recorded_fixture(name: str, body: dict[str, Any]) -> None:
    path = DATA / f"{name}.json"
    if os.environ.get("DEPLOYFLOW_RECORD_WEBHOOKS"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(body, indent=2) + "\n")
    assert shape(json.loads(path.read_text())) == shape(body), f"{path} is out of date"


def test_prometheus_alert_reaches_the_webhook_firing_then_resolved(
    demo_service: Callable[..., DemoService],
    prometheus_server: StartPrometheus,
    alertmanager_server: StartAlertmanager,
    receiver: Receiver,
) -> None:
    am = alertmanager_server(
        receiver.url,
        token=TOKEN,
        group_wait="1s",
        group_interval="1s",
        repeat_interval="1h",
        resolve_timeout="5s",
    )
    checkout = demo_service("v1")
    with Load(checkout.url, per_second=20, limit=2400) as load:
        prometheus = prometheus_server(
            [checkout.target], rules=RULES, alertmanagers=[am.target], evaluation_interval="1s"
        )
        prometheus.wait_for_targets_up()
        prometheus.wait_for_alertmanagers()
        # A healthy window first, so the alert is caused by the injected errors alone.
        history = 'count_over_time(http_requests_total{service="checkout",code="500"}[10s])'
        wait_until(lambda: query(prometheus.url, history) >= [10.0], 20, "10 s of history")
        assert query(prometheus.url, RATIO) == [0.0]
        assert receiver.notifications == []

        checkout.set_error_rate(1.0)
        injected = time.monotonic()
        wait_until(lambda: bool(receiver.with_status("firing")), 30, "firing webhook")
        firing = receiver.with_status("firing")[0]
        [held] = am.alerts()
        assert held["labels"]["alertname"] == "CheckoutHighErrorRate"
        assert held["status"]["state"] == "active"

        checkout.set_error_rate(0.0)
        healed = time.monotonic()
        wait_until(lambda: bool(receiver.with_status("resolved")), 30, "resolved webhook")
        resolved = receiver.with_status("resolved")[0]
        sent = load.sent

    alert = check_webhook(firing, "firing")
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert alert["annotations"]["summary"].startswith("checkout answers")
    resolved_alert = check_webhook(resolved, "resolved")
    assert resolved_alert["fingerprint"] == alert["fingerprint"]
    assert resolved_alert["startsAt"] == alert["startsAt"]
    assert resolved_alert["endsAt"] > resolved_alert["startsAt"]
    assert resolved.body["groupKey"] == firing.body["groupKey"]
    assert [n.body["status"] for n in receiver.notifications] == ["firing", "resolved"]
    assert sent <= 2400

    active_at = datetime.fromisoformat(alert["startsAt"]).timestamp()
    print(
        f"\nerrors injected → firing webhook {firing.at - injected:.2f}s"
        f" (alert active in Prometheus → webhook {firing.wall - active_at:.2f}s);"
        f" errors stopped → resolved webhook {resolved.at - healed:.2f}s;"
        f" rate[10s], eval 1s, group_wait 1s, group_interval 1s; {sent} requests sent"
    )
    check_recorded_fixture("firing", firing.body)
    check_recorded_fixture("resolved", resolved.body)


def test_alertmanager_repeats_an_unchanged_group_and_resolves_a_posted_alert(
    alertmanager_server: StartAlertmanager, receiver: Receiver
) -> None:
    am = alertmanager_server(
        receiver.url, token=TOKEN, group_wait="1s", group_interval="1s", repeat_interval="2s"
    )
    labels = {"alertname": "CheckoutDown", "service": "checkout", "severity": "critical"}
    am.post_alert(labels, {"summary": "checkout does not answer"})
    wait_until(lambda: len(receiver.with_status("firing")) >= 2, 20, "a repeated notification")
    first, second = receiver.with_status("firing")[:2]
    assert first.body == second.body  # same group, same alert: the intake must dedup
    assert second.at - first.at >= 1.5
    assert [a["labels"]["alertname"] for a in am.alerts()] == ["CheckoutDown"]

    am.post_alert(labels, {"summary": "checkout does not answer"}, ends_at=datetime.now(UTC))
    wait_until(lambda: bool(receiver.with_status("resolved")), 20, "resolved webhook")
    resolved = receiver.with_status("resolved")[0]
    assert resolved.authorization == f"Bearer {TOKEN}"
    assert resolved.body["groupKey"] == first.body["groupKey"]
    assert resolved.body["alerts"][0]["fingerprint"] == first.body["alerts"][0]["fingerprint"]
    assert resolved.body["alerts"][0]["generatorURL"] == ""
    print(f"\nrepeat_interval 2s, group_interval 1s: repeated after {second.at - first.at:.2f}s")


def resident_bytes(service: DemoService) -> int:
    status, metrics = http("GET", f"{service.url}/metrics")
    assert status == 200
    [line] = [x for x in metrics.splitlines() if x.startswith("process_resident_memory_bytes ")]
    return int(line.split()[1])


def test_demo_service_leaks_memory_and_hangs_on_request(
    demo_service: Callable[..., DemoService],
) -> None:
    """The self-healing demo's knobs: memory that really grows, a service that stops answering."""
    service = demo_service("v1")
    before = resident_bytes(service)
    assert http("POST", f"{service.url}/admin/leak", b"-5")[0] == 400
    assert http("POST", f"{service.url}/admin/leak", b"52428800") == (200, "52428800\n")
    wait_until(lambda: resident_bytes(service) > before + (40 << 20), 10, "RSS +40 MiB")
    assert http("POST", f"{service.url}/admin/leak?value=0")[0] == 200
    rate, held = http("GET", f"{service.url}/admin/leak")[1].split()
    assert rate == "0"
    assert int(held) >= 40 << 20
    assert resident_bytes(service) >= before + int(held) * 0.9  # held, not freed

    assert http("POST", f"{service.url}/admin/hang", b"1") == (200, "1\n")
    assert http("GET", f"{service.url}/admin/hang") == (200, "1\n")
    for path in ("/", "/healthz"):
        with pytest.raises(TimeoutError):
            http("GET", f"{service.url}{path}", timeout=0.5)
    with socket.create_connection(("127.0.0.1", service.port), timeout=0.5) as waiting:
        waiting.sendall(b"GET / HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")
        with pytest.raises(TimeoutError):
            waiting.recv(1)  # held...
        assert http("POST", f"{service.url}/admin/hang", b"0") == (200, "0\n")
        waiting.settimeout(5)
        assert waiting.makefile("rb").read().endswith(b"\r\n\r\ncheckout v1\n")  # ...then answered
    assert http("GET", f"{service.url}/healthz") == (200, "ok\n")
