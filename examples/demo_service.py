"""A tiny versioned HTTP service to roll out: answers ``GET /``, exposes Prometheus metrics.

    python examples/demo_service.py --port 8001 --version v1 [--error-rate 0.0] [--latency-ms 0]

Endpoints:
    GET  /                  200 ``<service> <version>``, or 500 with probability error-rate
    GET  /healthz           200 ``ok``
    GET  /metrics           Prometheus text: ``http_requests_total{service,version,code}``
                            and ``http_request_duration_seconds`` (histogram) for ``GET /``,
                            ``process_resident_memory_bytes`` (from /proc/self/statm)
    GET  /admin/error-rate  the current error rate
    POST /admin/error-rate  set it: body ``0.5`` or ``?value=0.5`` (0..1), to inject errors
                            into a running canary
    GET  /admin/latency     milliseconds ``GET /`` takes (±10 %), 0 = as fast as it can
    POST /admin/latency     set it: body ``26`` or ``?value=26`` (0..10000), to make a
                            version slower than another
    GET  /admin/leak        ``<bytes per second> <bytes held>``
    POST /admin/leak        body ``1048576`` or ``?value=1048576``: allocate and hold that
                            many bytes per second (a memory leak, for the self-healing demo);
                            ``0`` stops the growth, the memory stays held until the process
                            exits; growth stops by itself at ``--leak-limit`` bytes held
    GET  /admin/hang        ``1`` if hung, else ``0``
    POST /admin/hang        body ``1`` or ``?value=1``: ``GET /`` and ``GET /healthz`` stop
                            answering (each waits until ``0`` is posted, then answers; after
                            30 s it closes the connection unanswered); ``0`` clears it

Only ``GET /`` is counted, so scrapes and health checks do not dilute the error ratio.
Both ``code`` series start at 0 so ``rate()`` sees errors from the first one. Stdlib only.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, urlsplit

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CODES = ("200", "500")
HANG_MAX_WAIT = 30.0  # seconds a request waits on a hung service before it is dropped
LEAK_TICK = 0.1  # seconds between two allocations of the leak
DEFAULT_LEAK_LIMIT = 1 << 30  # bytes: the leak stops growing there, the machine survives


def resident_memory_bytes() -> int | None:
    """This process's resident set size (Linux), or None where /proc is missing."""
    try:
        with open("/proc/self/statm") as statm:
            resident_pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


class Leak:
    """Allocates and holds ``rate`` bytes per second in a background thread."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._rate = 0
        self._held: list[bytearray] = []
        self._held_bytes = 0
        self._owed = 0.0  # bytes due but not yet allocated (fractions of a tick)
        self._lock = threading.Lock()
        self._changed = threading.Event()
        threading.Thread(target=self._run, name="leak", daemon=True).start()

    @property
    def rate(self) -> int:
        return self._rate

    @property
    def held_bytes(self) -> int:
        return self._held_bytes

    def set_rate(self, rate: int) -> None:
        with self._lock:
            self._rate = rate
            self._owed = 0.0
        self._changed.set()

    def _run(self) -> None:
        last = time.monotonic()
        while True:
            if self._rate == 0:
                self._changed.wait()  # idle until a rate is set
                self._changed.clear()
                last = time.monotonic()
                continue
            self._changed.wait(LEAK_TICK)
            self._changed.clear()
            now = time.monotonic()
            with self._lock:
                self._owed += self._rate * (now - last)
                size = min(int(self._owed), self.limit - self._held_bytes)
                if size > 0:
                    chunk = bytearray(size)  # zero-filled: every page is touched, so resident
                    self._held.append(chunk)
                    self._held_bytes += size
                    self._owed -= size
                if self._held_bytes >= self.limit:
                    self._owed = 0.0
            last = now


class ServiceState:
    """Counters, histogram and the error-rate knob, shared by all handler threads."""

    def __init__(
        self,
        service: str,
        version: str,
        error_rate: float,
        leak_limit: int = DEFAULT_LEAK_LIMIT,
        latency_ms: float = 0.0,
    ) -> None:
        self.service = service
        self.version = version
        self.error_rate = error_rate
        self.latency_ms = latency_ms
        self.leak = Leak(leak_limit)
        self.responsive = threading.Event()  # cleared while the service hangs
        self.responsive.set()
        self._lock = threading.Lock()
        self._requests = dict.fromkeys(CODES, 0)
        self._bucket_counts = [0] * len(BUCKETS)
        self._duration_sum = 0.0
        self._duration_count = 0

    def should_fail(self) -> bool:
        return random.random() < self.error_rate

    def delay(self) -> None:
        """Take ``latency_ms`` (±10 %, uniformly) to answer, like real work would."""
        if self.latency_ms:
            time.sleep(self.latency_ms * random.uniform(0.9, 1.1) / 1000)

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
        resident = resident_memory_bytes()
        if resident is not None:
            lines += [
                "# HELP process_resident_memory_bytes Resident memory size in bytes.",
                "# TYPE process_resident_memory_bytes gauge",
                f"process_resident_memory_bytes {resident}",
            ]
        return "\n".join(lines) + "\n"


def parse_rate(text: str) -> float:
    """An error rate in 0..1 from ``text``; ``ValueError`` otherwise."""
    rate = float(text.strip())
    if not 0.0 <= rate <= 1.0:  # also rejects NaN
        raise ValueError(f"error rate must be within 0..1, got {text.strip()!r}")
    return rate


def parse_latency(text: str) -> float:
    """A latency in milliseconds (0..10000) from ``text``; ``ValueError`` otherwise."""
    latency = float(text.strip())
    if not 0.0 <= latency <= 10_000.0:  # also rejects NaN
        raise ValueError(f"latency must be within 0..10000 ms, got {text.strip()!r}")
    return latency


def parse_leak_rate(text: str) -> int:
    """A leak rate in bytes per second (>= 0) from ``text``; ``ValueError`` otherwise."""
    rate = int(text.strip())
    if rate < 0:
        raise ValueError(f"leak rate must be >= 0 bytes per second, got {text.strip()!r}")
    return rate


def parse_switch(text: str) -> bool:
    """``1`` or ``0`` from ``text``; ``ValueError`` otherwise."""
    if text.strip() not in ("0", "1"):
        raise ValueError(f"expected 1 or 0, got {text.strip()!r}")
    return text.strip() == "1"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so a load loop can reuse connections
    # Headers and body go out as two writes; with Nagle on, keep-alive clients wait ~40 ms
    # for a delayed ACK on every request (about 25 req/s per connection).
    disable_nagle_algorithm = True
    server: DemoServer

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        state = self.server.state
        if path in ("/", "/healthz") and not state.responsive.wait(HANG_MAX_WAIT):
            self.close_connection = True  # hung: drop the request unanswered
            return
        if path == "/":
            started = time.perf_counter()
            state.delay()
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
        elif path == "/admin/latency":
            self._send(200, f"{state.latency_ms}\n")
        elif path == "/admin/leak":
            self._send(200, f"{state.leak.rate} {state.leak.held_bytes}\n")
        elif path == "/admin/hang":
            self._send(200, "0\n" if state.responsive.is_set() else "1\n")
        else:
            self._send(404, "not found\n")

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        if url.path not in ("/admin/error-rate", "/admin/latency", "/admin/leak", "/admin/hang"):
            self._send(404, "not found\n")
            return
        text = parse_qs(url.query).get("value", [body])[0]
        state = self.server.state
        try:
            if url.path == "/admin/error-rate":
                state.error_rate = parse_rate(text)
                answer = f"{state.error_rate}"
            elif url.path == "/admin/latency":
                state.latency_ms = parse_latency(text)
                answer = f"{state.latency_ms}"
            elif url.path == "/admin/leak":
                state.leak.set_rate(parse_leak_rate(text))
                answer = f"{state.leak.rate}"
            elif parse_switch(text):
                state.responsive.clear()
                answer = "1"
            else:
                state.responsive.set()
                answer = "0"
        except ValueError as e:
            self._send(400, f"{e}\n")
            return
        self._send(200, f"{answer}\n")

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

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet when a client hung up (e.g. gave up on a hung request); else a traceback."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--version", required=True, help="label on every answer and metric")
    parser.add_argument("--service", default="checkout")
    parser.add_argument("--error-rate", type=parse_rate, default=0.0, help="0..1")
    parser.add_argument("--latency-ms", type=parse_latency, default=0.0, help="0..10000")
    parser.add_argument(
        "--leak-limit",
        type=int,
        default=DEFAULT_LEAK_LIMIT,
        help="bytes the /admin/leak knob may hold at most",
    )
    args = parser.parse_args(argv)

    state = ServiceState(
        args.service, args.version, args.error_rate, args.leak_limit, args.latency_ms
    )
    server = DemoServer((args.host, args.port), state)

    def stop(signum: int, frame: FrameType | None) -> None:
        state.responsive.set()  # release requests waiting on a hang
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
