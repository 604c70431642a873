"""Probes and the check_health activity against real servers on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import ActivityEnvironment

from activities.errors import INVALID_SPEC
from activities.health.activities import CheckHealthInput, HealthProgress, check_health
from activities.health.probes import probe_exec, probe_grpc, probe_http, probe_tcp
from activities.health.spec import ExecCheck, GrpcCheck, HealthCheck, HttpCheck, TcpCheck
from activities.health.thresholds import ProbeOutcome
from tests.fixtures.parts import free_port

pytestmark = pytest.mark.integration

FAST = {"periodSeconds": 0.05, "timeoutSeconds": 1}


class ScriptedHttp:
    """An HTTP server whose n-th request (from 1) is answered with ``status_for(n)``."""

    def __init__(self, status_for: Callable[[int], int]) -> None:
        self.requests: list[str] = []
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                scripted.requests.append(self.path)
                status = status_for(len(scripted.requests))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.target = f"127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def http_server() -> Iterator[Callable[[Callable[[int], int]], ScriptedHttp]]:
    servers: list[ScriptedHttp] = []

    def start(status_for: Callable[[int], int]) -> ScriptedHttp:
        servers.append(ScriptedHttp(status_for))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (kernel backlog) and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


@pytest.fixture
def grpc_health_server() -> Iterator[tuple[int, health.HealthServicer]]:
    servicer = health.HealthServicer()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port, servicer
    server.stop(None)


# -- one probe of each kind ---------------------------------------------------------------


def test_http_probe_passes_on_the_expected_status(http_server):
    server = http_server(lambda n: 200)
    assert probe_http(HttpCheck(), "127.0.0.1", server.port, 1) == ProbeOutcome(True, "HTTP 200")
    assert server.requests == ["/healthz"]


def test_http_probe_fails_on_another_status(http_server):
    server = http_server(lambda n: 503)
    outcome = probe_http(HttpCheck(path="/ready"), "127.0.0.1", server.port, 1)
    assert outcome == ProbeOutcome(False, "HTTP 503 (expected 200)")
    assert server.requests == ["/ready"]


def test_http_probe_expected_status_need_not_be_200(http_server):
    server = http_server(lambda n: 204)
    assert probe_http(HttpCheck(expected_status=204), "127.0.0.1", server.port, 1).success


def test_http_probe_on_a_closed_port_is_connection_refused():
    outcome = probe_http(HttpCheck(), "127.0.0.1", free_port(), 1)
    assert outcome == ProbeOutcome(False, "connection refused")


def test_http_probe_times_out(silent_port):
    outcome = probe_http(HttpCheck(), "127.0.0.1", silent_port, 0.2)
    assert outcome == ProbeOutcome(False, "timed out after 0.2s")


def test_tcp_probe_open_and_closed_ports(silent_port):
    assert probe_tcp(TcpCheck(), "127.0.0.1", silent_port, 1) == ProbeOutcome(True, "connected")
    closed = probe_tcp(TcpCheck(), "127.0.0.1", free_port(), 1)
    assert closed == ProbeOutcome(False, "connection refused")


def test_exec_probe_exit_codes_and_stderr_tail():
    assert probe_exec(ExecCheck(command=["/bin/true"]), "h", 1, 1) == ProbeOutcome(True, "exit 0")
    failing = ExecCheck(command=["/bin/sh", "-c", "echo one >&2; echo two >&2; exit 2"])
    assert probe_exec(failing, "h", 1, 1) == ProbeOutcome(False, "exit 2: one | two")
    assert probe_exec(ExecCheck(command=["/bin/sh", "-c", "exit 2"]), "h", 1, 1) == ProbeOutcome(
        False, "exit 2"
    )


def test_exec_probe_fills_in_host_and_port():
    command = ["/bin/sh", "-c", 'test "$1:$2" = 10.0.0.5:8080 || exit 3', "sh", "{host}", "{port}"]
    assert probe_exec(ExecCheck(command=command), "10.0.0.5", 8080, 1).success
    assert probe_exec(ExecCheck(command=command), "10.0.0.5", 9090, 1).message == "exit 3"


def test_exec_probe_kills_the_whole_command_on_timeout():
    # The shell's child would hold the output pipe open if only the shell were killed.
    started = time.monotonic()
    outcome = probe_exec(ExecCheck(command=["/bin/sh", "-c", "sleep 30; true"]), "h", 1, 0.2)
    assert outcome == ProbeOutcome(False, "timed out after 0.2s")
    assert time.monotonic() - started < 10


def test_exec_probe_of_a_missing_or_unrunnable_command_fails(tmp_path):
    outcome = probe_exec(ExecCheck(command=["/nonexistent/check"]), "h", 1, 1)
    assert outcome == ProbeOutcome(False, "command not found: /nonexistent/check")
    script = tmp_path / "check.sh"
    script.write_text("exit 0\n")
    script.chmod(0o644)
    not_executable = probe_exec(ExecCheck(command=[str(script)]), "h", 1, 1)
    assert not_executable == ProbeOutcome(False, f"cannot run {script}: Permission denied")


def test_grpc_probe_serving_and_not_serving(grpc_health_server):
    port, servicer = grpc_health_server
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    servicer.set("checkout", health_pb2.HealthCheckResponse.NOT_SERVING)
    assert probe_grpc(GrpcCheck(), "127.0.0.1", port, 1) == ProbeOutcome(True, "SERVING")
    outcome = probe_grpc(GrpcCheck(service="checkout"), "127.0.0.1", port, 1)
    assert outcome == ProbeOutcome(False, "NOT_SERVING")
    unknown = probe_grpc(GrpcCheck(service="cart"), "127.0.0.1", port, 1)
    assert unknown == ProbeOutcome(False, "service 'cart' unknown (NOT_FOUND)")


def test_grpc_probe_on_a_closed_port_is_connection_refused():
    outcome = probe_grpc(GrpcCheck(), "127.0.0.1", free_port(), 1)
    assert outcome == ProbeOutcome(False, "connection refused")


def test_grpc_probe_of_a_server_without_the_health_service():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        outcome = probe_grpc(GrpcCheck(), "127.0.0.1", port, 1)
    finally:
        server.stop(None)
    assert outcome == ProbeOutcome(False, "no grpc.health.v1.Health service (UNIMPLEMENTED)")


# -- the check_health activity ------------------------------------------------------------


def run_check(check: dict, target: str, env: ActivityEnvironment | None = None, **extra):
    input = CheckHealthInput.model_validate(
        {"check": check, "target": target, "key": "wf/1", **extra}
    )
    return (env or ActivityEnvironment()).run(check_health, input)


def test_check_health_becomes_healthy_once_the_service_comes_up(http_server):
    server = http_server(lambda n: 503 if n <= 2 else 200)
    env = ActivityEnvironment()
    heartbeats: list[HealthProgress] = []
    env.on_heartbeat = lambda *details: heartbeats.append(details[0])
    report = run_check({"http": {}, **FAST}, server.target, env)
    assert report.healthy
    assert report.probes == 3
    assert report.outcomes == ["HTTP 503 (expected 200)", "HTTP 503 (expected 200)", "HTTP 200"]
    assert report.message == "healthy: 1 success in a row; HTTP 200"
    # One heartbeat after every probe, and more while waiting between probes.
    progress = dict.fromkeys((h.probes, h.consecutive_failures) for h in heartbeats)
    assert list(progress) == [(1, 1), (2, 2), (3, 0)]


def test_check_health_needs_success_threshold_successes_in_a_row(http_server):
    server = http_server(lambda n: 200 if n in (1, 3, 4) else 503)
    report = run_check({"http": {}, "successThreshold": 2, **FAST}, server.target)
    assert report.healthy
    assert report.probes == 4


def test_check_health_reports_unhealthy_after_failure_threshold(http_server):
    server = http_server(lambda n: 503)
    report = run_check({"http": {}, "failureThreshold": 2, **FAST}, server.target)
    assert not report.healthy
    assert report.probes == 2
    assert report.message == "unhealthy: 2 failures in a row; HTTP 503 (expected 200)"


def test_check_health_gives_up_on_a_flapping_target_after_max_probes(http_server):
    server = http_server(lambda n: 200 if n % 2 else 503)
    check = {"http": {}, "successThreshold": 2, "failureThreshold": 2, **FAST}
    report = run_check(check, server.target, maxProbes=6)
    assert not report.healthy
    assert report.probes == 6
    assert report.message == "undecided after 6 probes; HTTP 503 (expected 200)"


def test_check_health_runs_outside_an_activity_too():
    report = check_health(
        CheckHealthInput(
            check=HealthCheck(tcp=TcpCheck(), period_seconds=0.05, failure_threshold=2),
            target=f"127.0.0.1:{free_port()}",
            key="wf/1",
        )
    )
    assert not report.healthy
    assert report.outcomes == ["connection refused", "connection refused"]


def test_check_health_grpc_and_exec_kinds(grpc_health_server):
    port, servicer = grpc_health_server
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    report = run_check({"grpc": {}, "failureThreshold": 1, **FAST}, f"127.0.0.1:{port}")
    assert (report.healthy, report.outcomes) == (False, ["NOT_SERVING"])
    exec_check = {"exec": {"command": ["/bin/sh", "-c", "test {port} = 8080"]}, **FAST}
    assert run_check(exec_check, "127.0.0.1:8080").healthy


def test_check_health_cancellation_interrupts_the_wait_between_probes(http_server):
    server = http_server(lambda n: 503)
    env = ActivityEnvironment()
    probed = threading.Event()
    env.on_heartbeat = lambda *details: probed.set()

    def cancel_after_first_probe() -> None:
        probed.wait(10)
        env.cancel()

    threading.Thread(target=cancel_after_first_probe, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(CancelledError):
        run_check({"http": {}, "periodSeconds": 60}, server.target, env)
    assert time.monotonic() - started < 10
    assert len(server.requests) == 1


def test_check_health_rejects_a_malformed_target_as_invalid_spec():
    with pytest.raises(ApplicationError) as e:
        run_check({"tcp": {}}, "127.0.0.1")
    assert e.value.type == INVALID_SPEC
    assert e.value.non_retryable
    assert "has no port and the tcp check sets none" in str(e.value)
