"""A tiny versioned HTTP service to roll out: answers ``GET /``, exposes Prometheus metrics.

    python examples/demo_service.py --port 8001 --version v1 [--error-rate 0.0]

Endpoints:
    GET  /                  200 ``<service> <version>``, or 500 with probability error-rate
    GET  /healthz           200 ``ok``
    GET  /metrics           Prometheus text: ``http_requests_total{service,version,code}``
                            and ``http_request_duration_seconds`` (histogram) for ``GET /``
    GET  /admin/error-rate  the current error rate
    POST /admin/error-rate  set it: body ``0.5`` or ``?value=0.5`` (0..1), to inject errors
                            into a running canary

Only ``GET /`` is counted, so scrapes and health checks do not dilute the error ratio.
Both ``code`` series start at 0 so ``rate()`` sees errors from the first one. Stdlib only.
"""

from __future__ import annotations

import argparse
import random
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, urlsplit

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CODES = ("200", "500")


class ServiceState:
    """Counters, histogram and the error-rate knob, shared by all handler threads."""

    def __init__(self, service: str, version: str, error_rate: float) -> None:
        self.service = service
        self.version = version
        self.error_rate = error_rate
        self._lock = threading.Lock()
        self._requests = dict.fromkeys(CODES, 0)
        self._bucket_counts = [0] * len(BUCKETS)
        self._duration_sum = 0.0
        self._duration_count = 0

    def should_fail(self) -> bool:
        return random.random() < self.error_rate

    def observe(self, code: int, seconds: float) -> None:
        with self._lock:
            self._requests[str(code)] = self._requests.get(str(code), 0) + 1
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    self._bucket_counts[i] += 1
            self._duration_sum += seconds
            self._duration_count += 1

    def exposition(self) -> str:
        """The metrics in Prometheus text exposition format 0.0.4."""
        labels = f'service="{self.service}",version="{self.version}"'
        with self._lock:
            lines = [
                "# HELP http_requests_total Requests to / by status code.",
                "# TYPE http_requests_total counter",
                *(
                    f'http_requests_total{{{labels},code="{code}"}} {count}'
                    for code, count in sorted(self._requests.items())
                ),
                "# HELP http_request_duration_seconds Time to answer requests to /.",
                "# TYPE http_request_duration_seconds histogram",
                *(
                    f'http_request_duration_seconds_bucket{{{labels},le="{bound}"}} {count}'
                    for bound, count in zip(BUCKETS, self._bucket_counts, strict=True)
                ),
                f'http_request_duration_seconds_bucket{{{labels},le="+Inf"}} '
                f"{self._duration_count}",
                f"http_request_duration_seconds_sum{{{labels}}} {self._duration_sum}",
                f"http_request_duration_seconds_count{{{labels}}} {self._duration_count}",
            ]
        return "\n".join(lines) + "\n"


def parse_rate(text: str) -> float:
    """An error rate in 0..1 from ``text``; ``ValueError`` otherwise."""
    rate = float(text.strip())
    if not 0.0 <= rate <= 1.0:  # also rejects NaN
        raise ValueError(f"error rate must be within 0..1, got {text.strip()!r}")
    return rate


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so a load loop can reuse connections
    # Headers and body go out as two writes; with Nagle on, keep-alive clients wait ~40 ms
    # for a delayed ACK on every request (about 25 req/s per connection).
    disable_nagle_algorithm = True
    server: DemoServer

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        state = self.server.state
        if path == "/":
            started = time.perf_counter()
            code = 500 if state.should_fail() else 200
            suffix = " error" if code == 500 else ""
            self._send(code, f"{state.service} {state.version}{suffix}\n")
            state.observe(code, time.perf_counter() - started)
        elif path == "/healthz":
            self._send(200, "ok\n")
        elif path == "/metrics":
            self._send(200, state.exposition(), "text/plain; version=0.0.4; charset=utf-8")
        elif path == "/admin/error-rate":
            self._send(200, f"{state.error_rate}\n")
        else:
            self._send(404, "not found\n")

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        if url.path != "/admin/error-rate":
            self._send(404, "not found\n")
            return
        text = parse_qs(url.query).get("value", [body])[0]
        try:
            self.server.state.error_rate = parse_rate(text)
        except ValueError as e:
            self._send(400, f"{e}\n")
            return
        self._send(200, f"{self.server.state.error_rate}\n")

    def _send(self, code: int, body: str, content_type: str = "text/plain") -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: no line per request."""


class DemoServer(ThreadingHTTPServer):
    request_queue_size = 256  # the default backlog of 5 drops connections under load
    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: ServiceState) -> None:
        super().__init__(address, Handler)
        self.state = state


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--version", required=True, help="label on every answer and metric")
    parser.add_argument("--service", default="checkout")
    parser.add_argument("--error-rate", type=parse_rate, default=0.0, help="0..1")
    args = parser.parse_args(argv)

    server = DemoServer(
        (args.host, args.port), ServiceState(args.service, args.version, args.error_rate)
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever() to return, which runs in this very thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
